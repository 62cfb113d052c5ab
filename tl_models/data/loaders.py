"""Loaders: timm's (``create_loader`` with its transforms), or with ``preload`` the batched in-memory pipeline of
:mod:`.preload`, or for video models the clip loaders of :mod:`.clips`. The model's data config
(:func:`.inputs.model_data_config`) gives input size, interpolation, mean/std and crop.
"""
import dataclasses
from typing import Any, Dict, Union

import torch
from timm.data import create_loader

from ..runtime import Distributed
from .clips import ClipLoader, ClipSampling, build_video_loader
from .config import DataConfig
from .datasets import SplitData
from .inputs import IMAGE, InputSpec
from .preload import PreloadedImages, PreloadedLoader, preload_images

__all__ = ['build_loader', 'preload_split']


def build_loader(
        split: SplitData,
        data_config: Dict[str, Any],
        config: DataConfig,
        is_training: bool,
        dist: Distributed,
        inputs: InputSpec = IMAGE,
) -> Union[torch.utils.data.DataLoader, PreloadedLoader, ClipLoader]:
    """The loader of one split for a model taking ``inputs``: timm's loader and transforms, or with
    ``config.preload`` the in-memory one (``split.dataset`` may then be decoded already: :func:`preload_split`).
    Training adds the configured augmentation. For a video model, :func:`.clips.build_video_loader`."""
    if inputs.is_video:
        sampling = ClipSampling.of(inputs.num_frames, data_config, config)
        return build_video_loader(split.dataset, sampling, config, is_training, dist)
    if config.preload:
        images = split.dataset if isinstance(split.dataset, PreloadedImages) else preload_images(
            split.dataset, split.description)
        return PreloadedLoader(images, data_config, config, is_training, dist.device, dist.rank, dist.world_size)
    return create_loader(
        split.dataset,
        input_size=data_config['input_size'],
        batch_size=config.batch_size,
        is_training=is_training,
        use_prefetcher=False,
        scale=tuple(config.scale),
        ratio=tuple(config.ratio),
        hflip=config.hflip,
        vflip=0.0,
        color_jitter=config.color_jitter,
        auto_augment=config.aa,
        re_prob=config.reprob,
        interpolation=data_config['interpolation'],
        mean=data_config['mean'],
        std=data_config['std'],
        crop_pct=data_config['crop_pct'],
        crop_mode=data_config.get('crop_mode'),
        num_workers=config.workers,
        distributed=dist.enabled,
    )


def preload_split(split: SplitData) -> SplitData:
    """``split`` with its images decoded into memory once, for several ``build_loader`` calls with ``preload``."""
    return dataclasses.replace(split, dataset=preload_images(split.dataset, split.description))
