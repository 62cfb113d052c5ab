"""Images in: reading a file or the scikit-learn sample photo, and the model's own preprocessing."""
import dataclasses
from pathlib import Path
from typing import Union

import torch
import torch.nn as nn
from PIL import Image, ImageOps, UnidentifiedImageError
from timm.data import create_transform, resolve_input_data_config

from .errors import VisualizationError

__all__ = ['SAMPLE_IMAGE', 'ModelInput', 'digit_image', 'load_image', 'prepare_image', 'sample_image']

# The photo of scikit-learn's load_sample_image used when no image is given (a 427 x 640 colour photo).
SAMPLE_IMAGE = 'china.jpg'


def load_image(path: Union[str, Path]) -> Image.Image:
    """Reads an image file (any format Pillow reads), upright as its EXIF orientation says.

    Raises:
        VisualizationError: the file does not exist, is a folder, or is not a readable image.
    """
    path = Path(path)
    if not path.exists():
        raise VisualizationError(f'image not found: {path} (expected an image file, e.g. a PNG or JPEG)')
    if not path.is_file():
        raise VisualizationError(f'{path} is not a file (expected an image file, e.g. a PNG or JPEG)')
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError) as e:
        raise VisualizationError(f'cannot read {path} as an image (expected a PNG, JPEG or other format '
                                 f'Pillow reads): {e}') from e


def sample_image() -> Image.Image:
    """The sample photo that scikit-learn ships (:data:`SAMPLE_IMAGE`), as an RGB image.

    Raises:
        VisualizationError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as e:
        raise VisualizationError(
            'no image given and scikit-learn, which ships the sample photo, is not installed; '
            "pass an image or `pip install scikit-learn`") from e
    return Image.fromarray(load_sample_image(SAMPLE_IMAGE))


def digit_image(index: int) -> Image.Image:
    """Held-out digit ``index`` of scikit-learn's digits (the embedded training data), an 8 x 8 RGB image.

    Raises:
        VisualizationError: ``index`` is outside the held-out split, or scikit-learn is not installed.
    """
    try:
        from ..data import DigitsDataset
        digits = DigitsDataset('validation')
    except ImportError as e:
        raise VisualizationError("--digit needs scikit-learn, which ships the digits: `pip install '.[train]'`") from e
    if not 0 <= index < len(digits):
        raise VisualizationError(f'expected a held-out digit index in 0..{len(digits) - 1}, got {index}')
    return digits[index][0]


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One image as the model takes it and as it is drawn.

    Attributes:
        pixels: ``[1, C_img, H_img, W_img]``, resized, cropped and normalised by the model's preprocessing.
        display: ``[3, H_img, W_img]`` in [0, 1]: the same crop without normalisation (grey repeated to RGB).
    """
    pixels: torch.Tensor
    display: torch.Tensor


def prepare_image(model: nn.Module, image: Image.Image) -> ModelInput:
    """Preprocesses ``image`` as timm's eval transform for ``model`` does (its data config and input size).

    Raises:
        VisualizationError: the model takes neither 1 (grey) nor 3 (RGB) input channels.
    """
    config = resolve_input_data_config(model)
    channels = config['input_size'][0]
    if channels not in (1, 3):
        raise VisualizationError(f'expected a model that takes 1 or 3 image channels, got {channels}')
    transform = create_transform(**config)
    pixels = transform(image.convert('L' if channels == 1 else 'RGB')).unsqueeze(0)  # [1, C_img, H_img, W_img]
    mean = torch.tensor(config['mean'], dtype=pixels.dtype).view(-1, 1, 1)
    std = torch.tensor(config['std'], dtype=pixels.dtype).view(-1, 1, 1)
    display = (pixels[0] * std + mean).clamp(0, 1).expand(3, -1, -1)  # [3, H_img, W_img]
    return ModelInput(pixels=pixels, display=display)
