"""Model cards of the weights a study ships: top-1 on the held-out split, cost, speed, recipe, data, licence.

A run marked ``ship`` leaves its exported model (seed 0) in the weights folder (:mod:`.runner`); once the
study's rows are known, its ``README.md`` and the description in its ``config.json`` are rewritten here with
what the study measured. The folder stays hub-ready (``scripts/push_to_hub.py`` uploads it).
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import timm

from tl_models.hub.card import Provenance, model_card
from tl_models.io import write_json, write_text
from tl_models.registry import builtin_config_dir

from .model_rows import ModelRow, speed_unit
from .runner import result_path
from .spec import StudySpec

__all__ = ['shipped_folder', 'study_weights_dir', 'write_shipped_cards']

RECIPE_FIELDS = ('epochs', 'batch_size', 'opt', 'lr', 'min_lr', 'warmup_epochs', 'weight_decay', 'smoothing',
                 'drop_path', 'scale', 'ratio', 'hflip', 'mixup', 'cutmix', 'model_ema', 'seed')


def study_weights_dir(spec: StudySpec) -> Path:
    """Where a study's shipped weights go by default: its ``weights_dir``, else the package's ``configs/weights``."""
    return spec.weights_dir or builtin_config_dir() / 'weights'


def shipped_folder(weights_dir: Path, model: str, tag: str) -> Path:
    """The hub-ready folder of the shipped weights ``<model>.<tag>``."""
    return Path(weights_dir) / f'{timm.models.get_arch_name(model)}.{tag}'


def _metrics(result: Dict[str, Any], row: ModelRow) -> Dict[str, Any]:
    metrics: Dict[str, Any] = {
        f"top-1 % on {result['held_out']} (these weights, seed {result['seed']})": round(result['top1'], 2),
        f"top-5 % on {result['held_out']}": round(result['top5'], 2),
    }
    shipped = result.get('shipped')
    if shipped:  # the file as shipped, evaluated end to end (the training-time figure may use cached features)
        metrics = {
            f"top-1 % on {result['held_out']} (this {shipped['dtype']} file, seed {result['seed']}, tl-validate)":
                round(shipped['top1'], 2),
            f"top-5 % on {result['held_out']} (this file)": round(shipped['top5'], 2),
            f"top-1 % on {result['held_out']} as measured in training": round(result['top1'], 2),
        }
    metrics.update({
        f'top-1 % mean over seeds {",".join(map(str, row.seeds))}': round(row.mean, 2),
    })
    if row.std is not None:
        metrics['top-1 standard deviation over seeds'] = round(row.std, 2)
    metrics['GMACs per image'] = round(row.gmacs, 5)
    if row.gmacs_ratio is not None and row.kind != 'twin':
        metrics["GMACs / plain twin's"] = round(row.gmacs_ratio, 3)
    unit = speed_unit([row])
    for workload, name in (('train_model', f'training {unit} (model only)'),
                           ('infer_model', f'inference {unit} (model only)')):
        if workload in row.speed:
            metrics[name] = round(row.speed[workload], 1)
            if row.speedup(workload) is not None and row.kind != 'twin':
                metrics[f"{name} / plain twin's"] = round(row.speedup(workload), 3)
    return metrics


def _augmentation(config: Dict[str, Any]) -> str:
    """The augmentation a run's configuration gives, in words."""
    if config.get('cache_frozen'):
        return f"horizontal flip (probability {config.get('hflip')}) of the whole image, on cached block outputs"
    where = ('batched on preloaded images (tl_models.data.preload)' if config.get('preload') else
             "timm's per-image transforms")
    return f'random-resized crop and horizontal flip, {where}'


def write_shipped_cards(spec: StudySpec, rows: List[ModelRow], results_dir: Path, weights_dir: Path,
                        speed_environment: Optional[Dict[str, Any]] = None) -> List[Path]:
    """Rewrites the card and description of every shipped folder of ``spec`` that exists; returns the folders."""
    written = []
    for run in (r for r in spec.runs if r.ship):
        folder = shipped_folder(weights_dir, run.model, run.ship)
        result_file = result_path(results_dir, run)
        row = next((r for r in rows if r.group == run.group and r.run == run.name), None)
        if not (folder / 'config.json').is_file() or not result_file.is_file() or row is None:
            continue
        result = json.loads(result_file.read_text(encoding='utf-8'))
        name = f'{timm.models.get_arch_name(run.model)}.{run.ship}'
        data = spec.dataset_description or result['summary']['dataset']
        start = (f'fine-tuned from {spec.pretrained_description or "pretrained weights"}'
                 if result['config'].get('pretrained') else 'trained from scratch')
        where = ('the weights ship with tl-models' if spec.weights_dir is None else
                 'the weights ship with a source checkout of tl-models (not the wheel)')
        summary = (f"{name}: {run.model} {start} on {data} by the tl_models study `{spec.path.name}` (seed "
                   f"{run.seed}, the weights after the last of {result['config']['epochs']} epochs). Load it with "
                   f"`timm.create_model('{name}', pretrained=True)`: {where}.")
        config = json.loads((folder / 'config.json').read_text(encoding='utf-8'))
        config['pretrained_cfg']['description'] = summary
        overlay = result['config'].get('model_kwargs', {}).get('pretrained_cfg_overlay') or {}
        if result['config'].get('pretrained') and overlay.get('file'):  # a weight file, not the tag's own weights
            config['tl_models']['started_from'] = spec.pretrained_description or 'a pretrained weight file'
        training = {k: result['config'][k] for k in RECIPE_FIELDS if k in result['config']}
        training.update(schedule='cosine, per step', augmentation=_augmentation(result['config']),
                        command=f'python scripts/study.py {spec.path.as_posix()} --data-dir DATA')
        frozen = result['config'].get('freeze_blocks')
        if frozen:
            cached = ', their outputs cached (float16)' if result['config'].get('cache_frozen') else ''
            training['frozen'] = f'the stem and blocks 0-{frozen - 1}{cached}'
        if result['config'].get('amp'):
            training['precision'] = 'bfloat16 autocast'
        if spec.licence:
            training['licences'] = spec.licence
        if speed_environment:
            training['speed measured on'] = (f"{speed_environment.get('device_name')}, batch "
                                             f"{result['config']['batch_size']}, fp32")
        provenance = Provenance(
            summary=summary, dataset=spec.dataset, metrics=_metrics(result, row), training=training)
        num_params = round(row.params_m * 1e6)
        write_json(folder / 'config.json', config)
        write_text(folder / 'README.md', model_card(config, provenance, num_params))
        written.append(folder)
    return written
