"""``tl-benchmark`` with the benchmark issue's targets (lab/benchmark_targets.py), from the source tree.

Takes every ``tl-benchmark`` option, prints the targets after the table, writes them into <out>.json, and with
``--check`` exits with status 1 when a measured target is missed:

    python scripts/benchmark.py --models 'tl_vit_base_patch16_224*' --threads 2 --check
"""
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, which holds lab/

from lab.benchmark_targets import evaluate_targets, failed, format_targets
from tl_models.cli.benchmark import build_parser, measure, write_outputs


def main(argv=None) -> int:
    parser = build_parser()
    parser.add_argument('--check', action='store_true', help='exit with status 1 if a measured target is missed')
    args = parser.parse_args(argv)
    config, result = measure(parser, args)
    targets = evaluate_targets(result.meta, result.rows)
    print('\nTargets:')
    print(format_targets(targets))
    write_outputs(args, config, result, [dataclasses.asdict(t) for t in targets])
    return 1 if args.check and failed(targets) else 0


if __name__ == '__main__':
    sys.exit(main())
