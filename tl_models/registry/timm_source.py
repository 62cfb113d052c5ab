"""The pretrained cfgs of a variant whose ``backbone`` is a timm architecture, taken from timm's own cfgs.

The untagged cfg is the preprocessing of timm's default checkpoint for that architecture; each of timm's
pretrained tags with a hub repo becomes a tag of the variant: that checkpoint as the backbone initialisation,
with its preprocessing and its number of classes. timm's default tag comes first, as in timm.
"""
from typing import Any, Dict, Tuple

from timm.models import get_arch_pretrained_cfgs, split_model_name_tag

__all__ = ['BACKBONE_CFG_KEYS', 'backbone_pretrained']

# Pretrained-cfg fields a variant takes from timm's cfg of its backbone (those of the YAML schema, less weights).
BACKBONE_CFG_KEYS = ('input_size', 'test_input_size', 'fixed_input_size', 'interpolation', 'crop_pct',
                     'test_crop_pct', 'crop_mode', 'mean', 'std', 'num_classes', 'license', 'origin_url',
                     'paper_name', 'paper_ids')


def _fields(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The set preprocessing and source fields of one of timm's cfgs, tuples as lists (as YAML gives them)."""
    return {k: list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k]
            for k in BACKBONE_CFG_KEYS if cfg.get(k) is not None}


def _description(name: str) -> str:
    return (f"Initialisation for fine-tuning, not a trained TokenLearner model. Backbone from timm's {name} "
            f'(its weights and preprocessing); TokenLearner starts untrained.')


def backbone_pretrained(backbone: str) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The untagged pretrained-cfg fields and the tags of a variant built on timm's architecture ``backbone``.

    Returns:
        ``(pretrained_cfg, tags)``: the fields of timm's default cfg for ``backbone``, and tag -> fields
        (``hf_hub_id``, preprocessing, ``num_classes``, ``description``) for every timm tag with a hub repo.
    """
    cfgs = {name: cfg.to_dict() for name, cfg in get_arch_pretrained_cfgs(backbone).items()}
    default = next(iter(cfgs.values()), {})
    tags = {}
    for name, cfg in cfgs.items():
        _, tag = split_model_name_tag(name)
        if tag and cfg.get('hf_hub_id'):
            weights = {k: cfg[k] for k in ('hf_hub_id', 'hf_hub_filename') if cfg.get(k)}
            tags[tag] = dict(_fields(cfg), **weights, description=_description(name))
    return _fields(default), tags
