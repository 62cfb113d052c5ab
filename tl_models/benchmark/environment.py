"""The machine a benchmark runs on: device checks, a readable device name, and the versions to record."""
import datetime
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict

import timm
import torch

from ..version import __version__

__all__ = ['describe_environment', 'device_name', 'resolve_device', 'synchronizer']


def resolve_device(name: str) -> torch.device:
    """``name`` as a torch device, checked to be usable here.

    Raises:
        ValueError: not a device name, or a device this machine does not have.
    """
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {name!r}") from e
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available here (torch {torch.__version__}); use 'cpu'")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(f'device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)')
        return torch.device('cuda', index)
    if device.type != 'cpu':
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {name!r}")
    return device


def synchronizer(device: torch.device):
    """A function that waits for the work queued on ``device`` (nothing to wait for on CPU)."""
    if device.type == 'cuda':
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _cpu_model() -> str:
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.exists():
        match = re.search(r'^model name\s*:\s*(.+)$', cpuinfo.read_text(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine() or 'unknown CPU'


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model with the number of threads torch uses."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{_cpu_model()}, {torch.get_num_threads()} threads'


def describe_environment(device: torch.device) -> Dict[str, Any]:
    """Date, device, thread count and versions: what a result needs to be read and reproduced."""
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'device': str(device),
        'device_name': device_name(device),
        'torch_threads': torch.get_num_threads(),
        'cpu_count': os.cpu_count(),
        'python': sys.version.split()[0],
        'torch': torch.__version__,
        'timm': timm.__version__,
        'tl_models': __version__,
        'platform': platform.platform(),
        'command': ' '.join(sys.argv),
    }
