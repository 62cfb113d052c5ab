"""Video data and training: the moving-digits task, clip sampling, clip folders, runs, resume, DDP, bad input."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.data import DigitsDataset, build_loader, load_split, model_input
from tl_models.data import moving_digits as md
from tl_models.data.clips import ClipSampling
from tl_models.evaluate import validate
from tl_models.runtime import Distributed
from tl_models.train import TrainConfig, TrainConfigError, train

MODEL = 'tl_vivit_pico_patch4_32_8f_8at2'
SINGLE_FRAME = 'vivit_pico_patch4_32_1f'
CPU = Distributed(torch.device('cpu'))
QUICK = dict(model=MODEL, epochs=2, warmup_epochs=1, batch_size=32, threads=1)


@pytest.fixture
def few_clips(monkeypatch):
    """Moving digits with 128 training and 64 validation clips (the task's design, a fraction of its size)."""
    monkeypatch.setitem(md.SPLITS, 'train', (128, 0))
    monkeypatch.setitem(md.SPLITS, 'validation', (64, 1))


def _clips_of(split: str) -> md.MovingDigits:
    return load_split(TrainConfig(model=MODEL), split, model_input(MODEL)).dataset


# --- the task ------------------------------------------------------------------------------------------------------

def test_the_middle_frame_is_the_same_in_every_direction_but_the_clips_differ():
    digits = md.scale_digits(DigitsDataset('train').images[:5])
    for speed in md.SPEEDS:
        reach = 4 * speed
        for middle in ([reach, reach], [md.CANVAS - md.DIGIT_SIZE - reach, 10]):
            directions = np.arange(4)
            corners = md.trajectories(directions, np.full(4, speed), np.array([middle] * 4))
            clips = md.render_clips(np.repeat(digits[:1], 4, axis=0), corners)  # one digit, 4 directions
            assert all(np.array_equal(clips[0, md.MIDDLE_FRAME], c[md.MIDDLE_FRAME]) for c in clips)
            assert len({c.tobytes() for c in clips}) == 4


def test_middle_frame_positions_do_not_depend_on_the_direction():
    data = _clips_of('train')
    middle = data.corners[:, md.MIDDLE_FRAME]  # [N, 2]
    for speed in md.SPEEDS:
        per_direction = [middle[(data.directions == d) & (data.speeds == speed)] for d in range(4)]
        supports = {(tuple(m.min(axis=0)), tuple(m.max(axis=0))) for m in per_direction}
        assert len(supports) == 1  # the same range of positions on both axes in every direction
        means = np.array([m.mean(axis=0) for m in per_direction])
        assert np.abs(means - middle[data.speeds == speed].mean(axis=0)).max() < 0.6  # px, sampling noise only


def test_the_label_is_the_digit_and_the_direction_the_pixels_move():
    data = _clips_of('validation')
    assert data.clips.dtype == np.uint8 and data.clips.shape == (600, md.FRAMES, md.CANVAS, md.CANVAS)
    grid = np.arange(md.CANVAS)
    mass = data.clips.astype(np.float64).sum(axis=(2, 3))  # [N, T]
    centre_y = (data.clips.sum(axis=3) * grid).sum(axis=2) / mass  # [N, T], the ink's centre of mass
    centre_x = (data.clips.sum(axis=2) * grid).sum(axis=2) / mass
    moved = np.stack([centre_y[:, -1] - centre_y[:, 0], centre_x[:, -1] - centre_x[:, 0]], axis=1)  # [N, 2]
    seen = np.argmax(np.concatenate([moved[:, 1:], -moved[:, 1:], moved[:, :1], -moved[:, :1]], axis=1), axis=1)
    assert np.array_equal(data.targets % 4, seen)  # right, left, down, up
    assert data.classes[int(data.targets[0])] == f'{data.targets[0] // 4}_{md.DIRECTIONS[data.targets[0] % 4]}'


def test_moving_digits_splits_are_deterministic_and_use_disjoint_digits():
    train_set, again = _clips_of('train'), _clips_of('train')
    assert np.array_equal(train_set.clips, again.clips) and np.array_equal(train_set.targets, again.targets)
    assert len(train_set) == md.SPLITS['train'][0] and len(np.unique(train_set.targets)) == 40
    with pytest.raises(TrainConfigError, match=r"moving_digits has the splits 'train' and 'validation', got 'x'"):
        _clips_of('x')


# --- clip sampling -------------------------------------------------------------------------------------------------

def test_a_single_frame_model_sees_the_middle_frame(few_clips):
    model = timm.create_model(SINGLE_FRAME, num_classes=40)
    config = TrainConfig(model=SINGLE_FRAME, batch_size=16)
    split = load_split(config, 'validation', model_input(model))
    data_config = timm.data.resolve_input_data_config(model)
    clips, _ = next(iter(build_loader(split, data_config, config, False, CPU, inputs=model_input(model))))
    assert clips.shape == (16, 3, 1, 32, 32)
    middle = torch.from_numpy(split.dataset.clips[:16, md.MIDDLE_FRAME]).float() / 255  # [16, 32, 32]
    torch.testing.assert_close(clips[:, 0, 0], (middle - 0.5) / 0.5)
    assert model(clips).shape == (16, 40)


def test_clip_sampling_takes_a_random_stretch_in_training_and_the_centre_in_evaluation():
    sampling = ClipSampling(num_frames=3, stride=2, size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert sampling.span == 5
    assert sampling.frame_indices(torch.tensor([5, 9, 10]), False).tolist() == [[0, 2, 4], [2, 4, 6], [2, 4, 6]]
    torch.manual_seed(0)
    frames = sampling.frame_indices(torch.full((1000,), 9), True)  # [1000, 3]
    assert set(frames[:, 0].tolist()) == {0, 1, 2, 3, 4} and (frames.diff(dim=1) == 2).all()


# --- runs ----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_epoch_on_moving_digits_exports_a_model_that_validates_the_same(tmp_path, few_clips, caplog):
    caplog.set_level(logging.INFO, logger='tl_models.train')
    run = tmp_path / 'run'
    summary = train(TrainConfig(output=str(run), **dict(QUICK, epochs=1, warmup_epochs=0)))
    assert any('(40 classes, 128 train / 64 held-out clips)' in r.getMessage() for r in caplog.records)
    assert summary['model'] == MODEL and summary['dataset'] == 'moving_digits' and summary['num_classes'] == 40
    assert summary['epochs'] == 1 and summary['optimizer_steps'] == 128 // 32 and 0 <= summary['best_top1'] <= 100
    model = timm.create_model(f"local-dir:{run / 'model'}", pretrained=True)
    assert model.pretrained_cfg['input_size'] == (3, 8, 32, 32) and model.num_classes == 40
    assert json.loads((run / 'model' / 'config.json').read_text())['label_names'][:2] == ['0_right', '0_left']
    metrics = validate(f"local-dir:{run / 'model'}", TrainConfig())
    assert metrics['images'] == 64 and metrics['top1'] == pytest.approx(summary['best_top1'], abs=1e-6)
    assert validate(str(run), TrainConfig())['top1'] == pytest.approx(summary['best_top1'], abs=1e-6)


@pytest.mark.slow
def test_the_single_frame_baseline_trains(tmp_path, few_clips):
    summary = train(TrainConfig(output=str(tmp_path / 'run'), **dict(QUICK, model=SINGLE_FRAME, epochs=1,
                                                                      warmup_epochs=0)))
    assert summary['model'] == SINGLE_FRAME and summary['optimizer_steps'] == 4


@pytest.mark.slow
def test_a_resumed_video_run_ends_with_the_same_weights(tmp_path, few_clips):
    config = dict(QUICK, model_ema=True, mixup=0.2, seed=3)
    train(TrainConfig(output=str(tmp_path / 'straight'), **config))
    train(TrainConfig(output=str(tmp_path / 'resumed'), stop_after_epoch=1, **config))
    assert train(TrainConfig(resume=str(tmp_path / 'resumed'), **config))['epochs'] == 2
    straight = load_file(tmp_path / 'straight' / 'checkpoints' / 'last.safetensors')
    resumed = load_file(tmp_path / 'resumed' / 'checkpoints' / 'last.safetensors')
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), 'weights, EMA or optimizer state differ'


# --- clip folders --------------------------------------------------------------------------------------------------

def _frames(count: int, shade: int, size: int = 16) -> np.ndarray:
    """``count`` grey frames ``[T, size, size, 3]``: frame i has brightness ``shade + 16 * i``."""
    return np.stack([np.full((size, size, 3), shade + 16 * i, dtype=np.uint8) for i in range(count)])


def _write_mp4(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), 'w') as container:
        stream = container.add_stream('mpeg4', rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_frame_folder(path: Path, frames: np.ndarray) -> None:
    path.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f'{i:04d}.png')


