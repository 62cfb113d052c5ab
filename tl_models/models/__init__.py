"""timm integration: the TokenLearner ViT and video model classes, their factories, checkpoint adaptation and timm
backbones."""
from .adapt import CheckpointMismatchError, checkpoint_filter_fn
from .adapt_video import video_checkpoint_filter_fn
from .backbone import BackboneError, vit_arguments
from .tl_video import TokenLearnerVideoTransformer, TubeletEmbed, create_tl_video
from .tl_vit import TokenLearnerVisionTransformer, create_tl_vit

__all__ = ['BackboneError', 'CheckpointMismatchError', 'TokenLearnerVideoTransformer', 'TokenLearnerVisionTransformer',
           'TubeletEmbed', 'checkpoint_filter_fn', 'create_tl_video', 'create_tl_vit', 'video_checkpoint_filter_fn',
           'vit_arguments']
