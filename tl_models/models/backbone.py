"""timm's own definition of a ViT architecture, read by name: the backbone a TokenLearner variant starts from.

A timm entrypoint such as ``vit_small_patch14_dinov2`` holds its architecture as keyword arguments that it
passes, through its module's ``_create_...`` helper, to ``build_model_with_cfg(VisionTransformer, variant,
pretrained, **kwargs)``. :func:`vit_arguments` calls the entrypoint with ``build_model_with_cfg`` swapped for
a recorder in timm's model modules, so it reads those arguments without building (or downloading) anything.
"""
import difflib
import inspect
import sys
from typing import Any, Dict, Iterator, List

import timm
import timm.models
from timm.models import VisionTransformer, build_model_with_cfg

__all__ = ['UNSUPPORTED_ARGUMENTS', 'BackboneError', 'vit_arguments']

# Arguments of build_model_with_cfg itself (weights, features), not of the model class.
_BUILDER_ARGUMENTS = frozenset(inspect.signature(build_model_with_cfg).parameters) - {'kwargs'}
# VisionTransformer arguments a TokenLearner ViT cannot take: a hybrid's CNN stem replaces the patch embedding.
UNSUPPORTED_ARGUMENTS = {'embed_layer': 'a hybrid CNN stem (embed_layer)'}
_SUPPORTED = ("a timm VisionTransformer architecture with a patch embedding, e.g. vit_base_patch16_224, "
              "deit3_small_patch16_224, vit_small_patch14_dinov2, vit_base_patch16_clip_224, "
              "vit_base_patch16_siglip_224")


class BackboneError(ValueError):
    """A name that is not a timm ``VisionTransformer`` architecture a TokenLearner ViT can be built from."""


class _Recorded(Exception):
    """Carries the arguments the entrypoint passed to ``build_model_with_cfg`` out of it, stopping the build."""

    def __init__(self, model_cls: Any, kwargs: Dict[str, Any]):
        super().__init__()
        self.model_cls = model_cls
        self.kwargs = kwargs


def _record(model_cls: Any, variant: str, pretrained: bool = False, **kwargs: Any) -> None:
    raise _Recorded(model_cls, {k: v for k, v in kwargs.items() if k not in _BUILDER_ARGUMENTS})


def _timm_model_modules() -> Iterator[Any]:
    """timm's model modules that build through ``build_model_with_cfg`` (a hybrid's goes through another's)."""
    for name, module in list(sys.modules.items()):
        if name.startswith('timm.models.') and getattr(module, 'build_model_with_cfg', None) is build_model_with_cfg:
            yield module


def _record_build(name: str) -> _Recorded:
    """Calls timm's entrypoint ``name`` with ``build_model_with_cfg`` recording instead of building."""
    modules: List[Any] = list(_timm_model_modules())
    for module in modules:
        module.build_model_with_cfg = _record
    try:
        timm.models.model_entrypoint(name)(pretrained=False)
    except _Recorded as recorded:
        return recorded
    finally:
        for module in modules:
            module.build_model_with_cfg = build_model_with_cfg
    raise BackboneError(f"timm's {name} does not build through build_model_with_cfg; expected {_SUPPORTED}")


def vit_arguments(name: str) -> Dict[str, Any]:
    """The keyword arguments timm's entrypoint ``name`` gives ``VisionTransformer`` (a pretrained tag is ignored).

    ``vit_small_patch14_dinov2`` -> ``{'patch_size': 14, 'embed_dim': 384, 'depth': 12, 'num_heads': 6,
    'init_values': 1e-05}``; timm's defaults fill the rest, and the image size comes from the pretrained cfg.

    Raises:
        BackboneError: an unknown name (the message lists close ones), a model that is not a timm
            ``VisionTransformer`` (EVA, Swin, ...), or a hybrid ViT with a CNN stem.
    """
    arch = timm.models.get_arch_name(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models('*vit*') + timm.list_models('deit*'), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ''
        raise BackboneError(f"unknown timm model '{arch}' as backbone; expected {_SUPPORTED}{hint}")
    recorded = _record_build(arch)
    if recorded.model_cls is not VisionTransformer:
        built = getattr(recorded.model_cls, '__name__', repr(recorded.model_cls))
        raise BackboneError(f"timm's {arch} is a {built}, not a VisionTransformer; expected {_SUPPORTED}")
    for key, what in UNSUPPORTED_ARGUMENTS.items():
        if key in recorded.kwargs:
            raise BackboneError(f"timm's {arch} is a ViT with {what}, which a TokenLearner ViT does not support; "
                                f'expected {_SUPPORTED}')
    return recorded.kwargs
