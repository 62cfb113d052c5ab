"""Deprecated import path: moved to :mod:`tl_models.weights.files`."""
import sys

from .._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.weights.files')
