"""``video_checkpoint_filter_fn``: maps an image ViT checkpoint, or a video one, onto a TokenLearner video ViT.

An image checkpoint (a plain timm ``VisionTransformer``, or one of our TokenLearner ViTs) first gets every
adaptation :func:`.adapt.checkpoint_filter_fn` makes, as if the model were the image ViT it runs on each frame
(prefix tokens it lacks dropped, patch embedding resampled to its patch size, position embedding resampled in
space to its (H, W) grid, final norm renamed). Then two tensors become video tensors:

- ``patch_embed.proj.weight`` ``[C, 3, p, p]`` -> ``[C, 3, t, p, p]`` by the ViViT paper's *central frame
  initialisation* (Arnab et al. 2021, section 3.4): the image filter sits in the central temporal slice
  ``t // 2`` and the other slices are zero, so a tubelet embeds as the image model embeds its central frame;
- ``pos_embed`` ``[1, P+N, C]`` -> ``[1, P+T'*N, C]``: the spatial rows repeated for each of the T' time steps
  (frame-major, as the tokens), the prefix rows kept once.

So on a clip of identical frames, every block before the TokenLearner outputs the image model's tokens on
that frame, repeated T' times (attention over T' copies of each key gives the image model's average).

A video checkpoint (5-D patch embedding: one of our video models) loads as it is, but for prefix tokens the
model lacks and the final norm's name. For either, TokenLearner / TokenFuser tensors a checkpoint lacks keep
their fresh initialisation, and the classifier loads as :func:`.adapt.checkpoint_filter_fn` says.
"""
from types import SimpleNamespace
from typing import Any, Dict, Optional, Set

import torch
import torch.nn as nn

from .adapt import _drop_missing_prefix_tokens, _rename_final_norm, adapt_vit, filter_checkpoint

__all__ = ['inflate_patch_embed', 'repeat_pos_embed', 'video_checkpoint_filter_fn']


def inflate_patch_embed(weight: torch.Tensor, tubelet_size: int) -> torch.Tensor:
    """Image patch embedding ``[C, C_in, p, p]`` -> tubelet embedding ``[C, C_in, t, p, p]`` by central frame
    initialisation: ``weight`` in temporal slice ``t // 2``, zeros in the others."""
    if weight.ndim != 4:
        raise ValueError(f'expected an image patch embedding [C, C_in, p, p], got {tuple(weight.shape)}')
    inflated = weight.new_zeros(weight.shape[0], weight.shape[1], tubelet_size, *weight.shape[2:])  # [C, C_in, t, p, p]
    inflated[:, :, tubelet_size // 2] = weight
    return inflated


def repeat_pos_embed(pos_embed: torch.Tensor, prefix_rows: int, time_steps: int) -> torch.Tensor:
    """Image position embedding ``[1, P+N, C]`` -> ``[1, P+T'*N, C]``: the N spatial rows once per time step,
    frame-major; the ``prefix_rows`` (P, class/register tokens) once, first."""
    prefix, spatial = pos_embed[:, :prefix_rows], pos_embed[:, prefix_rows:]  # [1, P, C], [1, N, C]
    return torch.cat([prefix, spatial.repeat(1, time_steps, 1)], dim=1)  # [1, P+T'*N, C]


def _prefix_rows(model: nn.Module) -> int:
    """The rows of ``model``'s position embedding that belong to prefix tokens (none with ``no_embed_class``)."""
    return 0 if getattr(model, 'no_embed_class', False) else getattr(model, 'num_prefix_tokens', 0)


class _FrameView:
    """A video model seen as the image ViT it runs on each frame, for the image adaptations (timm's ViT filter).

    Its ``patch_embed`` has a 2-D projection weight ``[C, C_in, p, p]``, the (H, W) grid and N patches; its
    ``pos_embed`` is one frame's ``[1, P+N, C]`` (shapes only, on the meta device); everything else is the model's.
    """

    def __init__(self, model: nn.Module) -> None:
        embed = model.patch_embed
        out_chans, in_chans, _, patch_h, patch_w = embed.proj.weight.shape
        num_patches = embed.grid_size[0] * embed.grid_size[1]
        self._model = model
        self.patch_embed = SimpleNamespace(
            proj=SimpleNamespace(weight=torch.empty(out_chans, in_chans, patch_h, patch_w, device='meta')),
            grid_size=embed.grid_size, num_patches=num_patches, patch_size=embed.patch_size)
        self.pos_embed = None if model.pos_embed is None else torch.empty(
            1, _prefix_rows(model) + num_patches, model.pos_embed.shape[-1], device='meta')

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _adapt_video(
        state_dict: Dict[str, torch.Tensor],
        model: nn.Module,
        model_keys: Set[str],
        source: str,
) -> Dict[str, torch.Tensor]:
    """An image checkpoint adapted per frame and inflated (module docstring); a video checkpoint nearly as it is."""
    patch_weight = state_dict.get('patch_embed.proj.weight')
    if patch_weight is not None and patch_weight.ndim == 5:  # a video checkpoint
        _drop_missing_prefix_tokens(state_dict, model)
        _rename_final_norm(state_dict, model_keys)
        return state_dict
    state_dict = adapt_vit(state_dict, _FrameView(model), model_keys, source)
    if 'patch_embed.proj.weight' in state_dict:
        state_dict['patch_embed.proj.weight'] = inflate_patch_embed(
            state_dict['patch_embed.proj.weight'], model.patch_embed.tubelet_size)  # [C, C_in, t, p, p]
    if 'pos_embed' in state_dict and model.pos_embed is not None:
        state_dict['pos_embed'] = repeat_pos_embed(
            state_dict['pos_embed'], _prefix_rows(model), model.patch_embed.temporal_size)  # [1, P+T'*N, C]
    return state_dict


def video_checkpoint_filter_fn(
        state_dict: Dict[str, torch.Tensor],
        model: nn.Module,
        checkpoint_classes: Optional[int] = None,
        source: Optional[str] = None,
) -> Dict[str, torch.Tensor]:
    """Returns ``state_dict`` (an image ViT, an image TokenLearner ViT or a video checkpoint) adapted to the video
    ``model`` (see the module docstring); it holds every key of the model.

    Arguments, fresh tensors and errors as :func:`.adapt.checkpoint_filter_fn`.

    Raises:
        CheckpointMismatchError: keys the model lacks, parameters the checkpoint lacks (but TokenLearner /
            TokenFuser tensors and a classifier for another number of classes), or shapes that differ after
            adaptation (e.g. a video checkpoint of another clip length); the message names the checkpoint and keys.
    """
    return filter_checkpoint(state_dict, model, _adapt_video, checkpoint_classes, source)
