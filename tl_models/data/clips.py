"""Video data for video models: clip sampling, a folder-of-videos dataset and the loaders.

A clip of a model with T frames takes T frames ``stride`` apart: at a random offset in training, the centre
ones in evaluation (a one-frame model is evaluated on the middle frame, trained on any one frame). Frames are
resized to the model's size and normalised with its mean/std into ``[B, 3, T, H, W]``. There is no image
augmentation (no crops, no flips: a flip reverses the direction of motion).

- :class:`VideoFolder`: ``DATA/<split>/<class>/<clip>``, a clip being a video file (decoded with PyAV, the
  ``video`` extra) or a folder of frame images (in name order); loaded by a torch ``DataLoader``.
- :class:`ClipLoader`: batches of the in-memory :class:`.moving_digits.MovingDigits` clips.
"""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data.distributed_sampler import OrderedDistributedSampler

from ..runtime import Distributed
from .config import ConfigError, DataConfig
from .inputs import InputSpec
from .moving_digits import MovingDigits
from .preload import InMemoryBatches

__all__ = ['IMAGE_SUFFIXES', 'VIDEO_DATASETS', 'VIDEO_SUFFIXES', 'ClipLoader', 'ClipSampling', 'VideoFolder',
           'build_video_loader', 'check_video_options']

VIDEO_DATASETS = ('moving_digits', 'video_folder')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
# Options of the image pipelines that video data does not implement, with their "off" values.
IMAGE_ONLY = {'preload': False, 'hflip': 0.0, 'color_jitter': 0.0, 'aa': None, 'reprob': 0.0, 'cutmix': 0.0,
              'holdout': 0.0}
CLIP_ONLY = {'clip_frames': None, 'clip_stride': 1}  # options of video data, with their defaults


def check_video_options(config: DataConfig, inputs: InputSpec) -> None:
    """Raises ConfigError for clip options on an image model, or image-only options on a video model."""
    video = inputs.is_video
    for name, off in (IMAGE_ONLY if video else CLIP_ONLY).items():
        if getattr(config, name) != off:
            flag = f'--{name.replace("_", "-")} {getattr(config, name)!r}'
            raise ConfigError(f'{flag} is for image data; video models train on clips without it' if video else
                              f'{flag} is for video models; {inputs.model} is an image model')


