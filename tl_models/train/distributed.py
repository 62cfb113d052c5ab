"""Deprecated import path: moved to :mod:`tl_models.runtime.distributed`."""
import sys

from .._moved import moved

sys.modules[__name__] = moved(__name__, 'tl_models.runtime.distributed')
