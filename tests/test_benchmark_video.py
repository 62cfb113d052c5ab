"""The benchmark on video models (issue #15): plain video twins, MACs of clips, and a run on the pico video model.

Timings on a busy machine mean nothing here: the run is checked for what it reports, never for speed.
"""
import json
from pathlib import Path

import pytest
import timm
import torch

import tl_models  # noqa: F401  (registers the variants)
from lab.benchmark_targets import evaluate_targets
from tl_models.benchmark import count_gmacs, group_by_baseline, resolve_models, twin_name
from tl_models.benchmark.workloads import make_batch

from conftest import load_script

TL = 'tl_vivit_pico_patch4_32_8f_8at2'
TWIN = 'vivit_pico_patch4_32_8f'
CLIP = (3, 8, 32, 32)  # (C, T, H, W)


def pico_macs(tokenlearner: bool) -> int:
    """The pico video model's multiply-accumulates for one clip, counted by hand.

    Width C = 64, 4 blocks, MLP 4C, 1000 classes; tubelets 2 x 4 x 4 px give T' = 4 steps of N = 64 patches.
    TokenLearner v1.1 before block 2: per time step, an MLP C -> 64 -> S = 8 scores each patch, then the S
    weighted sums over the N patches.
    """
    channels, steps, patches, tokens = 64, 4, 64, 8
    embed = (3 * 2 * 4 * 4) * channels * steps * patches  # Conv3d: a 3 x 2 x 4 x 4 kernel per output value

    def block(length: int) -> int:  # qkv, projection, MLP; q @ k^T and scores @ v over all heads
        return length * channels * (3 * channels + channels + 2 * 4 * channels) + 2 * length * length * channels

    head = channels * 1000
    if not tokenlearner:
        return embed + 4 * block(steps * patches) + head
    learner = steps * patches * (channels * 64 + 64 * tokens) + steps * tokens * patches * channels
    return embed + 2 * block(steps * patches) + learner + 2 * block(steps * tokens) + head


def test_video_variant_is_compared_with_its_plain_video_twin():
    assert twin_name(TL) == TWIN
    assert twin_name('tl_vivit_small_patch16_224_16f_8at6') == 'vivit_small_patch16_224_16f'
    specs = resolve_models(['tl_vivit_pico*'])
    assert [(s.name, s.input_size, s.baseline) for s in specs] == [
        (TWIN, CLIP, None), (TL, CLIP, TWIN), (f'{TL}_fuse', CLIP, TWIN)]
    assert [len(g) for g in group_by_baseline(specs)] == [3]


def test_video_overrides_change_the_clip_size():
    specs = resolve_models([TL], {'img_size': 16, 'num_frames': 4})
    assert [s.input_size for s in specs] == [(3, 4, 16, 16), (3, 4, 16, 16)]


def test_video_macs_match_a_hand_count():
    for name, tokenlearner in ((TWIN, False), (TL, True)):
        with torch.device('meta'):
            model = timm.create_model(name)
        assert count_gmacs(model, CLIP) * 1e9 == pytest.approx(pico_macs(tokenlearner), abs=0.5)


def test_channels_last_video_batch_is_3d_channels_last():
    batch = make_batch(2, CLIP, 10, torch.device('cpu'), channels_last=True)
    assert batch.images.shape == (2, *CLIP) and batch.images.is_contiguous(memory_format=torch.channels_last_3d)


def test_video_target_judges_the_ratio_to_the_bound():
    meta = {'device': 'cpu', 'torch_threads': 2, 'config': {'precision': 'fp32', 'batch_size': 8, 'model_args': {}}}
    rows = [{'model': TL, 'compiled': False, 'infer_of_bound': 0.95, 'train_of_bound': 0.85}]
    video = {r.detail.split(' =')[0]: r.status for r in evaluate_targets(meta, rows) if 'video' in r.description}
    assert video == {'infer_of_bound': 'pass', 'train_of_bound': 'fail'}


@pytest.fixture(scope='module')
def script():
    return load_script('benchmark')


@pytest.mark.slow
def test_script_runs_the_pico_video_variant_beside_its_twin(script, tmp_path, capsys):
    out = tmp_path / 'video'
    args = ['--models', TL, '--batch-size', '2', '--rounds', '2', '--warmup', '1', '--threads', '1',
            '--out', str(out), '--quiet']
    assert script.main(args) == 0
    printed = capsys.readouterr().out
    assert f'{TWIN} ' in printed and f'{TL} ' in printed and 'frames' in printed
    data = json.loads(Path(f'{out}.json').read_text())
    twin, tl = data['rows']
    assert (twin['model'], tl['model'], tl['baseline']) == (TWIN, TL, TWIN)
    assert twin['frames'] == tl['frames'] == 8 and tl['img_size'] == 32
    assert tl['gmacs'] * 1e9 == pytest.approx(pico_macs(True), abs=0.5)
    assert tl['flop_bound'] == pytest.approx(pico_macs(False) / pico_macs(True))
    for mode in ('infer', 'train'):
        assert tl[f'{mode}_speedup'] > 0
        assert tl[f'{mode}_of_bound'] == pytest.approx(tl[f'{mode}_speedup'] / tl['flop_bound'])
    assert 0 < tl['tl_share_pct'] < 100
    video_targets = [t for t in data['targets'] if t['description'].startswith('video')]
    assert len(video_targets) == 2 and {t['status'] for t in video_targets} == {'n/a'}  # not the targets' setting
    header = Path(f'{out}.csv').read_text().splitlines()[0].split(',')
    assert {'frames', 'flop_bound', 'infer_of_bound', 'train_of_bound'} <= set(header)
    assert Path(f'{out}.png').read_bytes().startswith(b'\x89PNG')
