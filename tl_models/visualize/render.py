"""Drawing token maps: the input image, then each token's map over it, one row of titled panels per TokenLearner.

Pictures are composed with Pillow at exact pixel sizes (see :class:`GridLayout`); matplotlib supplies only the
colour map and is imported when a picture is drawn, so importing this module does not need it.
"""
import dataclasses
import functools
import re
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .errors import VisualizationError

__all__ = ['GridLayout', 'layer_label', 'panel_shape', 'render_token_map_frames', 'render_token_maps',
           'render_video_token_map_frames', 'stack_pictures']

TITLE_HEIGHT = 18
GAP = 4
TITLE_FONT_SIZE = 12
MIN_TITLE_FONT_SIZE = 6


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """Pixel layout of ``rows`` x ``cols`` cells, each a title strip of ``title_height`` above a panel.

    Cells are ``gap`` pixels apart and from the border, so the picture is ``size`` =
    ``(cols * panel_width + (cols + 1) * gap, rows * (title_height + panel_height) + (rows + 1) * gap)``.
    """
    rows: int
    cols: int
    panel_width: int
    panel_height: int
    title_height: int = TITLE_HEIGHT
    gap: int = GAP

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the whole picture in pixels."""
        return (self.cols * self.panel_width + (self.cols + 1) * self.gap,
                self.rows * (self.title_height + self.panel_height) + (self.rows + 1) * self.gap)

    def title_origin(self, row: int, col: int) -> Tuple[int, int]:
        """``(x, y)`` of the top-left pixel of the title strip of cell ``(row, col)``."""
        return (self.gap + col * (self.panel_width + self.gap),
                self.gap + row * (self.title_height + self.panel_height + self.gap))

    def panel_origin(self, row: int, col: int) -> Tuple[int, int]:
        """``(x, y)`` of the top-left pixel of the panel of cell ``(row, col)``."""
        x, y = self.title_origin(row, col)
        return x, y + self.title_height


def panel_shape(height: int, width: int, panel_size: int) -> Tuple[int, int]:
    """``(panel_height, panel_width)`` of a ``height`` x ``width`` image scaled to a longer side of ``panel_size``."""
    if panel_size < 1:
        raise VisualizationError(f'expected a panel size of at least 1 pixel, got {panel_size}')
    scale = panel_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def layer_label(name: str) -> str:
    """A short title for a TokenLearner module name: ``'token_learners.6'`` -> ``'block 6'``; others unchanged."""
    match = re.fullmatch(r'token_learners\.(\d+)', name)
    return f'block {match.group(1)}' if match else name


def _colour_map(name: str) -> Any:
    """matplotlib's colour map ``name``: a callable from values in [0, 1] ``[...]`` to RGBA ``[..., 4]``."""
    try:
        import matplotlib
    except ImportError as e:
        raise VisualizationError("drawing token maps needs matplotlib: pip install 'tl-models[plot]'") from e
    if name not in matplotlib.colormaps:
        raise VisualizationError(
            f'unknown colour map {name!r}; expected a matplotlib colour map name such as jet, viridis or inferno')
    return matplotlib.colormaps[name]


