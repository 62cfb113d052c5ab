"""Run a study: train every (model, seed) of a study file not yet done, measure speed, report.

    python scripts/study.py lab/studies/cifar10.yaml --data-dir /tmp/data/cifar10
    python scripts/study.py lab/studies/cifar10.yaml --data-dir /tmp/data/cifar10 --only 'nano/*' --jobs 2 --threads 1
    python scripts/study.py lab/studies/cifar10.yaml --data-dir /tmp/data/cifar10 --no-train --speed
    python scripts/study.py lab/studies/cifar10.yaml --list          # what is done and what is left

Each finished run writes results/<study>/runs/<group>/<run>-seed<k>.json; a repeated command skips them,
so a study runs in parts (commit each part's results). Run folders go to runs/study/<study>/ (scratch).
--speed measures every model's training and inference img/s in one process (results/<study>/speed.json):
run it on an otherwise idle machine. Every command ends by writing the report (summary.md/.csv/.json, plots)
from what is there, and the cards of the shipped weights.
"""
import argparse
import fnmatch
import logging
import sys
from pathlib import Path

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.io import write_json
from tl_models.registry import VariantConfigError
from tl_models.registry.options import add_variants_option, register_variant_files
from tl_models.train import TrainConfigError

from . import StudyConfigError, StudySettings, load_study, pending_runs, result_path, run_study
from .cards import study_weights_dir, write_shipped_cards
from .report import load_speed, write_report
from .speed import measure_speed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('study', type=Path, help='study file, e.g. lab/studies/cifar10.yaml')
    parser.add_argument('--data-dir', default=None, help="dataset folder in timm's layout (e.g. /tmp/data/cifar10)")
    parser.add_argument('--results', type=Path, default=None, help='results folder (default: results/<study>)')
    parser.add_argument('--runs-dir', type=Path, default=None, help='run folders (default: runs/study/<study>)')
    parser.add_argument('--weights-dir', type=Path, default=None,
                        help="where shipped weights go (default: the study file's weights_dir, else the package's "
                             'configs/weights)')
    parser.add_argument('--only', nargs='+', default=None, metavar='PATTERN',
                        help="runs to do, as GROUP/RUN patterns (e.g. 'nano/*' 'micro/tl_*')")
    parser.add_argument('--seeds', nargs='+', type=int, default=None, help='only these seeds')
    parser.add_argument('--jobs', type=int, default=1, help='runs trained at the same time (default 1)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads per run (default: torch\'s choice)')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: cuda if available)")
    parser.add_argument('--pretrained-file', default=None, metavar='FILE',
                        help="weights for the runs that start pretrained (e.g. a converted backbone's "
                             'model.safetensors), instead of their model\'s default tag')
    parser.add_argument('--list', action='store_true', help='list the runs done and left, and stop')
    add_variants_option(parser)
    parser.add_argument('--no-train', action='store_true', help='train nothing; measure (--speed) and report')
    parser.add_argument('--speed', action='store_true',
                        help="measure every model's img/s (model only and end to end) into speed.json")
    parser.add_argument('--speed-threads', type=int, default=None, help='CPU threads for --speed (default: all)')
    parser.add_argument('--speed-rounds', type=int, default=5, help='interleaved timing rounds for --speed')
    parser.add_argument('--speed-batch-size', type=int, default=None,
                        help="images (clips) per step for --speed (default: the recipe's batch size)")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(message)s', stream=sys.stdout)
    try:
        register_variant_files(args.variants)
        spec = load_study(args.study)
    except (StudyConfigError, VariantConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    results = args.results or Path('results') / spec.name
    weights_dir = args.weights_dir or study_weights_dir(spec)
    settings = StudySettings(args.data_dir, results, args.runs_dir or Path('runs') / 'study' / spec.name, weights_dir,
                             args.device, args.jobs, args.threads, tuple(args.variants), args.pretrained_file)

    def selected(run) -> bool:
        return ((args.only is None or any(fnmatch.fnmatchcase(f'{run.group}/{run.name}', p) for p in args.only))
                and (args.seeds is None or run.seed in args.seeds))

    todo = pending_runs(spec, results, selected)
    if args.list:
        for run in spec.runs:
            state = 'done' if result_path(results, run).is_file() else 'to do' if run in todo else 'not selected'
            print(f'{state:13s}{run.group}/{run.key}')
        return 0
    try:
        if not args.no_train:
            print(f'{spec.name}: {len(todo)} run(s) to train, {args.jobs} at a time; results in {results}')
            run_study(spec, settings, todo)
        if args.speed:
            print(f'{spec.name}: measuring the speed of every model')
            write_json(results / 'speed.json', measure_speed(spec, args.data_dir, args.device, args.speed_threads,
                                                             rounds=args.speed_rounds,
                                                             batch_size=args.speed_batch_size))
    except (TrainConfigError, StudyConfigError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    rows = write_report(spec, results)
    write_shipped_cards(spec, rows, results, settings.weights_dir, (load_speed(results) or {}).get('environment'))
    print(f"{spec.name}: report in {results / 'summary.md'}")
    return 0




if __name__ == '__main__':
    sys.exit(main())
