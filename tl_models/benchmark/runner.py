"""Runs a benchmark: every model of a group built, measured alone for memory, then timed in interleaved rounds.

Before the first group, a throwaway small ViT runs one step of each mode, so that the one-time costs of the
runtime (thread pools, kernel libraries, the autograd engine: about 60 MiB of resident memory on CPU) are paid
(and the FLOP counter's first use) before any model's memory baseline, rather than charged to the first model.

A group is a plain timm ViT and the TokenLearner variants compared with it (see :mod:`.selection`); groups
run one after another, so only one group's models (with their optimizer states) are in memory at a time.
For each group, all in one process:

1. Each model in turn: baseline memory, build, parameters and GMACs, then for each of its entries (eager and/or
   compiled) warm-up steps and one step whose peak memory is measured: inference steps first, then training
   steps, so that the inference peak holds no gradients or optimizer state.
2. Inference steps of all entries timed in interleaved rounds (median per entry), then training steps.
3. The share of forward time inside the TokenLearner/TokenFuser modules, on the eager model, and the graph
   breaks of the compiled entries (``torch._dynamo.explain``, which clears dynamo's caches: hence last).
"""
import dataclasses
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import timm
import torch
import torch.nn as nn
from timm.models import get_pretrained_cfg

from .environment import describe_environment, resolve_device, synchronizer
from .flops import count_gmacs, count_params_m
from .peak_memory import MemoryMeter, memory_meter
from .report import add_comparisons
from .selection import ModelSpec, group_by_baseline, resolve_models
from .time_share import token_module_time_share
from .timing import time_interleaved
from .workloads import (
    OPTIMIZERS,
    PRECISIONS,
    Batch,
    channels_last_format,
    count_graph_breaks,
    inference_step,
    make_batch,
    make_optimizer,
    precision_context,
    training_step,
)

__all__ = ['COMPILE_CHOICES', 'HEADLESS_NUM_CLASSES', 'MODES', 'BenchmarkConfig', 'BenchmarkResult', 'run_benchmark']

_logger = logging.getLogger(__name__)

MODES = ('infer', 'train')
COMPILE_CHOICES = ('off', 'on', 'both')
# The classifier a model without one (num_classes 0: DINOv2 and SigLIP backbones) gets for the benchmark, so that
# training steps have logits to take a loss of, and a variant and its twin are measured with the same head.
HEADLESS_NUM_CLASSES = 1000


