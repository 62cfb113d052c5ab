"""Local weight files: which one of a folder to use, and checking one before anything loads it.

safetensors files are preferred everywhere. A pickle checkpoint (``.bin``, ``.pth``) is only ever read
with ``torch.load(weights_only=True)``, which refuses any pickle that would run code; we never fall back
to an unsafe load. Every error is a :class:`WeightFileError` whose message names the file.
"""
import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
from safetensors import SafetensorError, safe_open

from .checkpoint import FORMAT as TRAINING_CHECKPOINT_FORMAT

__all__ = ['SAFE_WEIGHTS_NAME', 'WEIGHT_FILE_NAMES', 'WeightFileError', 'check_weight_file', 'find_weight_file',
           'weight_file_candidates']

SAFE_WEIGHTS_NAME = 'model.safetensors'
PICKLE_WEIGHTS_NAME = 'pytorch_model.bin'
# Weight files of a model folder or hub repo, in order of preference (timm's names; safetensors first).
WEIGHT_FILE_NAMES = (SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME, 'pytorch_model.pth', 'model.pth')
_SHA256 = re.compile(r'[0-9a-f]{64}')
_STATE_DICT_KEYS = ('state_dict_ema', 'model_ema', 'state_dict', 'model')


class WeightFileError(ValueError):
    """A weight file is missing, truncated, corrupt, unsafe or not a state dict; the message names the file."""


def weight_file_candidates(filename: Optional[str] = None) -> List[str]:
    """The file names to try, in order, for a requested ``filename`` (default: the usual names).

    A pickle name is preceded by its safetensors alternative (``pytorch_model.bin`` -> ``model.safetensors``,
    ``x.bin``/``x.pth`` -> ``x.safetensors``), as timm does.
    """
    if filename is None:
        return [SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME]
    if filename == PICKLE_WEIGHTS_NAME:
        return [SAFE_WEIGHTS_NAME, filename]
    stem, dot, suffix = filename.rpartition('.')
    if dot and suffix in ('bin', 'pth'):
        return [f'{stem}.safetensors', filename]
    return [filename]


def find_weight_file(folder: Union[str, Path]) -> Path:
    """The weight file of a model folder: the first of :data:`WEIGHT_FILE_NAMES` present.

    Raises:
        WeightFileError: ``folder`` is not a folder, or holds none of those files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightFileError(f'{folder}: not a folder (local-dir: needs a folder with config.json and weights)')
    for name in WEIGHT_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise WeightFileError(f"{folder}: no weight file; expected one of {', '.join(WEIGHT_FILE_NAMES)}")


def _check_hub_checksum(path: Path) -> None:
    """For a file of the huggingface_hub cache: its content must hash to the name of its blob.

    The cache stores an LFS file (every weight file on the hub) as ``blobs/<sha256 of its content>``,
    linked from ``snapshots/<commit>/<filename>``; a blob that no longer matches was damaged after or
    during download. Files outside that layout have no recorded checksum and are not checked here.
    """
    blob = path.resolve()
    if blob.parent.name != 'blobs' or not _SHA256.fullmatch(blob.name):
        return
    digest = hashlib.sha256()
    with open(blob, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 22), b''):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        raise WeightFileError(
            f'{path}: corrupt download: its content has sha256 {digest.hexdigest()}, the hub published '
            f'{blob.name}. Delete {blob} and load again to download it anew.')


def _check_safetensors(path: Path) -> None:
    try:
        with safe_open(str(path), framework='pt') as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
    except (SafetensorError, OSError) as e:
        raise WeightFileError(f'{path}: not a readable safetensors file (truncated or corrupt?): {e}') from e
    if metadata.get('format') == TRAINING_CHECKPOINT_FORMAT:
        raise WeightFileError(
            f'{path}: a tl_models training checkpoint, not model weights; turn it into a model folder with '
            f'`tl-export {path} OUT_DIR`, or use tl_models.weights.model_from_checkpoint')
    if not keys:
        raise WeightFileError(f'{path}: holds no tensors')


def _load_pickle(path: Path) -> Any:
    """``torch.load(weights_only=True)``, memory-mapped where the file format allows it."""
    mmap = zipfile.is_zipfile(path)  # torch.save's default format; legacy pickles cannot be mapped
    try:
        return torch.load(str(path), map_location='cpu', weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if mmap else []
        what = (f"the pickle would run code ({', '.join(unsafe)})" if unsafe
                else 'not a plain-tensor pickle (corrupt, or it would run code)')
        raise WeightFileError(f'{path}: refused: {what}; only plain tensors are loaded '
                              f'(torch.load(weights_only=True)). Convert it to safetensors where you trust it.') from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise WeightFileError(f'{path}: not a readable PyTorch checkpoint (truncated or corrupt?): '
                              f'{str(e).splitlines()[0]}') from e


def _check_pickle(path: Path) -> None:
    checkpoint: Any = _load_pickle(path)
    if isinstance(checkpoint, dict):
        for key in _STATE_DICT_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    tensors: Dict[Any, Any] = checkpoint if isinstance(checkpoint, dict) else {}
    if not tensors or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in tensors.items()):
        got = type(checkpoint).__name__ + (f' with keys {sorted(map(str, tensors))[:8]}' if tensors else '')
        raise WeightFileError(f'{path}: expected a state dict (parameter name -> tensor), got {got}')


def check_weight_file(path: Union[str, Path]) -> Path:
    """Checks that ``path`` is a complete, safe-to-load weight file; returns it.

    safetensors: the header must parse and cover the file exactly (a truncated or padded file fails).
    Pickles: ``torch.load(weights_only=True)`` must succeed and give a state dict. A file of the
    huggingface_hub cache must also match the checksum the hub published for it.

    Raises:
        WeightFileError: the file is missing, truncated, corrupt, would run code, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f'{path}: no such weight file')
    _check_hub_checksum(path)
    if path.suffix == '.safetensors':
        _check_safetensors(path)
    else:
        _check_pickle(path)
    return path