@dataclasses.dataclass(frozen=True)
class ClipSampling:
    """Which frames of a clip a model sees and how they become its input."""
    num_frames: int
    stride: int
    size: Tuple[int, int]
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]

    @classmethod
    def of(cls, num_frames: int, data_config: Dict[str, Any], config: DataConfig) -> 'ClipSampling':
        """The sampling of a model with ``num_frames`` frames and timm's ``data_config`` (size, mean, std)."""
        return cls(num_frames, config.clip_stride, tuple(data_config['input_size'][-2:]), tuple(data_config['mean']),
                   tuple(data_config['std']))

    @property
    def span(self) -> int:
        """Frames from the first to the last one taken."""
        return (self.num_frames - 1) * self.stride + 1

    def check_length(self, length: int, what: str) -> None:
        """Raises ConfigError if clips of ``length`` frames (``what``: which clips) are too short."""
        if length < self.span:
            raise ConfigError(
                f'{what}: {length} frames, expected at least {self.span} ({self.num_frames} frames of the model, '
                f'--clip-stride {self.stride}); use a smaller --clip-stride or longer clips')

    def frame_indices(self, lengths: torch.Tensor, is_training: bool) -> torch.Tensor:
        """Frame indices ``[B, T]`` into clips of ``lengths`` ``[B]`` frames: a random offset each in
        training (torch's global generator), the centred frames in evaluation."""
        room = lengths - self.span  # [B], >= 0
        if is_training:
            start = (torch.rand(lengths.shape) * (room + 1)).floor().long()
        else:
            start = room // 2
        return start[:, None] + self.stride * torch.arange(self.num_frames)  # [B, T]

    def to_input(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``[B, T, h, w, 3]`` -> normalised clips ``[B, 3, T, H, W]`` float32 at ``size``."""
        batch, frames_per_clip, height, width, channels = frames.shape
        x = frames.permute(0, 1, 4, 2, 3).reshape(batch * frames_per_clip, channels, height, width)  # [B*T, 3, h, w]
        x = x.float().div_(255)
        if (height, width) != self.size:
            x = F.interpolate(x, size=self.size, mode='bilinear', align_corners=False, antialias=True)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std  # [B*T, 3, H, W]
        return x.view(batch, frames_per_clip, channels, *self.size).transpose(1, 2).contiguous()  # [B, 3, T, H, W]


class ClipLoader(InMemoryBatches):
    """Batches of :class:`.moving_digits.MovingDigits` clips on ``device``, in the order of
    :class:`.memory.InMemoryBatches`. Yields ``(clips [B, 3, T, H, W] float32, targets [B] int64)``."""

    def __init__(self, data: MovingDigits, sampling: ClipSampling, config: DataConfig, is_training: bool,
                 device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        sampling.check_length(data.clips.shape[1], 'moving_digits clips')
        super().__init__(len(data), config.batch_size, is_training, config.seed, rank, world_size)
        self.clips = torch.from_numpy(data.clips).to(device)  # [N, L, 32, 32] uint8
        self.targets = torch.from_numpy(data.targets).to(device)
        self.sampling = sampling
        self.device = device

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        length = self.clips.shape[1]
        for batch in self._indices().split(self.batch_size):
            frames = self.sampling.frame_indices(torch.full(batch.shape, length), self.is_training)  # [B, T]
            grey = self.clips[batch.to(self.device)[:, None], frames.to(self.device)]  # [B, T, h, w]
            yield self.sampling.to_input(grey[..., None].expand(-1, -1, -1, -1, 3)), self.targets[batch]


def _is_clip(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES


def _frame_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _open_video(path: Path):
    try:
        import av
    except ImportError as e:
        raise ConfigError(f"{path}: video files are decoded with PyAV: pip install 'tl-models[video]' (or use "
                          f'folders of frame images)') from e
    try:
        return av.open(str(path))
    except av.FFmpegError as e:
        raise ConfigError(f'{path}: not a readable video ({e})') from e


def frame_count(clip: Path) -> int:
    """The frames of a clip: frame images in its folder, or the video's frames (decoded if not recorded)."""
    if clip.is_dir():
        return len(_frame_files(clip))
    with _open_video(clip) as container:
        recorded = container.streams.video[0].frames
        return recorded or sum(1 for _ in container.decode(video=0))


def read_frames(clip: Path, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of a clip as uint8 RGB ``[T, h, w, 3]``."""
    if clip.is_dir():
        files = _frame_files(clip)
        return np.stack([np.asarray(Image.open(files[i]).convert('RGB')) for i in indices])
    wanted = set(indices)
    frames: Dict[int, np.ndarray] = {}
    with _open_video(clip) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format='rgb24')
            if index >= max(indices):
                break
    return np.stack([frames[i] for i in indices])


class VideoFolder(torch.utils.data.Dataset):
    """Clips in ``root/<class>/<clip>``: video files or folders of frame images; classes in name order.

    Items are ``(clip [3, T, H, W] float32, label)`` once a loader has set ``sampling`` and ``is_training``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise ConfigError(f'{self.root}: no class sub-folders; expected <class>/<clip>, a clip being a video '
                              f"file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frame images")
        self.samples = [(clip, label) for label, name in enumerate(self.classes)
                        for clip in sorted((self.root / name).iterdir()) if _is_clip(clip)]
        if not self.samples:
            raise ConfigError(f'{self.root}: no clips in its class folders (video files or frame folders)')
        self.targets = np.array([label for _, label in self.samples], dtype=np.int64)
        self.sampling: Optional[ClipSampling] = None
        self.is_training = False
        self.lengths: Optional[List[int]] = None

    def check_lengths(self, sampling: ClipSampling) -> None:
        """Reads every clip's frame count once; raises ConfigError for a clip too short for ``sampling``."""
        if self.lengths is None:
            self.lengths = [frame_count(clip) for clip, _ in self.samples]
        shortest = int(np.argmin(self.lengths))
        sampling.check_length(self.lengths[shortest], str(self.samples[shortest][0]))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        if self.sampling is None or self.lengths is None:
            raise RuntimeError('VideoFolder items need a clip sampling: load them through build_video_loader')
        clip, label = self.samples[index]
        indices = self.sampling.frame_indices(torch.tensor([self.lengths[index]]), self.is_training)[0]
        frames = torch.from_numpy(read_frames(clip, indices.tolist()))  # [T, h, w, 3]
        return self.sampling.to_input(frames[None])[0], label


def build_video_loader(
        dataset: Union[MovingDigits, VideoFolder],
        sampling: ClipSampling,
        config: DataConfig,
        is_training: bool,
        dist: Distributed,
) -> Union[ClipLoader, torch.utils.data.DataLoader]:
    """The loader of a video split: :class:`ClipLoader` for moving digits, a ``DataLoader`` for folders
    (training shuffles, a distributed sampler under DDP; evaluation in order, split as timm's eval sampler).

    Raises:
        ConfigError: a clip with fewer frames than the sampling takes.
    """
    if isinstance(dataset, MovingDigits):
        return ClipLoader(dataset, sampling, config, is_training, dist.device, dist.rank, dist.world_size)
    dataset.check_lengths(sampling)
    dataset.sampling, dataset.is_training = sampling, is_training
    sampler = None
    if dist.enabled:
        sampler = (torch.utils.data.DistributedSampler(dataset, shuffle=True, seed=config.seed) if is_training
                   else OrderedDistributedSampler(dataset))
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=is_training and sampler is None,
                                       sampler=sampler, drop_last=is_training, num_workers=config.workers)
