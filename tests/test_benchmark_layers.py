"""The layer benchmark of TokenLearner v1 against the naive [B, S, N, C] pooling, at a tiny size (no timing checks)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab.layer_benchmark import LAYOUTS, benchmark_token_learner, format_layer_timings, naive_token_learner
from tl_models.layers import TokenLearner

from conftest import randomize_
from reference import token_learner_v1

ROOT = Path(__file__).resolve().parents[1]
TINY = ['--batch', '2', '--channels', '16', '--height', '4', '--width', '3', '--tokens', '2', '--rounds', '2',
        '--steps', '1', '--warmup', '0']


@pytest.mark.parametrize('use_sum_pooling', [True, False])
def test_naive_pooling_matches_the_float64_reference_in_both_layouts(use_sum_pooling):
    module = randomize_(TokenLearner(3, 16, use_sum_pooling=use_sum_pooling), std=0.3).eval()
    feature_map = torch.randn(2, 16, 4, 5)
    tokens = feature_map.flatten(2).transpose(1, 2)
    expected = token_learner_v1(module, tokens.double(), (4, 5), use_sum_pooling).float()
    torch.testing.assert_close(naive_token_learner(module, feature_map), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(naive_token_learner(module, tokens, (4, 5)), expected, rtol=1e-4, atol=1e-4)


def test_benchmark_times_both_layouts():
    timings = benchmark_token_learner(batch=2, channels=16, height=4, width=3, num_tokens=2, rounds=2, steps=1,
                                      warmup=1)
    assert [t.layout for t in timings] == list(LAYOUTS)
    assert all(t.ours_ms > 0 and t.naive_ms > 0 and t.ratio == t.naive_ms / t.ours_ms for t in timings)
    table = format_layer_timings(timings, target=0.0).splitlines()
    assert len(table) == 3 and all(line.endswith('pass') for line in table[1:])
    assert all(line.endswith('FAIL') for line in format_layer_timings(timings, target=1e9).splitlines()[1:])


@pytest.mark.slow
def test_script_passes_and_writes_json(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / 'scripts' / 'benchmark_layers.py'), *TINY, '--target', '0',
         '--json', str(tmp_path / 'layers.json')], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'naive/ours' in done.stdout and 'BCHW' in done.stdout and 'BNC' in done.stdout
    data = json.loads((tmp_path / 'layers.json').read_text())
    assert data['settings']['channels'] == 16 and [t['layout'] for t in data['timings']] == list(LAYOUTS)
    assert data['meta']['torch_threads'] == 2


@pytest.fixture
def script():
    """scripts/benchmark_layers.py as a module, to call its main() in-process."""
    spec = importlib.util.spec_from_file_location('benchmark_layers_script', ROOT / 'scripts' / 'benchmark_layers.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_fails_when_the_target_is_missed(script, capsys):
    assert script.main([*TINY, '--target', '1e9']) == 1
    assert 'FAIL' in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [(['--batch', '0'], 'expected a positive integer, got 0'),
                                           (['--warmup', '-1'], '--warmup must be 0 or more, got -1')])
def test_script_rejects_bad_sizes(script, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
