"""The whole job behind ``scripts/visualize.py``: one image through a model to a PNG (and a GIF) of its token maps."""
from pathlib import Path
from typing import List, Optional, Union

import torch.nn as nn
from PIL import Image

from .files import require_suffix, write_gif, write_png
from .images import prepare_image
from .maps import token_learner_maps
from .render import render_token_map_frames, render_token_maps

__all__ = ['save_token_maps']


def save_token_maps(
        model: nn.Module,
        image: Image.Image,
        output: Union[str, Path],
        gif: Optional[Union[str, Path]] = None,
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
        frame_ms: int = 800,
) -> List[Path]:
    """Draws where each learned token of ``model`` looks in ``image`` and writes the picture(s).

    The image goes through the model's own preprocessing (:func:`prepare_image`); the maps come from
    :func:`token_learner_maps`; the PNG is :func:`render_token_maps` (one row per TokenLearner) and the GIF,
    if asked, has one frame per TokenLearner (:func:`render_token_map_frames`).

    Args:
        model: A model with TokenLearner modules, on any device.
        image: Any Pillow image; converted to the model's channels.
        output: The PNG to write (name ending in .png).
        gif: The GIF to write (name ending in .gif), or None for none.
        cmap, alpha, panel_size: As in :func:`render_token_maps`.
        frame_ms: Display time of each GIF frame in milliseconds.

    Returns:
        The paths written: the PNG, then the GIF if asked.
    """
    output = require_suffix(output, '.png')  # checked before the work too, so that a bad name fails at once
    gif = None if gif is None else require_suffix(gif, '.gif')
    model_input = prepare_image(model, image)
    device = next(model.parameters()).device
    maps = {name: layer_maps[0].cpu()  # [S, H, W]
            for name, layer_maps in token_learner_maps(model, model_input.pixels.to(device)).items()}
    style = dict(cmap=cmap, alpha=alpha, panel_size=panel_size)
    written = [write_png(output, render_token_maps(model_input.display, maps, **style))]
    if gif is not None:
        written.append(write_gif(gif, render_token_map_frames(model_input.display, maps, **style), frame_ms))
    return written