def _clip_folder(root: Path, per_class: int = 2, frames: int = 12) -> Path:
    """``root/{train,validation}/{dark,light}/``: mp4 files and frame folders of ``frames`` frames."""
    for split in ('train', 'validation'):
        for label, shade in (('dark', 0), ('light', 60)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                if i % 2:
                    _write_frame_folder(folder / f'clip{i}', _frames(frames, shade))
                else:
                    _write_mp4(folder / f'clip{i}.mp4', _frames(frames, shade))
    return root


def test_clip_folders_read_video_files_and_frame_folders_centre_clip_in_evaluation(tmp_path):
    data = _clip_folder(tmp_path / 'data')
    model = timm.create_model(MODEL, num_classes=2)
    config = TrainConfig(model=MODEL, data_dir=str(data), batch_size=4, clip_stride=1)
    split = load_split(config, 'validation', model_input(model))
    assert split.class_names == ['dark', 'light'] and split.description == f'video folder {data}'
    clips, targets = next(iter(build_loader(split, timm.data.resolve_input_data_config(model), config, False, CPU,
                                            inputs=model_input(model))))
    assert clips.shape == (4, 3, 8, 32, 32) and targets.tolist() == [0, 0, 1, 1]
    brightness = (clips * 0.5 + 0.5).mean(dim=(1, 3, 4)) * 255  # [B, T]
    expected = torch.tensor([0, 0, 60, 60])[:, None] + 16 * torch.arange(2, 10)  # the 8 centre frames of 12
    torch.testing.assert_close(brightness, expected.float().expand(4, 8), atol=3, rtol=0)  # mp4 is lossy


@pytest.mark.slow
def test_training_on_a_clip_folder(tmp_path):
    data = _clip_folder(tmp_path / 'data')
    summary = train(TrainConfig(output=str(tmp_path / 'run'), data_dir=str(data), clip_stride=1,
                                **dict(QUICK, batch_size=2)))
    assert summary['dataset'] == f'video folder {data}' and summary['num_classes'] == 2
    assert summary['optimizer_steps'] == 2 * 2


def _torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """tl-train on 2 gloo processes, with moving digits of 128 training and 64 validation clips."""
    root = Path(__file__).parents[1]
    script = tmp_path / 'train_few_clips.py'
    script.write_text('import sys\n'
                      'from tl_models.cli.train import main\n'
                      'from tl_models.data import moving_digits\n'
                      'moving_digits.SPLITS.update(train=(128, 0), validation=(64, 1))\n'
                      'sys.exit(main())\n')
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(script),
         '--model', MODEL, '--epochs', '1', '--warmup-epochs', '0', '--threads', '1', *args],
        cwd=root, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_torchrun_ddp_on_two_cpu_processes_with_moving_digits(tmp_path, few_clips):
    """gloo DDP on clips: sharded training (half the steps), exact held-out metrics, one writer."""
    run = tmp_path / 'ddp'
    result = _torchrun(tmp_path, '--batch-size', '32', '--output', str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['processes'] == 2 and summary['optimizer_steps'] == 128 // 2 // 32
    assert result.stdout.count('epoch 1/1 ') == 1
    metrics = validate(str(run), TrainConfig())
    assert metrics['images'] == 64 and metrics['top1'] == pytest.approx(summary['best_top1'], abs=1e-6)


@pytest.mark.slow
def test_torchrun_ddp_on_two_cpu_processes_with_a_clip_folder(tmp_path):
    data = _clip_folder(tmp_path / 'data', per_class=4)
    run = tmp_path / 'ddp'
    result = _torchrun(tmp_path, '--data-dir', str(data), '--batch-size', '2', '--output', str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['processes'] == 2 and summary['optimizer_steps'] == 8 // 2 // 2
    assert result.stdout.count('epoch 1/1 ') == 1
    metrics = validate(str(run), TrainConfig(data_dir=str(data)))
    assert metrics['images'] == 8 and metrics['top1'] == pytest.approx(summary['best_top1'], abs=1e-6)


# --- bad input -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('overrides, message', [
    (dict(dataset='moving_digits'), r'--dataset moving_digits holds clips, tl_vit_pico_patch4_16_8at2 is an image '
                                    r'model'),
    (dict(model=MODEL, dataset='digits'), rf'{MODEL} is a video model: it needs clips \(moving_digits, '
                                          r'video_folder\), got --dataset digits'),
    (dict(model=MODEL, clip_stride=2), r'moving_digits clips: 8 frames, expected at least 15 \(8 frames of the '
                                       r'model, --clip-stride 2\)'),
    (dict(model=MODEL, hflip=0.5), r'--hflip 0.5 is for image data; video models train on clips without it'),
    (dict(model=MODEL, holdout=0.2), r'--holdout 0.2 is for image data'),
    (dict(clip_frames=4), r'--clip-frames 4 is for video models; tl_vit_pico_patch4_16_8at2 is an image model'),
    (dict(clip_stride=2), r'--clip-stride 2 is for video models'),
    (dict(model=MODEL, dataset='moving_digits', data_dir='.'), r'--dataset moving_digits comes with scikit-learn'),
])
def test_bad_video_configuration_stops_before_training(tmp_path, few_clips, overrides, message):
    with pytest.raises(TrainConfigError, match=message):
        train(TrainConfig(output=str(tmp_path / 'run'), **overrides))
    assert not (tmp_path / 'run').exists()


def test_bad_clip_folders_stop_before_training(tmp_path):
    flat = tmp_path / 'flat'
    for split in ('train', 'validation'):
        (flat / split).mkdir(parents=True)
        _write_mp4(flat / split / 'clip.mp4', _frames(8, 0))
    with pytest.raises(TrainConfigError, match=r'flat/train: no class sub-folders; expected <class>/<clip>'):
        train(TrainConfig(model=MODEL, data_dir=str(flat), output=str(tmp_path / 'a')))
    short = _clip_folder(tmp_path / 'short', frames=5)
    with pytest.raises(TrainConfigError, match=r'clip0.mp4: 5 frames, expected at least 8'):
        train(TrainConfig(model=MODEL, data_dir=str(short), batch_size=2, output=str(tmp_path / 'b')))
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()
