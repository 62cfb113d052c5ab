"""TokenLearner v1 against the naive pooling of the seed (lab/layer_benchmark.py), from the source tree.

    python scripts/benchmark_layers.py --json results/benchmark_layers.json
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, which holds lab/

from lab.layer_benchmark import main

if __name__ == '__main__':
    sys.exit(main())
