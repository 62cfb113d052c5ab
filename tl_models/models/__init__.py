"""timm integration: the TokenLearner ViT model class, its factory and checkpoint adaptation."""
from .adapt import CheckpointMismatchError, checkpoint_filter_fn
from .tl_vit import TokenLearnerVisionTransformer, create_tl_vit

__all__ = ['CheckpointMismatchError', 'TokenLearnerVisionTransformer', 'checkpoint_filter_fn', 'create_tl_vit']
