"""The work a benchmark times: an inference step and a training step of one model on one random batch.

- Inference: a forward pass under ``torch.inference_mode`` in eval mode.
- Training: zero the gradients, forward, cross-entropy against random labels, backward, and an AdamW step,
  in train mode. AdamW runs PyTorch's fused kernel by default ('adamw-fused': one pass over the weights; the
  for-each-parameter default implementation, 'adamw', costs about 0.4 s per step for ViT-B on 2 CPU cores,
  the same for a TokenLearner model and its twin, which hides part of the forward/backward saving).

Both run under bf16 autocast when asked, on channels-last images when asked (the patch embedding is the one
convolution of a ViT; a video model's clips ``[B, C, T, H, W]`` and its Conv3d take the 3D channels-last layout),
and through ``torch.compile`` when given a compiled module.
"""
import contextlib
import dataclasses
from typing import Callable, ContextManager, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['OPTIMIZERS', 'PRECISIONS', 'Batch', 'channels_last_format', 'count_graph_breaks', 'inference_step',
           'make_batch', 'make_optimizer', 'precision_context', 'training_step']

PRECISIONS = ('fp32', 'bf16')
OPTIMIZERS = ('adamw-fused', 'adamw')
LEARNING_RATE = 1e-5  # small, so that random-label steps keep the weights (and so the timing) ordinary


def precision_context(device: torch.device, precision: str) -> Callable[[], ContextManager]:
    """A factory of the context each step runs in: nothing for fp32, bf16 autocast for bf16."""
    if precision == 'fp32':
        return contextlib.nullcontext
    if precision == 'bf16':
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def channels_last_format(input_size: Tuple[int, ...]) -> torch.memory_format:
    """The channels-last layout of inputs of ``input_size``: 2D for images ``(C, H, W)``, 3D for clips
    ``(C, T, H, W)``."""
    return torch.channels_last_3d if len(input_size) == 4 else torch.channels_last


@dataclasses.dataclass(frozen=True)
class Batch:
    """Random images ``[B, C, H, W]`` (or clips ``[B, C, T, H, W]``) and class labels ``[B]``."""
    images: torch.Tensor
    labels: torch.Tensor


def make_batch(batch_size: int, input_size: Tuple[int, ...], num_classes: int, device: torch.device,
               channels_last: bool = False) -> Batch:
    """A random batch on ``device`` of ``input_size`` images ``(C, H, W)`` or clips ``(C, T, H, W)``; channels-last
    if asked."""
    images = torch.randn(batch_size, *input_size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=channels_last_format(input_size))
    return Batch(images, torch.randint(0, num_classes, (batch_size,), device=device))


def make_optimizer(model: nn.Module, kind: str) -> torch.optim.Optimizer:
    """AdamW over the model's parameters: PyTorch's fused kernel ('adamw-fused') or its default ('adamw')."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    return torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=True if kind == 'adamw-fused' else None)


def inference_step(module: nn.Module, batch: Batch, precision: Callable[[], ContextManager]) -> Callable[[], None]:
    """One forward pass of ``batch`` without autograd; the caller puts the model in eval mode."""
    def step() -> None:
        with torch.inference_mode(), precision():
            module(batch.images)
    return step


def training_step(module: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch,
                  precision: Callable[[], ContextManager]) -> Callable[[], None]:
    """One optimisation step on ``batch``: forward, loss, backward, optimizer; the caller sets train mode."""
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision():
            loss = F.cross_entropy(module(batch.images), batch.labels)
        loss.backward()
        optimizer.step()
    return step


def count_graph_breaks(model: nn.Module, batch: Batch, precision: Callable[[], ContextManager]) -> int:
    """Graph breaks TorchDynamo meets tracing the forward in eval mode (inference) plus in train mode (training).

    The model is left in the mode it was in.
    """
    was_training = model.training
    breaks = 0
    try:
        for training in (False, True):
            model.train(training)
            with torch.set_grad_enabled(training), precision():
                breaks += torch._dynamo.explain(model)(batch.images).graph_break_count
    finally:
        model.train(was_training)
    return breaks
