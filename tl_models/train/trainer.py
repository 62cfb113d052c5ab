"""A training run: checks, model, data, optimisation, the epoch loop, and what the run writes.

Built from timm's blocks (``create_model``, ``create_loader``, ``create_optimizer_v2``,
``create_scheduler_v2``, ``Mixup``, ``ModelEmaV3``). A run folder holds::

    config.yaml              resolved configuration
    metrics.csv              a row per epoch
    summary.json             model, dataset, epochs, best_top1, best_epoch, selected_top1, selected_epoch, seconds,
                             train_images_per_second, ...; distilled runs add the teacher, its settings, the
                             seconds spent in the teacher and the student's own img/s (teacher time left out)
    checkpoints/last.safetensors, checkpoints/best.safetensors   (model, EMA, optimizer, scheduler)
    model/                   the selected epoch's model in the hub format (config.json, model.safetensors, README.md):
                             the best held-out epoch's (``select='best'``) or the last one's (``select='last'``)

Every epoch reseeds all random generators from the seed and the epoch, so a run resumed after
epoch k repeats the uninterrupted run exactly (for a deterministic configuration).
"""
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import timm
import timm.scheduler
import torch
import torch.nn as nn
import yaml
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.utils import ModelEmaV3

from ..data import SplitData, build_loader, check_model_name, load_split, model_data_config, model_input
from ..data.clips import check_video_options
from ..data.preload import InMemoryBatches
from ..evaluate import evaluate
from ..hub.export import checkpoint_provenance, export_model
from ..io import write_json, write_text
from ..runtime import Distributed, seed_epoch
from ..weights.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import TrainConfig, TrainConfigError
from .distill import (
    DistillationLoss,
    StudentStart,
    StudentWithFeatures,
    describe_distillation,
    init_student_from_teacher,
    load_teacher,
)
from .engine import train_one_epoch
from .frozen import PartlyFrozen, cached_training, freeze_blocks, use_cached_teacher
from .optim import TOKENLEARNER_PREFIXES, create_optimizer

__all__ = ['train']

_logger = logging.getLogger(__name__)
METRIC_COLUMNS = ['epoch', 'train_loss', 'val_loss', 'top1', 'top5', 'lr', 'epoch_seconds', 'train_images_per_second',
                  'teacher_seconds']


def _num_classes(config: TrainConfig, train: SplitData, teacher: Optional[nn.Module]) -> int:
    if teacher is not None:
        return _teacher_classes(config, train, teacher.num_classes)
    num_classes = config.num_classes or (len(train.class_names) if train.class_names else None)
    if num_classes is None:
        raise TrainConfigError(f'cannot tell how many classes {train.description} has; pass --num-classes')
    if num_classes < 2:
        raise TrainConfigError(f'classification needs at least 2 classes, {train.description} has {num_classes}')
    return num_classes


def _teacher_classes(config: TrainConfig, train: SplitData, classes: int) -> int:
    """A distilled student predicts the teacher's classes; labels, when the loss reads them, must be those."""
    if config.num_classes not in (None, classes):
        raise TrainConfigError(f'--num-classes {config.num_classes} differs from the {classes} classes the teacher '
                               f'({config.distill_from}) predicts; a student distils the teacher\'s classes')
    if config.distill_alpha < 1 and train.class_names and len(train.class_names) != classes:
        raise TrainConfigError(
            f'{train.description} has {len(train.class_names)} classes, the teacher ({config.distill_from}) '
            f'predicts {classes}; distil with labels from data of the teacher\'s classes, or without labels '
            f'(--distill-alpha 1)')
    return classes


def _label_names(num_classes: int, *splits: SplitData) -> Optional[List[str]]:
    """The class names of the first split labelled with ``num_classes`` classes (an unlabelled training folder
    of a distillation has none)."""
    return next((s.class_names for s in splits if s.class_names and len(s.class_names) == num_classes), None)


def _check_batch(config: TrainConfig, train: SplitData, dist: Distributed) -> None:
    share = len(train.dataset) // dist.world_size
    if config.batch_size > share:
        raise TrainConfigError(
            f'--batch-size {config.batch_size} is larger than the {share} training images per process of '
            f'{train.description}; use a batch size of at most {share}')


def _freeze_backbone(model: nn.Module) -> None:
    """Leaves only the TokenLearner/TokenFuser modules and the head (fc_norm + classifier) trainable."""
    if not hasattr(model, 'token_learners'):
        raise TrainConfigError(f'--freeze-backbone needs a TokenLearner model, {type(model).__name__} has none')
    trainable = (*TOKENLEARNER_PREFIXES, 'fc_norm.', 'head.')
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(trainable))


