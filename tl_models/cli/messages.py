"""What the commands share besides ``--variants`` (:mod:`tl_models.registry.options`): one-line error messages."""

__all__ = ['error_message']


def error_message(error: Exception) -> str:
    """The message of an error, for one ``error: ...`` line (``str(KeyError)`` would add quotes)."""
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)
