"""``checkpoint_filter_fn``: maps a plain timm ViT checkpoint, or one of ours, onto a TokenLearner ViT.

A TokenLearner ViT shares every parameter name with timm's ``VisionTransformer``; only
``token_learners.*`` and ``token_fusers.*`` are its own. A checkpoint without them is a plain-ViT
backbone: those parameters keep their fresh initialisation, and a log line names them. Everything
else loads strictly, after these adaptations of a backbone:

- class / register tokens the model does not have are dropped, with their position embeddings;
- position embeddings are resampled to the model's grid and patch embeddings to its patch size
  (timm's own ``vision_transformer.checkpoint_filter_fn``);
- the final ``norm`` becomes ``fc_norm`` when the model pools before normalising (``global_pool='avg'``),
  and the other way round.
"""
import logging
import math
from typing import Dict, List

import torch
import torch.nn as nn
from timm.models.vision_transformer import checkpoint_filter_fn as vit_checkpoint_filter_fn

__all__ = ['LEARNER_PREFIXES', 'CheckpointMismatchError', 'checkpoint_filter_fn', 'describe_source']

_logger = logging.getLogger(__name__)
LEARNER_PREFIXES = ('token_learners.', 'token_fusers.')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model; the message names the checkpoint and the offending keys."""


def describe_source(model: nn.Module) -> str:
    """Where ``model``'s pretrained weights come from, for messages: a hub repo, a folder or a file."""
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    if cfg.get('hf_hub_id'):
        return f"hf-hub:{cfg['hf_hub_id']}"
    return cfg.get('file') or cfg.get('url') or 'the checkpoint'


def _unwrap(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    for key in ('model', 'state_dict'):
        if isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
    return dict(state_dict)


def _drop_missing_prefix_tokens(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> None:
    """Removes class / register tokens ``model`` lacks, and their rows of the position embedding."""
    prefix = {'cls_token': getattr(model, 'cls_token', None), 'reg_token': getattr(model, 'reg_token', None)}
    counts = {k: state_dict[k].shape[1] for k in prefix if k in state_dict}
    pos_embed = state_dict.get('pos_embed')
    if pos_embed is not None and counts:
        embedded = sum(counts.values())
        grid_tokens = pos_embed.shape[1] - embedded
        if math.isqrt(grid_tokens) ** 2 == grid_tokens:  # else the checkpoint does not embed its prefix tokens
            keep = []
            start = 0
            for key in ('cls_token', 'reg_token'):  # timm's order of prefix tokens
                if key in counts:
                    if prefix[key] is not None:
                        keep.append(pos_embed[:, start:start + counts[key]])
                    start += counts[key]
            state_dict['pos_embed'] = torch.cat([*keep, pos_embed[:, embedded:]], dim=1)
    for key, param in prefix.items():
        if param is None:
            state_dict.pop(key, None)


def _rename_final_norm(state_dict: Dict[str, torch.Tensor], model_keys: set) -> None:
    """Moves ``norm.*`` to ``fc_norm.*`` (or back) when only the other exists in the model."""
    for src, dst in (('norm.', 'fc_norm.'), ('fc_norm.', 'norm.')):
        for key in [k for k in state_dict if k.startswith(src)]:
            target = dst + key[len(src):]
            if key not in model_keys and target in model_keys and target not in state_dict:
                state_dict[target] = state_dict.pop(key)


def _fail(source: str, problem: str, keys: List[str]) -> None:
    shown = ', '.join(keys[:12]) + (f' ... ({len(keys)} in all)' if len(keys) > 12 else '')
    raise CheckpointMismatchError(f'{source}: {problem}: {shown}')


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Returns ``state_dict`` adapted to ``model`` (see the module docstring).

    Raises:
        CheckpointMismatchError: keys the model lacks, parameters the checkpoint lacks (other than
            TokenLearner / TokenFuser parameters of a plain-ViT backbone, and the classifier head), or
            shapes that differ after adaptation; the message names the checkpoint and the keys.
    """
    source = describe_source(model)
    own = model.state_dict()
    state_dict = _unwrap(state_dict)
    is_backbone = not any(k.startswith(LEARNER_PREFIXES) for k in state_dict)

    _drop_missing_prefix_tokens(state_dict, model)
    state_dict = vit_checkpoint_filter_fn(state_dict, model)  # resamples position and patch embeddings
    _rename_final_norm(state_dict, set(own))

    fresh = [k for k in own if k not in state_dict and (k.startswith(LEARNER_PREFIXES) and is_backbone)]
    for key in fresh:
        state_dict[key] = own[key]

    unexpected = sorted(k for k in state_dict if k not in own)
    if unexpected:
        _fail(source, f'{len(unexpected)} key(s) that {type(model).__name__} does not have', unexpected)
    missing = sorted(k for k in own if k not in state_dict and not k.startswith('head.'))
    if missing:
        _fail(source, f'{len(missing)} parameter(s) missing from the checkpoint', missing)
    mismatched = [f'{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in state_dict.items()
                  if not k.startswith('head.') and tuple(v.shape) != tuple(own[k].shape)]
    if mismatched:
        _fail(source, 'shapes differ (checkpoint vs model)', mismatched)

    if fresh:
        _logger.warning(
            '%s is a plain ViT backbone: %d TokenLearner/TokenFuser tensors are new and keep their fresh '
            'initialisation (fine-tune before use): %s', source, len(fresh), ', '.join(fresh))
    return state_dict
