"""Model variants defined in YAML (``configs/*.yaml``) and registered with timm: each variant's identity
(TokenLearner or plain, image or video and its frames, its twin) comes from its definition."""
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
from .schema import InputSpec, Variant, VariantConfigError, parse_variant_file
from .twins import TOKENLEARNER_ONLY_ARGS, twin_name

__all__ = [
    'GENERIC_PLAIN', 'GENERIC_TOKENLEARNER', 'TOKENLEARNER_ONLY_ARGS', 'InputSpec', 'Variant', 'VariantConfigError',
    'builtin_config_dir', 'generic_architecture', 'get_variant', 'is_builtin', 'list_plain_variants',
    'list_plain_video_variants', 'list_variants', 'list_video_variants', 'parse_variant_file',
    'register_builtin_variants', 'register_variants', 'twin_name',
]
