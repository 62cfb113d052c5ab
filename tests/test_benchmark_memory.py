"""Peak memory meters: a known allocation shows up above the baseline; other devices report nothing.

The CPU meters read /proc (Linux, where the suite runs).
"""
import time

import pytest
import torch

from tl_models.benchmark import memory_meter

MIB = 2 ** 20
ALLOCATION_MIB = 64


def allocate_and_free(hold_s: float = 0.0):
    """Touches a 64 MiB tensor, optionally holds it, frees it: a peak that leaves nothing behind."""
    def work():
        block = torch.ones(ALLOCATION_MIB * MIB // 4)
        time.sleep(hold_s)
        del block
    return work


@pytest.mark.parametrize('method, hold_s, described', [('hwm', 0.0, 'VmHWM'), ('sampled', 0.05, 'sampled')])
def test_rss_peak_sees_a_transient_allocation(method, hold_s, described):
    meter = memory_meter(torch.device('cpu'), rss_method=method)
    assert meter.available and described in meter.method
    baseline = meter.baseline()
    peak = meter.peak_mb(allocate_and_free(hold_s), baseline)
    assert ALLOCATION_MIB * 0.95 <= peak <= ALLOCATION_MIB * 1.5


def test_rss_peak_includes_what_was_kept_since_the_baseline():
    meter = memory_meter(torch.device('cpu'), rss_method='hwm')
    baseline = meter.baseline()
    kept = torch.ones(ALLOCATION_MIB * MIB // 4)
    peak = meter.peak_mb(allocate_and_free(), baseline)
    assert 2 * ALLOCATION_MIB * 0.95 <= peak <= 2 * ALLOCATION_MIB * 1.5
    del kept


def test_default_cpu_meter_names_its_method():
    assert memory_meter(torch.device('cpu')).method in ('rss high-water mark (VmHWM)', 'rss sampled every 1 ms')


def test_devices_without_a_meter_report_none():
    meter = memory_meter(torch.device('meta'))
    ran = []
    assert not meter.available and meter.method == 'unavailable'
    assert meter.peak_mb(lambda: ran.append(1), meter.baseline()) is None
    assert ran == [1]  # the work still runs


def test_unknown_rss_method_is_rejected():
    with pytest.raises(ValueError, match="rss_method must be 'hwm' or 'sampled'"):
        memory_meter(torch.device('cpu'), rss_method='guess')
