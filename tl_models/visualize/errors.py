"""The one error type of the attention-map tools."""

__all__ = ['VisualizationError']


class VisualizationError(ValueError):
    """Input the attention-map tools cannot use; the message names what was given and what was expected."""
