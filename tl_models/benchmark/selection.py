"""Which models a benchmark runs: TokenLearner variants and, for each, the plain timm ViT it is compared with.

The twin of a variant is the timm ViT a user would otherwise pick, taken as timm defines it: same patch size,
width, depth, heads and image size (``tl_vit_base_patch16_224_*`` -> ``vit_base_patch16_224``), with timm's
class token and class-token pooling. The TokenLearner variants drop the class token and average-pool, as the
paper's models do; the twin's GMACs count its class token, so the FLOP-ratio bound compares the two models
exactly as run. At a size timm does not define, the twin is the plain ``vit_`` variant of our YAML files whose
architecture is the variant's without the TokenLearner (``tl_vit_nano_patch4_32_8at2`` -> ``vit_nano_patch4_32``);
a variant with neither (e.g. the 16 px digits model) is measured without a twin. A variant built on a timm
backbone (``backbone:`` in its YAML entry) is compared with that backbone, timm's model as it is
(``tl_vit_small_patch14_dinov2_8at6`` -> ``vit_small_patch14_dinov2``).

A video variant (``tl_vivit_...``, on clips ``[B, 3, T, H, W]``) is compared with the plain video twin of our YAML
files, the same video model without TokenLearner (``tl_vivit_pico_patch4_32_8f_8at2`` -> ``vivit_pico_patch4_32_8f``);
timm has no video ViT. Video variants are chosen by name or pattern (``'tl_vivit_*'``); ``default`` and ``all``
are the image variants.
"""
import dataclasses
import difflib
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import timm
from timm.models import get_arch_name, get_pretrained_cfg

from ..registry import (
    TOKENLEARNER_ONLY_ARGS,
    get_variant,
    list_plain_variants,
    list_variants,
    list_video_variants,
    twin_name,
)

__all__ = ['TOKENLEARNER_ONLY_ARGS', 'ModelSpec', 'default_model_names', 'group_by_baseline', 'resolve_models',
           'twin_name']

_logger = logging.getLogger(__name__)

ALL = 'all'
DEFAULT = 'default'


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model to benchmark.

    Attributes:
        name: The timm model name.
        kwargs: Extra ``timm.create_model`` arguments (overrides such as ``img_size`` or ``depth``).
        input_size: ``(channels, height, width)`` of its input images, ``(channels, frames, height, width)`` of
            a video model's clips.
        is_tokenlearner: A registered TokenLearner variant.
        baseline: For a TokenLearner variant, the name of its plain twin (None if it has none).
    """
    name: str
    kwargs: Dict[str, Any]
    input_size: Tuple[int, ...]
    is_tokenlearner: bool = False
    baseline: Optional[str] = None


def _canonical_rank(name: str) -> Tuple[Any, ...]:
    """Sort key putting a size's reference variant first: 224 px, 8 tokens at mid-depth, v1.1, no TokenFuser."""
    variant = get_variant(name)
    arch = variant.settings
    return (variant.pretrained_cfg['input_size'][-1] != 224, arch['num_tokens'] != 8,
            arch['tokenlearner_loc'] != arch['depth'] // 2, not arch.get('use_v11', True),
            arch.get('use_tokenfuse', False), name)


def _size_rank(name: str) -> Tuple[Any, ...]:
    """Sort key by model size (width, depth, image size), each size's reference variant first."""
    variant = get_variant(name)
    arch = variant.settings
    return (arch['embed_dim'], arch['depth'], variant.pretrained_cfg['input_size'][-1], _canonical_rank(name))


def _has_timm_twin(variant_name: str) -> bool:
    """A twin among timm's plain ViT sizes (variants on a timm backbone, the large families, are left out)."""
    if get_variant(variant_name).backbone:
        return False
    try:
        return twin_name(variant_name) not in list_plain_variants()
    except ValueError:
        return False


