"""Atomic file output: a file or folder appears complete under its final name, or not at all.

Everything is first written to a temporary sibling (same folder, so the final ``os.replace`` is an
atomic rename on one file system), flushed to disk, then renamed. On error the temporary is removed. The final
file or folder gets the permissions a plain ``open`` or ``mkdir`` would give (the temporaries are private).
"""
import contextlib
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import torch
from safetensors.torch import save_file

__all__ = ['atomic_dir', 'atomic_path', 'write_json', 'write_safetensors', 'write_text']

PathLike = Union[str, Path]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private (0600)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary folder to fill; on success it becomes ``path``.

    Args:
        path: The final folder.
        overwrite: Replace an existing ``path``; otherwise an existing one raises ``FileExistsError``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} already exists; choose another folder or allow overwriting')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    old = path.with_name(f'.{path.name}.old')
    try:
        yield tmp
        for item in tmp.rglob('*'):
            if item.is_file():
                with open(item, 'rb') as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folder is private (0700)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding='utf-8')


def write_json(path: PathLike, data: Any) -> None:
    """Writes ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + '\n')


def write_safetensors(
        path: PathLike,
        tensors: Dict[str, torch.Tensor],
        metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Writes ``tensors`` to a safetensors file atomically; tensors that share storage are saved as copies."""
    storage = Counter(t.untyped_storage().data_ptr() for t in tensors.values())
    tensors = {k: (v.detach().clone() if storage[v.untyped_storage().data_ptr()] > 1 else v.detach()).contiguous()
               for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