@dataclasses.dataclass
class BenchmarkConfig:
    """What to measure and how.

    Attributes:
        models: Model names, patterns, 'default' or 'all' (see :func:`.selection.resolve_models`).
        model_args: ``timm.create_model`` arguments for every model (``img_size``, ``depth``, ...).
        add_twins: Add each TokenLearner variant's plain timm ViT twin.
        batch_size: Images per step.
        threads: CPU threads for torch, set process-wide with ``torch.set_num_threads`` (None: leave as is).
        precision: 'fp32', or 'bf16' autocast.
        channels_last: Channels-last images and weights.
        compile: Time eager models ('off'), ``torch.compile``-d ones ('on'), or both side by side ('both').
        device: 'cpu', 'cuda' or 'cuda:<index>'.
        modes: What to time: 'infer' and/or 'train'.
        optimizer: The training step's AdamW: 'adamw-fused' (PyTorch's fused kernel) or 'adamw' (its default).
        rounds: Interleaved timing rounds; each entry reports its median over them.
        steps: Steps of one entry timed together within a round.
        warmup: Untimed steps per entry and mode before anything is measured.
        flops_only: Count parameters and GMACs only (models built on the meta device; nothing runs).
    """
    models: Sequence[str] = ('default',)
    model_args: Dict[str, Any] = dataclasses.field(default_factory=dict)
    add_twins: bool = True
    batch_size: int = 8
    threads: Optional[int] = None
    precision: str = 'fp32'
    channels_last: bool = False
    compile: str = 'off'
    device: str = 'cpu'
    modes: Sequence[str] = MODES
    optimizer: str = 'adamw-fused'
    rounds: int = 7
    steps: int = 1
    warmup: int = 2
    flops_only: bool = False

    def validate(self) -> None:
        """Raises ValueError naming the first option out of range."""
        for name in ('batch_size', 'rounds', 'steps'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be at least 1, got {getattr(self, name)}')
        if self.threads is not None and self.threads < 1:
            raise ValueError(f'threads must be at least 1, got {self.threads}')
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.compile not in COMPILE_CHOICES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, got {self.compile!r}")
        if not self.modes or any(m not in MODES for m in self.modes) or len(set(self.modes)) < len(self.modes):
            raise ValueError(f"modes must be one or both of {', '.join(MODES)}, each once, got {list(self.modes)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        minimum_warmup = 0 if self.compile == 'off' else 1
        if self.warmup < minimum_warmup:
            raise ValueError(f'warmup must be at least {minimum_warmup}'
                             f"{' (the first compiled step compiles)' if minimum_warmup else ''}, got {self.warmup}")
        if not self.models:
            raise ValueError("models must name at least one model (or 'default' / 'all')")


@dataclasses.dataclass
class BenchmarkResult:
    """Rows (one per model and compile setting) and the run's metadata (environment and configuration)."""
    meta: Dict[str, Any]
    rows: List[Dict[str, Any]]


@dataclasses.dataclass
class _Entry:
    """One timed form of a model: eager or compiled, with its steps and its result row."""
    key: str
    model: nn.Module
    steps: Dict[str, Callable[[], None]]
    row: Dict[str, Any]


@dataclasses.dataclass
class _Prepared:
    """A built model with its batch and entries."""
    spec: ModelSpec
    model: nn.Module
    batch: Batch
    entries: List[_Entry]


def _describe(spec: ModelSpec, model: nn.Module, batch_size: int) -> Dict[str, Any]:
    """The row's description of the model; a video model's row also holds its clips' ``frames``."""
    row = {
        'model': spec.name,
        'tokenlearner': spec.is_tokenlearner,
        'baseline': spec.baseline or '',
        'img_size': spec.input_size[-1],
        'batch_size': batch_size,
        'params_m': count_params_m(model),
        'gmacs': count_gmacs(model, spec.input_size),
    }
    if len(spec.input_size) == 4:  # (C, T, H, W)
        row['frames'] = spec.input_size[1]
    return row


def _create(spec: ModelSpec) -> nn.Module:
    """The model of ``spec``; a headless one with a ``HEADLESS_NUM_CLASSES``-class classifier."""
    kwargs = dict(spec.kwargs)
    cfg = get_pretrained_cfg(spec.name)
    if 'num_classes' not in kwargs and cfg is not None and cfg.num_classes == 0:
        kwargs['num_classes'] = HEADLESS_NUM_CLASSES
    return timm.create_model(spec.name, **kwargs)


def _count_only(spec: ModelSpec, batch_size: int) -> Dict[str, Any]:
    with torch.device('meta'):
        model = _create(spec)
    return dict(_describe(spec, model, batch_size), compiled=False)


def _prime_runtime(config: BenchmarkConfig, device: torch.device) -> None:
    """Counts and runs the configured steps once on a throwaway one-block ViT at 32 px (see the module docstring)."""
    model = timm.create_model('vit_tiny_patch16_224', depth=1, img_size=32).to(device)
    count_gmacs(model, (3, 32, 32))
    batch = make_batch(config.batch_size, (3, 32, 32), model.num_classes, device)
    precision = precision_context(device, config.precision)
    model.eval()
    inference_step(model, batch, precision)()
    model.train()
    training_step(model, make_optimizer(model, config.optimizer), batch, precision)()


def _prepare(spec: ModelSpec, config: BenchmarkConfig, device: torch.device, meter: MemoryMeter) -> _Prepared:
    """Builds one model and its entries; warms each entry up and measures its peak memory per mode."""
    baseline = meter.baseline()
    model = _create(spec).to(device)
    if config.channels_last:
        model = model.to(memory_format=channels_last_format(spec.input_size))
    description = _describe(spec, model, config.batch_size)
    batch = make_batch(config.batch_size, spec.input_size, model.num_classes, device, config.channels_last)
    precision = precision_context(device, config.precision)
    optimizer = make_optimizer(model, config.optimizer) if 'train' in config.modes else None
    compiled_flags = {'off': [False], 'on': [True], 'both': [False, True]}[config.compile]
    entries = []
    for compiled in compiled_flags:
        module = torch.compile(model) if compiled else model
        steps = {'infer': inference_step(module, batch, precision)}
        if optimizer is not None:
            steps['train'] = training_step(module, optimizer, batch, precision)
        key = f'{spec.name} (compiled)' if compiled else spec.name
        entries.append(_Entry(key, model, steps, dict(description, compiled=compiled)))
    for mode in config.modes:
        model.train(mode == 'train')
        for entry in entries:
            _logger.info('%s: warm-up and peak memory, %s', entry.key, mode)
            for _ in range(config.warmup):
                entry.steps[mode]()
            entry.row[f'{mode}_peak_mb'] = meter.peak_mb(entry.steps[mode], baseline)
    return _Prepared(spec, model, batch, entries)


def _measure_after_timing(prepared: _Prepared, config: BenchmarkConfig, device: torch.device) -> None:
    """TokenLearner time share (hooks) and graph breaks (``torch._dynamo.explain`` resets dynamo's caches): both
    run after the timing, so that neither disturbs the compiled code being timed."""
    precision = precision_context(device, config.precision)
    if prepared.spec.is_tokenlearner:
        share = token_module_time_share(prepared.model, prepared.batch.images, config.rounds, precision,
                                        synchronizer(device))
        for entry in prepared.entries:
            entry.row['tl_share_pct'] = 100 * share
    if config.compile != 'off':
        breaks = count_graph_breaks(prepared.model, prepared.batch, precision)
        for entry in prepared.entries:
            if entry.row['compiled']:
                entry.row['graph_breaks'] = breaks


def _time_group(entries: List[_Entry], config: BenchmarkConfig, device: torch.device) -> None:
    """Times every mode of the entries in interleaved rounds; writes throughput, latency and spread to the rows."""
    for mode in config.modes:
        for entry in entries:
            entry.model.train(mode == 'train')
        _logger.info('timing %s: %d rounds over %s', mode, config.rounds, ', '.join(e.key for e in entries))
        times = time_interleaved({e.key: e.steps[mode] for e in entries}, config.rounds, config.steps,
                                 warmup=0, synchronize=synchronizer(device))
        for entry in entries:
            measured = times[entry.key]
            entry.row.update({
                f'{mode}_ips': config.batch_size / measured.median,
                f'{mode}_ms': 1e3 * measured.median,
                f'{mode}_spread_pct': 100 * measured.spread,
                f'{mode}_round_s': measured.seconds,
            })


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Measures the configured models; returns one row per model (and compile setting) with its comparisons.

    Raises:
        ValueError: a bad option, an unknown model or an unusable device (the message says what is expected).
    """
    config.validate()
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    specs = resolve_models(config.models, config.model_args, config.add_twins)
    meter = memory_meter(device)
    meta = dict(describe_environment(device), config=dataclasses.asdict(config))
    rows: List[Dict[str, Any]] = []
    if not config.flops_only:
        _prime_runtime(config, device)
    for group in group_by_baseline(specs):
        if config.flops_only:
            rows.extend(_count_only(spec, config.batch_size) for spec in group)
            continue
        # Each model compiles one graph per mode; same-class variants share dynamo's per-code recompile budget.
        # cache_size_limit: newer torch calls it recompile_limit and keeps this name as an alias.
        with torch._dynamo.config.patch(cache_size_limit=max(torch._dynamo.config.cache_size_limit, 4 * len(group))):
            prepared = [_prepare(spec, config, device, meter) for spec in group]
            entries = [entry for p in prepared for entry in p.entries]
            _time_group(entries, config, device)
            for p in prepared:
                _measure_after_timing(p, config, device)
        rows.extend(entry.row for entry in entries)
        del prepared, entries  # free this group's models and optimizer states before the next group is built
        if config.compile != 'off':
            torch._dynamo.reset()  # and its compiled code
    if not config.flops_only:
        meta['memory_method'] = meter.method
    return BenchmarkResult(meta, add_comparisons(rows))
