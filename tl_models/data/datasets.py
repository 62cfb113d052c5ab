"""Datasets: scikit-learn's digits (the embedded default), image folders, timm dataset names; for video models
moving digits (the embedded default, :mod:`.moving_digits`) and folders of clips (:mod:`.clips`).

With ``holdout`` the held-out split is carved out of the training split (:func:`holdout_indices`). The loaders
that read them are in :mod:`.loaders`.
"""
import dataclasses
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from timm.data import create_dataset

from .clips import VIDEO_DATASETS, VideoFolder
from .config import ConfigError, DataConfig
from .inputs import IMAGE, InputSpec
from .moving_digits import SPLITS as MOVING_DIGITS_SPLITS
from .moving_digits import MovingDigits

__all__ = ['DigitsDataset', 'HoldoutSubset', 'SplitData', 'dataset_kind', 'holdout_indices', 'load_split',
           'moving_digits_split']

HOLDOUT_SEED = 0  # one carved split for every run, whatever its seed

SPLIT_ALIASES = {'train': ('train', 'training'), 'validation': ('validation', 'val', 'valid', 'test')}


class DigitsDataset(torch.utils.data.Dataset):
    """scikit-learn's 1797 handwritten digits (8 x 8 px, 10 classes), no download needed.

    Split deterministically into 80% train and 20% held-out validation, stratified by class (seed 0).
    Items are ``(RGB PIL image 8 x 8, label)`` before ``transform``, as timm's image datasets give them.
    """
    classes = [str(i) for i in range(10)]

    def __init__(self, split: str = 'train', transform: Optional[Callable] = None) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        name = _canonical_split(split)
        if name is None:
            raise ConfigError(f"digits has the splits 'train' and 'validation', got {split!r}")
        digits = load_digits()
        train_idx, val_idx = train_test_split(
            np.arange(len(digits.target)), test_size=0.2, random_state=0, stratify=digits.target)
        index = train_idx if name == 'train' else val_idx
        self.images = np.round(digits.images[index] * (255 / 16)).astype(np.uint8)  # [N, 8, 8], 0..16 -> 0..255
        self.targets = digits.target[index].astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index], mode='L').convert('RGB')
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


@dataclasses.dataclass
class SplitData:
    """One split of a dataset and what the trainer needs to know about it."""
    dataset: torch.utils.data.Dataset
    class_names: Optional[List[str]]
    description: str


def _canonical_split(split: str) -> Optional[str]:
    return next((name for name, aliases in SPLIT_ALIASES.items() if split in aliases), None)


def _folder_split(root: Path, split: str) -> Path:
    """The sub-folder of ``root`` holding ``split`` (timm's names: train/, validation/ or val/)."""
    names = SPLIT_ALIASES.get(_canonical_split(split) or '', (split,))
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise ConfigError(
        f"{root}: no folder for the {split!r} split; expected one of {', '.join(n + '/' for n in names)} "
        f"holding one sub-folder of images per class")


def dataset_kind(config: DataConfig, inputs: InputSpec = IMAGE) -> str:
    """The ``--dataset`` name for a model taking ``inputs``; without it 'digits' ('moving_digits' for a video
    model) when no data is given, 'folder' ('video_folder') for ``--data-dir``.

    Raises:
        ConfigError: video data for an image model, or image data for a video model.
    """
    video = inputs.is_video
    if config.dataset:
        kind = config.dataset
    elif video:
        kind = 'video_folder' if config.data_dir else 'moving_digits'
    else:
        kind = 'folder' if config.data_dir else 'digits'
    if video and kind not in VIDEO_DATASETS:
        raise ConfigError(f"{inputs.model} is a video model: it needs clips ({', '.join(VIDEO_DATASETS)}), "
                          f'got --dataset {kind}')
    if not video and kind in VIDEO_DATASETS:
        raise ConfigError(f'--dataset {kind} holds clips, {inputs.model} is an image model; train a video '
                          f'model (tl_vivit_... or vivit_...) on it')
    return kind


class HoldoutSubset(torch.utils.data.Dataset):
    """The items ``indices`` of ``dataset``; its ``transform`` is the dataset's (timm's loader sets it)."""

    def __init__(self, dataset: torch.utils.data.Dataset, indices: np.ndarray) -> None:
        self.dataset = dataset
        self.indices = indices

    @property
    def transform(self) -> Optional[Callable]:
        return self.dataset.transform

    @transform.setter
    def transform(self, value: Optional[Callable]) -> None:
        self.dataset.transform = value

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]


