"""Moving digits: the embedded video task (no download), in which a single frame cannot tell the class.

A clip is one of scikit-learn's handwritten digits (8 x 8 px, scaled to 12 x 12) moving in a straight line
over a black 32 x 32 canvas for 8 frames, 1 or 2 px per frame, to the right, left, down or up. Its label is the
digit and the direction: ``label = 4 * digit + direction``, 40 classes named ``'{digit}_{direction}'``.

The digit's position in the middle frame (index ``MIDDLE_FRAME``) is drawn uniformly, on both axes, from the
positions from which every direction keeps the digit on the canvas for the whole clip; speed and digit are
drawn apart from the direction. So the middle frame is independent of the direction: a model that sees it
alone can learn the digit (10 of the 40 classes up to direction) but must guess the direction (at best 25%).

Splits are deterministic: training clips move the digits of the digits' training split, validation clips
those of its held-out split (disjoint images), each with its own fixed seed. Clips are rendered at once
(vectorised numpy) and kept as uint8 ``[N, T, 32, 32]``.
"""
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['CANVAS', 'DIGIT_SIZE', 'DIRECTIONS', 'FRAMES', 'MIDDLE_FRAME', 'SPEEDS', 'SPLITS', 'MovingDigits',
           'render_clips', 'trajectories']

CANVAS = 32  # px, the square canvas
DIGIT_SIZE = 12  # px, the scaled digit
FRAMES = 8  # frames per clip
MIDDLE_FRAME = (FRAMES - 1) // 2  # the frame of a centred one-frame clip
SPEEDS = (1, 2)  # px per frame
DIRECTIONS = ('right', 'left', 'down', 'up')
_STEPS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]])  # (dy, dx) per direction, in DIRECTIONS' order
SPLITS: Dict[str, Tuple[int, int]] = {'train': (3000, 0), 'validation': (600, 1)}  # clips, seed


def scale_digits(images: np.ndarray, size: int = DIGIT_SIZE) -> np.ndarray:
    """Digits ``[N, 8, 8]`` uint8 -> ``[N, size, size]`` uint8, bilinear."""
    scaled = F.interpolate(torch.from_numpy(images).float()[:, None], size=(size, size), mode='bilinear',
                           align_corners=False)  # [N, 1, size, size]
    return scaled[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def trajectories(direction: np.ndarray, speed: np.ndarray, middle: np.ndarray, frames: int = FRAMES) -> np.ndarray:
    """Top-left corners ``[N, T, 2]`` (y, x) of digits at ``middle`` ``[N, 2]`` in the middle frame, moving
    ``speed`` ``[N]`` px per frame in ``direction`` ``[N]`` (an index into DIRECTIONS)."""
    steps = np.arange(frames) - MIDDLE_FRAME  # [T], frames from the middle one
    return middle[:, None, :] + steps[None, :, None] * (speed[:, None] * _STEPS[direction])[:, None, :]


def render_clips(digits: np.ndarray, corners: np.ndarray, canvas: int = CANVAS) -> np.ndarray:
    """Digits ``[N, S, S]`` uint8 pasted at ``corners`` ``[N, T, 2]`` on black canvases: clips ``[N, T, canvas,
    canvas]`` uint8. Every digit must lie inside its canvas."""
    count, frames, _ = corners.shape
    size = digits.shape[-1]
    if corners.min() < 0 or corners.max() > canvas - size:
        raise ValueError(f'expected corners in [0, {canvas - size}], got [{corners.min()}, {corners.max()}]')
    offsets = np.arange(size)
    rows = corners[:, :, 0, None, None] + offsets[:, None]  # [N, T, S, 1]
    cols = corners[:, :, 1, None, None] + offsets[None, :]  # [N, T, 1, S]
    clips = np.zeros((count, frames, canvas, canvas), dtype=np.uint8)
    clips[np.arange(count)[:, None, None, None], np.arange(frames)[None, :, None, None], rows, cols] = digits[:, None]
    return clips


class MovingDigits(torch.utils.data.Dataset):
    """``count`` clips of the digits ``images`` ``[M, 8, 8]`` (labels ``digit_labels`` ``[M]``), drawn with
    ``seed``. Items are ``(clip [T, 32, 32] uint8, label)``; ``clips``, ``targets``, ``directions``,
    ``speeds`` and ``corners`` ``[N, T, 2]`` hold the whole split."""
    classes = [f'{digit}_{direction}' for digit in range(10) for direction in DIRECTIONS]

    def __init__(self, images: np.ndarray, digit_labels: np.ndarray, count: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        index = rng.integers(len(images), size=count)
        self.directions = rng.integers(len(DIRECTIONS), size=count)
        self.speeds = rng.choice(SPEEDS, size=count)
        reach = max(MIDDLE_FRAME, FRAMES - 1 - MIDDLE_FRAME) * self.speeds  # [N], px travelled either way
        low, high = reach, CANVAS - DIGIT_SIZE - reach  # every direction stays on the canvas from here
        middle = low[:, None] + np.floor(rng.random((count, 2)) * (high - low + 1)[:, None]).astype(np.int64)
        self.corners = trajectories(self.directions, self.speeds, middle)
        self.clips = render_clips(scale_digits(images)[index], self.corners)
        self.targets = (digit_labels[index] * len(DIRECTIONS) + self.directions).astype(np.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return torch.from_numpy(self.clips[index]), int(self.targets[index])