def default_model_names() -> List[str]:
    """One TokenLearner variant per timm ViT size (width and depth), the reference variant of each, smallest first.

    Sizes timm has no plain ViT of (ours, such as the 32 px CIFAR sizes, and the 16 px digits model) are left out,
    and so are the variants on other timm backbones (DINOv2, CLIP, ...: large models; name them to run them).
    """
    by_size: Dict[Tuple[int, int], List[str]] = {}
    for name in filter(_has_timm_twin, list_variants()):
        arch = get_variant(name).settings
        by_size.setdefault((arch['embed_dim'], arch['depth']), []).append(name)
    return [min(names, key=_canonical_rank) for _, names in sorted(by_size.items())]


def _expand(names: Sequence[str]) -> List[str]:
    """Model names with ``all``, ``default`` and wildcard patterns expanded, duplicates dropped.

    Raises:
        ValueError: an unknown name (the message lists close names) or a pattern that matches nothing.
    """
    expanded: List[str] = []
    for name in names:
        if name == ALL:
            matches = sorted(list_variants(), key=_size_rank)
        elif name == DEFAULT:
            matches = default_model_names()
        elif any(c in name for c in '*?['):
            matches = timm.list_models(name)
            if not matches:
                raise ValueError(f"model pattern '{name}' matches no timm model or TokenLearner variant")
        elif timm.is_model(name):
            matches = [get_arch_name(name)]  # no weights are loaded, so a pretrained tag changes nothing
        else:
            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else 'see timm.list_models()'
            raise ValueError(f"unknown model '{name}': expected a timm model name, a TokenLearner variant, a "
                             f"pattern such as 'tl_vit_base_*', '{DEFAULT}' or '{ALL}'; {hint}")
        expanded.extend(m for m in matches if m not in expanded)
    return expanded


def _input_size(name: str, kwargs: Dict[str, Any]) -> Tuple[int, ...]:
    """``(C, H, W)`` of an image model, ``(C, T, H, W)`` of a video model, as registered or as ``kwargs`` override
    (``in_chans``, ``img_size``, ``num_frames``)."""
    channels, *frames, height, width = get_pretrained_cfg(name).input_size
    if 'img_size' in kwargs:
        size = kwargs['img_size']
        height, width = (size, size) if isinstance(size, int) else tuple(size)
    if frames and 'num_frames' in kwargs:
        frames = [kwargs['num_frames']]
    return (kwargs.get('in_chans', channels), *frames, height, width)


def resolve_models(
        names: Sequence[str],
        model_args: Optional[Dict[str, Any]] = None,
        add_twins: bool = True,
) -> List[ModelSpec]:
    """The models to benchmark, each TokenLearner variant preceded by its twin unless ``add_twins`` is False.

    A variant without a timm twin (see :func:`twin_name`) is benchmarked on its own, with a logged note.

    Args:
        names: timm model names, TokenLearner variant names, wildcard patterns, ``default`` (one reference
            variant per size) or ``all`` (every registered variant).
        model_args: ``timm.create_model`` arguments for every model (``img_size``, ``depth``, ...); those only
            TokenLearner models take (``num_tokens``, ``tokenlearner_loc``, ...) go to them alone.
        add_twins: Add the plain twin of every TokenLearner variant (image or video).

    Raises:
        ValueError: an unknown model name or a pattern that matches nothing.
    """
    model_args = dict(model_args or {})
    shared_args = {k: v for k, v in model_args.items() if k not in TOKENLEARNER_ONLY_ARGS}
    variants = set(list_variants()) | set(list_video_variants())
    specs: List[ModelSpec] = []
    for name in _expand(names):
        if name in variants:
            try:
                twin: Optional[str] = twin_name(name)
            except ValueError as e:
                _logger.warning('%s; measuring it without a twin', e)
                twin = None
            if twin is not None and add_twins and all(s.name != twin for s in specs):
                specs.append(ModelSpec(twin, shared_args, _input_size(twin, shared_args)))
            specs.append(ModelSpec(name, model_args, _input_size(name, model_args), True, twin))
        elif all(s.name != name for s in specs):
            specs.append(ModelSpec(name, shared_args, _input_size(name, shared_args)))
    return specs


def group_by_baseline(specs: Sequence[ModelSpec]) -> List[List[ModelSpec]]:
    """Groups models compared with each other: each twin with its variants (a model without twin on its own)."""
    groups: Dict[str, List[ModelSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.baseline or spec.name, []).append(spec)
    return list(groups.values())
