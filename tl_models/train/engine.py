"""One training epoch and one evaluation pass."""
import contextlib
import dataclasses
import time
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from timm.utils import dispatch_clip_grad

from .distill import DistillationLoss
from .distributed import Distributed
from .progress import EpochProgress

__all__ = ['EpochResult', 'evaluate', 'train_one_epoch']


@dataclasses.dataclass
class EpochResult:
    """What one training epoch did, summed over all processes."""
    loss: float
    images: int
    seconds: float
    num_updates: int
    teacher_seconds: float = 0.0


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


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
        with _autocast(dist.device, amp):
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


@torch.no_grad()
def evaluate(
        model: nn.Module,
        loader: torch.utils.data.DataLoader,
        dist: Distributed,
        *,
        num_samples: Optional[int] = None,
        amp: bool = False,
        description: str = 'eval',
) -> Dict[str, float]:
    """Top-1/top-5 accuracy (percent), mean cross-entropy and images per second over ``loader``.

    Args:
        num_samples: Count only the first ``num_samples`` items this process sees. timm's distributed eval
            sampler pads the last process with repeats; passing its real share keeps the metrics exact.
    """
    model.eval()
    progress = EpochProgress(len(loader), description, enabled=dist.is_main)
    sums = torch.zeros(4, dtype=torch.float64)  # loss, top-1 hits, top-5 hits, images
    seen = 0
    start = time.perf_counter()
    for inputs, targets in loader:
        keep = inputs.shape[0] if num_samples is None else max(0, min(inputs.shape[0], num_samples - seen))
        seen += inputs.shape[0]
        inputs, targets = inputs[:keep].to(dist.device), targets[:keep].to(dist.device)
        if keep:
            with _autocast(dist.device, amp):
                logits = model(inputs).float()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # [B, 5]
            hits = top == targets[:, None]
            sums += torch.tensor([
                float(nn.functional.cross_entropy(logits, targets, reduction='sum')),
                float(hits[:, 0].sum()), float(hits.any(dim=1).sum()), float(keep)], dtype=torch.float64)
        progress.update()
    progress.close()
    seconds = time.perf_counter() - start
    loss, top1, top5, images = dist.sum(sums).tolist()
    images = max(images, 1)
    return dict(loss=loss / images, top1=100 * top1 / images, top5=100 * top5 / images, images=int(images),
                images_per_second=images / max(seconds, 1e-9))
