"""Registers the tl_ architectures with timm whenever timm is imported, so that a forgotten ``import tl_models``
cannot break ``timm.create_model('hf-hub:...')`` / ``('local-dir:...')`` of our models.

The wheel installs this file as the top-level module ``_tl_models_timm_hook`` next to ``_tl_models_timm_hook.pth``,
whose one line Python runs at start-up: ``import _tl_models_timm_hook; _tl_models_timm_hook.install()``.
:func:`install` only puts a :class:`TimmImportWatcher` on ``sys.meta_path`` (it imports nothing at start-up beyond
``os`` and ``sys``). On the first ``import timm`` the watcher lets timm load as usual and then imports
``tl_models``, whose import registers the variants (about 30 ms on top of timm's own import). If that fails, timm
still imports and a ``RuntimeWarning`` says why. Setting ``TL_MODELS_NO_TIMM_HOOK=1`` turns the hook off; then
``import tl_models`` is needed before ``timm.create_model``, as without an installed package.
"""
import os
import sys

DISABLE_VARIABLE = 'TL_MODELS_NO_TIMM_HOOK'


def register_tl_models() -> None:
    """Imports ``tl_models`` (registering its variants with timm); on failure warns instead of raising."""
    if 'tl_models' in sys.modules:  # imported already, or being imported (it imports timm itself)
        return
    import importlib
    import warnings
    try:
        importlib.import_module('tl_models')
    except Exception as error:  # timm must import even when tl_models cannot
        warnings.warn(
            f'tl_models is installed but could not register its tl_ models with timm ({type(error).__name__}: '
            f'{error}); `import tl_models` shows the whole error, {DISABLE_VARIABLE}=1 stops this attempt',
            RuntimeWarning, stacklevel=2)


class TimmImportWatcher:
    """A ``sys.meta_path`` finder that finds nothing itself: it wraps the loader of the first ``import timm``.

    It removes itself on that import, asks the remaining finders for timm's spec, and makes the spec's loader
    call :func:`register_tl_models` once timm's own module has run.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'timm':
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        import importlib.util  # here, not at start-up: every Python start runs this module's import
        spec = importlib.util.find_spec('timm')
        if spec is None or spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        run_timm = spec.loader.exec_module

        def exec_module(module):
            run_timm(module)
            if module.__name__ == 'timm':  # a loader may be shared with other modules
                register_tl_models()

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Puts a :class:`TimmImportWatcher` first on ``sys.meta_path``, unless ``TL_MODELS_NO_TIMM_HOOK`` is set.

    If timm is imported already, registers at once instead.
    """
    if os.environ.get(DISABLE_VARIABLE, '') not in ('', '0'):
        return
    if 'timm' in sys.modules:
        register_tl_models()
    elif not any(isinstance(finder, TimmImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, TimmImportWatcher())
