"""Data: datasets, loaders, preloading, video clip sampling, the moving digits, cached block outputs, and what
input a model takes.

- :mod:`.config`: :class:`DataConfig`, the data part of a run's configuration (the training configuration extends
  it), and :class:`ConfigError`.
- :mod:`.inputs`: :func:`model_input`, the one place that decides whether a model takes images or clips (and how
  many frames), from the registry or from the model.
- :mod:`.datasets`: the embedded digits, image folders, timm datasets, held-out splits; :mod:`.clips` and
  :mod:`.moving_digits` for video models.
- :mod:`.loaders`: timm's loaders, the preloaded in-memory pipeline (:mod:`.preload`), the clip loaders.
- :mod:`.feature_cache`: the cached outputs of frozen blocks and their loader.
"""
from .config import ConfigError, DataConfig
from .datasets import DigitsDataset, HoldoutSubset, SplitData, dataset_kind, holdout_indices, load_split
from .inputs import IMAGE, InputSpec, check_model_name, model_data_config, model_input
from .loaders import build_loader, preload_split

__all__ = ['IMAGE', 'ConfigError', 'DataConfig', 'DigitsDataset', 'HoldoutSubset', 'InputSpec', 'SplitData',
           'build_loader', 'check_model_name', 'dataset_kind', 'holdout_indices', 'load_split', 'model_data_config',
           'model_input',
           'preload_split']