def _targets(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """The class index of every item, read without decoding images where the dataset allows."""
    if hasattr(dataset, 'targets'):
        return np.asarray(dataset.targets)
    samples = getattr(getattr(dataset, 'reader', None), 'samples', None)
    if samples is not None:
        return np.asarray([target for _, target in samples])
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))])


def holdout_indices(targets: np.ndarray, fraction: float, seed: int = HOLDOUT_SEED) -> Tuple[np.ndarray, np.ndarray]:
    """Splits item indices into (kept for training, held out), holding out ``fraction`` of every class.

    The split depends only on ``targets``, ``fraction`` and ``seed``; both parts are sorted.
    """
    rng = np.random.default_rng(seed)
    held: List[np.ndarray] = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        held.append(rng.permutation(members)[:round(fraction * len(members))])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(targets)), held_out)
    return kept, held_out


def load_split(config: DataConfig, split: str, inputs: InputSpec = IMAGE) -> SplitData:
    """The ``split`` of the configured dataset for a model taking ``inputs`` (without transforms;
    :func:`.loaders.build_loader` adds them).

    With ``config.holdout``, ``config.val_split`` is the carved held-out part of ``config.train_split``
    and ``config.train_split`` the rest.

    Raises:
        ConfigError: unknown dataset, missing data folder or split, or a backend that cannot load it.
    """
    if config.holdout <= 0:
        return _load_split(config, split, inputs)
    whole = _load_split(config, config.train_split, inputs)
    kept, held_out = holdout_indices(_targets(whole.dataset), config.holdout)
    if split == config.val_split:
        return SplitData(HoldoutSubset(whole.dataset, held_out), whole.class_names,
                         f'{whole.description} ({config.train_split}, {config.holdout:.0%} held out)')
    return SplitData(HoldoutSubset(whole.dataset, kept), whole.class_names,
                     f'{whole.description} ({config.train_split} less {config.holdout:.0%} held out)')


def _data_root(config: DataConfig, kind: str) -> Path:
    if config.data_dir is None:
        raise ConfigError(f"--dataset {kind} needs --data-dir DIR (with train/ and validation/ inside)")
    root = Path(config.data_dir)
    if not root.is_dir():
        raise ConfigError(f'--data-dir {root}: no such folder')
    return root


def moving_digits_split(split: str) -> MovingDigits:
    """The clips of ``split``, made from the digits of the same digits split."""
    name = _canonical_split(split)
    if name is None:
        raise ConfigError(f"moving_digits has the splits 'train' and 'validation', got {split!r}")
    digits = DigitsDataset(name)
    return MovingDigits(digits.images, digits.targets, *MOVING_DIGITS_SPLITS[name])


def _load_split(config: DataConfig, split: str, inputs: InputSpec) -> SplitData:
    kind = dataset_kind(config, inputs)
    if kind in ('digits', 'moving_digits'):
        if config.data_dir is not None:
            folder = 'video_folder' if inputs.is_video else 'folder'
            raise ConfigError(f'--dataset {kind} comes with scikit-learn: drop --data-dir or use --dataset '
                              f'{folder}')
        if kind == 'moving_digits':
            return SplitData(moving_digits_split(split), MovingDigits.classes, 'moving_digits')
        return SplitData(DigitsDataset(split), DigitsDataset.classes, 'digits')
    if kind == 'video_folder':
        root = _data_root(config, kind)
        dataset = VideoFolder(_folder_split(root, split))
        return SplitData(dataset, dataset.classes, f'video folder {root}')
    if kind == 'folder':
        root = _data_root(config, kind)
        folder = _folder_split(root, split)
        dataset = create_dataset('', root=str(folder), split='', search_split=False)
        if len(dataset) == 0:
            raise ConfigError(f'{folder}: no images found (expected one sub-folder of images per class)')
        class_to_idx: Dict[str, int] = dataset.reader.class_to_idx
        names = sorted(class_to_idx, key=class_to_idx.get)
        return SplitData(dataset, names, f'folder {root}')
    try:
        dataset = create_dataset(kind, root=config.data_dir, split=split, download=False)
    except Exception as e:  # any backend failure becomes a configuration error before training starts
        raise ConfigError(
            f"dataset {kind!r} ({split}) could not be loaded: {type(e).__name__}: {e}. Use 'digits', "
            f"'folder' with --data-dir, or a timm dataset name whose backend and data are installed") from e
    names = getattr(getattr(dataset, 'reader', None), 'classes', None)
    return SplitData(dataset, list(names) if names is not None else None, kind)
