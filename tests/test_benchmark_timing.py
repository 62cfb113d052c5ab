"""Interleaved timing on a fake clock: order, warm-up, medians and spread are exact."""
import gc

import pytest

from tl_models.benchmark import RoundTimes, time_interleaved, timing


class FakeClock:
    """A clock that moves only when a fake step runs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def make_steps(clock, durations, calls):
    """Steps that log their calls and advance the clock by their next duration."""
    def make(name):
        remaining = list(durations[name])

        def step():
            calls.append(name)
            clock.now += remaining.pop(0) if remaining else 0.0
        return step
    return {name: make(name) for name in durations}


def test_rounds_interleave_in_rotating_order_after_warmup(monkeypatch):
    clock, calls = FakeClock(), []
    monkeypatch.setattr(timing, 'perf_counter', clock)
    steps = make_steps(clock, {'a': [], 'b': [], 'c': []}, calls)
    times = time_interleaved(steps, rounds=3, steps_per_round=2, warmup=1)
    assert calls == ['a', 'b', 'c',  # warm-up
                     'a', 'a', 'b', 'b', 'c', 'c',
                     'b', 'b', 'c', 'c', 'a', 'a',
                     'c', 'c', 'a', 'a', 'b', 'b']
    assert all(len(t.seconds) == 3 for t in times.values())


def test_median_per_step_ignores_a_disturbed_round(monkeypatch):
    clock, calls = FakeClock(), []
    monkeypatch.setattr(timing, 'perf_counter', clock)
    # No warm-up; per round, 'fast' takes 2 x 1 s except one disturbed round, 'slow' 2 x 3 s.
    steps = make_steps(clock, {'fast': [1, 1, 9, 9, 1, 1, 1, 1, 1, 1], 'slow': [3] * 10}, calls)
    times = time_interleaved(steps, rounds=5, steps_per_round=2, warmup=0)
    assert times['fast'].seconds == [1, 9, 1, 1, 1]
    assert times['fast'].median == 1 and times['slow'].median == 3
    assert times['slow'].spread == 0


def test_spread_is_the_interquartile_range_over_the_median():
    assert RoundTimes([1.0, 2.0, 3.0, 4.0, 5.0]).spread == pytest.approx((4 - 2) / 3)
    assert RoundTimes([2.0]).spread == 0


def test_garbage_collector_is_paused_only_while_timing():
    states = []
    time_interleaved({'a': lambda: states.append(gc.isenabled())}, rounds=2, warmup=1)
    assert states == [True, False, False]
    assert gc.isenabled()


@pytest.mark.parametrize('kwargs', [dict(rounds=0), dict(rounds=1, steps_per_round=0), dict(rounds=1, warmup=-1)])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError, match='need rounds >= 1'):
        time_interleaved({'a': lambda: None}, **kwargs)


def test_nothing_to_time_is_rejected():
    with pytest.raises(ValueError, match='no step functions'):
        time_interleaved({}, rounds=1)
