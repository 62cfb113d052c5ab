"""Deprecated import path: moved to :mod:`tl_models.weights.checkpoint`."""
import sys

from ._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.weights.checkpoint')
