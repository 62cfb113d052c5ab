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
import json
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from tl_models.benchmark.environment import describe_environment, resolve_device, synchronizer
from tl_models.benchmark.timing import time_interleaved
from tl_models.benchmark.workloads import make_optimizer
from tl_models.data import SplitData, build_loader, load_split, model_data_config, model_input, preload_split
from tl_models.runtime import Distributed, default_device

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
        runs: Optional[List[str]] = None,
        batch_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Images per second of every run name of ``spec`` (or of ``runs``) for the four :data:`WORKLOADS`: its model at
    the image size its options give; run names with the same model and size are measured once. ``batch_size``:
    images per step (default: the recipe's).

    Returns:
        ``{'models': {run name: {workload: img/s, workload + '_spread': interquartile range / median}},
        'batch_size', 'rounds', 'steps', 'environment'}``.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    target = resolve_device(device or default_device())
    named: Dict[str, Any] = {}
    for run in spec.runs:  # the first run spec of every run name, in file order
        if runs is None or run.name in runs:
            named.setdefault(run.name, run)
    config = spec.config(spec.runs[0], data_dir=data_dir, device=target.type,
                         **({'batch_size': batch_size} if batch_size else {}))
    dist = Distributed(target)
    inputs = model_input(config.model)  # a study's models all take images or all take clips: its data

    def splits() -> Tuple[SplitData, SplitData]:
        return load_split(config, config.train_split, inputs), load_split(config, config.val_split, inputs)

    train_split, eval_split = splits()
    if config.preload:  # decoded once for all models
        train_split, eval_split = preload_split(train_split), preload_split(eval_split)
    num_classes = len(train_split.class_names or []) or 10
    steps_by_entry: Dict[str, Callable[[], None]] = {}
    measured: Dict[str, str] = {}  # run name -> the entry that measures its (model, image size)
    for name, run in named.items():
        architecture = spec.architecture(run)  # a run may feed its model another image size, move its TokenLearner
        entry = f'{run.model}@{json.dumps(architecture, sort_keys=True)}'
        measured[name] = entry
        if any(k.startswith(f'{entry}|') for k in steps_by_entry):
            continue
        torch.manual_seed(0)
        model = timm.create_model(run.model, num_classes=num_classes, **architecture).to(target)
        data_config = model_data_config(model)
        built = model_input(model)
        if not config.preload:  # timm's loader sets its transform on the dataset: each model reads its own
            train_split, eval_split = splits()
        train_batches = _endless(build_loader(train_split, data_config, config, True, dist, inputs=built))
        eval_batches = _endless(build_loader(eval_split, data_config, config, False, dist, inputs=built))
        fixed = next(train_batches)
        for workload, step in _steps(model, train_batches, eval_batches, fixed).items():
            steps_by_entry[f'{entry}|{workload}'] = step
    timings = {}
    for workload in WORKLOADS:  # one workload at a time, all models interleaved
        entries = {k: v for k, v in steps_by_entry.items() if k.endswith(f'|{workload}')}
        timings.update(time_interleaved(entries, rounds, steps, warmup=2, synchronize=synchronizer(target)))
    by_entry: Dict[str, Dict[str, float]] = {}
    for key, times in timings.items():
        entry, workload = key.split('|')
        by_entry.setdefault(entry, {})[workload] = config.batch_size / times.median
        by_entry[entry][f'{workload}_spread'] = times.spread
    return dict(models={name: dict(by_entry[entry]) for name, entry in measured.items()},
                batch_size=config.batch_size, rounds=rounds, steps=steps, environment=describe_environment(target))
