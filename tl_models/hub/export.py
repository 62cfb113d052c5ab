"""Hub-ready model folders: timm's ``config.json``, ``model.safetensors`` and a ``README.md`` model card.

Such a folder loads with ``timm.create_model('local-dir:PATH', pretrained=True)``; uploaded to a hub
repo (:mod:`tl_models.hub.push`), with ``'hf-hub:ORG/NAME'``, and a YAML tag whose ``hf_hub_id`` is
that repo makes it ``'tl_<variant>.<tag>'`` (:func:`tag_entry` gives the tag's fields). The folder is
written atomically: it appears complete or not at all.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import timm
import torch.nn as nn
from timm.models import PretrainedCfg, save_for_hf

from ..data import model_input
from ..io import atomic_dir, write_json, write_text
from ..models import TokenLearnerVisionTransformer
from ..registry import GENERIC_PLAIN, GENERIC_TOKENLEARNER, generic_architecture, get_variant, is_builtin
from ..version import __version__
from ..weights.checkpoint import TrainingCheckpoint, load_checkpoint, model_from_checkpoint
from ..weights.files import SAFE_WEIGHTS_NAME
from .card import Provenance, model_card
from .names import IMPORT_NOTE

__all__ = ['CARD_NAME', 'CONFIG_NAME', 'EXPORT_FILES', 'ExportError', 'checkpoint_provenance', 'export_checkpoint',
           'export_model', 'export_source', 'find_run_checkpoint', 'tag_entry']

CONFIG_NAME = 'config.json'
CARD_NAME = 'README.md'
EXPORT_FILES = (CONFIG_NAME, SAFE_WEIGHTS_NAME, CARD_NAME)
RUN_CHECKPOINTS = ('checkpoints/best.safetensors', 'checkpoints/last.safetensors')
RUN_SUMMARY = 'summary.json'
# Pretrained-cfg fields a tag may override (see tl_models.registry.schema), in the order tag_entry writes them.
_TAG_FIELDS = ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'crop_mode', 'license')

GENERIC_ARCHITECTURES = (GENERIC_TOKENLEARNER, GENERIC_PLAIN)
# Arguments timm's save_config_for_hf reads from the model as it is now (after reset_classifier, ...).
_CURRENT_ARGS = ('num_classes', 'in_chans', 'global_pool', 'img_size')

PathLike = Union[str, Path]


class ExportError(ValueError):
    """What was given cannot be exported (not a TokenLearner model, no checkpoint in a run folder, ...)."""


def _architecture(model: nn.Module) -> str:
    """The registered timm name of ``model`` (a TokenLearner variant, a plain twin, a generic architecture,
    or any timm model)."""
    architecture = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture')
    if not architecture:
        raise ExportError(f'the {type(model).__name__} has no pretrained_cfg: create it with timm.create_model(...)')
    if isinstance(model, TokenLearnerVisionTransformer) and architecture not in GENERIC_ARCHITECTURES:
        get_variant(architecture)  # KeyError naming close variants if it is not registered
    elif not timm.is_model(architecture):
        raise ExportError(f'{architecture} is not a registered timm model, so no Python could rebuild it')
    return architecture


def _exported_architecture(architecture: str) -> str:
    """The name config.json gives: a shipped variant's or timm's own; for a variant of another YAML file, the
    generic architecture that rebuilds it from its arguments in any Python with tl-models installed."""
    try:
        variant = get_variant(architecture)
    except KeyError:
        return architecture
    return architecture if is_builtin(variant) else generic_architecture(variant)


def _model_args(model: nn.Module, architecture: str) -> Dict[str, Any]:
    """The variant's architecture arguments the model does not record itself, for ``save_config_for_hf``.

    timm adds the model's recorded construction arguments and its current classes, channels, pooling and
    size; dropout rates and the initialisation mode are left out, as they do not shape loaded weights. A
    variant built on a timm backbone records it by name (``backbone``), which any tl-models resolves through
    timm: its arguments include layers (a norm with its eps, ...) that JSON cannot hold.
    """
    recorded = getattr(model, '_model_args', {})
    try:
        variant_args = get_variant(architecture).model_args
    except KeyError:  # timm's own model, or a generic one: its entrypoint or recorded arguments hold all
        return {}
    return {k: v for k, v in variant_args.items()
            if k not in recorded and k not in _CURRENT_ARGS and not k.endswith('_rate') and k != 'weight_init'}


def _finish_config(config: Dict[str, Any], provenance: Provenance) -> Dict[str, Any]:
    """timm's config, named by the architecture that rebuilds it anywhere, described, with the import note; the
    variant's own name and the weights training started from go to the ``tl_models`` section.

    The model's own tag is dropped: a model rebuilt from a checkpoint carries its variant's default tag, which
    says nothing about the weights it was trained from (those are the provenance's ``started_from``).
    """
    variant = config['architecture']
    config['architecture'] = _exported_architecture(variant)
    config['pretrained_cfg'].pop('tag', None)
    config['pretrained_cfg']['description'] = provenance.summary
    config['tl_models'] = {'version': __version__, 'usage': IMPORT_NOTE, 'variant': variant,
                           **({'started_from': provenance.started_from} if provenance.started_from else {})}
    return config


def export_model(
        model: nn.Module,
        out_dir: PathLike,
        provenance: Provenance,
        repo_id: Optional[str] = None,
        overwrite: bool = False,
        data_config: Optional[Dict[str, Any]] = None,
        label_names: Optional[List[str]] = None,
) -> Path:
    """Writes ``model`` as a hub-ready folder: config.json, model.safetensors, README.md; returns the folder.

    Args:
        model: A model created with ``timm.create_model``: a TokenLearner ViT, a plain twin or any timm
            model (its pretrained_cfg gives the preprocessing: input size, mean/std, crop).
        out_dir: The folder to create.
        provenance: What the weights are, for the card and the config's description.
        repo_id: The hub repo it is meant for (``org/name``), shown in the card's loading code.
        overwrite: Replace an existing ``out_dir``.
        data_config: The preprocessing the weights were trained with (timm's data config), if it differs
            from the model's pretrained_cfg.
        label_names: Class names, one per output of the classifier.

    Raises:
        ExportError: not a model timm can rebuild by name.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    architecture = _architecture(model)
    num_params = sum(p.numel() for p in model.parameters())
    frames = model_input(model).num_frames
    if frames is not None and data_config is not None:  # timm's writer takes (C, H, W): the frames are put back below
        channels, *size = data_config['input_size']
        data_config = dict(data_config, input_size=(channels, *size[-2:]))
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        save_for_hf(model, str(tmp), model_args=_model_args(model, architecture), data_config=data_config,
                    model_config=dict(label_names=list(label_names)) if label_names else None,
                    safe_serialization=True)  # timm's writer: config.json and model.safetensors
        config = _finish_config(json.loads((tmp / CONFIG_NAME).read_text(encoding='utf-8')), provenance)
        if frames is not None:  # a video input's one description: (C, T, H, W)
            channels, *size = config['pretrained_cfg']['input_size']
            config['pretrained_cfg']['input_size'] = [channels, frames, *size[-2:]]
        write_json(tmp / CONFIG_NAME, config)
        write_text(tmp / CARD_NAME, model_card(config, provenance, num_params, repo_id))
    return Path(out_dir)


def find_run_checkpoint(run_dir: PathLike) -> Path:
    """The checkpoint to export from a training run folder: ``checkpoints/best``, else ``checkpoints/last``.

    Raises:
        ExportError: the folder has neither.
    """
    run_dir = Path(run_dir)
    for name in RUN_CHECKPOINTS:
        if (run_dir / name).is_file():
            return run_dir / name
    raise ExportError(f"{run_dir}: no training checkpoint; expected {' or '.join(RUN_CHECKPOINTS)}")


def _numbers(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def checkpoint_provenance(
        ckpt: TrainingCheckpoint,
        use_ema: bool = False,
        run_summary: Optional[Dict[str, Any]] = None,
) -> Provenance:
    """The provenance of a training checkpoint.

    The metrics are the numbers of the run's ``summary.json`` (best_top1, ...) when given, else those the
    checkpoint recorded for its epoch.
    """
    run_summary = run_summary or {}
    dataset = run_summary.get('dataset')
    on = f' on {dataset}' if dataset else ''
    teacher = run_summary.get('teacher')
    how = (f"distilled from {teacher} (alpha {run_summary['distill_alpha']:g}, temperature "
           f"{run_summary['distill_temperature']:g}, feature weight {run_summary['distill_feature_weight']:g})"
           if teacher else 'trained')
    training = {'model': ckpt.model_name, 'checkpoint': ckpt.path.name, 'epoch': ckpt.epoch,
                'weights': 'EMA' if use_ema else 'model'}
    if teacher:
        training['teacher'] = teacher
    return Provenance(
        summary=(f"{'A TokenLearner ViT' if ckpt.model_name.startswith('tl_') else 'A model'} ({ckpt.model_name}) "
                 f'{how} with tl_models{on}: the '
                 f"{'EMA ' if use_ema else ''}weights of {ckpt.path.name} (epoch {ckpt.epoch})."),
        dataset=dataset,
        metrics=_numbers(run_summary) or _numbers(ckpt.metrics),
        training=training,
        started_from=run_summary.get('started_from'),
    )


def export_checkpoint(
        source: PathLike,
        out_dir: PathLike,
        use_ema: Optional[bool] = None,
        repo_id: Optional[str] = None,
        overwrite: bool = False,
) -> Path:
    """Exports a training checkpoint file, or the best (else last) checkpoint of a run folder.

    Args:
        source: A checkpoint file, or a run folder (its ``summary.json`` goes into the model card).
        out_dir: The folder to create.
        use_ema: Export the EMA weights; None: those if the checkpoint has them (as the trainer evaluates them).
        repo_id: The hub repo it is meant for.
        overwrite: Replace an existing ``out_dir``.

    Raises:
        ExportError: a run folder without checkpoints.
        CheckpointError: an unreadable checkpoint, or ``use_ema`` without EMA weights.
    """
    source = Path(source)
    run_summary: Dict[str, Any] = {}
    if source.is_dir():
        if (source / RUN_SUMMARY).is_file():
            run_summary = json.loads((source / RUN_SUMMARY).read_text(encoding='utf-8'))
        source = find_run_checkpoint(source)
    ckpt = load_checkpoint(source)
    use_ema = ckpt.ema_state is not None if use_ema is None else use_ema
    provenance = checkpoint_provenance(ckpt, use_ema, run_summary)
    return export_model(model_from_checkpoint(source, use_ema=use_ema), out_dir, provenance, repo_id, overwrite)


def _named_model(name: str, pretrained: bool) -> Tuple[nn.Module, Provenance]:
    model = timm.create_model(name, pretrained=pretrained)
    description = model.pretrained_cfg.get('description')
    if pretrained:
        summary = f'Exported from {name}. ' + (description or '')
    else:
        summary = (f'Untrained: {name} with random initial weights, a starting point for training '
                   f'(not a usable classifier).')
    return model, Provenance(summary=summary.strip())


def export_source(
        source: str,
        out_dir: PathLike,
        use_ema: Optional[bool] = None,
        pretrained: bool = False,
        repo_id: Optional[str] = None,
        overwrite: bool = False,
) -> Path:
    """Exports a training checkpoint, a run folder (see :func:`export_checkpoint`), or a model name
    (``tl_...[.tag]``; its pretrained weights with ``pretrained``)."""
    if Path(source).exists():
        return export_checkpoint(source, out_dir, use_ema, repo_id, overwrite)
    if '/' in source or '\\' in source or source.endswith('.safetensors'):
        raise ExportError(f'{source}: no such training checkpoint file or run folder')
    get_variant(source)  # KeyError naming close variants if it is not registered
    if use_ema:
        raise ExportError(f'{source}: a model name has no EMA weights; those exist in training checkpoints')
    model, provenance = _named_model(source, pretrained)
    return export_model(model, out_dir, provenance, repo_id, overwrite)


def tag_entry(folder: PathLike, repo_id: str) -> Dict[str, Any]:
    """The fields of a YAML tag that loads an exported folder once it is uploaded to ``repo_id``.

    ``hf_hub_id``, ``num_classes``, ``description`` and the pretrained-cfg fields that differ from the
    variant's own: ``tags: {<tag>: <this>}`` in the variant's YAML entry publishes the model.
    """
    config = json.loads((Path(folder) / CONFIG_NAME).read_text(encoding='utf-8'))
    exported = config['pretrained_cfg']
    variant = get_variant(config.get('tl_models', {}).get('variant', config['architecture']))
    variant_cfg = json.loads(json.dumps(PretrainedCfg(**variant.pretrained_cfg).to_dict()))  # timm's defaults filled
    entry: Dict[str, Any] = {'hf_hub_id': repo_id, 'num_classes': config['num_classes']}
    for key in _TAG_FIELDS:
        if key in exported and exported[key] != variant_cfg.get(key):
            entry[key] = exported[key]
    entry['description'] = exported.get('description', '')
    return entry
