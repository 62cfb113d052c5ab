"""``checkpoint_filter_fn``: maps a plain timm ViT checkpoint, or one of ours, onto a TokenLearner ViT.

A TokenLearner ViT shares every parameter name with timm's ``VisionTransformer``; only
``token_learners.*`` and ``token_fusers.*`` are its own. A checkpoint without them is a plain-ViT
backbone: those parameters keep their fresh initialisation, and a log line names them. Everything
else loads strictly, after these adaptations (of a backbone, or of our own weights at another size):

- class / register tokens the model does not have are dropped, with their position embeddings;
- position embeddings are resampled to the model's grid and patch embeddings to its patch size
  (timm's own ``vision_transformer.checkpoint_filter_fn``);
- the final ``norm`` becomes ``fc_norm`` when the model pools before normalising (``global_pool='avg'``),
  and the other way round.

For any checkpoint, the classifier ``head`` loads when the model has as many classes as the pretrained
cfg (``num_classes``) and starts fresh otherwise; the input channels of ``patch_embed`` are left to
timm, which adapts them to ``in_chans`` after this filter.
"""
import logging
import math
from typing import Callable, Dict, List, Optional, Set

import torch
import torch.nn as nn
from timm.models.vision_transformer import checkpoint_filter_fn as vit_checkpoint_filter_fn

__all__ = ['LEARNER_PREFIXES', 'Adapter', 'CheckpointMismatchError', 'adapt_vit', 'checkpoint_filter_fn',
           'describe_source', 'filter_checkpoint', 'unwrap']

_logger = logging.getLogger(__name__)
LEARNER_PREFIXES = ('token_learners.', 'token_fusers.')
# ``adapt(state_dict, model, model_keys, source) -> state_dict``: a checkpoint's tensors reshaped for ``model``.
Adapter = Callable[[Dict[str, torch.Tensor], nn.Module, Set[str], str], Dict[str, torch.Tensor]]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model; the message names the checkpoint and the offending keys."""


def describe_source(model: nn.Module) -> str:
    """Where ``model``'s pretrained weights come from, for messages: the hub repo and the local file."""
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    repo = f"hf-hub:{cfg['hf_hub_id']}" if cfg.get('hf_hub_id') else ''
    file = cfg.get('file') or cfg.get('url') or ''
    if repo and file:
        return f'{repo} ({file})'
    return repo or file or 'the checkpoint'


