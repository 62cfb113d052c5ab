"""Distillation from a trained plain ViT into its TokenLearner twin: loss, teacher, student start, runs, errors."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.data import DigitsDataset
from tl_models.train import TrainConfig, TrainConfigError, train
from tl_models.train.distill import DistillationLoss, init_student_from_teacher, load_teacher, teacher_source

TEACHER = 'vit_nano_patch4_32'  # a plain ViT ...
STUDENT = 'tl_vit_nano_patch4_32_8at2'  # ... and its TokenLearner twin (8 tokens after block 2)
TINY = dict(img_size=16, preload=True, epochs=1, warmup_epochs=0, threads=1)  # digits at 16 px: 16 patch tokens


@pytest.fixture(scope='module')
def teacher_run(tmp_path_factory) -> Path:
    """A plain ViT trained for one epoch on the digits: a run folder, usable as a teacher."""
    run = tmp_path_factory.mktemp('teacher') / 'run'
    train(TrainConfig(model=TEACHER, output=str(run), **TINY))
    return run


def _student(**kwargs) -> torch.nn.Module:
    return timm.create_model(STUDENT, num_classes=10, img_size=16, **kwargs)


def _distil(teacher_run: Path, output: Path, **overrides) -> dict:
    settings = dict(model=STUDENT, distill_from=str(teacher_run), output=str(output), **TINY)
    return train(TrainConfig(**{**settings, **overrides}))


def test_soft_loss_is_t_squared_kl_mixed_with_the_labels_loss(teacher_run):
    teacher = load_teacher(TrainConfig(distill_from=str(teacher_run)), torch.device('cpu'))
    student = _student()
    inputs, targets = torch.randn(4, 3, 16, 16), torch.tensor([0, 3, 5, 9])
    logits = student(inputs)
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    t = 3.0
    kl = (F.softmax(teacher_logits / t, -1) * (F.log_softmax(teacher_logits / t, -1)
                                               - F.log_softmax(logits / t, -1))).sum(-1).mean()
    loss = DistillationLoss(teacher, student, F.cross_entropy, alpha=0.25, temperature=t)
    expected = 0.25 * t * t * kl + 0.75 * F.cross_entropy(logits, targets)
    assert torch.allclose(loss(logits, inputs, targets), expected, atol=1e-6)
    pure = DistillationLoss(teacher, student, F.cross_entropy, alpha=1.0, temperature=t)
    assert torch.allclose(pure(logits, inputs, torch.full((4,), -7)), t * t * kl, atol=1e-6)  # labels not read
    assert pure.pop_teacher_seconds() > 0 and pure.pop_teacher_seconds() == 0


def test_teacher_gets_no_gradients_and_does_not_change(teacher_run):
    teacher = load_teacher(TrainConfig(distill_from=str(teacher_run)), torch.device('cpu'))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = _student()
    loss_fn = DistillationLoss(teacher, student, F.cross_entropy, alpha=0.5, temperature=2.0, feature_weight=1.0)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    inputs = torch.randn(4, 3, 16, 16)
    features = student.forward_features(inputs)
    loss_fn((student.forward_head(features), student.forward_head(features, pre_logits=True)), inputs,
            torch.tensor([1, 2, 3, 4])).backward()
    optimizer.step()
    assert not teacher.training and all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert student.blocks[0].attn.qkv.weight.grad is not None


def test_alpha_zero_without_feature_loss_never_runs_the_teacher(teacher_run):
    teacher = load_teacher(TrainConfig(distill_from=str(teacher_run)), torch.device('cpu'))
    student = _student()
    loss_fn = DistillationLoss(teacher, student, F.cross_entropy, alpha=0.0, temperature=1.0)
    teacher.forward_features = None  # would fail if called
    logits, targets = student(torch.randn(2, 3, 16, 16)), torch.tensor([1, 2])
    assert torch.equal(loss_fn(logits, torch.randn(2, 3, 16, 16), targets), F.cross_entropy(logits, targets))
    assert not loss_fn.runs_teacher


def test_student_starts_from_the_teachers_weights_with_fresh_tokenlearner(teacher_run):
    teacher = load_teacher(TrainConfig(distill_from=str(teacher_run)), torch.device('cpu'))
    student = _student()
    learner_before = {k: v.clone() for k, v in student.token_learners.state_dict().items()}
    start = init_student_from_teacher(student, teacher)
    assert start.from_teacher
    assert start.message == ("the student starts from the teacher's weights (new: token_learners); the teacher is its "
                             'plain twin, vit_nano_patch4_32')  # the registry's twin (tl_models.registry.twin_name)
    teacher_state = teacher.state_dict()
    for key, value in student.state_dict().items():
        if key.startswith('token_learners.'):
            assert torch.equal(value, learner_before[key.removeprefix('token_learners.')])
        else:
            assert torch.equal(value, teacher_state[key]), key  # blocks, norms, embeddings and the classifier
    # the blocks before the TokenLearner compute what the teacher's do
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(student.forward_intermediates(x, indices=[1], intermediates_only=True)[0],
                          teacher.forward_intermediates(x, indices=[1], intermediates_only=True)[0], atol=1e-6)


def test_student_that_does_not_fit_keeps_its_own_initialisation(teacher_run):
    teacher = load_teacher(TrainConfig(distill_from=str(teacher_run)), torch.device('cpu'))
    student = timm.create_model('vit_nano_w96_patch4_32', num_classes=10, img_size=16)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    start = init_student_from_teacher(student, teacher)
    assert not start.from_teacher
    assert start.message.startswith("the student keeps its own initialisation: the teacher's weights do not fit it")
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_video_student_starts_from_its_plain_video_twins_weights():
    teacher = timm.create_model('vivit_pico_patch4_32_8f', num_classes=40).eval()
    student = timm.create_model('tl_vivit_pico_patch4_32_8f_8at2', num_classes=40).eval()
    start = init_student_from_teacher(student, teacher)
    assert start.from_teacher
    assert start.message == ("the student starts from the teacher's weights (new: token_learners); the teacher is its "
                             'plain twin, vivit_pico_patch4_32_8f')
    teacher_state = teacher.state_dict()
    assert all(torch.equal(v, teacher_state[k]) for k, v in student.state_dict().items()
               if not k.startswith('token_learners.'))
    clips = torch.randn(2, 3, 8, 32, 32)
    assert torch.allclose(student.forward_intermediates(clips, indices=[1], intermediates_only=True)[0],
                          teacher.forward_intermediates(clips, indices=[1], intermediates_only=True)[0], atol=1e-6)


STUDENT_MEAN_STD = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
TEACHER_MEAN_STD = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@pytest.mark.parametrize('teacher_name, student_name, shape', [
    (TEACHER, STUDENT, (2, 3, 32, 32)),
    ('vivit_pico_patch4_32_8f', 'tl_vivit_pico_patch4_32_8f_8at2', (2, 3, 8, 32, 32)),
], ids=['images', 'clips'])
def test_teacher_sees_the_images_normalised_its_own_way(teacher_name, student_name, shape):
    teacher = timm.create_model(teacher_name, num_classes=10, pretrained_cfg_overlay=TEACHER_MEAN_STD).eval()
    student = timm.create_model(student_name, num_classes=10, pretrained_cfg_overlay=STUDENT_MEAN_STD).eval()
    inputs = torch.randn(shape)  # normalised the student's way
    per_channel = (1, 3) + (1,) * (len(shape) - 2)
    pixels = inputs * torch.tensor(STUDENT_MEAN_STD['std']).view(per_channel) + \
        torch.tensor(STUDENT_MEAN_STD['mean']).view(per_channel)
    teacher_inputs = (pixels - torch.tensor(TEACHER_MEAN_STD['mean']).view(per_channel)) / \
        torch.tensor(TEACHER_MEAN_STD['std']).view(per_channel)
    loss = DistillationLoss(teacher, student, F.cross_entropy, alpha=1.0, temperature=1.0)
    with torch.no_grad():
        logits = student(inputs)
        expected = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher(teacher_inputs), -1),
                            reduction='batchmean', log_target=True)
        assert torch.allclose(loss(logits, inputs, torch.zeros(2, dtype=torch.long)), expected, atol=1e-6)


@pytest.mark.slow
def test_distillation_run_reports_the_teacher_and_its_cost(teacher_run, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger='tl_models.train')
    summary = _distil(teacher_run, tmp_path / 'run', distill_feature_weight=0.5)
    assert any("the student starts from the teacher's weights" in r.getMessage() for r in caplog.records)
    assert summary['teacher'] == str(teacher_run) and summary['distill_feature_weight'] == 0.5
    assert summary['teacher_seconds'] > 0
    assert summary['student_train_images_per_second'] > summary['train_images_per_second']  # teacher time left out
    rows = (tmp_path / 'run' / 'metrics.csv').read_text().splitlines()
    assert rows[0].endswith(',teacher_seconds') and float(rows[1].split(',')[-1]) > 0
    card = (tmp_path / 'run' / 'model' / 'README.md').read_text()
    assert f'distilled from {teacher_run} (alpha 0.5, temperature 1, feature weight 0.5)' in card
    assert summary['started_from'] == f"the teacher's weights ({teacher_run})"
    assert f"**Started from:** the teacher's weights ({teacher_run})" in card
    model = timm.create_model(f"local-dir:{tmp_path / 'run' / 'model'}", pretrained=True)
    assert model.num_classes == 10 and torch.isfinite(model(torch.randn(1, 3, 16, 16))).all()


@pytest.mark.slow
def test_resumed_distillation_repeats_the_uninterrupted_run(teacher_run, tmp_path):
    options = dict(epochs=2, model_ema=True, mixup=0.8, cutmix=1.0, distill_feature_weight=0.5,
                   distill_temperature=2.0)
    _distil(teacher_run, tmp_path / 'straight', **options)
    _distil(teacher_run, tmp_path / 'resumed', stop_after_epoch=1, **options)
    _distil(teacher_run, tmp_path / 'resumed', resume=str(tmp_path / 'resumed'), **options)
    straight = load_file(tmp_path / 'straight' / 'checkpoints' / 'last.safetensors')
    resumed = load_file(tmp_path / 'resumed' / 'checkpoints' / 'last.safetensors')
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), 'weights, EMA or optimizer state differ'


@pytest.mark.slow
def test_bf16_and_compile_distil(teacher_run, tmp_path):
    summary = _distil(teacher_run, tmp_path / 'run', amp=True, compile=True, distill_feature_weight=0.5)
    assert np.isfinite(summary['selected_top1']) and summary['teacher_seconds'] > 0


def _unlabelled_folder(root: Path) -> Path:
    """train/: 120 digit images in one folder, no classes; validation/: labelled, one folder per digit."""
    digits = DigitsDataset('train')
    (root / 'train').mkdir(parents=True)
    for i in range(120):
        Image.fromarray(digits.images[i]).convert('RGB').save(root / 'train' / f'{i:03d}.png')
    for c in range(10):
        folder = root / 'validation' / str(c)
        folder.mkdir(parents=True)
        for i in np.flatnonzero(digits.targets == c)[-3:]:
            Image.fromarray(digits.images[i]).convert('RGB').save(folder / f'{i}.png')
    return root


@pytest.mark.slow
def test_pure_distillation_trains_on_an_unlabelled_folder(teacher_run, tmp_path):
    data = _unlabelled_folder(tmp_path / 'data')
    summary = _distil(teacher_run, tmp_path / 'run', data_dir=str(data), distill_alpha=1.0, batch_size=16)
    assert summary['num_classes'] == 10 and summary['optimizer_steps'] == 120 // 16  # (last partial batch dropped)
    config = json.loads((tmp_path / 'run' / 'model' / 'config.json').read_text())
    assert config['label_names'] == [str(c) for c in range(10)]  # from the labelled held-out folder
    with pytest.raises(TrainConfigError, match=r'has 1 classes, the teacher .* predicts 10; distil with labels from '
                                               r'data of the teacher\'s classes, or without labels'):
        _distil(teacher_run, tmp_path / 'labelled', data_dir=str(data), distill_alpha=0.5, batch_size=16)


@pytest.mark.slow
def test_distillation_under_torchrun_ddp_on_two_cpu_processes(teacher_run, tmp_path):
    root = Path(__file__).parents[1]
    run = tmp_path / 'ddp'
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m',
         'tl_models.cli.train', '--model', STUDENT, '--img-size', '16', '--epochs', '1', '--warmup-epochs', '0',
         '--threads', '1', '--distill-from', str(teacher_run), '--distill-feature-weight', '0.5', '--output', str(run)],
        cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['processes'] == 2 and summary['teacher'] == str(teacher_run)
    assert summary['optimizer_steps'] == (1437 // 2 + 1) // 64
    assert result.stdout.count("the student starts from the teacher's weights") == 1  # rank 0 reports


def test_run_folder_and_exported_folder_name_local_dir_teachers(teacher_run, tmp_path):
    assert teacher_source(str(teacher_run)) == f"local-dir:{teacher_run / 'model'}"
    assert teacher_source(str(teacher_run / 'model')) == f"local-dir:{teacher_run / 'model'}"
    assert teacher_source('vit_nano_patch4_32.cifar10') == 'vit_nano_patch4_32.cifar10'
    with pytest.raises(TrainConfigError, match=r'a folder must be a run folder \(with model/\) or an exported'):
        teacher_source(str(tmp_path))


def _corrupt_teacher(tmp_path: Path, teacher_run: Path) -> Path:
    folder = tmp_path / 'corrupt'
    folder.mkdir()
    (folder / 'config.json').write_bytes((teacher_run / 'model' / 'config.json').read_bytes())
    (folder / 'model.safetensors').write_bytes(b'not a safetensors file')
    return folder


@pytest.mark.parametrize('teacher, overrides, message', [
    ('vit_nano_patch4_23', {}, r"--distill-from: unknown model 'vit_nano_patch4_23'.*did you mean"),
    ('vit_nano_d2_patch4_32', {}, r'--distill-from vit_nano_d2_patch4_32: the teacher could not be loaded: '
                                  r'NoPretrainedWeightsError'),
    ('corrupt', {}, r'--distill-from .*corrupt: the teacher could not be loaded'),
    ('run', dict(num_classes=5), r'--num-classes 5 differs from the 10 classes the teacher .* predicts'),
    ('run', dict(img_size=32), r'the teacher takes \(3, 16, 16\) inputs, the student \(3, 32, 32\)'),
    ('run', dict(model='vit_nano_w96_patch4_32', distill_feature_weight=1.0),
     r'same width: the teacher has 128, the student 96'),
])
def test_bad_teachers_stop_before_training(teacher_run, tmp_path, teacher, overrides, message):
    source = {'run': str(teacher_run), 'corrupt': None}.get(teacher, teacher)
    if teacher == 'corrupt':
        source = str(_corrupt_teacher(tmp_path, teacher_run))
    settings = {**dict(model=STUDENT, distill_from=source, output=str(tmp_path / 'out'), **TINY), **overrides}
    with pytest.raises(TrainConfigError, match=message):
        train(TrainConfig(**settings))
    assert not (tmp_path / 'out' / 'checkpoints').exists()


@pytest.mark.parametrize('overrides, message', [
    (dict(distill_alpha=1.5), r"'distill_alpha' expects a weight in \[0, 1\], got 1.5"),
    (dict(distill_temperature=0.0), r"'distill_temperature' expects a positive number, got 0.0"),
    (dict(distill_feature_weight=-1.0), r"'distill_feature_weight' expects a weight >= 0, got -1.0"),
])
def test_bad_distillation_settings_are_refused(overrides, message):
    with pytest.raises(TrainConfigError, match=message):
        TrainConfig(**overrides)
