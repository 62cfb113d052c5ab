"""timm integration: the TokenLearner ViT model class, its factory, checkpoint adaptation and timm backbones."""
from .adapt import CheckpointMismatchError, checkpoint_filter_fn
from .backbone import BackboneError, vit_arguments
from .tl_vit import TokenLearnerVisionTransformer, create_tl_vit

__all__ = ['BackboneError', 'CheckpointMismatchError', 'TokenLearnerVisionTransformer', 'checkpoint_filter_fn',
           'create_tl_vit', 'vit_arguments']
