"""The benchmark end to end on tiny models: the library call and scripts/benchmark.py (no timing assertions)."""
import csv
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import tl_models  # noqa: F401  (registers the variants)
from tl_models.benchmark import BenchmarkConfig, count_gmacs, run_benchmark

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = {'depth': 2, 'tokenlearner_loc': 1, 'img_size': 32}
TL = 'tl_vit_tiny_patch16_224_8at6'
TWIN = 'vit_tiny_patch16_224'


def tiny_config(**overrides) -> BenchmarkConfig:
    settings = dict(models=[TL, f'{TL}_fuse'], model_args=TINY_ARGS, batch_size=2, rounds=2, warmup=1, threads=2)
    return BenchmarkConfig(**dict(settings, **overrides))


@pytest.mark.slow
def test_run_measures_every_column_of_twin_and_variants():
    result = run_benchmark(tiny_config())
    rows = result.rows
    assert [(r['model'], r['compiled']) for r in rows] == [(TWIN, False), (TL, False), (f'{TL}_fuse', False)]
    twin, tl, fuse = rows
    expected_gmacs = count_gmacs(timm.create_model(TL, **TINY_ARGS), (3, 32, 32))
    assert tl['gmacs'] == pytest.approx(expected_gmacs)
    for r in rows:
        for mode in ('infer', 'train'):
            assert r[f'{mode}_ips'] > 0 and r[f'{mode}_ms'] > 0 and r[f'{mode}_peak_mb'] > 0
            assert r[f'{mode}_ips'] == pytest.approx(2 / (r[f'{mode}_ms'] / 1e3))
            assert len(r[f'{mode}_round_s']) == 2
        assert r['img_size'] == 32 and r['batch_size'] == 2
    assert 'tl_share_pct' not in twin and 0 < tl['tl_share_pct'] < 100 and 0 < fuse['tl_share_pct'] < 100
    assert tl['baseline'] == TWIN and tl['flop_bound'] == pytest.approx(twin['gmacs'] / tl['gmacs'])
    paired = statistics.median(t / o for t, o in zip(twin['infer_round_s'], tl['infer_round_s']))
    assert tl['infer_of_bound'] == pytest.approx(paired / tl['flop_bound'])  # per-round ratios, paired
    assert tl['train_peak_mb'] > tl['infer_peak_mb']  # gradients and AdamW state
    meta = result.meta
    assert meta['torch_threads'] == 2 and meta['memory_method'].startswith('rss')
    assert meta['config']['model_args'] == TINY_ARGS and meta['torch'] == torch.__version__


@pytest.mark.slow
def test_run_times_only_the_chosen_mode_without_twins():
    rows = run_benchmark(tiny_config(models=[TL], add_twins=False, modes=['infer'], rounds=1)).rows
    assert [r['model'] for r in rows] == [TL]
    assert 'infer_ips' in rows[0] and 'train_ips' not in rows[0] and 'train_peak_mb' not in rows[0]
    assert 'flop_bound' not in rows[0]


def test_flops_only_builds_nothing_real():
    result = run_benchmark(BenchmarkConfig(models=['tl_vit_base_patch16_384_8at6'], flops_only=True))
    assert [r['model'] for r in result.rows] == ['vit_base_patch16_384', 'tl_vit_base_patch16_384_8at6']
    assert result.rows[1]['gmacs'] == pytest.approx(28.7, rel=0.05)
    assert 'infer_ips' not in result.rows[1] and 'memory_method' not in result.meta


@pytest.mark.parametrize('overrides, message', [
    (dict(batch_size=0), 'batch_size must be at least 1, got 0'),
    (dict(rounds=0), 'rounds must be at least 1'),
    (dict(threads=0), 'threads must be at least 1'),
    (dict(precision='fp16'), 'precision must be one of fp32, bf16'),
    (dict(compile='yes'), 'compile must be one of off, on, both'),
    (dict(modes=['eval']), 'modes must be one or both of infer, train'),
    (dict(modes=['infer', 'infer']), 'each once'),
    (dict(optimizer='sgd'), 'optimizer must be one of adamw-fused, adamw'),
    (dict(compile='on', warmup=0), r'warmup must be at least 1 \(the first compiled step compiles\)'),
    (dict(device='tpu'), "device must be 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"),
    (dict(models=['vit_bsae_patch16_224']), "unknown model 'vit_bsae_patch16_224'.*did you mean.*vit_base_patch16_224"),
])
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        run_benchmark(tiny_config(**overrides))


def test_missing_cuda_is_reported(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available here"):
        run_benchmark(tiny_config(device='cuda'))


@pytest.fixture(scope='module')
def script():
    """scripts/benchmark.py as a module, to call its main() in-process."""
    spec = importlib.util.spec_from_file_location('benchmark_script', ROOT / 'scripts' / 'benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_script_writes_table_csv_json_and_plot(tmp_path):
    out = tmp_path / 'bench' / 'tiny'
    done = run_script('--models', TL, '--model-args', 'depth=2', 'tokenlearner_loc=1', '--img-size', '32',
                      '--batch-size', '2', '--rounds', '2', '--warmup', '1', '--threads', '2', '--out', str(out),
                      '--check', '--quiet')
    assert done.returncode == 0, done.stderr
    assert f'{TWIN} ' in done.stdout and f'{TL} ' in done.stdout and 'Targets:' in done.stdout
    with open(f'{out}.csv', newline='') as f:
        assert [r['model'] for r in csv.DictReader(f)] == [TWIN, TL]
    data = json.loads(Path(f'{out}.json').read_text())
    assert data['meta']['config']['model_args'] == {'depth': 2, 'tokenlearner_loc': 1, 'img_size': 32}
    assert {t['status'] for t in data['targets']} == {'n/a'}  # tiny models: no target applies
    assert Path(f'{out}.png').read_bytes().startswith(b'\x89PNG')


def test_script_flops_only_passes_the_flop_targets(script, tmp_path, capsys):
    args = ['--models', 'tl_vit_base_patch16_384_8at6', 'vit_base_patch16_224', '--flops-only',
            '--out', str(tmp_path / 'flops'), '--check', '--quiet']
    assert script.main(args) == 0
    assert capsys.readouterr().out.count('[PASS]') == 3  # 17.6 for ViT-B/16, 28.7 and 55.6 within 5%
    assert not (tmp_path / 'flops.png').exists() and (tmp_path / 'flops.json').exists()


def test_script_check_fails_on_a_missed_target(script, tmp_path, monkeypatch):
    monkeypatch.setattr(script, 'failed', lambda results: list(results))
    args = ['--models', 'vit_base_patch16_224', '--flops-only', '--out', str(tmp_path / 'f'), '--quiet']
    assert script.main(args) == 0
    assert script.main([*args, '--check']) == 1


@pytest.mark.parametrize('args, message', [
    (['--models', 'tl_vit_base_patch16_224_8at7'], 'did you mean tl_vit_base_patch16_224_8at6'),
    (['--model-args', 'depth'], "expected key=value such as depth=2, got 'depth'"),
    (['--precision', 'fp16'], "invalid choice: 'fp16'"),
    (['--batch-size', '0', '--flops-only'], 'batch_size must be at least 1'),
])
def test_script_rejects_bad_input(script, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
