"""The whole job behind ``scripts/visualize.py``: images through a model to a PNG (and a GIF) of their token maps."""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch.nn as nn
from PIL import Image

from .files import require_suffix, write_gif, write_png
from .images import prepare_image
from .maps import token_learner_maps
from .render import render_token_map_frames, render_token_maps, stack_pictures

__all__ = ['save_token_maps']


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
