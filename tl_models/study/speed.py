"""Training and inference speed of every model of a study, measured in one process, interleaved.

Four figures per model, in images (clips, for a study of video models) per second, at the recipe's batch size:

- model-only training: forward, cross-entropy, backward and AdamW step on one fixed batch;
- end-to-end training: the same step on batches from the study's own data pipeline (preloaded images,
  batched random-resized crop and flip), so data preparation is included;
- model-only and end-to-end inference: a forward pass without autograd, on a fixed batch / on the
  held-out pipeline's batches.

All models are built in one process and timed in interleaved rounds (:mod:`tl_models.benchmark.timing`),
so a slow stretch of the machine is shared by all of them; each keeps its median over rounds. Run it on an
otherwise idle machine: the training runs' own img/s are taken while other runs share the cores.
"""
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import resolve_input_data_config

from ..benchmark.environment import describe_environment, resolve_device, synchronizer
from ..benchmark.timing import time_interleaved
from ..benchmark.workloads import make_optimizer
from ..train.data import build_loader, load_split, preload_split
from ..train.distributed import Distributed
from ..train.video import is_video_model
from .spec import StudySpec

__all__ = ['WORKLOADS', 'measure_speed']

WORKLOADS = ('train_model', 'train_end_to_end', 'infer_model', 'infer_end_to_end')


def _endless(loader) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()


def _steps(model: nn.Module, train_batches, eval_batches, fixed: Tuple[torch.Tensor, torch.Tensor]
           ) -> Dict[str, Callable[[], None]]:
    """The four workloads of one model as step functions (training ones put it in train mode, the others eval)."""
    optimizer = make_optimizer(model, 'adamw-fused' if fixed[0].device.type in ('cpu', 'cuda') else 'adamw')

    def train_model() -> None:
        model.train()
        _train_step(model, optimizer, *fixed)

    def train_end_to_end() -> None:
        model.train()
        _train_step(model, optimizer, *next(train_batches))

    def infer_model() -> None:
        model.eval()
        with torch.inference_mode():
            model(fixed[0])

    def infer_end_to_end() -> None:
        model.eval()
        with torch.inference_mode():
            model(next(eval_batches)[0])

    return dict(train_model=train_model, train_end_to_end=train_end_to_end, infer_model=infer_model,
                infer_end_to_end=infer_end_to_end)


def measure_speed(
        spec: StudySpec,
        data_dir: Optional[str],
        device: Optional[str] = None,
        threads: Optional[int] = None,
        rounds: int = 5,
        steps: int = 3,
        models: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """Images per second of every model of ``spec`` (or ``models``) for the four :data:`WORKLOADS`.

    Returns:
        ``{'models': {name: {workload: img/s, workload + '_spread': interquartile range / median}},
        'batch_size', 'rounds', 'steps', 'environment'}``.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    target = resolve_device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    names = models or list(dict.fromkeys(run.model for run in spec.runs))
    config = spec.config(spec.runs[0], data_dir=data_dir, device=target.type)
    dist = Distributed(target)
    video = is_video_model(config.model)  # a study's models all take images or all take clips: its data
    train_split, eval_split = load_split(config, config.train_split, video), load_split(config, config.val_split, video)
    if config.preload:  # decoded once for all models
        train_split, eval_split = preload_split(train_split), preload_split(eval_split)
    num_classes = len(train_split.class_names or []) or 10
    steps_by_entry: Dict[str, Callable[[], None]] = {}
    for name in names:
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=num_classes).to(target)
        data_config = resolve_input_data_config(model)
        frames = model.num_frames if video else None
        train_batches = _endless(build_loader(train_split, data_config, config, True, dist, num_frames=frames))
        eval_batches = _endless(build_loader(eval_split, data_config, config, False, dist, num_frames=frames))
        fixed = next(train_batches)
        for workload, step in _steps(model, train_batches, eval_batches, fixed).items():
            steps_by_entry[f'{name}|{workload}'] = step
    timings = {}
    for workload in WORKLOADS:  # one workload at a time, all models interleaved
        entries = {k: v for k, v in steps_by_entry.items() if k.endswith(f'|{workload}')}
        timings.update(time_interleaved(entries, rounds, steps, warmup=2, synchronize=synchronizer(target)))
    results: Dict[str, Dict[str, float]] = {name: {} for name in names}
    for entry, times in timings.items():
        name, workload = entry.split('|')
        results[name][workload] = config.batch_size / times.median
        results[name][f'{workload}_spread'] = times.spread
    return dict(models=results, batch_size=config.batch_size, rounds=rounds, steps=steps,
                environment=describe_environment(target))
