"""Studies: the study file, runs that resume and never repeat, speed, the report, targets and shipped cards.

Everything runs on the embedded digits on a tiny setting (no accuracy is asserted)."""
import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch
import yaml

import tl_models  # noqa: F401  (registers the tl_ models)
from lab.study import (
    StudyConfigError,
    StudySettings,
    load_study,
    pairwise_map_similarity,
    pending_runs,
    result_path,
    run_study,
)
from lab.study.cards import shipped_folder, write_shipped_cards
from lab.study.model_rows import ModelRow
from lab.study.plot import pareto_front
from lab.study.report import check_targets, format_table, summarise, write_report
from lab.study.speed import WORKLOADS, measure_speed

ROOT = Path(__file__).parents[1]
TINY = textwrap.dedent("""\
    description: A tiny study on the digits.
    dataset: digits
    dataset_description: scikit-learn's digits
    recipe: {preload: true, epochs: 1, warmup_epochs: 0, batch_size: 128, select: last}
    seeds: [0]
    groups:
      small:
        twin: vit_nano_d2_patch4_32
        runs:
          vit_nano_d2_patch4_32: {}
          tl_vit_pico_patch4_16_8at2: {ship: digits, seeds: [0, 1]}
    targets:
      min_top1: {run: small/tl_vit_pico_patch4_16_8at2, top1: 50.0}
      twin_match: {max_gmacs_ratio: 0.6, min_train_speedup: 1.5, max_top1_drop: 0.5}
      beat_equal_cost_plain: {margin: 1.0, cost_tolerance: 0.1}
    """)


def _study(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / 'tiny.yaml'
    path.write_text(text)
    return path


def _settings(tmp_path: Path, jobs: int = 1) -> StudySettings:
    return StudySettings(None, tmp_path / 'results', tmp_path / 'runs', tmp_path / 'weights', 'cpu', jobs, 1)


def test_the_shipped_study_files_parse():
    study = load_study(ROOT / 'lab' / 'studies' / 'cifar10.yaml')
    assert study.twins == {'nano': 'vit_nano_patch4_32', 'micro': 'vit_micro_patch4_32'}
    assert study.recipe['epochs'] == 20 and study.recipe['val_split'] == 'test' and study.recipe['select'] == 'last'
    assert {r.seed for r in study.runs if r.name == 'tl_vit_nano_patch4_32_8at2'} == {0, 1, 2}
    assert all(study.config(r, data_dir='DATA').epochs == 20 for r in study.runs)  # one recipe for every run
    tuning = load_study(ROOT / 'lab' / 'studies' / 'cifar10_tuning.yaml')
    assert all(tuning.config(r).holdout == 0.1 and tuning.config(r).val_split == 'validation' for r in tuning.runs)


@pytest.mark.parametrize('change, message', [
    (('seeds: [0]', 'seeds: [0, 0]'), r"key 'seeds': expected a non-empty list of distinct seeds"),
    (('twin: vit_nano_d2_patch4_32', 'twin: vit_other'), r"key 'groups.small.twin': expected the name of one"),
    (('{ship: digits, seeds: [0, 1]}', '{seeds: [1], ship: digits}'), r'the shipped weights are seed 0'),
    (('vit_nano_d2_patch4_32: {}', 'vit_nano_d2_patch4_32: {options: {epochs: 3}}'), r'epochs cannot be set here'),
    (('vit_nano_d2_patch4_32: {}', 'vit_nano_d2_patch4_32: {options: {lr: fast}}'), r"'lr' expects float"),
    (('vit_nano_d2_patch4_32: {}', 'vit_nano_d2: {}'), r"expected a registered timm model name, got 'vit_nano_d2'"),
    (('vit_nano_d2_patch4_32: {}', 'vit_nano_d2_patch4_32: {colour: red}'), r"unknown key; expected one of: model"),
    (('batch_size: 128', 'batch_sise: 128'), r"unknown option\(s\) 'batch_sise'"),
    (('top1: 50.0', 'top1: high'), r"key 'targets.min_top1.top1': expected a number"),
    (('small/tl_vit', 'big/tl_vit'), r"key 'targets.min_top1.run': expected GROUP/RUN of a run of this study"),
    (('description:', 'summary:'), r"key 'summary': unknown key"),
])
def test_bad_study_files_name_the_file_and_the_key(tmp_path, change, message):
    path = _study(tmp_path, TINY.replace(*change))
    with pytest.raises(StudyConfigError, match=message) as info:
        load_study(path)
    assert str(path) in str(info.value)


def test_runs_come_seed_by_seed_and_finished_ones_are_skipped(tmp_path):
    study = load_study(_study(tmp_path))
    assert [r.key for r in pending_runs(study, tmp_path)] == [
        'vit_nano_d2_patch4_32-seed0', 'tl_vit_pico_patch4_16_8at2-seed0', 'tl_vit_pico_patch4_16_8at2-seed1']
    done = result_path(tmp_path, study.runs[0])
    done.parent.mkdir(parents=True)
    done.write_text('{}')
    assert [r.key for r in pending_runs(study, tmp_path, lambda r: r.seed == 0)] == ['tl_vit_pico_patch4_16_8at2-seed0']


def test_a_run_folder_resumes_when_only_newer_settings_are_missing_from_its_config(tmp_path):
    from lab.study.runner import _resumable
    from tl_models.train import TrainConfig

    config = TrainConfig(model='vit_nano_d2_patch4_32', dataset='digits', epochs=3, seed=1)
    (tmp_path / 'checkpoints').mkdir()
    (tmp_path / 'checkpoints' / 'last.safetensors').write_bytes(b'')
    saved = json.loads(json.dumps(dataclasses.asdict(config)))
    del saved['distill_alpha'], saved['distill_from']  # settings added after this run began: their defaults
    saved['threads'] = 7  # a session setting may differ
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(saved))
    assert _resumable(tmp_path, config)
    assert not _resumable(tmp_path, dataclasses.replace(config, distill_alpha=0.9))
    assert not _resumable(tmp_path, dataclasses.replace(config, epochs=4))


