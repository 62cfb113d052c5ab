"""Pictures out: PNG and animated GIF files, written atomically (:mod:`tl_models.io`) in an explicit format."""
from pathlib import Path
from typing import Sequence, Union

from PIL import Image

from ..io import atomic_path
from .errors import VisualizationError

__all__ = ['require_suffix', 'write_gif', 'write_png']


def require_suffix(path: Union[str, Path], suffix: str) -> Path:
    """Returns ``path`` as a Path if its name ends in ``suffix`` (any case), e.g. ``'.png'``.

    Raises:
        VisualizationError: it ends otherwise.
    """
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise VisualizationError(f'expected an output file name ending in {suffix}, got {path}')
    return path


def write_png(path: Union[str, Path], image: Image.Image) -> Path:
    """Writes ``image`` as a PNG to ``path`` (ending in .png); returns the path."""
    path = require_suffix(path, '.png')
    with atomic_path(path) as tmp:
        image.save(tmp, format='PNG')
    return path


def write_gif(path: Union[str, Path], frames: Sequence[Image.Image], frame_ms: int = 800) -> Path:
    """Writes ``frames`` (equal sizes) as a looping GIF, ``frame_ms`` per frame, to ``path`` (ending in .gif)."""
    path = require_suffix(path, '.gif')
    if not frames:
        raise VisualizationError('expected at least one frame for a GIF, got none')
    if frame_ms < 1:
        raise VisualizationError(f'expected a frame duration of at least 1 ms, got {frame_ms}')
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format='GIF', save_all=True, append_images=list(frames[1:]), duration=frame_ms, loop=0)
    return path
