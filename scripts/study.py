"""Run a study of the lab (lab/studies/*.yaml): the experiment harness lives in the source tree, not in the wheel.

    python scripts/study.py lab/studies/cifar10.yaml --data-dir /tmp/data/cifar10 --jobs 2 --threads 1

See ``python scripts/study.py --help`` and lab/study/cli.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, which holds lab/

from lab.study.cli import main

if __name__ == '__main__':
    sys.exit(main())