@pytest.mark.slow
def test_a_study_trains_reports_and_ships_and_never_repeats_a_run(tmp_path):
    study = load_study(_study(tmp_path))
    settings = _settings(tmp_path)
    # a run that stopped after its first checkpoint resumes from it
    partial = settings.runs_dir / 'small' / 'tl_vit_pico_patch4_16_8at2-seed1'
    (partial / 'checkpoints').mkdir(parents=True)
    (partial / 'checkpoints' / 'junk.txt').write_text('not a checkpoint: the run starts afresh')
    results = run_study(study, settings, pending_runs(study, settings.results_dir), report=lambda _: None)
    assert len(results) == 3
    result = json.loads(result_path(settings.results_dir, study.runs[1]).read_text())
    assert result['model'] == 'tl_vit_pico_patch4_16_8at2' and result['held_out'] == 'validation'
    assert result['top1'] == result['summary']['last_top1'] and result['epoch'] == 1
    similarity = result['token_similarity']
    assert set(similarity) == {'token_learners.2'} and 0 < similarity['token_learners.2'] <= 1
    assert json.loads(result_path(settings.results_dir, study.runs[0]).read_text())['token_similarity'] == {}
    assert pending_runs(study, settings.results_dir) == []
    shipped = shipped_folder(settings.weights_dir, 'tl_vit_pico_patch4_16_8at2', 'digits')
    model = timm.create_model(f'local-dir:{shipped}', pretrained=True)
    assert model.num_classes == 10

    (settings.results_dir / 'speed.json').write_text(json.dumps(
        measure_speed(study, None, 'cpu', threads=1, rounds=1, steps=1)))
    rows = write_report(study, settings.results_dir)
    assert [(r.run, r.kind, r.seeds) for r in rows] == [
        ('vit_nano_d2_patch4_32', 'twin', [0]), ('tl_vit_pico_patch4_16_8at2', 'tokenlearner', [0, 1])]
    assert all(set(WORKLOADS) <= set(r.speed) for r in rows)
    for name in ('summary.md', 'summary.csv', 'summary.json', 'top1_vs_gmacs.png', 'top1_vs_train_speed.png',
                 'top1_vs_infer_speed.png'):
        assert (settings.results_dir / name).is_file()
    table = (settings.results_dir / 'summary.md').read_text()
    assert '| small | `tl_vit_pico_patch4_16_8at2` | tokenlearner | 0,1 |' in table
    assert write_shipped_cards(study, rows, settings.results_dir, settings.weights_dir) == [shipped]
    card = (shipped / 'README.md').read_text()
    assert f"| top-1 % on validation (this float32 file, seed 0, tl-validate) | {round(result['top1'], 2)} |" in card
    assert result['shipped']['top1'] == pytest.approx(result['top1'], abs=1e-6)  # the file, evaluated end to end
    description = json.loads((shipped / 'config.json').read_text())['pretrained_cfg']['description']
    assert "scikit-learn's digits" in description

    # a finished run folder of another configuration is not taken for the run's own: it trains afresh
    first = json.loads(result_path(settings.results_dir, study.runs[0]).read_text())
    trial = dataclasses.replace(study.runs[0], options={'lr': 1e-3})
    run_study(study, settings, [trial], report=lambda _: None)
    again = json.loads(result_path(settings.results_dir, trial).read_text())
    assert again['config']['lr'] == 1e-3 and again['history'][0]['train_loss'] != first['history'][0]['train_loss']


