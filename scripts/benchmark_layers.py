#!/usr/bin/env python
"""TokenLearner v1 against the naive pooling that materialises [B, S, N, C], for [B, C, H, W] and [B, N, C] inputs.

Times both in interleaved rounds (median), prints the ratio naive / ours per layout, and exits with status 1
when a ratio misses the target (default 4: ours takes at most a quarter of the naive time). The defaults are
the issue's setting: 2 threads, B=8, C=768, 14 x 14, S=8.

Example (from the repository root):
    python scripts/benchmark_layers.py --json results/benchmark_layers.json
"""
import argparse
import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

import torch

from tl_models.benchmark.environment import describe_environment
from tl_models.benchmark.layers import TARGET_RATIO, benchmark_token_learner, format_layer_timings
from tl_models.io import write_json


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', type=positive_int, default=2, help='torch CPU threads (default: 2)')
    parser.add_argument('--batch', type=positive_int, default=8, help='B (default: 8)')
    parser.add_argument('--channels', type=positive_int, default=768, help='C (default: 768)')
    parser.add_argument('--height', type=positive_int, default=14, help='H (default: 14)')
    parser.add_argument('--width', type=positive_int, default=14, help='W (default: 14)')
    parser.add_argument('--tokens', type=positive_int, default=8, help='S, learned tokens (default: 8)')
    parser.add_argument('--rounds', type=positive_int, default=15, help='interleaved rounds (default: 15)')
    parser.add_argument('--steps', type=positive_int, default=5, help='calls per entry per round (default: 5)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed calls per entry (default: 3)')
    parser.add_argument('--target', type=float, default=TARGET_RATIO,
                        help=f'required naive/ours time ratio (default: {TARGET_RATIO:g})')
    parser.add_argument('--json', type=Path, help='also write the settings and timings to this JSON file')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.warmup < 0:
        build_parser().error(f'--warmup must be 0 or more, got {args.warmup}')
    torch.set_num_threads(args.threads)
    timings = benchmark_token_learner(args.batch, args.channels, args.height, args.width, args.tokens,
                                      args.rounds, args.steps, args.warmup)
    print(f'TokenLearner v1, B={args.batch} C={args.channels} {args.height}x{args.width} S={args.tokens}, '
          f'{torch.get_num_threads()} threads')
    print(format_layer_timings(timings, args.target))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != 'json'}
        write_json(args.json, {
            'meta': describe_environment(torch.device('cpu')),
            'settings': settings,
            'timings': [dict(dataclasses.asdict(t), ratio=t.ratio) for t in timings],
        })
    return 0 if all(t.ratio >= args.target for t in timings) else 1


if __name__ == '__main__':
    sys.exit(main())
