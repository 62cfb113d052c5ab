"""Attention maps: where each token learned by a TokenLearner looks in the image (the paper's figures).

- :func:`token_learner_maps`: every TokenLearner's spatial weights ``[B, S, H, W]`` for a batch, through hooks;
  :func:`video_token_learner_maps`: a video model's, ``[B, T', S, H, W]`` per time step, for a batch of clips.
- :func:`prepare_image`, :func:`load_image`, :func:`sample_image`: images through the model's own preprocessing.
- :func:`render_token_maps`, :func:`render_token_map_frames`: the pictures; :func:`write_png`, :func:`write_gif`.
- :func:`load_clip`, :func:`prepare_clip`: clips ``[T, H, W, 3]`` uint8 for video models, framewise preprocessing.
- :func:`render_video_token_map_frames`: one picture per frame of a clip, its time step's maps over it.
- :func:`save_token_maps`: all of it for one image or several, as ``tl-visualize`` runs it;
  :func:`save_video_token_maps`: for a clip, a GIF over time.
- :func:`token_map_similarity`, :func:`pairwise_map_similarity`: how alike a model's token maps are (1: collapsed).

Drawing needs matplotlib (the ``plot`` extra) for its colour maps; nothing here imports it before drawing.
"""
from .errors import VisualizationError
from .figures import save_token_maps, save_video_token_maps
from .files import write_gif, write_png
from .images import SAMPLE_IMAGE, ModelInput, digit_image, load_image, prepare_image, sample_image
from .loading import load_model, names_weights
from .maps import find_token_learners, token_learner_maps, video_token_learner_maps
from .render import (
    GridLayout,
    layer_label,
    panel_shape,
    render_token_map_frames,
    render_token_maps,
    render_video_token_map_frames,
    stack_pictures,
)
from .similarity import pairwise_map_similarity, token_map_similarity
from .video_input import (
    VideoInput,
    check_clip,
    is_video_model,
    load_clip,
    moving_digit_clip,
    prepare_clip,
    sample_frames,
)

__all__ = [
    'SAMPLE_IMAGE',
    'GridLayout',
    'ModelInput',
    'VideoInput',
    'VisualizationError',
    'check_clip',
    'digit_image',
    'find_token_learners',
    'is_video_model',
    'layer_label',
    'load_clip',
    'load_image',
    'load_model',
    'moving_digit_clip',
    'names_weights',
    'pairwise_map_similarity',
    'panel_shape',
    'prepare_clip',
    'prepare_image',
    'render_token_map_frames',
    'render_token_maps',
    'render_video_token_map_frames',
    'sample_frames',
    'sample_image',
    'save_token_maps',
    'save_video_token_maps',
    'stack_pictures',
    'token_learner_maps',
    'token_map_similarity',
    'video_token_learner_maps',
    'write_gif',
    'write_png',
]
