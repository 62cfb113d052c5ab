"""Atomic file output: a file or folder appears complete under its final name, or not at all.

Everything is first written to a temporary sibling (same folder, so the final ``os.replace`` is an
atomic rename on one file system), flushed to disk, then renamed. On error the temporary is removed. The
temporary is created as a plain ``open`` or ``mkdir`` would (the umask applies), so the result gets the usual
permissions.
"""
import contextlib
import json
import os
import shutil
import stat
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import torch
from safetensors.torch import save_file

__all__ = ['atomic_dir', 'atomic_path', 'write_json', 'write_safetensors', 'write_text']

PathLike = Union[str, Path]


def _temporary_sibling(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary."""
    return path.with_name(f'.{path.name}.{uuid.uuid4().hex}.tmp')


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
    tmp = _temporary_sibling(path)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # not mkstemp: its file is private (0600)
    mode = stat.S_IMODE(os.stat(tmp).st_mode)  # the usual mode: created through the umask
    try:
        yield tmp
        os.chmod(tmp, mode)  # a writer may have replaced the file (safetensors 0.8 writes a private one of its own)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
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
    tmp = _temporary_sibling(path)
    tmp.mkdir()  # not mkdtemp: its folder is private (0700)
    old = path.with_name(f'.{path.name}.old')
    try:
        yield tmp
        for item in tmp.rglob('*'):
            if item.is_file():
                with open(item, 'rb') as f:
                    os.fsync(f.fileno())
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
