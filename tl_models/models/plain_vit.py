"""Plain timm Vision Transformers defined in our YAML files: twins of TokenLearner variants at sizes timm lacks.

A variant named ``vit_...`` in ``configs/*.yaml`` is timm's own ``VisionTransformer``, built by timm's own
ViT constructor, so that a TokenLearner variant and its plain twin differ in nothing but the TokenLearner.
"""
from typing import Any, Dict

from timm.models import DefaultCfg, VisionTransformer
from timm.models.vision_transformer import _create_vision_transformer

from ..weights import pretrained_file_overlay

__all__ = ['create_plain_vit']

# Filled from configs/*.yaml by tl_models.registry, which registers an entrypoint per plain variant here.
default_cfgs: Dict[str, DefaultCfg] = {}


def create_plain_vit(variant: str, pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Builds a registered plain variant with timm's ViT constructor (pretrained weights, features_only).

    With ``pretrained``, the weight file is found and checked first, so that errors name it
    (:func:`tl_models.pretrained.pretrained_file_overlay`).
    """
    if pretrained:
        kwargs['pretrained_cfg_overlay'] = pretrained_file_overlay(
            variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay'), kwargs.get('cache_dir'))
    return _create_vision_transformer(variant, pretrained=pretrained, **kwargs)
