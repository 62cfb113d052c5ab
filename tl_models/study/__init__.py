"""Deprecated import path: the study harness moved out of the package to :mod:`lab.study` (the source repository's
lab/); :mod:`tl_models.study.tokens` is :mod:`tl_models.visualize.similarity`."""
from .._moved import moved_to_lab

_new = moved_to_lab(__name__, 'lab.study')
globals().update({name: getattr(_new, name) for name in _new.__all__})
__all__ = list(_new.__all__)
