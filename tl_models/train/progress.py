"""Deprecated import path: moved to :mod:`tl_models.runtime.progress`."""
import sys

from .._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.runtime.progress')
