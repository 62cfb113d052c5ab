"""Cached outputs of a ViT's frozen first blocks, and the loader that trains from them.

With the first blocks frozen (:mod:`tl_models.train.frozen`), their output for an image never changes, so it is
computed once and kept on disk: ``[M, P+N, C]`` float16 per split, in timm's eval preprocessing, and a second copy of
the horizontally flipped images when the recipe flips (``hflip > 0``). Training then draws, per image and epoch,
the flipped copy with probability ``hflip``: the augmentation is the flip alone (random-resized crops, colour
jitter, auto-augment, random erasing and mixup need the images and are refused with the cache).

A cache file is named by a hash of everything that decides its content: the frozen parameters, the number of
blocks, the preprocessing, the list of items (paths and labels) and the view. Runs that share them share the
file, whatever else they train (a held-out part of the training split reads the training split's file). Files
are written to a temporary name and renamed when complete; a lock file keeps two processes from computing the
same file at once (the second waits, then reads it).
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch
import torch.nn as nn
from timm.data import create_loader

from ..io import atomic_path, write_json
from .config import ConfigError, DataConfig
from .datasets import HoldoutSubset, SplitData
from .preload import InMemoryBatches

__all__ = ['STEM', 'CachedSplit', 'CachedTokenLoader', 'frozen_state', 'load_cached_split', 'prefix_tokens']

_logger = logging.getLogger(__name__)
CACHE_VERSION = 1
# The modules and parameters of a ViT before its first block (timm's names).
STEM = ('cls_token', 'reg_token', 'pos_embed', 'patch_embed', 'norm_pre')


def prefix_tokens(model: nn.Module, images: torch.Tensor, depth: int) -> torch.Tensor:
    """The tokens leaving block ``depth - 1`` of a ViT, prefix tokens first: images ``[B, 3, H, W]`` ->
    ``[B, P+N, C]``, through timm's ``forward_intermediates``."""
    out = model.forward_intermediates(images, indices=[depth - 1], output_fmt='NLC', intermediates_only=True,
                                      stop_early=True, return_prefix_tokens=True)[0]
    if isinstance(out, tuple):  # (patch tokens [B, N, C], prefix tokens [B, P, C])
        return torch.cat([out[1], out[0]], dim=1)
    return out


def frozen_state(model: nn.Module, depth: int) -> Dict[str, torch.Tensor]:
    """The parameters and buffers that decide the output of block ``depth - 1``: the stem and the blocks before."""
    blocks = tuple(f'blocks.{i}.' for i in range(depth))
    return {k: v for k, v in model.state_dict().items() if k.split('.')[0] in STEM or k.startswith(blocks)}


