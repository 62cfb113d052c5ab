"""The data part of a run's configuration: which data, which splits, how it is loaded and augmented.

:class:`DataConfig` holds what :mod:`tl_models.data` reads; the training configuration
(:class:`tl_models.train.TrainConfig`) extends it, so one YAML recipe and one set of command-line flags cover
both. :class:`ConfigError` is the error of a bad configuration of either, reported before anything runs.
"""
import dataclasses
from typing import Any, List, Optional

__all__ = ['ConfigError', 'DataConfig', 'config_field']


class ConfigError(ValueError):
    """A bad data or training configuration, reported before any data is read or any training starts."""


def config_field(default: Any, help: str) -> Any:
    """A configuration field with its ``--help`` text (mutable defaults are copied for each instance)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=dict(help=help))
    return dataclasses.field(default=default, metadata=dict(help=help))


@dataclasses.dataclass
class DataConfig:
    """Data, splits, loading and augmentation. The defaults read the embedded digits (moving digits for video
    models) with the split they ship with."""
    data_dir: Optional[str] = config_field(
        None, "image folder with train/ and validation/ sub-folders (timm's layout); for video models "
              'DATA/<split>/<class>/<clip>, a clip being a video file or a folder of frame images')
    dataset: str = config_field(
        '', "image models: 'digits' (scikit-learn, embedded), 'folder' (needs --data-dir) or a timm dataset name "
            "such as torch/cifar10 (its backend must be installed); video models: 'moving_digits' (embedded, "
            "digits moving in 4 directions) or 'video_folder' (needs --data-dir); default: digits (video models: "
            'moving_digits) without --data-dir, else folder (video_folder)')
    train_split: str = config_field('train', 'training split (sub-folder or dataset split)')
    val_split: str = config_field('validation', 'held-out split (sub-folder or dataset split)')
    holdout: float = config_field(
        0.0, 'carve this fraction of the training split out as the held-out split (stratified by class, the same '
             'images for every seed); --val-split is then not read')
    preload: bool = config_field(
        False, 'decode the whole dataset into memory once and augment whole batches on the device (random-resized '
               'crop and flip): fast for small images such as CIFAR-10')
    img_size: Optional[int] = config_field(None, "input size; default: the model's")
    clip_frames: Optional[int] = config_field(
        None, "video models: frames per clip; default: the model's (the model is built for it, as for --img-size)")
    clip_stride: int = config_field(
        1, 'video data: take every this-many-th frame (a random stretch in training, the centre one in evaluation)')
    workers: int = config_field(0, 'data loader worker processes')
    batch_size: int = config_field(64, 'batch size per process')
    scale: List[float] = config_field([0.85, 1.0], 'random-resized-crop area range')  # noqa: RUF009 (a field())
    ratio: List[float] = config_field([0.9, 1.1], 'random-resized-crop aspect-ratio range')  # noqa: RUF009
    hflip: float = config_field(0.0, 'horizontal flip probability (0 for digits: a flipped digit is another shape)')
    color_jitter: float = config_field(0.0, 'colour jitter strength')
    aa: Optional[str] = config_field(None, "timm auto-augment policy, e.g. 'rand-m9-mstd0.5'")
    reprob: float = config_field(0.0, 'random erasing probability')
    seed: int = config_field(0, 'random seed (each epoch reseeds from it, so resumed runs repeat exactly)')
    cache_dir: Optional[str] = config_field(
        None, 'where --cache-frozen keeps block outputs (shared by runs with the same frozen weights, '
              'preprocessing and data); default: RUN/feature_cache')

    def __post_init__(self) -> None:
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"'holdout' expects a fraction in [0, 1), got {self.holdout}")
        for name in ('clip_frames', 'clip_stride'):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"'{name}' expects a positive number of frames, got {getattr(self, name)}")
