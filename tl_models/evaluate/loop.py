"""One evaluation pass: top-1, top-5 and loss of a model over a loader, exact under DDP."""
import contextlib
import time
from typing import Dict, Optional

import torch
import torch.nn as nn

from ..runtime import Distributed, EpochProgress

__all__ = ['autocast', 'evaluate']


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` when ``enabled`` (``--amp``), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


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
            with autocast(dist.device, amp):
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