def unwrap(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint that may wrap them in ``model`` or ``state_dict``, as a new dict."""
    for key in ('model', 'state_dict'):
        if isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
    return dict(state_dict)


def _is_square(n: int) -> bool:
    return n >= 0 and math.isqrt(n) ** 2 == n


def _embeds_prefix(positions: int, prefix_tokens: int, model: nn.Module) -> bool:
    """Whether a checkpoint's position embedding of ``positions`` rows includes its ``prefix_tokens`` class /
    register tokens (timm's ``no_embed_class=False``), or covers only the patch grid.

    Decided by the model's grid when the checkpoint has that grid; else by which count is a square grid; where
    both are (or neither is), the checkpoint is taken to embed as the model does.
    """
    grid = getattr(getattr(model, 'patch_embed', None), 'num_patches', None)
    if grid is not None and positions in (grid, grid + prefix_tokens):
        return positions == grid + prefix_tokens
    square_all, square_rest = _is_square(positions), _is_square(positions - prefix_tokens)
    if square_all != square_rest:
        return square_rest
    return not getattr(model, 'no_embed_class', False)


def _drop_missing_prefix_tokens(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> None:
    """Removes class / register tokens ``model`` lacks, and their rows of the position embedding."""
    prefix = {'cls_token': getattr(model, 'cls_token', None), 'reg_token': getattr(model, 'reg_token', None)}
    counts = {k: state_dict[k].shape[1] for k in prefix if k in state_dict}
    pos_embed = state_dict.get('pos_embed')
    if pos_embed is not None and counts:
        embedded = sum(counts.values())
        if _embeds_prefix(pos_embed.shape[1], embedded, model):  # else there are no prefix rows to drop
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


def _fail(source: str, problem: str, keys: List[str], hint: str = '') -> None:
    shown = ', '.join(keys[:12]) + (f' ... ({len(keys)} in all)' if len(keys) > 12 else '')
    raise CheckpointMismatchError(f'{source}: {problem}: {shown}{hint}')


def adapt_vit(
        state_dict: Dict[str, torch.Tensor],
        model: nn.Module,
        model_keys: Set[str],
        source: str,
) -> Dict[str, torch.Tensor]:
    """Prefix tokens dropped, position / patch embeddings resampled (timm's ViT filter), final norm renamed."""
    _drop_missing_prefix_tokens(state_dict, model)
    try:
        state_dict = vit_checkpoint_filter_fn(state_dict, model)
    except (RuntimeError, ValueError, IndexError, KeyError) as e:  # tensors of another architecture
        raise CheckpointMismatchError(
            f'{source}: cannot adapt the checkpoint to {type(model).__name__} ({type(e).__name__}: {e}); '
            f'is it a ViT checkpoint?') from e
    _rename_final_norm(state_dict, model_keys)
    return state_dict


def _same_shape(key: str, loaded: torch.Size, own: torch.Size, first_conv_weight: str) -> bool:
    """Equal shapes; for the patch embedding, the input channels may differ (timm adapts them later)."""
    if key == first_conv_weight and len(loaded) == len(own) == 4:
        return loaded[0] == own[0] and loaded[2:] == own[2:]
    return tuple(loaded) == tuple(own)


def checkpoint_filter_fn(
        state_dict: Dict[str, torch.Tensor],
        model: nn.Module,
        checkpoint_classes: Optional[int] = None,
        source: Optional[str] = None,
) -> Dict[str, torch.Tensor]:
    """Returns ``state_dict`` adapted to ``model`` (see the module docstring); it holds every key of the model.

    ``checkpoint_classes`` is the number of classes the checkpoint's classifier has when the caller knows it
    (a teacher's weights); by default it is the pretrained cfg's ``num_classes``. ``source`` names the
    checkpoint in messages (default: the model's pretrained weights, :func:`describe_source`).

    Parameters the checkpoint cannot provide (TokenLearner / TokenFuser of a plain-ViT backbone, and a
    classifier for another number of classes) are filled with the model's fresh values, and a WARNING
    log line names them.

    Raises:
        CheckpointMismatchError: keys the model lacks, parameters the checkpoint lacks (other than those
            above), or shapes that differ after adaptation; the message names the checkpoint and the keys.
    """
    return filter_checkpoint(state_dict, model, adapt_vit, checkpoint_classes, source)


def filter_checkpoint(
        state_dict: Dict[str, torch.Tensor],
        model: nn.Module,
        adapt: Adapter,
        checkpoint_classes: Optional[int] = None,
        source: Optional[str] = None,
) -> Dict[str, torch.Tensor]:
    """:func:`checkpoint_filter_fn` with ``adapt`` in place of :func:`adapt_vit`: the same fresh tensors, checks
    and messages for a model family whose tensors need other adaptations (the video ViTs)."""
    source = source or describe_source(model)
    own = model.state_dict()
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    state_dict = unwrap(state_dict)
    is_backbone = not any(k.startswith(LEARNER_PREFIXES) for k in state_dict)
    state_dict = adapt(state_dict, model, set(own), source)

    head = f"{cfg.get('classifier') or 'head'}."
    checkpoint_classes = checkpoint_classes if checkpoint_classes is not None else cfg.get('num_classes')
    head_is_new = checkpoint_classes is not None and checkpoint_classes != getattr(model, 'num_classes', None)
    if head_is_new:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(head)}
    fresh = [k for k in own if k not in state_dict and (
        (is_backbone and k.startswith(LEARNER_PREFIXES)) or (head_is_new and k.startswith(head)))]
    for key in fresh:
        state_dict[key] = own[key]

    unexpected = sorted(k for k in state_dict if k not in own)
    if unexpected:
        _fail(source, f'{len(unexpected)} key(s) that {type(model).__name__} does not have', unexpected)
    missing = sorted(k for k in own if k not in state_dict)
    if missing:
        _fail(source, f'{len(missing)} parameter(s) missing from the checkpoint', missing)
    first_conv_weight = f"{cfg.get('first_conv') or 'patch_embed.proj'}.weight"
    mismatched = [f'{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in state_dict.items()
                  if not _same_shape(k, v.shape, own[k].shape, first_conv_weight)]
    if mismatched:
        hint = ''
        head_weight = f'{head}weight'
        if head_weight in own and state_dict[head_weight].shape[0] != own[head_weight].shape[0]:
            hint = (f" (the pretrained cfg says num_classes={cfg.get('num_classes')}, the weights have "
                    f"{state_dict[head_weight].shape[0]} classes: set the tag's num_classes to that)")
        _fail(source, 'shapes differ (checkpoint vs model)', mismatched, hint)

    if fresh:
        kind = 'a plain ViT backbone' if is_backbone else 'a checkpoint for another number of classes'
        _logger.warning(
            '%s is %s: %d tensors are new and keep their fresh initialisation (fine-tune before use): %s',
            source, kind, len(fresh), ', '.join(fresh))
    return state_dict
