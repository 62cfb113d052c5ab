"""Evaluation of a model on a dataset: top-1/top-5, loss and throughput.

The model can be a registered name (``--pretrained`` for its tag's weights), ``hf-hub:``/``local-dir:``,
a training run folder (its exported ``model/``), or a training checkpoint file.
"""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import timm
import torch.nn as nn

from ..data import (
    ConfigError,
    DataConfig,
    build_loader,
    check_model_name,
    load_split,
    model_data_config,
    model_input,
)
from ..runtime import Distributed
from ..weights.checkpoint import model_from_checkpoint
from .loop import evaluate

__all__ = ['load_eval_model', 'validate']


def load_eval_model(source: str, pretrained: bool = False, use_ema: bool = False) -> Tuple[nn.Module, str]:
    """The model to evaluate and a description of where it came from.

    Args:
        source: A run folder, a training checkpoint (.safetensors), ``hf-hub:``/``local-dir:`` or a model name.
        pretrained: For model names: load the pretrained tag's weights (else random weights, which the
            description says).
        use_ema: For checkpoints: evaluate the EMA weights.
    """
    path = Path(source)
    if path.is_dir() and (path / 'model' / 'config.json').is_file():
        return timm.create_model(f'local-dir:{path / "model"}', pretrained=True), f'run {path} (model/)'
    if path.is_file() and path.suffix == '.safetensors':
        return model_from_checkpoint(path, use_ema=use_ema), f'checkpoint {path}' + (' (EMA)' if use_ema else '')
    check_model_name(source)
    from_source = timm.models.parse_model_name(source)[0] is not None
    if pretrained or from_source:
        return timm.create_model(source, pretrained=True), source
    return timm.create_model(source), f"{source} (random weights: --pretrained loads the tag's)"


def validate(source: str, config: DataConfig, pretrained: bool = False, use_ema: bool = False, amp: bool = False,
             device: Optional[str] = None) -> Dict[str, Any]:
    """Evaluates ``source`` on ``config``'s dataset and held-out split (``config.val_split``); a video model
    on clips (its frames, ``config.clip_stride`` apart, the centre ones). ``amp``: bfloat16 autocast;
    ``device``: 'cpu' or 'cuda' (default: cuda if available).

    Returns:
        Metrics (``top1``, ``top5`` in percent, ``loss``, ``images``, ``images_per_second``) with the model,
        dataset and split they were measured on.

    Raises:
        ConfigError: unknown model, unreadable data, or a classifier whose size differs from the dataset's.
    """
    dist = Distributed(device=Distributed.from_env(device).device)
    model, description = load_eval_model(source, pretrained=pretrained, use_ema=use_ema)
    inputs = dataclasses.replace(model_input(model), model=source)
    split = load_split(config, config.val_split, inputs)
    if split.class_names is not None and model.num_classes != len(split.class_names):
        raise ConfigError(f'{description} predicts {model.num_classes} classes, {split.description} has '
                          f'{len(split.class_names)}; evaluate it on data with the same classes')
    loader = build_loader(split, model_data_config(model), config, is_training=False, dist=dist,
                          inputs=inputs)
    metrics = evaluate(model.to(dist.device), loader, dist, amp=amp)
    return dict(model=description, dataset=split.description, split=config.val_split, **metrics)