@pytest.mark.slow
def test_parallel_jobs_give_the_results_of_one_at_a_time(tmp_path):
    study = load_study(_study(tmp_path, TINY.replace('seeds: [0, 1]', 'seeds: [0]')))
    one, two = _settings(tmp_path / 'one'), _settings(tmp_path / 'two', jobs=2)
    run_study(study, one, pending_runs(study, one.results_dir), report=lambda _: None)
    run_study(study, two, pending_runs(study, two.results_dir), report=lambda _: None)
    for run in study.runs:
        a, b = (json.loads(result_path(s.results_dir, run).read_text()) for s in (one, two))
        assert a['top1'] == b['top1'] and a['history'][0]['train_loss'] == b['history'][0]['train_loss']


@pytest.mark.slow
@pytest.mark.parametrize('jobs', [1, 2])
def test_a_distilled_run_waits_for_its_teacher_and_reads_its_run_folder(tmp_path, jobs):
    text = TINY.replace('tl_vit_pico_patch4_16_8at2: {ship: digits, seeds: [0, 1]}',  # the student comes first
                        'distilled: {model: tl_vit_pico_patch4_16_8at2, teacher: teacher}\n'
                        '      teacher: {model: tl_vit_pico_patch4_16_8at2}')
    text = text.replace('small/tl_vit_pico_patch4_16_8at2', 'small/distilled')
    study = load_study(_study(tmp_path, text))
    settings = _settings(tmp_path, jobs=jobs)
    lines = []
    run_study(study, settings, pending_runs(study, settings.results_dir), report=lines.append)
    finished = [line.split(':')[0] for line in lines if line.startswith('finished')]
    assert finished.index('finished small/teacher-seed0') < finished.index('finished small/distilled-seed0')
    student = json.loads(result_path(settings.results_dir, study.runs[1]).read_text())
    assert student['run'] == 'distilled'
    assert student['config']['distill_from'] == str(settings.runs_dir / 'small' / 'teacher-seed0')
    assert student['summary']['teacher'] == student['config']['distill_from']


def test_a_teacher_must_be_another_run_of_the_group_with_seed_0(tmp_path):
    text = TINY.replace("{ship: digits, seeds: [0, 1]}", "{teacher: nobody}")
    with pytest.raises(StudyConfigError, match=r"teacher': expected another run of group 'small' with seed 0"):
        load_study(_study(tmp_path, text))


def _row(run, kind, top1, gmacs, speed=None, group='g') -> ModelRow:
    return ModelRow(group, run, run, kind, list(range(len(top1))), top1, gmacs, 1.0, speed or {})


def _with_twin(rows):
    twin = next(r for r in rows if r.kind == 'twin')
    for row in rows:
        row.twin_gmacs, row.twin_speed = twin.gmacs, twin.speed
    return rows


