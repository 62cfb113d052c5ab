"""Models in: any name timm can create once ``tl_models`` has registered its variants."""
from pathlib import Path
from typing import Optional

import timm
import torch.nn as nn

from .errors import VisualizationError

__all__ = ['WEIGHT_PREFIXES', 'load_model', 'names_weights']

# Names that stand for a set of weights: a Hugging Face Hub repository or a folder written by save_for_hf.
WEIGHT_PREFIXES = ('hf-hub:', 'local-dir:')


def names_weights(name: str) -> bool:
    """Whether ``name`` names a set of weights (``hf-hub:`` or ``local-dir:``) rather than only an architecture."""
    return name.startswith(WEIGHT_PREFIXES)


def load_model(name: str, pretrained: Optional[bool] = None) -> nn.Module:
    """Creates model ``name`` with ``timm.create_model``, in eval mode.

    Args:
        name: A registered model (``timm.list_models('tl_*')``), ``hf-hub:ORG/REPO`` or ``local-dir:PATH``.
        pretrained: Load weights. Default: for ``hf-hub:``/``local-dir:`` names, whose weights are what they
            name; a registered name is built with random weights (its default timm weights are a plain ViT
            backbone with an untrained TokenLearner).

    Raises:
        VisualizationError: an unknown model name, or a ``local-dir:`` folder without ``config.json``.
    """
    if name.startswith('local-dir:'):
        folder = Path(name[len('local-dir:'):])
        if not (folder / 'config.json').is_file():
            raise VisualizationError(
                f'no model at {name}: expected a folder with config.json and model.safetensors, '
                'as timm.models.save_for_hf writes')
    elif not name.startswith('hf-hub:') and not timm.is_model(name):
        raise VisualizationError(
            f"unknown model {name!r}: expected a registered name (TokenLearner models: timm.list_models('tl_*')), "
            "'hf-hub:ORG/REPO' or 'local-dir:PATH'")
    return timm.create_model(name, pretrained=names_weights(name) if pretrained is None else pretrained).eval()
