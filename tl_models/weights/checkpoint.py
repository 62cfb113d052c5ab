"""Training checkpoints as safetensors: model, EMA and optimizer tensors, the rest as JSON metadata.

Below both of its users: the trainer writes and resumes them, the hub tools export and recognise them.

No pickle is involved in writing or reading, so loading a checkpoint never executes code. Files are
written atomically (:mod:`tl_models.io`). Layout of one file:

- tensors ``model.<key>``, ``ema.<key>`` (if EMA is on), ``optimizer.<param index>.<state name>``;
- metadata ``format``, ``model_name``, ``model_args``, ``epoch``, ``metrics``, ``optimizer`` (param groups
  and non-tensor state), ``scheduler``, ``run`` (anything else the trainer wants back), all JSON strings.
"""
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import timm
import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open

from ..io import write_safetensors

__all__ = ['FORMAT', 'CheckpointError', 'TrainingCheckpoint', 'load_checkpoint', 'model_from_checkpoint',
           'save_checkpoint']

FORMAT = 'tl_models.train/1'


class CheckpointError(ValueError):
    """A file is not a readable training checkpoint; the message names the file and what is wrong."""


@dataclasses.dataclass
class TrainingCheckpoint:
    """The content of one training checkpoint file."""
    path: Path
    model_name: str
    model_args: Dict[str, Any]
    epoch: int
    metrics: Dict[str, Any]
    model_state: Dict[str, torch.Tensor]
    ema_state: Optional[Dict[str, torch.Tensor]]
    optimizer_state: Optional[Dict[str, Any]]
    scheduler_state: Optional[Dict[str, Any]]
    run: Dict[str, Any]


def _optimizer_tensors(state: Dict[str, Any]) -> tuple:
    tensors, scalars = {}, {}
    for index, param_state in state['state'].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f'optimizer.{index}.{name}'] = value
            else:
                scalars[f'{index}.{name}'] = value
    return tensors, {'param_groups': state['param_groups'], 'scalars': scalars}


def save_checkpoint(
        path: Union[str, Path],
        *,
        model: nn.Module,
        model_name: str,
        model_args: Dict[str, Any],
        epoch: int,
        metrics: Optional[Dict[str, Any]] = None,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Optional[Any] = None,
        ema: Optional[nn.Module] = None,
        run: Optional[Dict[str, Any]] = None,
) -> None:
    """Writes one training checkpoint atomically (see the module docstring for the layout)."""
    tensors = {f'model.{k}': v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f'ema.{k}': v for k, v in ema.state_dict().items()})
    metadata = {
        'format': FORMAT,
        'model_name': model_name,
        'model_args': json.dumps(model_args),
        'epoch': str(epoch),
        'metrics': json.dumps(metrics or {}),
        'run': json.dumps(run or {}),
    }
    if optimizer is not None:
        optimizer_tensors, optimizer_meta = _optimizer_tensors(optimizer.state_dict())
        tensors.update(optimizer_tensors)
        metadata['optimizer'] = json.dumps(optimizer_meta)
    if scheduler is not None:
        metadata['scheduler'] = json.dumps(scheduler.state_dict())
    write_safetensors(path, tensors, metadata)


def _section(tensors: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_state(tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    for key, value in _section(tensors, 'optimizer.').items():
        index, name = key.split('.', 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta['scalars'].items():
        index, name = key.split('.', 1)
        state.setdefault(int(index), {})[name] = value
    return {'state': state, 'param_groups': meta['param_groups']}


def load_checkpoint(path: Union[str, Path]) -> TrainingCheckpoint:
    """Reads a training checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, truncated or corrupt file, or a file that is not a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: no such checkpoint file')
    try:
        with safe_open(str(path), framework='pt') as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f'{path}: not a readable safetensors file (truncated or corrupt?): {e}') from e
    if metadata.get('format') != FORMAT:
        raise CheckpointError(
            f"{path}: not a tl_models training checkpoint (expected metadata format '{FORMAT}', "
            f"got {metadata.get('format')!r})")
    try:
        optimizer = json.loads(metadata['optimizer']) if 'optimizer' in metadata else None
        ckpt = TrainingCheckpoint(
            path=path,
            model_name=metadata['model_name'],
            model_args=json.loads(metadata['model_args']),
            epoch=int(metadata['epoch']),
            metrics=json.loads(metadata['metrics']),
            model_state=_section(tensors, 'model.'),
            ema_state=_section(tensors, 'ema.') or None,
            optimizer_state=_optimizer_state(tensors, optimizer) if optimizer is not None else None,
            scheduler_state=json.loads(metadata['scheduler']) if 'scheduler' in metadata else None,
            run=json.loads(metadata['run']),
        )
    except (KeyError, ValueError) as e:
        raise CheckpointError(f'{path}: damaged checkpoint metadata ({type(e).__name__}: {e})') from e
    return ckpt


def model_from_checkpoint(path: Union[str, Path], use_ema: bool = False) -> nn.Module:
    """Rebuilds the trained model of a checkpoint (its EMA weights with ``use_ema``), in eval mode.

    Needs ``import tl_models`` (done by this package) so that ``tl_`` model names resolve.

    Raises:
        CheckpointError: unreadable checkpoint, or ``use_ema`` on a checkpoint without EMA weights.
    """
    ckpt = load_checkpoint(path)
    state = ckpt.ema_state if use_ema else ckpt.model_state
    if state is None:
        raise CheckpointError(f'{ckpt.path}: the run kept no EMA weights; export the model weights instead')
    model = timm.create_model(ckpt.model_name, **ckpt.model_args)
    model.load_state_dict(state)
    return model.eval()
