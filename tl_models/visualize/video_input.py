"""Clips in: a video model's input, from a ``.npy`` array or a folder of frames, through the model's preprocessing.

A clip is a uint8 array ``[T, H, W, 3]`` (frames, height, width, RGB), whatever its source: :func:`load_clip`
reads one from a file or folder; any other source (e.g. generated clips) only needs to return such an array.
:func:`prepare_clip` samples the model's T frames from it and preprocesses each frame as an image.
"""
import dataclasses
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from ..data.inputs import model_input
from .errors import VisualizationError
from .images import load_image, prepare_image

__all__ = ['FRAME_SUFFIXES', 'VideoInput', 'check_clip', 'clip_frames', 'is_video_model', 'load_clip',
           'moving_digit_clip', 'prepare_clip', 'sample_frames']

# The image files a folder of frames may hold (any case); other files in the folder are ignored.
FRAME_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp')


def is_video_model(model: nn.Module) -> bool:
    """Whether ``model`` takes clips. Deprecated: ask :func:`tl_models.data.model_input` (``.is_video``)."""
    warnings.warn('tl_models.visualize.is_video_model is deprecated; use tl_models.data.model_input(model).is_video',
                  DeprecationWarning, stacklevel=2)
    return model_input(model).is_video


def clip_frames(model: nn.Module) -> int:
    """T, the frames of a clip that video model ``model`` takes (:func:`tl_models.data.model_input`).

    Raises:
        VisualizationError: ``model`` is not a video model.
    """
    frames = model_input(model).num_frames
    if frames is None:
        raise VisualizationError(f"expected a video model, got {type(model).__name__} (it takes images); video "
                                 "models: timm.list_models('tl_vivit_*')")
    return frames


def check_clip(clip: np.ndarray, source: str = 'clip') -> np.ndarray:
    """Returns ``clip`` if it is a uint8 array ``[T, H, W, 3]`` with at least one frame.

    Raises:
        VisualizationError: another type, rank, channel count or dtype (the message names ``source``).
    """
    if not isinstance(clip, np.ndarray):
        raise VisualizationError(f'{source}: expected a numpy array [T, H, W, 3], got {type(clip).__name__}')
    if clip.ndim != 4 or clip.shape[-1] != 3 or 0 in clip.shape:
        raise VisualizationError(f'{source}: expected a clip [T, H, W, 3] (frames, height, width, RGB), '
                                 f'got shape {tuple(clip.shape)}')
    if clip.dtype != np.uint8:
        raise VisualizationError(f'{source}: expected uint8 pixels (0..255), got dtype {clip.dtype}')
    return clip


def _load_frames(folder: Path) -> np.ndarray:
    """The image files of ``folder``, sorted by name, as ``[T, H, W, 3]`` uint8."""
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    if not paths:
        raise VisualizationError(f"{folder}: expected frame images ({', '.join(FRAME_SUFFIXES)}), found none")
    frames = [np.asarray(load_image(p).convert('RGB')) for p in paths]  # each [H, W, 3]
    sizes = sorted({f.shape for f in frames})
    if len(sizes) > 1:
        raise VisualizationError(f'{folder}: expected frames of one size, got sizes (H, W, 3) {sizes}')
    return np.stack(frames)  # [T, H, W, 3]


def load_clip(path: Union[str, Path]) -> np.ndarray:
    """Reads a clip ``[T, H, W, 3]`` uint8: a ``.npy`` file of that array, or a folder of frame images taken in
    name order (``FRAME_SUFFIXES``; name them ``frame_000.png``, ``frame_001.png``, ... to keep the order).

    Raises:
        VisualizationError: no such file or folder, another kind of file, an unreadable file or frame, frames of
            different sizes, or an array that is not a clip (:func:`check_clip`).
    """
    path = Path(path)
    if not path.exists():
        raise VisualizationError(f'clip not found: {path} (expected a .npy file [T, H, W, 3] or a folder of frames)')
    if path.is_dir():
        return check_clip(_load_frames(path), str(path))
    if path.suffix.lower() != '.npy':
        raise VisualizationError(f'expected a clip as a .npy file [T, H, W, 3] uint8 or a folder of frames, got {path}')
    try:
        clip = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise VisualizationError(f'cannot read {path} as a .npy array: {e}') from e
    return check_clip(clip, str(path))


def moving_digit_clip(index: int) -> np.ndarray:
    """Held-out clip ``index`` of the moving digits (the embedded video task), ``[T, 32, 32, 3]`` uint8.

    Raises:
        VisualizationError: ``index`` is outside the held-out split, or scikit-learn is not installed.
    """
    try:
        from ..train.data import moving_digits_split
        clips = moving_digits_split('validation').clips  # [N, T, 32, 32]
    except ImportError as e:
        raise VisualizationError("--digit needs scikit-learn, which ships the digits: `pip install '.[train]'`") from e
    if not 0 <= index < len(clips):
        raise VisualizationError(f'expected a held-out moving-digits clip index in 0..{len(clips) - 1}, got {index}')
    return np.repeat(clips[index][..., None], 3, axis=-1)  # [T, 32, 32, 3]


def sample_frames(clip: np.ndarray, num_frames: int, source: str = 'clip') -> np.ndarray:
    """``num_frames`` frames of ``clip`` ``[T_clip, H, W, 3]`` spread evenly from its first to its last (all of
    them, in order, when ``T_clip == num_frames``).

    Raises:
        VisualizationError: the clip has fewer than ``num_frames`` frames.
    """
    if clip.shape[0] < num_frames:
        raise VisualizationError(f'{source}: expected at least {num_frames} frames (the model takes clips of '
                                 f'{num_frames}), got {clip.shape[0]}')
    indices = np.linspace(0, clip.shape[0] - 1, num_frames).round().astype(int)
    return clip[indices]  # [num_frames, H, W, 3]


@dataclasses.dataclass(frozen=True)
class VideoInput:
    """One clip as the video model takes it and as it is drawn.

    Attributes:
        pixels: ``[1, C_img, T, H_img, W_img]``, each frame resized, cropped and normalised by the model's
            preprocessing.
        display: ``[T, 3, H_img, W_img]`` in [0, 1]: the same frames without normalisation.
    """
    pixels: torch.Tensor
    display: torch.Tensor


def prepare_clip(model: nn.Module, clip: np.ndarray, source: str = 'clip') -> VideoInput:
    """The model's T frames of ``clip`` (:func:`sample_frames`), each preprocessed as :func:`.prepare_image` does.

    Raises:
        VisualizationError: ``model`` is not a video model, ``clip`` is not ``[T, H, W, 3]`` uint8 or has too few
            frames.
    """
    frames = sample_frames(check_clip(clip, source), clip_frames(model), source)
    inputs = [prepare_image(model, Image.fromarray(frame)) for frame in frames]
    pixels = torch.stack([one.pixels[0] for one in inputs], dim=1)[None]  # [1, C_img, T, H_img, W_img]
    display = torch.stack([one.display for one in inputs])  # [T, 3, H_img, W_img]
    return VideoInput(pixels=pixels, display=display)
