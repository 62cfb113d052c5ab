"""Deprecated import path: moved to :mod:`tl_models.weights`."""
from .._moved import moved

_new = moved(__name__, 'tl_models.weights')
globals().update({name: getattr(_new, name) for name in _new.__all__})
__all__ = list(_new.__all__)
