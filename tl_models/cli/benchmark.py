"""Benchmark TokenLearner ViTs side by side with the plain timm ViTs a user would otherwise pick.

Measures, in one process with interleaved timing rounds: inference and training throughput and step latency,
parameters, GMACs (attention included) and peak memory, plus the share of forward time in the TokenLearner/
TokenFuser modules. Prints a table; writes <out>.csv, <out>.json and <out>.png.
Video variants (tl_vivit_*, by name or pattern) run on random clips [B, 3, T, H, W] beside their plain video
twin (vivit_*); their GMACs are per clip and their throughput in clips per second.

Examples:
    tl-benchmark --threads 2                                   # one variant per size + twins
    tl-benchmark --models 'tl_vit_base_patch16_224*' --threads 2
    tl-benchmark --models all --flops-only                     # parameters and GMACs only
    tl-benchmark --models 'tl_vivit_pico*' --threads 2         # video variants + plain video twin
    tl-benchmark --device cuda --batch-size 256 --precision bf16 --compile on
"""
import argparse
import ast
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tl_models.benchmark import (
    BenchmarkConfig,
    BenchmarkResult,
    default_output_prefix,
    format_table,
    plot_throughput_vs_gmacs,
    run_benchmark,
    write_csv,
    write_results_json,
)
from tl_models.benchmark.runner import COMPILE_CHOICES, MODES
from tl_models.benchmark.workloads import OPTIMIZERS, PRECISIONS
from tl_models.registry.options import add_variants_option, register_variant_files


def parse_model_args(items: List[str]) -> Dict[str, Any]:
    """``['depth=2', 'img_size=32']`` -> ``{'depth': 2, 'img_size': 32}`` (values are Python literals or strings)."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.isidentifier():
            raise argparse.ArgumentTypeError(f"--model-args: expected key=value such as depth=2, got '{item}'")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group('models')
    what.add_argument('--models', nargs='+', default=['default'], metavar='NAME',
                      help="timm or TokenLearner model names, patterns ('tl_vit_base_*', 'tl_vivit_pico*'), "
                           "'default' (one TokenLearner variant per size) or 'all' (every image variant); "
                           "default: default")
    what.add_argument('--no-twins', dest='add_twins', action='store_false',
                      help="don't add each TokenLearner variant's plain twin (timm ViT, or plain video model)")
    what.add_argument('--model-args', nargs='+', default=[], metavar='KEY=VALUE',
                      help='timm.create_model arguments for every model, e.g. depth=2 tokenlearner_loc=1 '
                           '(TokenLearner-only ones go to TokenLearner models alone)')
    what.add_argument('--img-size', type=int, help='image size for every model (default: each model\'s own)')
    how = parser.add_argument_group('measurement')
    how.add_argument('--batch-size', type=int, default=8, help='images (or clips) per step (default: 8)')
    how.add_argument('--threads', type=int, help="torch CPU threads (default: torch's own choice)")
    how.add_argument('--precision', choices=PRECISIONS, default='fp32', help='fp32, or bf16 autocast (default: fp32)')
    how.add_argument('--channels-last', action='store_true', help='channels-last images and weights')
    how.add_argument('--compile', choices=COMPILE_CHOICES, default='off',
                     help="torch.compile: 'off' (eager), 'on' (compiled) or 'both' side by side (default: off)")
    how.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:<index>' (default: cpu)")
    how.add_argument('--modes', nargs='+', choices=MODES, default=list(MODES),
                     help='what to time: infer and/or train (default: both)')
    how.add_argument('--optimizer', choices=OPTIMIZERS, default='adamw-fused',
                     help="training step's AdamW: PyTorch's fused kernel or its default implementation "
                          '(default: adamw-fused)')
    how.add_argument('--rounds', type=int, default=7, help='interleaved timing rounds; medians reported (default: 7)')
    how.add_argument('--steps', type=int, default=1, help='steps per entry per round (default: 1)')
    how.add_argument('--warmup', type=int, default=2, help='untimed steps per entry and mode (default: 2)')
    how.add_argument('--flops-only', action='store_true',
                     help='count parameters and GMACs only, on the meta device (seconds, no timing or memory)')
    out = parser.add_argument_group('output')
    out.add_argument('--out', type=Path,
                     help='output path without extension for .csv/.json/.png '
                          '(default: results/benchmark_<device>_<precision>_b<batch>_<date>)')
    out.add_argument('--no-plot', dest='plot', action='store_false', help="don't draw the plot")
    out.add_argument('--quiet', action='store_true', help="don't log progress to stderr")
    add_variants_option(what)
    return parser


def measure(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Tuple[BenchmarkConfig, BenchmarkResult]:
    """Runs the benchmark the parsed ``args`` ask for and prints its table; a bad argument stops in ``parser``."""
    try:
        model_args = parse_model_args(args.model_args)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    if args.img_size is not None:
        model_args['img_size'] = args.img_size
    logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    logging.getLogger('tl_models').setLevel(logging.WARNING if args.quiet else logging.INFO)
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(BenchmarkConfig) if hasattr(args, f.name)}
    config = BenchmarkConfig(**dict(options, model_args=model_args))
    try:
        register_variant_files(args.variants)
        result = run_benchmark(config)
    except ValueError as e:  # VariantConfigError included
        parser.error(str(e))
    print(f"{result.meta['device_name']} | torch {result.meta['torch']} | timm {result.meta['timm']} | "
          f"{config.precision} | batch {config.batch_size}")
    print(format_table(result.rows))
    return config, result


def write_outputs(args: argparse.Namespace, config: BenchmarkConfig, result: BenchmarkResult,
                  targets: Sequence[Dict[str, Any]] = ()) -> List[Path]:
    """Writes <out>.csv, <out>.json (with ``targets``, if any were checked) and <out>.png; returns the files."""
    prefix = args.out or default_output_prefix(result.meta)
    written = [prefix.parent / f'{prefix.name}.csv', prefix.parent / f'{prefix.name}.json']
    write_csv(written[0], result.rows)
    write_results_json(written[1], result.meta, result.rows, list(targets))
    if args.plot and not config.flops_only:
        written.append(prefix.parent / f'{prefix.name}.png')
        plot_throughput_vs_gmacs(written[-1], result.rows, result.meta)
    print('\nWrote ' + ', '.join(str(p) for p in written))
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config, result = measure(parser, args)
    write_outputs(args, config, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
