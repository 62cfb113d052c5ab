"""What the hub scripts share: the ``--variants`` option and one-line error messages."""
import argparse
from typing import List

from ..registry import register_variants

__all__ = ['add_variants_option', 'error_message', 'register_variant_files']


def add_variants_option(parser: argparse.ArgumentParser) -> None:
    """``--variants YAML ...``: variant files of your own to register before anything else runs."""
    parser.add_argument('--variants', nargs='+', default=[], metavar='YAML',
                        help='also register the variants of these YAML files')


def register_variant_files(paths: List[str]) -> None:
    """Registers the ``--variants`` files, if any (raises ``VariantConfigError`` for a bad one)."""
    if paths:
        register_variants(paths)


def error_message(error: Exception) -> str:
    """The message of an error, for one ``error: ...`` line (``str(KeyError)`` would add quotes)."""
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)