def test_targets_are_met_missed_or_open_from_the_rows():
    targets = load_study(ROOT / 'lab' / 'studies' / 'cifar10.yaml').targets
    rows = _with_twin([
        _row('vit_twin', 'twin', [80.0, 81.0], 10.0, {'train_model': 100.0}),
        _row('tl_a', 'tokenlearner', [80.2, 80.4], 5.5, {'train_model': 170.0}),
        _row('tl_b', 'tokenlearner', [79.0, 79.4], 5.0, {'train_model': 140.0}),
        _row('vit_narrow', 'plain', [79.0, 79.2], 5.3),
    ])
    checks = {c.target.split(' ')[1]: c for c in check_targets(rows, {k: v for k, v in targets.items()
                                                                        if k != 'min_top1'})}
    match = checks['TokenLearner']
    assert match.met is True and 'tl_a 80.30' in match.measured  # 0.55x GMACs, 1.7x speed, 0.2 points behind
    beat = checks['best']
    assert beat.met is True and 'difference +1.20' in beat.measured
    rows[1].top1 = [79.5, 79.7]
    assert [c.met for c in check_targets(rows, {'twin_match': targets['twin_match']})] == [False]
    no_speed = _with_twin([_row('vit_twin', 'twin', [80.0], 10.0), _row('tl_a', 'tokenlearner', [80.0], 5.0)])
    assert [c.met for c in check_targets(no_speed, {'twin_match': targets['twin_match']})] == [None]
    assert [c.met for c in check_targets(no_speed, {'beat_equal_cost_plain': targets['beat_equal_cost_plain']})] == [
        None]  # no plain ViT of that cost


def test_speed_feeds_each_run_its_own_image_size(tmp_path):
    """Two runs of one model at two image sizes, on timm's per-image loader (which sets its transform on the
    dataset): each is timed on images of its own size, once per (model, size)."""
    text = textwrap.dedent("""\
        recipe: {epochs: 1, batch_size: 16}
        groups:
          g:
            runs:
              small: {model: vit_nano_d2_patch4_32, options: {img_size: 16}}
              large: {model: vit_nano_d2_patch4_32, options: {img_size: 32}}
              again: {model: vit_nano_d2_patch4_32, options: {img_size: 32}}
        """)
    speed = measure_speed(load_study(_study(tmp_path, text)), None, 'cpu', threads=1, rounds=1, steps=1)
    assert set(speed['models']) == {'small', 'large', 'again'}
    assert speed['models']['large'] == speed['models']['again'] and all(set(WORKLOADS) <= set(v) for v in
                                                                         speed['models'].values())


def test_comparison_targets_name_runs_and_read_means_seeds_and_speed():
    rows = _with_twin([_row('plain_224', 'twin', [90.0, 92.0], 6.0, {'infer_model': 10.0}),
                       _row('plain_168', 'plain', [88.0, 88.0], 3.3, {'infer_model': 19.0}),
                       _row('tl_8at6', 'tokenlearner', [90.5, 90.5], 3.2, {'infer_model': 20.0}),
                       _row('distilled', 'tokenlearner', [89.0], 3.2)])
    targets = {
        'within': [{'run': 'g/tl_8at6', 'of': 'g/plain_224', 'points': 1.0},
                   {'run': 'g/distilled', 'of': 'g/plain_224', 'seed': 0, 'points': 0.5}],
        'beats': [{'run': 'g/tl_8at6', 'rival': 'g/plain_168'}, {'run': 'g/nothing', 'rival': 'g/plain_168'}],
        'closes_gap': [{'run': 'g/tl_8at6', 'low': 'g/plain_168', 'high': 'g/plain_224', 'fraction': 0.5}],
        'speedup': [{'run': 'g/tl_8at6', 'of': 'g/plain_224', 'workload': 'infer_model', 'min': 1.8},
                    {'run': 'g/tl_8at6', 'of': 'g/plain_224', 'workload': 'train_model', 'min': 1.6}],
    }
    checks = check_targets(rows, targets)
    assert [c.met for c in checks] == [True, False, True, None, True, True, None]
    assert '89.00 % (n=1) against 90.00 %: -1.00' in checks[1].measured  # seed 0 of the teacher, not the mean
    assert 'closes 83% of the 3.00-point gap' in checks[4].measured and '2.00x' in checks[5].measured


def test_comparison_targets_must_name_runs_of_the_study(tmp_path):
    text = TINY + '  beats:\n    - {run: small/vit_nano_d2_patch4_32, rival: small/nobody}\n'
    with pytest.raises(StudyConfigError, match=r"targets\.beats\[0\]\.rival': expected GROUP/RUN of a run"):
        load_study(_study(tmp_path, text))
    assert load_study(ROOT / 'lab' / 'studies' / 'imagenette.yaml').targets['within'][1]['seed'] == 0


