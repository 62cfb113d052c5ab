"""Deprecated import path: moved to :mod:`tl_models.benchmark.time_share`."""
import sys

from .._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.benchmark.time_share')
