"""Interleaved timing: every entry runs once per round, rounds repeat, and each entry keeps its median.

Timing one model after another lets a slow minute of a noisy machine (another process, memory reclaim,
frequency changes) land on one model only. Interleaving spreads such disturbances over all entries, rotating
the order each round removes any advantage of running first or after a given entry, and the median over
rounds ignores the rounds a disturbance hit. The garbage collector is paused while a round is timed.
"""
import dataclasses
import gc
import statistics
from time import perf_counter
from typing import Callable, Dict, List

__all__ = ['RoundTimes', 'time_interleaved']


@dataclasses.dataclass(frozen=True)
class RoundTimes:
    """The seconds per step of one entry in each round, in round order."""
    seconds: List[float]

    @property
    def median(self) -> float:
        """Median seconds per step over the rounds."""
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range of the rounds relative to the median (0 with fewer than two rounds)."""
        if len(self.seconds) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.seconds, n=4, method='inclusive')
        return (q3 - q1) / self.median


def time_interleaved(
        steps: Dict[str, Callable[[], None]],
        rounds: int,
        steps_per_round: int = 1,
        warmup: int = 1,
        synchronize: Callable[[], None] = lambda: None,
) -> Dict[str, RoundTimes]:
    """Times several step functions in interleaved rounds.

    Args:
        steps: Entry name -> a function running one step (e.g. a forward pass of a batch).
        rounds: Rounds to time; each runs every entry ``steps_per_round`` times, in an order rotated by one
            entry per round.
        steps_per_round: Consecutive steps of one entry timed together in a round.
        warmup: Untimed steps per entry before the first round (first-call costs, compilation, caches).
        synchronize: Waits for queued device work (``torch.cuda.synchronize`` on a GPU); called before the
            clock starts and before it stops.

    Returns:
        Entry name -> its seconds per step in each round.
    """
    if rounds < 1 or steps_per_round < 1 or warmup < 0:
        raise ValueError(f'need rounds >= 1, steps_per_round >= 1 and warmup >= 0, got rounds={rounds}, '
                         f'steps_per_round={steps_per_round}, warmup={warmup}')
    names = list(steps)
    if not names:
        raise ValueError('no step functions to time')
    for name in names:
        for _ in range(warmup):
            steps[name]()
    seconds: Dict[str, List[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                synchronize()
                start = perf_counter()
                for _ in range(steps_per_round):
                    step()
                synchronize()
                elapsed = perf_counter() - start
            finally:
                if gc_was_enabled:
                    gc.enable()
            seconds[name].append(elapsed / steps_per_round)
    return {name: RoundTimes(times) for name, times in seconds.items()}
