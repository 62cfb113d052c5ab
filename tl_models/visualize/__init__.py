"""Attention maps: where each token learned by a TokenLearner looks in the image (the paper's figures).

- :func:`token_learner_maps`: every TokenLearner's spatial weights ``[B, S, H, W]`` for a batch, through hooks.
- :func:`prepare_image`, :func:`load_image`, :func:`sample_image`: images through the model's own preprocessing.
- :func:`render_token_maps`, :func:`render_token_map_frames`: the pictures; :func:`write_png`, :func:`write_gif`.
- :func:`save_token_maps`: all of it for one image or several, as ``scripts/visualize.py`` runs it.

Drawing needs matplotlib (the ``plot`` extra) for its colour maps; nothing here imports it before drawing.
"""
from .errors import VisualizationError
from .figures import save_token_maps
from .files import write_gif, write_png
from .images import SAMPLE_IMAGE, ModelInput, digit_image, load_image, prepare_image, sample_image
from .loading import load_model, names_weights
from .maps import find_token_learners, token_learner_maps
from .render import (
    GridLayout,
    layer_label,
    panel_shape,
    render_token_map_frames,
    render_token_maps,
    stack_pictures,
)

__all__ = [
    'SAMPLE_IMAGE', 'GridLayout', 'ModelInput', 'VisualizationError', 'digit_image', 'find_token_learners',
    'layer_label',
    'load_image', 'load_model', 'names_weights', 'panel_shape', 'prepare_image', 'render_token_map_frames',
    'render_token_maps', 'sample_image', 'save_token_maps', 'stack_pictures', 'token_learner_maps', 'write_gif',
    'write_png',
]
