"""Preloaded data: a whole split decoded into memory once, augmented a batch at a time on the device.

For small images (CIFAR-10's 32 x 32 px) decoding and transforming one image at a time costs more than
the model: timm's loader makes about 1,500 images/s on one CPU core, a CIFAR-size ViT trains at 250-450.
Here the split is decoded once into a uint8 tensor ``[N, H, W, 3]`` and every batch goes through one
batched random-resized crop + horizontal flip (one ``affine_grid``/``grid_sample``) and normalisation.

Training crops follow torchvision's ``RandomResizedCrop`` sampling (area fraction in ``scale``,
log-uniform aspect ratio in ``ratio``, up to ten tries, else the whole image); the crop box is continuous
rather than whole pixels and resampled bilinearly (bicubic if the model asks for it). Evaluation takes
timm's centre crop of ``crop_pct``; with ``crop_pct`` 1 and images at the model's size it is the identity,
so the inputs equal those of timm's eval transform.
"""
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError, DataConfig

__all__ = ['InMemoryBatches', 'PreloadedImages', 'PreloadedLoader', 'preload_images', 'random_resized_crop_boxes']

# Options of the per-image timm pipeline that the batched one does not implement.
UNSUPPORTED = {'color_jitter': 0.0, 'aa': None, 'reprob': 0.0}


