"""What a model takes: images ``[B, 3, H, W]``, or clips ``[B, 3, T, H, W]`` of T frames. Decided here, once.

Every consumer (training, evaluation, studies, benchmarks, visualisation) asks :func:`model_input`, with a model or
with a name. A built model answers for itself: the video models (:class:`~tl_models.models.TokenLearnerVideoTransformer`
and their plain twins) take clips of ``model.num_frames`` frames. A name answers from the registry, without building
anything: a registered variant's definition, or for an exported folder (``local-dir:``, ``hf-hub:``) the variant its
``config.json`` names and the frames its ``model_args`` give. Anything else (timm's own models, the generic
``tl_vit``) takes images.
"""
import difflib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import timm
import torch.nn as nn
from timm.data import resolve_input_data_config

from ..models import TokenLearnerVideoTransformer
from ..registry import InputSpec, get_variant
from .config import ConfigError

__all__ = ['IMAGE', 'InputSpec', 'check_model_name', 'model_data_config', 'model_input']


IMAGE = InputSpec()


def _exported_architecture(source: str, model_id: str, name: str) -> Tuple[str, Optional[int]]:
    """The architecture an exported model folder (``local-dir:``) or hub repo (``hf-hub:``) is built as, and the
    frames its ``model_args`` give (None if none)."""
    if source == 'hf-hub':
        _, architecture, model_args = timm.models.load_model_config_from_hf(model_id)
        return architecture, (model_args or {}).get('num_frames')
    config_file = Path(model_id) / 'config.json'
    if not config_file.is_file():
        raise ConfigError(f'{name}: expected an exported model folder with a config.json, found none')
    config = json.loads(config_file.read_text(encoding='utf-8'))
    return config['architecture'], config.get('model_args', {}).get('num_frames')


def model_input(model: Union[str, nn.Module]) -> InputSpec:
    """What ``model`` (a built model, or a name: registered ``name[.tag]``, ``local-dir:PATH`` or ``hf-hub:ORG/REPO``)
    takes as input.

    Raises:
        ConfigError: a ``local-dir:`` folder without a ``config.json``.
    """
    if isinstance(model, nn.Module):
        name = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture') or type(model).__name__
        frames = model.num_frames if isinstance(model, TokenLearnerVideoTransformer) else None
        return InputSpec(frames, name)
    source, model_id = timm.models.parse_model_name(model)
    frames: Optional[int] = None
    if source in ('local-dir', 'hf-hub'):
        architecture, frames = _exported_architecture(source, model_id, model)
    else:
        architecture = timm.models.get_arch_name(model_id)
    try:
        variant = get_variant(architecture)
    except KeyError:  # timm's own models and the generic architectures take images
        return InputSpec(None, model)
    return InputSpec(frames or variant.input.num_frames if variant.is_video else None, model)


def check_model_name(name: str) -> None:
    """Raises ConfigError for a name timm cannot create, listing close TokenLearner names."""
    source, model_id = timm.models.parse_model_name(name)
    if source is not None or timm.is_model(timm.models.get_arch_name(model_id)):
        return
    close = difflib.get_close_matches(timm.models.get_arch_name(model_id), timm.list_models('tl_*'), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; list them with timm.list_models('tl_*')"
    raise ConfigError(f'unknown model {name!r}: expected a registered model name, hf-hub:ORG/REPO or '
                      f'local-dir:PATH{hint}')


def model_data_config(model: nn.Module) -> Dict[str, Any]:
    """timm's data config of a built model (input size, interpolation, mean/std, crop), read the same way for every
    model: ``input_size`` is ``(C, H, W)`` for an image model and ``(C, T, H, W)`` for a video model's clips of T
    frames, as its ``pretrained_cfg`` and timm's ``resolve_data_config`` give it. The size is the model's own (timm's
    ``resolve_input_data_config``), also when it was built for another size than its pretrained cfg's."""
    config = resolve_input_data_config(model)
    frames = model_input(model).num_frames
    if frames is not None:
        channels, *size = config['input_size']
        config['input_size'] = (channels, frames, *size[-2:])
    return config