def _hash_tensors(tensors: Dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to('cpu', torch.float32).contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _items_fingerprint(dataset: Any, description: str) -> str:
    """A hash of a dataset's items (paths and labels; the pixels for in-memory data)."""
    digest = hashlib.sha256()
    samples = getattr(getattr(dataset, 'reader', None), 'samples', None)
    if samples is not None:
        for path, target in samples:
            digest.update(f'{path}\t{target}\n'.encode())
    elif hasattr(dataset, 'images') and hasattr(dataset, 'targets'):
        digest.update(np.ascontiguousarray(dataset.images).tobytes())
        digest.update(np.ascontiguousarray(dataset.targets).tobytes())
    else:
        raise ConfigError(f'--cache-frozen cannot tell the items of {description} apart (an image folder or '
                          'the digits can be cached); train without --cache-frozen')
    return digest.hexdigest()


def _base(split: SplitData) -> Tuple[Any, np.ndarray]:
    """The whole dataset a split reads and the indices of its items there."""
    if isinstance(split.dataset, HoldoutSubset):
        return split.dataset.dataset, np.asarray(split.dataset.indices)
    return split.dataset, np.arange(len(split.dataset))


def _targets(dataset: Any) -> torch.Tensor:
    samples = getattr(getattr(dataset, 'reader', None), 'samples', None)
    targets = [t for _, t in samples] if samples is not None else list(dataset.targets)
    return torch.as_tensor(np.asarray(targets, dtype=np.int64))


@dataclasses.dataclass
class CachedSplit:
    """The cached block outputs of a split: ``views[v]`` ``[M, P+N, C]`` float16 (memory-mapped; view 1 is the
    flipped images), ``targets`` ``[M]``, and ``indices``, the split's items among the M."""
    views: List[np.ndarray]
    targets: torch.Tensor
    indices: np.ndarray


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _compute(model: nn.Module, dataset: Any, depth: int, data_config: Dict[str, Any], config: DataConfig,
             paths: Dict[int, Path], device: torch.device, description: str) -> None:
    """Writes the block outputs of every item of ``dataset`` to ``paths[0]``, and of its flipped images to
    ``paths[1]``: the views asked for."""
    loader = create_loader(dataset, input_size=data_config['input_size'], batch_size=config.batch_size,
                           is_training=False, use_prefetcher=False, interpolation=data_config['interpolation'],
                           mean=data_config['mean'], std=data_config['std'], crop_pct=data_config['crop_pct'],
                           crop_mode=data_config.get('crop_mode'), num_workers=config.workers)
    model = model.eval().to(device)
    count, start, done = len(dataset), time.perf_counter(), 0
    with contextlib.ExitStack() as stack:
        files = {view: stack.enter_context(atomic_path(p)) for view, p in paths.items()}
        arrays: Dict[int, np.ndarray] = {}
        with torch.no_grad():
            for images, _ in loader:
                images = images.to(device)
                for view, file in files.items():
                    tokens = prefix_tokens(model, images.flip(-1) if view else images, depth)  # [B, P+N, C]
                    if view not in arrays:
                        arrays[view] = np.lib.format.open_memmap(file, mode='w+', dtype=np.float16,
                                                                 shape=(count, *tokens.shape[1:]))
                    arrays[view][done:done + len(images)] = tokens.to('cpu', torch.float16).numpy()
                done += len(images)
                if done == count or done // config.batch_size % 20 == 0:
                    _logger.info('caching the outputs of blocks 0..%d of %s: %d/%d images, %.0f s', depth - 1,
                                 description, done, count, time.perf_counter() - start)
        for array in arrays.values():
            array.flush()


def load_cached_split(model: nn.Module, split: SplitData, depth: int, data_config: Dict[str, Any],
                      config: DataConfig, cache_dir: Path, device: torch.device, flipped: bool) -> CachedSplit:
    """The cached outputs of blocks ``0 .. depth-1`` of ``model`` for ``split`` (and for its flipped images, with
    ``flipped``: training with ``hflip``), computed first where not cached.

    Raises:
        ConfigError: a dataset whose items cannot be identified.
    """
    dataset, indices = _base(split)
    key_fields = dict(version=CACHE_VERSION, frozen=_hash_tensors(frozen_state(model, depth)), depth=depth,
                      data_config={k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
                      items=_items_fingerprint(dataset, split.description))
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:24]
    paths = {view: Path(cache_dir) / f'{key}-view{view}.npy' for view in ((0, 1) if flipped else (0,))}
    with _locked(Path(cache_dir) / f'{key}.lock'):
        missing = {view: path for view, path in paths.items() if not path.is_file()}
        if missing:
            _logger.info('caching block outputs in %s (%d view(s))', cache_dir, len(missing))
            _compute(model, dataset, depth, data_config, config, missing, device, split.description)
            write_json(Path(cache_dir) / f'{key}.json', dict(key_fields, description=split.description,
                                                             files=sorted(p.name for p in Path(cache_dir).glob(
                                                                 f'{key}-view*.npy'))))
    arrays = [np.load(path, mmap_mode='r') for path in paths.values()]
    return CachedSplit(arrays, _targets(dataset), indices)


class CachedTokenLoader(InMemoryBatches):
    """Batches of cached block outputs in the order of :class:`.memory.InMemoryBatches`: yields
    ``(tokens [B, P+N, C] float32, targets [B] int64)``; in training each item is its flipped view with
    probability ``hflip`` (drawn per epoch from the seed)."""

    def __init__(self, cached: CachedSplit, batch_size: int, is_training: bool, seed: int, hflip: float,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(cached.indices), batch_size, is_training, seed, rank, world_size)
        self.cached = cached
        self.hflip = hflip if is_training else 0.0

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7)
        for batch in self._indices().split(self.batch_size):
            items = self.cached.indices[batch.numpy()]  # positions in the cached arrays
            flip = (torch.rand(len(items), generator=generator) < self.hflip).numpy()
            tokens = np.empty((len(items), *self.cached.views[0].shape[1:]), dtype=np.float32)
            for view, chosen in ((0, ~flip), (1, flip)):
                if chosen.any():
                    order = np.argsort(items[chosen])  # read each file in increasing order
                    rows = items[chosen][order]
                    where = np.flatnonzero(chosen)[order]
                    tokens[where] = self.cached.views[view][rows]
            yield torch.from_numpy(tokens), self.cached.targets[torch.from_numpy(items)]