def test_targets_rest_only_on_variants_with_as_many_seeds_as_the_twin():
    targets = load_study(ROOT / 'lab' / 'studies' / 'cifar10.yaml').targets
    rows = _with_twin([
        _row('vit_twin', 'twin', [80.0, 81.0], 10.0, {'train_model': 100.0}),
        _row('tl_one_seed', 'tokenlearner', [82.0], 5.5, {'train_model': 170.0}),
        _row('tl_two_seeds', 'tokenlearner', [79.0, 79.4], 5.0, {'train_model': 170.0}),
        _row('vit_narrow', 'plain', [79.0, 79.2], 5.3),
    ])
    match, beat = check_targets(rows, {k: v for k, v in targets.items() if k != 'min_top1'})
    assert match.met is False and 'tl_two_seeds 79.20' in match.measured and 'tl_one_seed' not in match.measured
    assert beat.met is False and 'best tl_two_seeds' in beat.measured and 'difference +0.10' in beat.measured
    rows[1].top1 = [82.0, 82.2]  # its second seed makes it count
    match, beat = check_targets(rows, {k: v for k, v in targets.items() if k != 'min_top1'})
    assert match.met is True and beat.met is True and 'best tl_one_seed' in beat.measured
    alone = _with_twin([_row('vit_twin', 'twin', [80.0, 81.0], 10.0, {'train_model': 100.0}),
                        _row('tl_one_seed', 'tokenlearner', [82.0], 5.5, {'train_model': 170.0})])
    assert [c.met for c in check_targets(alone, {'twin_match': targets['twin_match']})] == [None]


def test_speed_is_counted_in_clips_for_video_models_and_in_images_otherwise():
    targets = load_study(ROOT / 'lab' / 'studies' / 'cifar10.yaml').targets
    speed = {'train_model': 100.0}
    for twin, learner, unit in (('vit_nano_patch4_32', 'tl_vit_nano_patch4_32_8at2', 'img/s'),
                                ('vivit_pico_patch4_32_8f', 'tl_vivit_pico_patch4_32_8f_8at2', 'clips/s')):
        rows = _with_twin([ModelRow('g', twin, twin, 'twin', [0], [70.0], 10.0, 1.0, speed),
                           ModelRow('g', learner, learner, 'tokenlearner', [0], [70.0], 5.0, 1.0, speed)])
        header = format_table(rows).splitlines()[0]
        assert f'train {unit}, model only' in header and header.count('/s') == 4
        match = check_targets(rows, {'twin_match': targets['twin_match']})[0]
        assert f'training {unit}' in match.target and f'training {unit}' in match.measured


def test_rows_average_seeds_and_know_their_twin(tmp_path):
    study = load_study(_study(tmp_path))
    results = [dict(group='small', run='tl_vit_pico_patch4_16_8at2', seed=s, top1=t, token_similarity={'a': u})
               for s, t, u in ((1, 60.0, 0.5), (0, 58.0, 0.7))]
    results.append(dict(group='small', run='vit_nano_d2_patch4_32', seed=0, top1=70.0, token_similarity={}))
    rows = summarise(study, results)
    twin, learner = rows
    assert (learner.seeds, learner.top1, learner.mean) == ([0, 1], [58.0, 60.0], 59.0)
    assert learner.std == pytest.approx(2 ** 0.5) and learner.token_similarity == pytest.approx(0.6)
    assert twin.std is None and twin.token_similarity is None
    assert learner.gmacs_ratio == pytest.approx(learner.gmacs / twin.gmacs) and learner.speedup('train_model') is None


def test_rows_and_speed_build_each_run_with_its_own_model_arguments(tmp_path):
    """A run that moves its TokenLearner (model_kwargs) is counted and timed as that model, not as its variant."""
    text = textwrap.dedent("""\
        recipe: {epochs: 1, batch_size: 16}
        groups:
          g:
            runs:
              at_1: {model: tl_vit_pico_patch4_16_8at2, options: {model_kwargs: {tokenlearner_loc: 1}}}
              at_2: {model: tl_vit_pico_patch4_16_8at2}
              at_2_again: {model: tl_vit_pico_patch4_16_8at2, options: {model_kwargs: {tokenlearner_loc: 2}}}
        """)
    study = load_study(_study(tmp_path, text))
    assert study.architecture(study.runs[0]) == {'tokenlearner_loc': 1}
    rows = summarise(study, [dict(group='g', run=run.name, seed=0, top1=50.0) for run in study.runs])
    moved, variant, again = (row.gmacs for row in rows)
    assert moved < variant == again  # one block fewer on all 16 patch tokens
    speed = measure_speed(study, None, 'cpu', threads=1, rounds=1, steps=1)
    assert speed['models']['at_1'] != speed['models']['at_2']  # timed as two models


