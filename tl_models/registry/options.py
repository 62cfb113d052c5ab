"""The ``--variants`` option every script that takes a model name shares: your own variant YAML files."""
import argparse
from typing import List

from .register import register_variants

__all__ = ['add_variants_option', 'register_variant_files']


def add_variants_option(parser: argparse.ArgumentParser) -> None:
    """``--variants YAML ...``: variant files of your own to register before anything else runs."""
    parser.add_argument('--variants', nargs='+', default=[], metavar='YAML',
                        help='also register the variants of these YAML files')


def register_variant_files(paths: List[str]) -> None:
    """Registers the ``--variants`` files, if any (raises ``VariantConfigError`` for a bad one)."""
    if paths:
        register_variants(paths)
