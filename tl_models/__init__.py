"""tl_models: TokenLearner Vision Transformers for PyTorch and timm.

Importing the package registers every variant of ``configs/*.yaml`` with timm, so that
``timm.create_model('tl_...')`` works afterwards.
"""
from .layers import TokenFuser, TokenLearner, TokenLearnerV11
from .models import TokenLearnerVisionTransformer
from .registry import VariantConfigError, get_variant, list_variants, register_builtin_variants, register_variants
from .version import __version__

__all__ = [
    'TokenFuser', 'TokenLearner', 'TokenLearnerV11', 'TokenLearnerVisionTransformer', 'VariantConfigError',
    '__version__', 'get_variant', 'list_variants', 'register_variants',
]

register_builtin_variants()
