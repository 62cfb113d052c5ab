"""The twin of a TokenLearner variant: the plain ViT it is compared with, read from its definition.

One notion for the whole package (benchmarks, studies, distillation): the timm ViT a user would otherwise pick,
taken as timm defines it: same patch size, width, depth, heads and image size (``tl_vit_base_patch16_224_*`` ->
``vit_base_patch16_224``), with timm's class token and class-token pooling. The TokenLearner variants drop the
class token and average-pool, as the paper's models do. At a size timm does not define, the twin is the plain
variant of our YAML files whose architecture is the variant's without the TokenLearner
(``tl_vit_nano_patch4_32_8at2`` -> ``vit_nano_patch4_32``; for a video variant the plain video model:
``tl_vivit_pico_patch4_32_8f_8at2`` -> ``vivit_pico_patch4_32_8f``); a variant with neither (e.g. the 16 px digits
model) has no twin. A variant built on a timm backbone (``backbone:`` in its YAML entry) has that backbone as its
twin, timm's model as it is (``tl_vit_small_patch14_dinov2_8at6`` -> ``vit_small_patch14_dinov2``).
"""
import inspect
from typing import Optional

import timm
from timm.models import VisionTransformer

from ..models import TokenLearnerVisionTransformer
from .register import get_variant, list_plain_variants, list_plain_video_variants
from .schema import Variant

__all__ = ['TOKENLEARNER_ONLY_ARGS', 'VIT_SIZES', 'twin_name']

# timm's ViT sizes by (embed_dim, depth, num_heads).
VIT_SIZES = {(192, 12, 3): 'tiny', (384, 12, 6): 'small', (768, 12, 12): 'base', (1024, 24, 16): 'large',
             (1280, 32, 16): 'huge'}

# Keyword arguments of TokenLearnerVisionTransformer that timm's VisionTransformer does not take.
TOKENLEARNER_ONLY_ARGS = tuple(sorted(
    set(inspect.signature(TokenLearnerVisionTransformer.__init__).parameters)
    - set(inspect.signature(VisionTransformer.__init__).parameters) - {'kwargs'}))

# Architecture keys a variant may set without losing its twin: its size, the TokenLearner settings and the
# paper's head (no class token, average pooling), which comes with switching to the TokenLearner model.
_TWIN_COMPATIBLE_KEYS = {'patch_size', 'embed_dim', 'depth', 'num_heads', 'class_token', 'global_pool',
                         'weight_init', *TOKENLEARNER_ONLY_ARGS}


def _registered_twin(variant_name: str) -> Optional[str]:
    """The plain ``vit_`` (for a video variant ``vivit_``) variant of our YAML files identical to ``variant_name``
    but for its TokenLearner."""
    variant = get_variant(variant_name)
    arch = {k: v for k, v in variant.architecture.items() if k not in TOKENLEARNER_ONLY_ARGS}
    for name in list_plain_video_variants() if variant.is_video else list_plain_variants():
        plain = get_variant(name)
        if plain.architecture == arch and plain.pretrained_cfg['input_size'] == variant.pretrained_cfg['input_size']:
            return name
    return None


def _backbone_twin(variant: Variant) -> str:
    """The timm backbone of ``variant``, if the variant changes nothing of it but the TokenLearner."""
    extra = sorted(set(variant.architecture) - set(TOKENLEARNER_ONLY_ARGS))
    if extra:
        raise ValueError(
            f"{variant.name}: no plain timm ViT twin, its architecture changes {', '.join(extra)} of timm's "
            f'{variant.backbone} (a twin may differ only in the TokenLearner settings '
            f"{', '.join(TOKENLEARNER_ONLY_ARGS)}); benchmark it without twins")
    return variant.backbone


def twin_name(variant_name: str) -> str:
    """The plain ViT a TokenLearner variant is compared with, e.g. ``vit_base_patch16_224`` (timm's),
    ``vit_nano_patch4_32`` (ours, at a size timm lacks) or ``vivit_pico_patch4_32_8f`` (ours, for a video variant).

    Raises:
        KeyError: ``variant_name`` is not a registered TokenLearner variant (the message lists close names).
        ValueError: the variant's architecture has no plain ViT twin.
    """
    variant = get_variant(variant_name)
    if variant.backbone:
        return _backbone_twin(variant)
    registered = _registered_twin(variant_name)
    if registered is not None:
        return registered
    if variant.is_video:
        raise ValueError(f'{variant.name}: no plain video twin, none of {", ".join(list_plain_video_variants())} '
                         'has its architecture and input size without the TokenLearner; benchmark it without twins')
    arch = variant.settings
    extra = sorted(set(arch) - _TWIN_COMPATIBLE_KEYS)
    if extra:
        raise ValueError(
            f"{variant.name}: no plain timm ViT twin, its architecture also sets {', '.join(extra)} "
            f"(a twin may differ only in {', '.join(sorted(_TWIN_COMPATIBLE_KEYS))}); benchmark it without twins")
    size = VIT_SIZES.get((arch['embed_dim'], arch['depth'], arch['num_heads']))
    image = variant.pretrained_cfg['input_size'][-1]
    name = f"vit_{size}_patch{arch['patch_size']}_{image}"
    if size is None or not timm.is_model(name):
        known = ', '.join(f'{s} (embed_dim {d}, depth {n}, heads {h})' for (d, n, h), s in VIT_SIZES.items())
        raise ValueError(
            f"{variant.name}: no timm ViT twin for embed_dim {arch['embed_dim']}, depth {arch['depth']}, "
            f"heads {arch['num_heads']}, patch {arch['patch_size']} at {image} px; timm's ViT sizes are {known}")
    return name
