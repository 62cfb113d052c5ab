"""Model variants defined in YAML (``configs/*.yaml``) and registered with timm."""
from .generic import GENERIC_PLAIN, GENERIC_TOKENLEARNER, generic_architecture
from .register import (
    builtin_config_dir,
    get_variant,
    is_builtin,
    list_plain_variants,
    list_plain_video_variants,
    list_variants,
    list_video_variants,
    register_builtin_variants,
    register_variants,
)
from .schema import Variant, VariantConfigError, parse_variant_file

__all__ = [
    'GENERIC_PLAIN', 'GENERIC_TOKENLEARNER', 'Variant', 'VariantConfigError', 'builtin_config_dir',
    'generic_architecture', 'get_variant', 'is_builtin', 'list_plain_variants', 'list_plain_video_variants',
    'list_variants', 'list_video_variants', 'parse_variant_file', 'register_builtin_variants', 'register_variants',
]