def _resized(images: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[K, H, W]`` to ``[K, *shape]``, antialiased when shrinking."""
    return F.interpolate(images[None].float(), size=shape, mode='bilinear', align_corners=False, antialias=True)[0]


def _heat(maps: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """Maps ``[S, H, W]`` upsampled to ``[S, *shape]``, each scaled to [0, 1] by its own minimum and maximum."""
    heat = _resized(maps, shape)
    low = heat.amin(dim=(1, 2), keepdim=True)
    high = heat.amax(dim=(1, 2), keepdim=True)
    return ((heat - low) / (high - low).clamp_min(torch.finfo(heat.dtype).tiny)).clamp(0, 1)


def _to_pil(rgb: np.ndarray) -> Image.Image:
    """``[H, W, 3]`` floats in [0, 1] -> an RGB image."""
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), mode='RGB')


@functools.cache
def _font(size: int) -> Any:
    """Pillow's built-in font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def _draw_title(draw: ImageDraw.ImageDraw, layout: GridLayout, row: int, col: int, text: str) -> None:
    """Writes ``text`` centred in the title strip of cell ``(row, col)``, shrinking the font to fit the width."""
    for size in range(TITLE_FONT_SIZE, MIN_TITLE_FONT_SIZE - 1, -1):
        font = _font(size)
        if font.getlength(text) <= layout.panel_width:
            break
    x, y = layout.title_origin(row, col)
    left, top, _, bottom = font.getbbox(text)
    draw.text((x + (layout.panel_width - font.getlength(text)) / 2 - left,
               y + (layout.title_height - (bottom - top)) / 2 - top), text, fill='black', font=font)


def render_token_maps(
        display: torch.Tensor,
        maps: Mapping[str, torch.Tensor],
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
        input_title: str = 'input',
) -> Image.Image:
    """One row per TokenLearner: the input image, then each token's map overlaid on it, each panel titled.

    Each map is upsampled bilinearly to the panel and scaled by its own minimum and maximum onto the colour
    map, then blended over the image: ``(1 - alpha) * image + alpha * colour``. The picture's pixel size is
    ``GridLayout(len(maps), 1 + S, panel_width, panel_height).size`` with S the most tokens of any layer and
    ``(panel_height, panel_width) = panel_shape(H_img, W_img, panel_size)``.

    Args:
        display: The image as the model saw it, ``[3, H_img, W_img]`` in [0, 1] (:class:`ModelInput` ``.display``).
        maps: Module name -> maps ``[S, H, W]`` of this image (one batch entry of :func:`token_learner_maps`).
        cmap: A matplotlib colour map name.
        alpha: Opacity of the colour map over the image, in [0, 1].
        panel_size: The longer side of each panel in pixels.
        input_title: The title of the input image's panels.
    """
    if not maps:
        raise VisualizationError('expected maps of at least one TokenLearner, got none')
    if not 0 <= alpha <= 1:
        raise VisualizationError(f'expected alpha in [0, 1], got {alpha}')
    colour_map = _colour_map(cmap)
    panel_height, panel_width = panel_shape(display.shape[1], display.shape[2], panel_size)
    layout = GridLayout(rows=len(maps), cols=1 + max(m.shape[0] for m in maps.values()),
                        panel_width=panel_width, panel_height=panel_height)
    canvas = Image.new('RGB', layout.size, 'white')
    draw = ImageDraw.Draw(canvas)
    image = _resized(display, (panel_height, panel_width)).permute(1, 2, 0).numpy()  # [h, w, 3]
    for row, (name, layer_maps) in enumerate(maps.items()):
        canvas.paste(_to_pil(image), layout.panel_origin(row, 0))
        _draw_title(draw, layout, row, 0, input_title)
        colours = colour_map(_heat(layer_maps, (panel_height, panel_width)).numpy())[..., :3]  # [S, h, w, 3]
        for token, colour in enumerate(colours):
            canvas.paste(_to_pil((1 - alpha) * image + alpha * colour), layout.panel_origin(row, 1 + token))
            _draw_title(draw, layout, row, 1 + token, f'{layer_label(name)}, token {token}')
    return canvas


def render_token_map_frames(
        display: torch.Tensor,
        maps: Mapping[str, torch.Tensor],
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
) -> List[Image.Image]:
    """One picture per TokenLearner (a one-row :func:`render_token_maps`): the frames of an animation across blocks."""
    return [render_token_maps(display, {name: layer_maps}, cmap=cmap, alpha=alpha, panel_size=panel_size)
            for name, layer_maps in maps.items()]


def render_video_token_map_frames(
        display: torch.Tensor,
        maps: Mapping[str, torch.Tensor],
        cmap: str = 'jet',
        alpha: float = 0.5,
        panel_size: int = 160,
) -> List[Image.Image]:
    """One picture per frame of a clip: the frame, then each token's map of the frame's time step over it.

    Each picture is :func:`render_token_maps` of one frame (one row per TokenLearner, titled with the frame and
    its time step): the frames of an animation of what the tokens follow over time. A tubelet's t = T / T' frames
    share their time step's maps.

    Args:
        display: The clip's frames as the model saw them, ``[T, 3, H_img, W_img]`` in [0, 1]
            (:class:`.VideoInput` ``.display``).
        maps: Module name -> maps ``[T', S, H, W]`` of this clip (one batch entry of
            :func:`.video_token_learner_maps`); T must be a multiple of T'.
        cmap, alpha, panel_size: As in :func:`render_token_maps`.

    Raises:
        VisualizationError: no maps, maps of different time steps, or T not a multiple of T'.
    """
    if not maps:
        raise VisualizationError('expected maps of at least one TokenLearner, got none')
    steps = {m.shape[0] for m in maps.values()}
    frames = display.shape[0]
    if len(steps) != 1 or frames % next(iter(steps)):
        raise VisualizationError(f'expected maps [T\', S, H, W] of one T\' that divides the {frames} frames, '
                                 f'got time steps {sorted(steps)}')
    per_step = frames // next(iter(steps))  # t, the frames of a tubelet
    return [render_token_maps(frame, {name: layer_maps[index // per_step] for name, layer_maps in maps.items()},
                              cmap=cmap, alpha=alpha, panel_size=panel_size,
                              input_title=f'frame {index}, step {index // per_step}')
            for index, frame in enumerate(display)]


def stack_pictures(pictures: Sequence[Image.Image]) -> Image.Image:
    """Pictures one below the other on white, left-aligned: one block of rows per image."""
    if not pictures:
        raise VisualizationError('expected at least one picture to stack, got none')
    canvas = Image.new('RGB', (max(p.width for p in pictures), sum(p.height for p in pictures)), 'white')
    top = 0
    for picture in pictures:
        canvas.paste(picture, (0, top))
        top += picture.height
    return canvas
