"""Benchmarks: TokenLearner ViTs against their plain timm ViT twins, and the TokenLearner layer on its own.

- :func:`run_benchmark`: throughput, latency, parameters, GMACs, peak memory and the TokenLearner time share of
  models measured side by side (``scripts/benchmark.py``).
- :mod:`.layers`: TokenLearner v1 against the naive pooling that materialises ``[B, S, N, C]``
  (``scripts/benchmark_layers.py``).
"""
from .flops import count_gmacs, count_params_m
from .memory import memory_meter
from .plot import plot_throughput_vs_gmacs
from .report import add_comparisons, default_output_prefix, format_table, write_csv, write_results_json
from .runner import BenchmarkConfig, BenchmarkResult, run_benchmark
from .selection import ModelSpec, default_model_names, group_by_baseline, resolve_models, twin_name
from .share import token_module_time_share
from .targets import TARGETS, evaluate_targets, failed, format_targets
from .timing import RoundTimes, time_interleaved

__all__ = [
    'TARGETS', 'BenchmarkConfig', 'BenchmarkResult', 'ModelSpec', 'RoundTimes', 'add_comparisons', 'count_gmacs',
    'count_params_m', 'default_model_names', 'default_output_prefix', 'evaluate_targets', 'failed',
    'format_table', 'format_targets', 'group_by_baseline', 'memory_meter', 'plot_throughput_vs_gmacs',
    'resolve_models', 'run_benchmark', 'time_interleaved', 'token_module_time_share', 'twin_name', 'write_csv',
    'write_results_json',
]
