"""Architectures built from their arguments alone: what exported variants of your own YAML files load as.

A model exported from a variant that only your YAML file defines could not be rebuilt by name in a Python
that has not registered that file. Its ``config.json`` therefore names ``tl_vit`` (a TokenLearner ViT) or
``tl_vit_plain`` (a plain twin) and records every architecture argument; any Python with tl-models
installed rebuilds it from those, while the config and model card keep the variant's own name and tag.
Both are ordinary timm models too: ``timm.create_model('tl_vit', embed_dim=192, depth=6, num_heads=3,
num_tokens=8, tokenlearner_loc=3)`` builds that TokenLearner ViT directly.
"""
from typing import Any, Callable

import timm.models

from ..models import plain_vit, tl_vit
from .schema import Variant

__all__ = ['GENERIC_PLAIN', 'GENERIC_TOKENLEARNER', 'generic_architecture', 'register_generic_architectures']

GENERIC_TOKENLEARNER = 'tl_vit'
GENERIC_PLAIN = 'tl_vit_plain'
# The default preprocessing of a bare timm.create_model('tl_vit'): that of timm's ViT-B/16 at 224 px.
_DEFAULT_CFG = dict(input_size=(3, 224, 224), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.9,
                    interpolation='bicubic', license='apache-2.0', num_classes=1000, first_conv='patch_embed.proj',
                    classifier='head')


def generic_architecture(variant: Variant) -> str:
    """The generic architecture that rebuilds ``variant`` from its arguments.

    Raises:
        ValueError: a video variant (there is no generic video architecture yet).
    """
    if variant.is_video:
        raise ValueError(f'{variant.name} is a video variant of {variant.path}: no generic architecture rebuilds video '
                         'models yet, so only shipped video variants can be exported')
    return GENERIC_TOKENLEARNER if variant.is_tokenlearner else GENERIC_PLAIN


def _entrypoint(name: str, create: Callable[..., Any], module: Any, doc: str) -> Callable[..., Any]:
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> Any:
        return create(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = module.__name__
    entrypoint.__doc__ = doc
    return entrypoint


def register_generic_architectures() -> None:
    """Registers ``tl_vit`` and ``tl_vit_plain`` with timm (once)."""
    for name, create, module, doc in (
            (GENERIC_TOKENLEARNER, tl_vit.create_tl_vit, tl_vit,
             'A TokenLearner ViT built from its arguments alone (exports of variants of your own YAML files).'),
            (GENERIC_PLAIN, plain_vit.create_plain_vit, plain_vit,
             "timm's plain VisionTransformer built from its arguments alone (exports of plain vit_ variants of "
             'your own YAML files).')):
        if timm.models.is_model(name):
            continue
        module.default_cfgs.update(timm.models.generate_default_cfgs({name: dict(_DEFAULT_CFG)}))
        timm.models.register_model(_entrypoint(name, create, module, doc))
