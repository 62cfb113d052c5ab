"""One training epoch (evaluation: :mod:`tl_models.evaluate`)."""
import dataclasses
import time
from typing import Callable, Optional

import torch
import torch.nn as nn
from timm.utils import dispatch_clip_grad

from ..evaluate.loop import autocast
from ..runtime import Distributed, EpochProgress
from .distill import DistillationLoss

__all__ = ['EpochResult', 'train_one_epoch']


@dataclasses.dataclass
class EpochResult:
    """What one training epoch did, summed over all processes."""
    loss: float
    images: int
    seconds: float
    num_updates: int
    teacher_seconds: float = 0.0


def train_one_epoch(
        model: nn.Module,
        loader: torch.utils.data.DataLoader,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        dist: Distributed,
        *,
        scheduler=None,
        num_updates: int = 0,
        ema: Optional[nn.Module] = None,
        mixup: Optional[Callable] = None,
        amp: bool = False,
        clip_grad: Optional[float] = None,
        distiller: Optional[DistillationLoss] = None,
        description: str = 'train',
) -> EpochResult:
    """Runs one pass over ``loader``; the scheduler steps per update (``step_update``), EMA after each step.

    With ``distiller`` the loss is the distillation loss (the teacher sees the same, possibly mixed, inputs)
    and ``loss_fn`` is not used; the result's ``teacher_seconds`` is this process's time in the teacher.
    """
    model.train()
    progress = EpochProgress(len(loader), description, enabled=dist.is_main)
    loss_sum = torch.zeros((), dtype=torch.float64)
    images = 0
    start = time.perf_counter()
    for inputs, targets in loader:
        inputs, targets = inputs.to(dist.device), targets.to(dist.device)
        if mixup is not None:
            inputs, targets = mixup(inputs, targets)
        with autocast(dist.device, amp):
            outputs = model(inputs)
            loss = loss_fn(outputs, targets) if distiller is None else distiller(outputs, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            dispatch_clip_grad(model.parameters(), clip_grad)
        optimizer.step()
        num_updates += 1
        if scheduler is not None:
            scheduler.step_update(num_updates=num_updates)
        if ema is not None:
            ema.update(model, step=num_updates)
        loss_sum += loss.detach().double().cpu() * inputs.shape[0]
        images += inputs.shape[0]
        progress.update(loss.item())
    progress.close()
    seconds = time.perf_counter() - start
    totals = dist.sum(torch.tensor([float(loss_sum), float(images)], dtype=torch.float64))
    return EpochResult(loss=float(totals[0] / max(totals[1], 1)), images=int(totals[1]), seconds=seconds,
                       num_updates=num_updates,
                       teacher_seconds=distiller.pop_teacher_seconds() if distiller is not None else 0.0)
