"""Peak memory of one piece of work, above a baseline taken before the model was built.

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensors only, no allocator cache).
- CPU on Linux: the resident set. Writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water mark
  ``VmHWM`` (``/proc/self/status``) to the current RSS, so the mark read after the work is its exact peak.
  Where that file cannot be written (some containers), a thread samples ``VmRSS`` every millisecond instead:
  a lower bound that can miss peaks shorter than the interval.
- Elsewhere (macOS, Windows), no peak is reported.

Before a baseline, freed heap memory is handed back to the system (glibc ``malloc_trim``), so that pages a
previous model freed but the allocator kept do not hide part of the next model's use.
"""
import contextlib
import ctypes
import gc
import re
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import torch

__all__ = ['MemoryMeter', 'memory_meter']

_STATUS = Path('/proc/self/status')
_CLEAR_REFS = Path('/proc/self/clear_refs')


def _status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    match = re.search(rf'^{field}:\s+(\d+) kB', _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f'{_STATUS} has no {field} field')
    return int(match.group(1))


def _rss_bytes() -> int:
    return _status_kib('VmRSS') * 1024


def _release_freed_memory() -> None:
    """Collects garbage and returns free heap pages to the system where the C library allows it."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only; the process's own symbols include it
        ctypes.CDLL(None).malloc_trim(0)


def _can_reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text('5')
    except OSError:
        return False
    return True


class MemoryMeter:
    """Measures the peak memory of a piece of work above a baseline.

    Use :meth:`baseline` before building a model, then :meth:`peak_mb` around a step of it.

    Attributes:
        method: How the peak is measured: 'cuda max_memory_allocated', 'rss high-water mark (VmHWM)',
            'rss sampled every 1 ms', or 'unavailable'.
    """

    def __init__(self, method: str, current: Callable[[], int], measure: Callable[[Callable[[], None]], int],
                 release: Callable[[], None]) -> None:
        self.method = method
        self._current = current
        self._measure = measure
        self._release = release

    @property
    def available(self) -> bool:
        return self.method != 'unavailable'

    def baseline(self) -> int:
        """The memory in use now, in bytes, after releasing what earlier work freed."""
        self._release()
        return self._current()

    def peak_mb(self, work: Callable[[], None], baseline: int) -> Optional[float]:
        """Runs ``work``; returns its peak memory above ``baseline`` in MiB, or None where unmeasurable."""
        self._release()
        peak = self._measure(work)
        if not self.available:
            return None
        return (peak - baseline) / 2 ** 20


def _measure_hwm(work: Callable[[], None]) -> int:
    _CLEAR_REFS.write_text('5')
    work()
    return _status_kib('VmHWM') * 1024


def _measure_sampled(work: Callable[[], None]) -> int:
    """Runs ``work`` while a thread samples ``VmRSS`` every millisecond; returns the largest sample."""
    peak = [_rss_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, name='rss-sampler', daemon=True)
    thread.start()
    try:
        work()
    finally:
        stop.set()
        thread.join()
    return max(peak[0], _rss_bytes())


def _run_unmeasured(work: Callable[[], None]) -> int:
    work()
    return 0


def memory_meter(device: torch.device, rss_method: Optional[str] = None) -> MemoryMeter:
    """The meter for ``device``.

    Args:
        device: Where the models run.
        rss_method: For CPU, force 'hwm' or 'sampled' (tests); by default the high-water mark where it can be
            reset, else sampling, else nothing.
    """
    if device.type == 'cuda':
        def measure_cuda(work: Callable[[], None]) -> int:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            work()
            torch.cuda.synchronize(device)
            return torch.cuda.max_memory_allocated(device)

        return MemoryMeter('cuda max_memory_allocated', lambda: torch.cuda.memory_allocated(device), measure_cuda,
                           gc.collect)
    if device.type != 'cpu' or not _STATUS.exists():
        return MemoryMeter('unavailable', lambda: 0, _run_unmeasured, gc.collect)
    if rss_method not in (None, 'hwm', 'sampled'):
        raise ValueError(f"rss_method must be 'hwm' or 'sampled', got {rss_method!r}")
    if rss_method == 'hwm' or (rss_method is None and _can_reset_hwm()):
        return MemoryMeter('rss high-water mark (VmHWM)', _rss_bytes, _measure_hwm, _release_freed_memory)
    return MemoryMeter('rss sampled every 1 ms', _rss_bytes, _measure_sampled, _release_freed_memory)