def test_pareto_front_keeps_models_nothing_cheaper_beats():
    rows = [_row('a', 'plain', [70.0], 1.0), _row('b', 'plain', [69.0], 2.0), _row('c', 'tokenlearner', [75.0], 3.0),
            _row('d', 'twin', [74.0], 4.0)]
    assert [r.run for r in pareto_front(rows, lambda r: r.gmacs, True)] == ['a', 'c']
    assert [r.run for r in pareto_front(rows, lambda r: -r.gmacs, False)] == ['a', 'c']


def test_map_similarity_is_one_for_copies_and_zero_for_disjoint_maps():
    same = torch.rand(3, 1, 4, 4).expand(3, 8, 4, 4)
    assert torch.allclose(pairwise_map_similarity(same), torch.ones(3))
    disjoint = torch.eye(16).reshape(1, 16, 4, 4)
    assert torch.allclose(pairwise_map_similarity(disjoint), torch.zeros(1))
    torch.manual_seed(0)
    noise = pairwise_map_similarity(torch.rand(50, 8, 16, 16))
    assert noise.mean().item() == pytest.approx(0.75, abs=0.01)
    with pytest.raises(ValueError, match=r'expected maps \[B, S, H, W\] or \[B, S, N\] with S >= 2'):
        pairwise_map_similarity(torch.rand(2, 1, 4, 4))


VIDEO = textwrap.dedent("""\
    description: A tiny video study on moving digits.
    recipe: {dataset: moving_digits, val_split: validation, epochs: 1, batch_size: 16}
    seeds: [0]
    groups:
      pico:
        twin: vivit_pico_patch4_32_8f
        runs:
          vivit_pico_patch4_32_8f: {}
          tl_vivit_pico_patch4_32_8f_8at2: {}
          vivit_pico_patch4_32_1f: {}
    """)


@pytest.mark.slow
def test_a_video_study_measures_token_maps_per_time_step_and_the_speed_of_clips(tmp_path):
    from tl_models.hub.card import Provenance
    from tl_models.hub.export import export_model
    from tl_models.visualize.similarity import token_map_similarity

    study = load_study(_study(tmp_path, VIDEO))
    learner_run = study.runs[1]
    torch.manual_seed(0)
    model = timm.create_model(learner_run.model, num_classes=40)
    folder = export_model(model, tmp_path / 'model', Provenance('Random weights for a test.'))
    similarity = token_map_similarity(folder, study.config(learner_run, data_dir=None, device='cpu'), limit=3)
    assert set(similarity) == {'token_learners.2'} and 0 < similarity['token_learners.2'] <= 1
    assert token_map_similarity(folder, study.config(learner_run, data_dir=None, device='cpu'), limit=1) != similarity

    speed = measure_speed(study, None, 'cpu', threads=1, rounds=1, steps=1)
    assert set(speed['models']) == {'vivit_pico_patch4_32_8f', 'tl_vivit_pico_patch4_32_8f_8at2',
                                    'vivit_pico_patch4_32_1f'}  # the one-frame model takes its 1-frame clips
    assert all(speed['models'][name][w] > 0 for name in speed['models'] for w in WORKLOADS)


def test_study_command_lists_runs_and_refuses_a_bad_file(tmp_path):
    study = _study(tmp_path)
    listed = subprocess.run([sys.executable, 'scripts/study.py', str(study), '--list', '--results',
                             str(tmp_path / 'r')], cwd=ROOT, capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines() == ['to do        small/vit_nano_d2_patch4_32-seed0',
                                          'to do        small/tl_vit_pico_patch4_16_8at2-seed0',
                                          'to do        small/tl_vit_pico_patch4_16_8at2-seed1']
    bad = _study(tmp_path, TINY.replace('groups:', 'grups:'))
    failed = subprocess.run([sys.executable, 'scripts/study.py', str(bad), '--list'], cwd=ROOT, capture_output=True,
                            text=True)
    assert failed.returncode == 2 and "key 'grups': unknown key" in failed.stderr
