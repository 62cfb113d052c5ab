"""TokenLearner v1 against the naive pooling of the seed, which materialises ``[B, S, N, C]``.

Both compute the same spatial weights ``[B, S, N]`` with the same module (``TokenLearner._weights``); they
differ in the pooling: ours is one batched matmul ``weights @ tokens``, the naive one broadcasts
``weights[..., None] * tokens[:, None]`` to ``[B, S, N, C]`` and sums over N. Each layout the layer accepts
(``[B, C, H, W]`` and ``[B, N, C]``) is timed for both, in interleaved rounds (median per entry), under
``torch.inference_mode``. The issue's target: on 2 CPU cores at B=8, C=768, 14 x 14, S=8, ours takes at most a
quarter of the naive time (ratio naive / ours >= 4).
"""
import argparse
import dataclasses
import functools
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from tl_models.benchmark.environment import describe_environment
from tl_models.benchmark.timing import time_interleaved
from tl_models.io import write_json
from tl_models.layers import TokenLearner
from tl_models.layers.layout import flatten_tokens, token_grid

__all__ = ['LAYOUTS', 'LayerTiming', 'benchmark_token_learner', 'format_layer_timings', 'main', 'naive_token_learner']

LAYOUTS = ('BCHW', 'BNC')
TARGET_RATIO = 4.0


def naive_token_learner(module: TokenLearner, x: torch.Tensor,
                        grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """TokenLearner v1 as the seed pools: ``[B, C, H, W]`` or ``[B, N, C]`` -> ``[B, S, C]`` via ``[B, S, N, C]``."""
    tokens = flatten_tokens(x, module.in_channels, 'naive TokenLearner')  # [B, N, C]
    weights = module._weights(tokens, token_grid(x, grid_size, 'naive TokenLearner'))  # [B, S, N]
    pooled = (weights.unsqueeze(-1) * tokens.unsqueeze(1)).sum(2)  # [B, S, N, C] -> [B, S, C]
    return pooled if module.use_sum_pooling else pooled / tokens.shape[1]


@dataclasses.dataclass(frozen=True)
class LayerTiming:
    """Median milliseconds of ours and the naive pooling for one input layout, and their ratio."""
    layout: str
    ours_ms: float
    naive_ms: float

    @property
    def ratio(self) -> float:
        """How many times faster ours is: naive time / our time."""
        return self.naive_ms / self.ours_ms


def _without_autograd(function: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode():
            function()
    return step


def _inputs(batch: int, channels: int, height: int, width: int) -> Dict[str, torch.Tensor]:
    feature_map = torch.randn(batch, channels, height, width)
    return {'BCHW': feature_map, 'BNC': feature_map.flatten(2).transpose(1, 2).contiguous()}


def benchmark_token_learner(
        batch: int = 8,
        channels: int = 768,
        height: int = 14,
        width: int = 14,
        num_tokens: int = 8,
        rounds: int = 15,
        steps: int = 5,
        warmup: int = 3,
) -> List[LayerTiming]:
    """Times TokenLearner v1 against the naive pooling for both input layouts, interleaved.

    The two are first checked to agree (``torch.testing.assert_close``) on every layout.

    Returns:
        One :class:`LayerTiming` per layout, in :data:`LAYOUTS` order.
    """
    module = TokenLearner(num_tokens, channels).eval()
    inputs = _inputs(batch, channels, height, width)
    grid = (height, width)
    with torch.inference_mode():
        for x in inputs.values():
            torch.testing.assert_close(naive_token_learner(module, x, grid), module(x, grid), rtol=1e-4, atol=1e-4)

    steps_by_entry = {}
    for layout, x in inputs.items():
        steps_by_entry[f'ours {layout}'] = _without_autograd(functools.partial(module, x, grid))
        steps_by_entry[f'naive {layout}'] = _without_autograd(functools.partial(naive_token_learner, module, x, grid))
    times = time_interleaved(steps_by_entry, rounds, steps, warmup)
    return [LayerTiming(layout, 1e3 * times[f'ours {layout}'].median, 1e3 * times[f'naive {layout}'].median)
            for layout in LAYOUTS]


def format_layer_timings(timings: List[LayerTiming], target: float = TARGET_RATIO) -> str:
    """A table of the timings, each ratio marked against the target."""
    lines = [f"{'layout':6}  {'ours ms':>8}  {'naive ms':>8}  {'naive/ours':>10}  target >= {target:g}"]
    for t in timings:
        verdict = 'pass' if t.ratio >= target else 'FAIL'
        lines.append(f'{t.layout:6}  {t.ours_ms:8.3f}  {t.naive_ms:8.3f}  {t.ratio:10.2f}  {verdict}')
    return '\n'.join(lines)


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
