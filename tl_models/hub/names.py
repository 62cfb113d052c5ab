"""Model names of exported folders and hub repos: checks that they are registered, with a hint when not."""
import timm

__all__ = ['IMPORT_NOTE', 'UnknownArchitectureError', 'check_architecture']

IMPORT_NOTE = ('TokenLearner models need the tl-models package (pip install tl-models). Installed, it registers the '
               'tl_ architectures with timm whenever timm is imported; `import tl_models` does the same explicitly '
               '(needed with TL_MODELS_NO_TIMM_HOOK=1 set, or from a source tree that is not installed). Without '
               'it timm stops with RuntimeError: Unknown model (tl_...).')


class UnknownArchitectureError(RuntimeError):
    """A config names a model timm does not know; the message says how to register it."""


def check_architecture(architecture: str, where: str) -> str:
    """Returns ``architecture`` if timm knows it.

    Args:
        architecture: The model name a ``config.json`` gives.
        where: The config file or repo, for the message.

    Raises:
        UnknownArchitectureError: timm does not know the name; for a ``tl_`` name, the message explains
            that ``import tl_models`` registers the shipped variants and ``tl_models.register_variants``
            (``--variants`` in the scripts) those of another YAML file.
    """
    if timm.models.is_model(architecture):
        return architecture
    hint = ''
    if architecture.startswith('tl_'):
        hint = (f'; {IMPORT_NOTE} A variant defined in your own YAML file must be registered too: '
                f'tl_models.register_variants(PATH), or --variants PATH for the scripts')
    raise UnknownArchitectureError(f"{where}: unknown model architecture '{architecture}'{hint}")
