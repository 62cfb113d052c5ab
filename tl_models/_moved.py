"""Old import paths of modules that moved: each warns once with a DeprecationWarning naming the new path."""
import importlib
import warnings
from types import ModuleType

__all__ = ['moved', 'moved_to_lab']


def moved(old: str, new: str) -> ModuleType:
    """Warns that module ``old`` is now ``new`` and returns ``new``."""
    warnings.warn(f'{old} moved to {new}; import it from there (the old path will be removed)', DeprecationWarning,
                  stacklevel=3)
    return importlib.import_module(new)


def moved_to_lab(old: str, new: str) -> ModuleType:
    """Warns that ``old`` is now the experiment harness's ``new`` (source tree only) and returns it.

    Raises:
        ImportError: ``lab`` is not importable (an installed tl-models without the source tree).
    """
    warnings.warn(f'{old} moved out of the package to {new}, in the source repository (lab/)', DeprecationWarning,
                  stacklevel=3)
    try:
        return importlib.import_module(new)
    except ImportError as e:
        raise ImportError(f'{old} is no longer part of the installed package: the experiment harness is {new} in '
                          'the source repository (lab/); run it from a clone') from e