class PreloadedImages:
    """A decoded split: ``images`` ``[N, H, W, 3]`` uint8 and ``targets`` ``[N]`` int64."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f'expected uint8 images [N, H, W, 3], got {images.dtype} {tuple(images.shape)}')
        if targets.shape != images.shape[:1]:
            raise ValueError(f'expected one target per image ({images.shape[0]}), got {tuple(targets.shape)}')
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return self.images.shape[0]


def preload_images(dataset: Any, description: str) -> PreloadedImages:
    """Decodes every item of ``dataset`` (``(PIL image, target)`` without a transform) into memory.

    Raises:
        ConfigError: the images are not all of one size.
    """
    dataset.transform = None
    first_size: Optional[Tuple[int, int]] = None
    images: List[np.ndarray] = []
    targets: List[int] = []
    for index in range(len(dataset)):
        image, target = dataset[index]
        image = image.convert('RGB')
        if first_size is None:
            first_size = image.size
        elif image.size != first_size:
            raise ConfigError(
                f'--preload needs images of one size: {description} has {first_size[0]}x{first_size[1]} px and '
                f'{image.size[0]}x{image.size[1]} px (item {index}); resize them, or train without --preload')
        images.append(np.asarray(image, dtype=np.uint8))
        targets.append(int(target))
    if not images:
        raise ConfigError(f'{description}: no images to preload')
    return PreloadedImages(torch.from_numpy(np.stack(images)), torch.tensor(targets, dtype=torch.int64))


def random_resized_crop_boxes(
        batch: int,
        height: int,
        width: int,
        scale: Sequence[float],
        ratio: Sequence[float],
        attempts: int = 10,
        generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Crop boxes ``[B, 4]`` as ``(top, left, box_height, box_width)`` in pixels, sampled like torchvision's
    ``RandomResizedCrop``: area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``; the first
    of ``attempts`` tries that fits the image, else the whole image."""
    area = height * width
    fraction = torch.empty(batch, attempts).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(batch, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    box_w = torch.sqrt(fraction * area * aspect)  # [B, attempts]
    box_h = torch.sqrt(fraction * area / aspect)
    fits = (box_w <= width) & (box_h <= height) & (box_w > 0) & (box_h > 0)
    first = torch.where(fits.any(dim=1), fits.float().argmax(dim=1), torch.full((batch,), -1))  # [B]
    pick = first.clamp(min=0)[:, None]
    box_w = torch.where(first >= 0, box_w.gather(1, pick)[:, 0], torch.full((batch,), float(width)))
    box_h = torch.where(first >= 0, box_h.gather(1, pick)[:, 0], torch.full((batch,), float(height)))
    top = torch.rand(batch, generator=generator) * (height - box_h)
    left = torch.rand(batch, generator=generator) * (width - box_w)
    return torch.stack([top, left, box_h, box_w], dim=1)


def _affine_from_boxes(boxes: torch.Tensor, height: int, width: int, flip: torch.Tensor) -> torch.Tensor:
    """``affine_grid`` matrices ``[B, 2, 3]`` mapping the output onto each box (``flip``: ``[B]`` bool)."""
    top, left, box_h, box_w = boxes.unbind(dim=1)
    theta = torch.zeros(boxes.shape[0], 2, 3)
    theta[:, 0, 0] = box_w / width * torch.where(flip, -1.0, 1.0)
    theta[:, 0, 2] = (2 * left + box_w) / width - 1  # box centre in [-1, 1]
    theta[:, 1, 1] = box_h / height
    theta[:, 1, 2] = (2 * top + box_h) / height - 1
    return theta


def _centre_box(height: int, width: int, input_size: Tuple[int, int], crop_pct: float) -> Tuple[float, float]:
    """The height and width (pixels) of timm's eval centre crop: shorter side resized to size / crop_pct."""
    scale_size = math.floor(min(input_size) / crop_pct)
    resize = scale_size / min(height, width)
    return input_size[0] / resize, input_size[1] / resize


class InMemoryBatches:
    """The batch order of a split held in memory, for loaders that assemble whole batches themselves.

    Training batches are drawn in a fresh permutation each epoch (:meth:`set_epoch`; the same on every
    process of a distributed run, which then takes every ``world_size``-th item) and the incomplete last
    batch is dropped, as timm's training loader does. Evaluation goes through the split in order; a
    distributed run splits it as timm's ordered eval sampler does (the last process padded with repeats).
    """

    def __init__(self, count: int, batch_size: int, is_training: bool, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.count = count
        self.batch_size = batch_size
        self.is_training = is_training
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Picks the permutation of training epoch ``epoch`` (the same on every process)."""
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        if self.is_training:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.count, generator=generator)
            share = order[self.rank::self.world_size][:self.count // self.world_size]
            return share[:len(share) // self.batch_size * self.batch_size]
        per_process = math.ceil(self.count / self.world_size)
        order = torch.arange(per_process * self.world_size) % self.count
        return order[self.rank * per_process:(self.rank + 1) * per_process]

    def __len__(self) -> int:
        return math.ceil(len(self._indices()) / self.batch_size)


class PreloadedLoader(InMemoryBatches):
    """Batches of a :class:`PreloadedImages` split, augmented and normalised on ``device``, in the order of
    :class:`InMemoryBatches`. Yields ``(images [B, 3, H, W] float32, targets [B] int64)`` on ``device``.
    """

    def __init__(
            self,
            data: PreloadedImages,
            data_config: Dict[str, Any],
            config: DataConfig,
            is_training: bool,
            device: torch.device,
            rank: int = 0,
            world_size: int = 1,
    ) -> None:
        for name, off in UNSUPPORTED.items():
            if getattr(config, name) != off:
                raise ConfigError(f'--preload augments with random-resized crop and flip only; '
                                  f'--{name.replace("_", "-")} needs the per-image pipeline (drop --preload)')
        super().__init__(len(data), config.batch_size, is_training, config.seed, rank, world_size)
        self.device = device
        self.images = data.images.to(device)
        self.targets = data.targets.to(device)
        self.input_size = tuple(data_config['input_size'][1:])
        self.crop_pct = data_config.get('crop_pct') or 1.0
        self.mode = 'bicubic' if data_config.get('interpolation') == 'bicubic' else 'bilinear'
        self.scale, self.ratio, self.hflip = tuple(config.scale), tuple(config.ratio), config.hflip
        self.mean = torch.tensor(data_config['mean'], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(data_config['std'], device=device).view(1, 3, 1, 1)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        for batch in self._indices().split(self.batch_size):
            batch = batch.to(self.device)
            images = self.images[batch].permute(0, 3, 1, 2).float().div_(255)  # [B, 3, H, W] in [0, 1]
            images = self._augment(images) if self.is_training else self._centre_crop(images)
            yield (images - self.mean) / self.std, self.targets[batch]

    def _resample(self, images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(theta.to(images.device), [images.shape[0], 3, *self.input_size], align_corners=False)
        return F.grid_sample(images, grid, mode=self.mode, padding_mode='border', align_corners=False)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        boxes = random_resized_crop_boxes(batch, height, width, self.scale, self.ratio)
        flip = torch.rand(batch) < self.hflip
        return self._resample(images, _affine_from_boxes(boxes, height, width, flip))

    def _centre_crop(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        box_h, box_w = _centre_box(height, width, self.input_size, self.crop_pct)
        if (box_h, box_w) == (height, width) == self.input_size:
            return images  # identity: timm's eval transform leaves such images as they are
        boxes = torch.tensor([[(height - box_h) / 2, (width - box_w) / 2, box_h, box_w]]).expand(batch, 4)
        return self._resample(images, _affine_from_boxes(boxes, height, width, torch.zeros(batch, dtype=torch.bool)))
