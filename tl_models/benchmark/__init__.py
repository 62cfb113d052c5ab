"""Benchmarks: TokenLearner ViTs against their plain timm ViT twins, measured side by side.

:func:`run_benchmark` measures throughput, latency, parameters, GMACs, peak memory and the TokenLearner time share
of models in one process (the ``tl-benchmark`` command); :mod:`.report` and :mod:`.plot` write its table, CSV, JSON
and plot. The issue-style targets and the layer benchmark are experiments of the lab (``lab/`` in the source tree).
"""
from .flops import count_gmacs, count_params_m
from .peak_memory import memory_meter
from .plot import plot_throughput_vs_gmacs
from .report import add_comparisons, default_output_prefix, format_table, write_csv, write_results_json
from .runner import BenchmarkConfig, BenchmarkResult, run_benchmark
from .selection import ModelSpec, default_model_names, group_by_baseline, resolve_models, twin_name
from .time_share import token_module_time_share
from .timing import RoundTimes, time_interleaved

__all__ = [
    'BenchmarkConfig', 'BenchmarkResult', 'ModelSpec', 'RoundTimes', 'add_comparisons', 'count_gmacs',
    'count_params_m', 'default_model_names', 'default_output_prefix',
    'format_table', 'group_by_baseline', 'memory_meter', 'plot_throughput_vs_gmacs',
    'resolve_models', 'run_benchmark', 'time_interleaved', 'token_module_time_share', 'twin_name', 'write_csv',
    'write_results_json',
]

_MOVED_TO_LAB = ('TARGETS', 'evaluate_targets', 'failed', 'format_targets')


def __getattr__(name: str):
    """The benchmark issue's targets moved to the lab (source tree): a deprecated path for them."""
    if name in _MOVED_TO_LAB:
        from .._moved import moved_to_lab

        return getattr(moved_to_lab(f'tl_models.benchmark.{name}', 'lab.benchmark_targets'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
