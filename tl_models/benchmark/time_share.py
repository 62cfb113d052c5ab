"""The share of a model's forward time spent inside its TokenLearner and TokenFuser modules.

Forward pre- and post-hooks on every TokenLearner (v1, v1.1) and TokenFuser module read the clock when the
module starts and ends; the share of one
forward pass is the modules' time over the whole pass, and the result is the median over passes. Hooks need
eager execution, so this runs on the uncompiled model. On a GPU each hook synchronises first, so that queued
work is charged to the module that launched it.
"""
import statistics
from time import perf_counter
from typing import Callable, ContextManager, List

import torch
import torch.nn as nn

from ..layers import TokenFuser, TokenLearner, TokenLearnerV11

__all__ = ['token_module_time_share', 'token_modules']


def token_modules(model: nn.Module) -> List[nn.Module]:
    """The TokenLearner and TokenFuser modules of ``model`` (none for a plain ViT)."""
    return [m for m in model.modules() if isinstance(m, (TokenLearner, TokenLearnerV11, TokenFuser))]


def token_module_time_share(
        model: nn.Module,
        images: torch.Tensor,
        passes: int,
        precision: Callable[[], ContextManager],
        synchronize: Callable[[], None] = lambda: None,
) -> float:
    """Median fraction (0..1) of an eval-mode forward pass spent in the TokenLearner/TokenFuser modules.

    Args:
        model: An eager model with at least one TokenLearner; left in the mode it was in.
        images: The input batch.
        passes: Timed forward passes (one untimed pass runs first).
        precision: The context each pass runs in (autocast or nothing).
        synchronize: Waits for queued device work (``torch.cuda.synchronize`` on a GPU).

    Raises:
        ValueError: ``model`` has no TokenLearner module, or ``passes`` < 1.
    """
    modules = token_modules(model)
    if not modules:
        raise ValueError(f'{type(model).__name__} has no TokenLearner or TokenFuser module to time')
    if passes < 1:
        raise ValueError(f'passes must be at least 1, got {passes}')
    started: List[float] = []
    inside = [0.0]

    def start(module: nn.Module, args) -> None:
        synchronize()
        started.append(perf_counter())

    def stop(module: nn.Module, args, output) -> None:
        synchronize()
        inside[0] += perf_counter() - started.pop()

    handles = [h for m in modules for h in (m.register_forward_pre_hook(start), m.register_forward_hook(stop))]
    was_training = model.training
    model.eval()
    shares = []
    try:
        with torch.inference_mode(), precision():
            model(images)
            for _ in range(passes):
                inside[0] = 0.0
                synchronize()
                begin = perf_counter()
                model(images)
                synchronize()
                shares.append(inside[0] / (perf_counter() - begin))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return statistics.median(shares)