def _loss_and_mixup(config: TrainConfig, num_classes: int) -> Tuple[nn.Module, Optional[Mixup]]:
    if config.mixup > 0 or config.cutmix > 0:
        mixup = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, label_smoothing=config.smoothing,
                      num_classes=num_classes)
        return SoftTargetCrossEntropy(), mixup
    if config.smoothing > 0:
        return LabelSmoothingCrossEntropy(config.smoothing), None
    return nn.CrossEntropyLoss(), None


def _eval_share(num_items: int, dist: Distributed) -> int:
    """The real (unpadded) items of timm's ordered distributed eval sampler that land on this process."""
    per_process = math.ceil(num_items / dist.world_size)
    return max(0, min(per_process, num_items - dist.rank * per_process))


def _prepare_output(config: TrainConfig) -> Path:
    if config.resume:
        output = Path(config.resume)
        if not (output / 'checkpoints' / 'last.safetensors').is_file():
            raise TrainConfigError(f'--resume {output}: no checkpoints/last.safetensors there')
        return output
    output = Path(config.output or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{config.model.replace(':', '_')}")
    if (output / 'checkpoints').exists():
        raise TrainConfigError(f'{output} already holds a run; continue it with --resume {output} '
                               f'or choose another --output')
    return output


def _write_metrics(path: Path, history: List[Dict[str, Any]]) -> None:
    lines = [','.join(METRIC_COLUMNS)]
    lines += [','.join(f'{row[c]:.6g}' if isinstance(row[c], float) else '' if row[c] is None else str(row[c])
                       for c in METRIC_COLUMNS) for row in history]
    write_text(path, '\n'.join(lines) + '\n')


@dataclasses.dataclass
class _RunState:
    """What a checkpoint carries besides tensors, so that a resumed run continues where it stopped."""
    epochs_done: int = 0
    num_updates: int = 0
    best_top1: float = -1.0
    best_epoch: int = 0
    train_seconds: float = 0.0
    teacher_seconds: float = 0.0
    train_images: int = 0
    wall_seconds: float = 0.0
    history: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


def train(config: TrainConfig) -> Dict[str, Any]:
    """Runs (or resumes) training and returns the summary; only rank 0 writes files.

    Raises:
        TrainConfigError: a bad configuration, found before training starts.
    """
    dist = Distributed.from_env(config.device)
    try:
        return _train(config, dist)
    finally:
        dist.close()


def _train(config: TrainConfig, dist: Distributed) -> Dict[str, Any]:
    session_start = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    check_model_name(config.model)
    inputs = model_input(config.model)
    check_video_options(config, inputs)
    output = _prepare_output(config)
    teacher = load_teacher(config, dist.device) if config.distill_from else None
    train_split = load_split(config, config.train_split, inputs)
    val_split = load_split(config, config.val_split, inputs)
    num_classes = _num_classes(config, train_split, teacher)
    _check_batch(config, train_split, dist)

    torch.manual_seed(config.seed)
    frames = {} if config.clip_frames is None else dict(num_frames=config.clip_frames)
    model = timm.create_model(config.model, pretrained=config.pretrained, num_classes=num_classes,
                              drop_path_rate=config.drop_path, img_size=config.img_size, **frames,
                              **config.model_kwargs)
    started_from = _weights_source(config, model)
    if teacher is not None:
        start = _student_start(config, model, teacher)
        if start.from_teacher:
            started_from = f"the teacher's weights ({config.distill_from})"
        if dist.is_main:
            _logger.info('distilling from %s (alpha %g, temperature %g, feature weight %g); %s', config.distill_from,
                         config.distill_alpha, config.distill_temperature, config.distill_feature_weight,
                         start.message)
    model_name = model.pretrained_cfg['architecture']
    model_args = dict(model._model_args)
    inputs = dataclasses.replace(model_input(model), model=config.model)  # the frames it was built for
    data_config = model_data_config(model)
    if config.freeze_backbone:
        _freeze_backbone(model)
    if config.freeze_blocks:
        freeze_blocks(model, config.freeze_blocks)
    if config.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(dist.device)

    if config.cache_frozen:
        trainee, train_loader, val_loader = cached_training(config, model, train_split, val_split, data_config,
                                                            output, dist)
    else:
        trainee = PartlyFrozen(model, config.freeze_blocks) if config.freeze_blocks else model
        train_loader = build_loader(train_split, data_config, config, is_training=True, dist=dist, inputs=inputs)
        val_loader = build_loader(val_split, data_config, config, is_training=False, dist=dist, inputs=inputs)
    optimizer = create_optimizer(model, config)
    scheduler, _ = timm.scheduler.create_scheduler_v2(
        optimizer, sched='cosine', num_epochs=config.epochs, warmup_epochs=config.warmup_epochs,
        min_lr=config.min_lr, step_on_epochs=False, updates_per_epoch=len(train_loader))
    loss_fn, mixup = _loss_and_mixup(config, num_classes)
    distiller = None
    if teacher is not None:
        distiller = DistillationLoss(teacher, model, loss_fn, config.distill_alpha, config.distill_temperature,
                                     config.distill_feature_weight)
        if config.cache_frozen:
            use_cached_teacher(distiller, model, teacher, trainee.start, config)
    ema = ModelEmaV3(model, decay=config.model_ema_decay) if config.model_ema else None

    state = _RunState()
    if config.resume:
        ckpt = load_checkpoint(output / 'checkpoints' / 'last.safetensors')
        model.load_state_dict(ckpt.model_state)
        if ema is not None:
            ema.module.load_state_dict(ckpt.ema_state)
        optimizer.load_state_dict(ckpt.optimizer_state)
        scheduler.load_state_dict(ckpt.scheduler_state)
        state = _RunState(**ckpt.run['state'])
    elif dist.is_main:
        write_text(output / 'config.yaml', yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

    net, model = model, trainee
    with_features = distiller is not None and config.distill_feature_weight > 0
    if with_features:  # the feature loss needs the pooled features too: one forward returns both
        model = StudentWithFeatures(trainee)
    if dist.enabled:
        device_ids = [dist.device] if dist.device.type == 'cuda' else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.compile:
        model = torch.compile(model)
    eval_model = ema.module if ema is not None else trainee

    if dist.is_main:
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        _logger.info('training %s on %s (%d classes, %d train / %d held-out %s), %d trainable parameters, '
                     'on %d process(es) (%s); writing to %s', model_name, train_split.description, num_classes,
                     len(train_split.dataset), len(val_split.dataset), f'{inputs.unit}s', trainable,
                     dist.world_size, dist.device, output)

    val_share = _eval_share(len(val_split.dataset), dist)
    last_epoch = min(config.epochs, config.stop_after_epoch or config.epochs)
    for epoch in range(state.epochs_done, last_epoch):
        seed_epoch(config.seed, epoch, dist.rank)
        if isinstance(train_loader, InMemoryBatches):
            train_loader.set_epoch(epoch)
        elif dist.enabled:
            train_loader.sampler.set_epoch(epoch)
        result = train_one_epoch(
            model, train_loader, optimizer, loss_fn, dist, scheduler=scheduler, num_updates=state.num_updates,
            ema=ema, mixup=mixup, amp=config.amp, clip_grad=config.clip_grad, distiller=distiller,
            description=f'epoch {epoch + 1}/{config.epochs}')
        evaluated = (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
        metrics = (evaluate(eval_model, val_loader, dist, num_samples=val_share, amp=config.amp, description='eval')
                   if evaluated else dict.fromkeys(('loss', 'top1', 'top5')))
        state.epochs_done = epoch + 1
        state.num_updates = result.num_updates
        state.train_seconds += result.seconds
        state.teacher_seconds += result.teacher_seconds
        state.train_images += result.images
        improved = evaluated and metrics['top1'] > state.best_top1
        if improved:
            state.best_top1, state.best_epoch = metrics['top1'], epoch + 1
        state.history.append(dict(
            epoch=epoch + 1, train_loss=result.loss, val_loss=metrics['loss'], top1=metrics['top1'],
            top5=metrics['top5'], lr=optimizer.param_groups[0]['lr'], epoch_seconds=result.seconds,
            train_images_per_second=result.images / max(result.seconds, 1e-9),
            teacher_seconds=result.teacher_seconds if distiller is not None else None))
        if dist.is_main:
            _save_epoch(output, config, net, ema, optimizer, scheduler, model_name, model_args, state,
                        improved and config.select == 'best', time.perf_counter() - session_start)
            _log_epoch(epoch, config.epochs, result.loss, metrics, optimizer.param_groups[0]['lr'],
                       state.history[-1]['train_images_per_second'])

    state.wall_seconds += time.perf_counter() - session_start
    summary = _summary(config, model_name, started_from, train_split, num_classes, net, state, dist)
    if dist.is_main:
        write_json(output / 'summary.json', summary)
        _export_selected(output, _label_names(num_classes, train_split, val_split), data_config, summary)
        _logger.info('%s held-out top-1 %.2f%% (epoch %d of %d); run folder %s', config.select,
                     summary['selected_top1'], summary['selected_epoch'], state.epochs_done, output)
    return summary


def _weights_source(config: TrainConfig, model: nn.Module) -> str:
    """What the model's weights are before training, for the run's summary and model card: its pretrained tag,
    the weight file a ``pretrained_cfg_overlay`` named, or a random initialisation."""
    if not config.pretrained:
        return 'a random initialisation (trained from scratch)'
    file = (config.model_kwargs.get('pretrained_cfg_overlay') or {}).get('file')
    if file:
        return f'the weight file {Path(file).parent.name}/{Path(file).name}'
    cfg = model.pretrained_cfg
    if ':' in config.model or not cfg.get('tag'):  # hf-hub:, local-dir:, or weights without a tag
        return f'`{config.model}`'
    return f"`{cfg['architecture']}.{cfg['tag']}`"


def _student_start(config: TrainConfig, student: nn.Module, teacher: nn.Module) -> StudentStart:
    """Starts the student from the teacher's weights where they fit (unless told otherwise); says what it did."""
    if config.pretrained:
        return StudentStart(False, "the student starts from its own pretrained weights (--pretrained), not the "
                                   "teacher's")
    if not config.distill_init:
        return StudentStart(False, 'the student starts from its own initialisation (--no-distill-init)')
    return init_student_from_teacher(student, teacher)


def _log_epoch(epoch: int, epochs: int, train_loss: float, metrics: Dict[str, Any], lr: float,
               images_per_second: float) -> None:
    held_out = ('' if metrics['top1'] is None else
                f"  held-out loss {metrics['loss']:.4f}  top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%")
    _logger.info('epoch %d/%d  train loss %.4f%s  lr %.2e  %.0f img/s', epoch + 1, epochs, train_loss, held_out, lr,
                 images_per_second)


def _save_epoch(output: Path, config: TrainConfig, net: nn.Module, ema: Optional[ModelEmaV3], optimizer, scheduler,
                model_name: str, model_args: Dict[str, Any], state: _RunState, improved: bool,
                session_seconds: float) -> None:
    run_state = dataclasses.replace(state, wall_seconds=state.wall_seconds + session_seconds)
    kwargs = dict(model=net, model_name=model_name, model_args=model_args, epoch=state.epochs_done,
                  metrics=state.history[-1], optimizer=optimizer, scheduler=scheduler,
                  ema=ema.module if ema is not None else None,
                  run=dict(state=dataclasses.asdict(run_state), use_ema=ema is not None))
    save_checkpoint(output / 'checkpoints' / 'last.safetensors', **kwargs)
    if improved:
        save_checkpoint(output / 'checkpoints' / 'best.safetensors', **kwargs)
    _write_metrics(output / 'metrics.csv', state.history)


def _summary(config: TrainConfig, model_name: str, started_from: str, train_split: SplitData, num_classes: int,
             net: nn.Module, state: _RunState, dist: Distributed) -> Dict[str, Any]:
    last = state.history[-1] if state.history else {}
    selected_epoch = state.best_epoch if config.select == 'best' else state.epochs_done
    selected = state.history[selected_epoch - 1] if selected_epoch else {}
    distillation = {}
    if config.distill_from:
        distillation = dict(describe_distillation(config), teacher_seconds=round(state.teacher_seconds, 2),
                            student_train_images_per_second=state.train_images / max(
                                state.train_seconds - state.teacher_seconds, 1e-9))
    return dict(
        model=model_name,
        model_source=config.model,
        started_from=started_from,
        dataset=train_split.description,
        num_classes=num_classes,
        epochs=state.epochs_done,
        epochs_planned=config.epochs,
        best_top1=state.best_top1,
        best_epoch=state.best_epoch,
        last_top1=last.get('top1'),
        last_top5=last.get('top5'),
        select=config.select,
        selected_epoch=selected_epoch,
        selected_top1=selected.get('top1'),
        selected_top5=selected.get('top5'),
        seconds=round(state.wall_seconds, 2),
        train_images_per_second=state.train_images / max(state.train_seconds, 1e-9),
        num_params=sum(p.numel() for p in net.parameters()),
        optimizer_steps=state.num_updates,
        processes=dist.world_size,
        ema=config.model_ema,
        **distillation,
    )


def _export_selected(output: Path, label_names: Optional[List[str]], data_config: Dict[str, Any],
                     summary: Dict[str, Any]) -> None:
    """Writes the selected checkpoint's weights (EMA if the run kept it) as a hub-ready folder ``output/model``."""
    selected = output / 'checkpoints' / f"{summary['select']}.safetensors"
    if not selected.is_file():  # a session stopped before the first evaluation: nothing to select yet
        return
    provenance = checkpoint_provenance(load_checkpoint(selected), use_ema=summary['ema'], run_summary=summary)
    export_model(model_from_checkpoint(selected, use_ema=summary['ema']), output / 'model', provenance,
                 overwrite=True, data_config=data_config, label_names=label_names)
