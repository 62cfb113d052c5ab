"""The whole job behind ``tl-visualize``: images through a model to a PNG (and a GIF) of their token maps,
or a clip through a video model to a GIF over time (and a PNG of its time steps)."""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch.nn as nn
from PIL import Image

from .files import require_suffix, write_gif, write_png
from .images import prepare_image
from .maps import token_learner_maps, video_token_learner_maps
from .render import render_token_map_frames, render_token_maps, render_video_token_map_frames, stack_pictures
from .video_input import prepare_clip

__all__ = ['save_token_maps', 'save_video_token_maps']


def save_token_maps(
        model: nn.Module,
        image: Union[Image.Image, Sequence[Image.Image]],
        output: Union[str, Path],
        gif: Optional[Union[str, Path]] = None,
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
        frame_ms: int = 800,
) -> List[Path]:
    """Draws where each learned token of ``model`` looks in ``image`` (or each of several) and writes the picture(s).

    Each image goes through the model's own preprocessing (:func:`prepare_image`); the maps come from
    :func:`token_learner_maps`; the PNG is :func:`render_token_maps` (one row per TokenLearner), the images'
    blocks of rows one below the other, and the GIF, if asked, has one frame per TokenLearner
    (:func:`render_token_map_frames`), each frame holding every image.

    Args:
        model: A model with TokenLearner modules, on any device.
        image: Any Pillow image, or a sequence of them; converted to the model's channels.
        output: The PNG to write (name ending in .png).
        gif: The GIF to write (name ending in .gif), or None for none.
        cmap, alpha, panel_size: As in :func:`render_token_maps`.
        frame_ms: Display time of each GIF frame in milliseconds.

    Returns:
        The paths written: the PNG, then the GIF if asked.
    """
    output = require_suffix(output, '.png')  # checked before the work too, so that a bad name fails at once
    gif = None if gif is None else require_suffix(gif, '.gif')
    device = next(model.parameters()).device
    style = dict(cmap=cmap, alpha=alpha, panel_size=panel_size)
    pictures, frames = [], []
    for one in [image] if isinstance(image, Image.Image) else image:
        model_input = prepare_image(model, one)
        maps = {name: layer_maps[0].cpu()  # [S, H, W]
                for name, layer_maps in token_learner_maps(model, model_input.pixels.to(device)).items()}
        pictures.append(render_token_maps(model_input.display, maps, **style))
        if gif is not None:
            frames.append(render_token_map_frames(model_input.display, maps, **style))
    written = [write_png(output, stack_pictures(pictures))]
    if gif is not None:
        written.append(write_gif(gif, [stack_pictures(block) for block in zip(*frames)], frame_ms))
    return written


def save_video_token_maps(
        model: nn.Module,
        clip: np.ndarray,
        gif: Union[str, Path],
        output: Optional[Union[str, Path]] = None,
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
        frame_ms: int = 200,
        source: str = 'clip',
) -> List[Path]:
    """Draws what each learned token of video model ``model`` follows over ``clip`` and writes a GIF (and a PNG).

    The model's T frames of the clip go through its preprocessing (:func:`.prepare_clip`); the maps come from
    :func:`video_token_learner_maps`. The GIF has one frame per clip frame (:func:`render_video_token_map_frames`:
    the frame and its time step's S maps over it, one row per TokenLearner); the PNG, if asked, stacks the first
    frame of each of the T' time steps one below the other.

    Args:
        model: A video model with TokenLearner modules, on any device.
        clip: ``[T_clip, H, W, 3]`` uint8 with at least T frames (e.g. from :func:`.load_clip`).
        gif: The GIF to write (name ending in .gif).
        output: The PNG to write (name ending in .png), or None for none.
        cmap, alpha, panel_size: As in :func:`render_token_maps`.
        frame_ms: Display time of each GIF frame in milliseconds.
        source: What the clip is called in error messages (its path).

    Returns:
        The paths written: the GIF, then the PNG if asked.
    """
    gif = require_suffix(gif, '.gif')  # checked before the work, so that a bad name fails at once
    output = None if output is None else require_suffix(output, '.png')
    model_input = prepare_clip(model, clip, source)
    device = next(model.parameters()).device
    maps = {name: layer_maps[0].cpu()  # [T', S, H, W]
            for name, layer_maps in video_token_learner_maps(model, model_input.pixels.to(device)).items()}
    frames = render_video_token_map_frames(model_input.display, maps, cmap=cmap, alpha=alpha, panel_size=panel_size)
    written = [write_gif(gif, frames, frame_ms)]
    if output is not None:
        per_step = len(frames) // next(iter(maps.values())).shape[0]  # t, the frames of a tubelet
        written.append(write_png(output, stack_pictures(frames[::per_step])))
    return written
