"""Where each learned token looks: the spatial weights of every TokenLearner in a model, read through hooks.

Notation: B batch, S learned tokens, N = H * W patch positions on an (H, W) grid, C channels; for video models
T' time steps (a video model's TokenLearner runs on each time step's N patches, as a batch of B * T').
Forward pre-hooks see each TokenLearner's input (tokens ``[B, N, C]`` and the grid) during one ordinary
forward pass and call the module's own ``spatial_weights`` on it; the hooks are removed afterwards and the
model's train/eval flags restored, so the model is left as it was.
"""
import contextlib
from typing import Any, Dict, Iterator, Tuple

import torch
import torch.nn as nn

from ..layers import TokenLearner, TokenLearnerV11
from ..layers.layout import token_grid
from .errors import VisualizationError

__all__ = ['find_token_learners', 'token_learner_maps', 'video_token_learner_maps']

TOKEN_LEARNER_TYPES = (TokenLearner, TokenLearnerV11)


def find_token_learners(model: nn.Module) -> Dict[str, nn.Module]:
    """Every TokenLearner (v1 or v1.1) in ``model``, by module name (e.g. ``'token_learners.6'``), in module order.

    Raises:
        VisualizationError: the model has none.
    """
    learners = {name: module for name, module in model.named_modules() if isinstance(module, TOKEN_LEARNER_TYPES)}
    if not learners:
        name = getattr(model, 'pretrained_cfg', {}).get('architecture') or type(model).__name__
        raise VisualizationError(
            f'{name} has no TokenLearner module (TokenLearner or TokenLearnerV11), so it has no token maps; '
            "expected a TokenLearner model, e.g. one of timm.list_models('tl_*') after `import tl_models`")
    return learners


def _learner_inputs(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[torch.Tensor, Any]:
    """The ``(x, grid_size)`` of a TokenLearner call, given positionally or by keyword."""
    x = args[0] if args else kwargs['x']
    grid_size = args[1] if len(args) > 1 else kwargs.get('grid_size')
    return x, grid_size


def _spatial_maps(learner: nn.Module, x: torch.Tensor, grid_size: Any) -> torch.Tensor:
    """``learner``'s weights for input ``x`` (``[B, N, C]`` or ``[B, C, H, W]``) as maps ``[B, S, H, W]``."""
    height, width = token_grid(x, grid_size, type(learner).__name__)
    weights = learner.spatial_weights(x, (height, width))  # [B, S, N], N = H * W in row-major order
    return weights.reshape(weights.shape[0], weights.shape[1], height, width)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Runs the body with every submodule in eval mode, then restores each module's own training flag."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def token_learner_maps(model: nn.Module, images: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The spatial weights of every TokenLearner of ``model`` for a batch of images.

    Runs one forward pass in eval mode without gradients (dropout off, patch dropout off), so the maps are
    those of inference. The model is not changed: the hooks are removed and the training flags restored,
    also when the forward pass fails.

    Args:
        model: Any model with TokenLearner modules, e.g. ``timm.create_model('tl_...')``, ``hf-hub:`` or
            ``local-dir:`` names included.
        images: ``[B, C_img, H_img, W_img]``, preprocessed as the model expects.

    Returns:
        Module name (e.g. ``'token_learners.6'``: the TokenLearner before block 6) -> maps ``[B, S, H, W]`` on
        the patch grid, in module order: one entry for a TokenLearner model, one per block from
        ``tokenlearner_loc`` on for a TokenFuser model. v1 maps are sigmoids in (0, 1); v1.1 maps are a
        softmax over space, each ``[H, W]`` map summing to 1.

    Raises:
        VisualizationError: the model has no TokenLearner, or one of them did not run exactly once.
    """
    learners = find_token_learners(model)
    maps: Dict[str, torch.Tensor] = {}
    calls = dict.fromkeys(learners, 0)

    def capture(name: str):
        def hook(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
            calls[name] += 1
            maps[name] = _spatial_maps(module, *_learner_inputs(args, kwargs))
        return hook

    handles = [module.register_forward_pre_hook(capture(name), with_kwargs=True) for name, module in learners.items()]
    try:
        with torch.no_grad(), _eval_mode(model):
            model(images)
    finally:
        for handle in handles:
            handle.remove()

    wrong = {name: count for name, count in calls.items() if count != 1}
    if wrong:
        raise VisualizationError(
            f'expected each TokenLearner to run once per forward pass, got calls per module {wrong}; '
            'their maps would be missing or ambiguous')
    return {name: maps[name] for name in learners}


def video_token_learner_maps(model: nn.Module, clips: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The spatial weights of every TokenLearner of video model ``model`` for a batch of clips, per time step.

    As :func:`token_learner_maps`: one eval-mode forward pass without gradients, the model left as it was. A
    video model's TokenLearner sees each time step's patches as one entry of a batch of B * T'; its maps
    ``[B*T', S, H, W]`` are unfolded to ``[B, T', S, H, W]``.

    Args:
        model: A video model with TokenLearner modules (``timm.create_model('tl_vivit_...')``).
        clips: ``[B, C_img, T, H_img, W_img]``, preprocessed as the model expects (:func:`.prepare_clip`).

    Returns:
        Module name -> maps ``[B, T', S, H, W]``, in module order (one per block from ``tokenlearner_loc`` on for
        a TokenFuser model). v1.1 maps are a softmax over each time step's patches: each ``[H, W]`` sums to 1.

    Raises:
        VisualizationError: ``clips`` is not 5-D, the model has no TokenLearner, or one did not run exactly once.
    """
    if clips.ndim != 5:
        raise VisualizationError(f'expected clips [B, C, T, H, W], got shape {tuple(clips.shape)}')
    batch = clips.shape[0]
    return {name: maps.reshape(batch, -1, *maps.shape[1:])  # [B*T', S, H, W] -> [B, T', S, H, W]
            for name, maps in token_learner_maps(model, clips).items()}
