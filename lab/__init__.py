"""The lab: tl_models' experiment harness, in the source tree only (not in the wheel).

- :mod:`.study`: studies (many training runs of one recipe, resumable), their speed, reports, plots and the cards
  of the weights they ship; study files in ``lab/studies/``; run with ``python scripts/study.py``.
- :mod:`.benchmark_targets`: the benchmark issue's targets, checked by ``python scripts/benchmark.py --check``.
- :mod:`.layer_benchmark`: TokenLearner v1 against the seed's naive pooling (``python scripts/benchmark_layers.py``).

It imports the installed package (``tl_models``) like any user code; nothing in ``tl_models`` imports it.
"""
