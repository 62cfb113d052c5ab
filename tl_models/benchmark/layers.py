"""Deprecated import path: moved out of the package to :mod:`lab.layer_benchmark` (the source repository's lab/)."""
import sys

from .._moved import moved_to_lab

sys.modules[__name__] = moved_to_lab(__name__, 'lab.layer_benchmark')
