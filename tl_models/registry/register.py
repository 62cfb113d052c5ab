"""Registers YAML-defined variants in timm's model registry, one generic entrypoint per variant."""
import difflib
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Union

import timm.models

from ..models import plain_vit, tl_video, tl_vit
from .generic import register_generic_architectures
from .schema import Variant, VariantConfigError, parse_variant_file

__all__ = ['builtin_config_dir', 'get_variant', 'is_builtin', 'list_plain_variants', 'list_plain_video_variants',
           'list_variants', 'list_video_variants', 'register_builtin_variants', 'register_variants']

_logger = logging.getLogger(__name__)
_variants: Dict[str, Variant] = {}

# Pretrained-cfg fields every TokenLearner ViT shares; the YAML files (or timm's cfgs of a backbone) hold everything
# that varies.
_FAMILY_CFG = dict(num_classes=1000, first_conv='patch_embed.proj', classifier='head', fixed_input_size=True)


def builtin_config_dir() -> Path:
    """The folder of the shipped variant YAML files: inside the installed package, or ``configs/`` of a checkout."""
    packaged = Path(__file__).resolve().parents[1] / 'configs'
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / 'configs'


def _as_timm_cfg(fields: Dict[str, Any], variant: Variant) -> Dict[str, Any]:
    cfg = dict(_FAMILY_CFG, **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    if variant.settings.get('dynamic_img_size', False):
        cfg['fixed_input_size'] = False
    return cfg


def _model_module(variant: Variant):
    """The module that holds the variant's factory and pretrained cfgs: ``tl_vit``, ``plain_vit`` or ``tl_video``
    (video models and their plain twins)."""
    if variant.is_video:
        return tl_video
    return tl_vit if variant.is_tokenlearner else plain_vit


def _factory(variant: Variant) -> Callable[..., timm.models.VisionTransformer]:
    """The function that builds the variant: a video twin is the video model without TokenLearner keys."""
    if variant.is_video:
        return tl_video.create_tl_video
    return tl_vit.create_tl_vit if variant.is_tokenlearner else plain_vit.create_plain_vit


def _make_entrypoint(variant: Variant) -> Callable[..., timm.models.VisionTransformer]:
    model_args = variant.model_args
    create = _factory(variant)

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> timm.models.VisionTransformer:
        return create(variant.name, pretrained=pretrained, **dict(model_args, **kwargs))

    entrypoint.__name__ = entrypoint.__qualname__ = variant.name
    entrypoint.__module__ = _model_module(variant).__name__
    entrypoint.__doc__ = f'{variant.description}\n\nDefined in {variant.path.name}.'
    return entrypoint


def _check_names(variants: List[Variant]) -> None:
    seen: Dict[str, Path] = {name: v.path for name, v in _variants.items()}
    for variant in variants:
        if variant.name in seen:
            raise VariantConfigError(
                f"{variant.path}: variant '{variant.name}': key 'variants': duplicate name, "
                f'already defined in {seen[variant.name]}')
        if timm.models.is_model(variant.name):
            raise VariantConfigError(
                f"{variant.path}: variant '{variant.name}': key 'variants': clashes with a model timm already "
                f'registers; pick another name')
        seen[variant.name] = variant.path


def register_variants(paths: Union[str, Path, Iterable[Union[str, Path]]]) -> List[str]:
    """Registers the variants of one or more YAML files with timm; returns their names.

    All files are validated before anything is registered, so a bad file registers nothing.

    Raises:
        VariantConfigError: a file breaks the schema, or a name is taken (by us or by timm).
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    variants = [v for path in paths for v in parse_variant_file(path)]
    _check_names(variants)
    for variant in variants:
        if variant.tags:
            cfgs = {f'{variant.name}.{tag}': _as_timm_cfg({**variant.pretrained_cfg, **fields}, variant)
                    for tag, fields in variant.tags.items()}
        else:
            cfgs = {variant.name: _as_timm_cfg(variant.pretrained_cfg, variant)}
        _model_module(variant).default_cfgs.update(timm.models.generate_default_cfgs(cfgs))
        timm.models.register_model(_make_entrypoint(variant))
        _variants[variant.name] = variant
    _logger.debug('registered %d TokenLearner variants from %s', len(variants), ', '.join(map(str, paths)))
    return [v.name for v in variants]


def register_builtin_variants() -> List[str]:
    """Registers every shipped ``configs/*.yaml`` (training recipes in sub-folders are not variants), and the
    generic architectures exports of other variants load as (:mod:`.generic`)."""
    register_generic_architectures()
    return register_variants(sorted(builtin_config_dir().glob('*.yaml')))


def is_builtin(variant: Variant) -> bool:
    """Whether ``variant`` is one of the shipped ones (registered wherever tl-models is installed)."""
    return variant.path.parent == builtin_config_dir()


def list_variants() -> List[str]:
    """Names of every registered TokenLearner image variant, sorted (video ones: :func:`list_video_variants`)."""
    return sorted(name for name, v in _variants.items() if v.is_tokenlearner and not v.is_video)


def list_plain_variants() -> List[str]:
    """Names of every registered plain ViT image variant (``vit_...``, twins at sizes timm lacks), sorted."""
    return sorted(name for name, v in _variants.items() if not v.is_tokenlearner and not v.is_video)


def list_video_variants() -> List[str]:
    """Names of every registered TokenLearner video variant (``tl_vivit_...``), sorted."""
    return sorted(name for name, v in _variants.items() if v.is_tokenlearner and v.is_video)


def list_plain_video_variants() -> List[str]:
    """Names of every registered plain video variant (``vivit_...``, the twins of the video variants), sorted."""
    return sorted(name for name, v in _variants.items() if not v.is_tokenlearner and v.is_video)


def get_variant(name: str) -> Variant:
    """The registered variant ``name`` (a pretrained tag after '.' is ignored).

    Raises:
        KeyError: no such variant; the message lists close names.
    """
    arch = timm.models.get_arch_name(name)
    if arch not in _variants:
        close = difflib.get_close_matches(arch, list(_variants), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see tl_models.list_variants()"
        raise KeyError(f"unknown TokenLearner model '{arch}'{hint}")
    return _variants[arch]
