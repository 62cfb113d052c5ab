"""Deprecated import path: moved to :mod:`tl_models.visualize.video_input`."""
import sys

from .._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.visualize.video_input')
