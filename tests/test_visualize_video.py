"""Token maps of video models (issue #15): maps per time step, the GIF over time, clips in, scripts/visualize.py."""

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import tl_models  # noqa: F401  (registers the tl_vivit_* models)
from tl_models.visualize import (
    GridLayout,
    VisualizationError,
    load_clip,
    moving_digit_clip,
    panel_shape,
    prepare_clip,
    save_video_token_maps,
    video_token_learner_maps,
)

from conftest import load_script, randomize_

V11 = 'tl_vivit_pico_patch4_32_8f_8at2'  # 8 frames of 32 px, tubelets of 2: T' = 4 steps of 8 x 8 patches
FUSE = f'{V11}_fuse'  # TokenLearner + TokenFuser around blocks 2 and 3


def pico(name: str) -> torch.nn.Module:
    return randomize_(timm.create_model(name), std=0.2).eval()


def random_clip(frames: int = 8, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


def frame_size(panel_size: int, rows: int = 1) -> tuple:
    panel_height, panel_width = panel_shape(32, 32, panel_size)
    return GridLayout(rows=rows, cols=1 + 8, panel_width=panel_width, panel_height=panel_height).size


def test_v11_maps_are_per_time_step_and_sum_to_one():
    clips = torch.randn(2, 3, 8, 32, 32)
    maps = video_token_learner_maps(pico(V11), clips)
    assert list(maps) == ['token_learners.2']
    layer_maps = maps['token_learners.2']
    assert layer_maps.shape == (2, 4, 8, 8, 8)  # [B, T', S, H, W]
    torch.testing.assert_close(layer_maps.sum(dim=(-2, -1)), torch.ones(2, 4, 8))


def test_maps_of_a_time_step_come_from_its_own_frames():
    # TokenLearner before block 0: its input is the tubelet embedding, so time steps do not mix yet
    model = randomize_(timm.create_model(V11, tokenlearner_loc=0), std=0.2).eval()
    clips = torch.randn(1, 3, 8, 32, 32)
    before = video_token_learner_maps(model, clips)['token_learners.0']
    clips[:, :, 6:] = torch.randn(1, 3, 2, 32, 32)  # the last tubelet: time step 3
    after = video_token_learner_maps(model, clips)['token_learners.0']
    torch.testing.assert_close(before[:, :3], after[:, :3])
    assert not torch.allclose(before[:, 3], after[:, 3])


def test_fuser_maps_have_one_entry_per_block_from_tokenlearner_loc():
    maps = video_token_learner_maps(pico(FUSE), torch.randn(1, 3, 8, 32, 32))
    assert list(maps) == ['token_learners.2', 'token_learners.3']
    assert all(m.shape == (1, 4, 8, 8, 8) for m in maps.values())


def test_maps_need_clips_of_rank_5():
    with pytest.raises(VisualizationError, match=r'expected clips \[B, C, T, H, W\], got shape \(1, 3, 32, 32\)'):
        video_token_learner_maps(pico(V11), torch.randn(1, 3, 32, 32))


def test_gif_has_a_frame_per_clip_frame_and_png_a_block_per_time_step(tmp_path):
    gif, png = tmp_path / 'out' / 'maps.gif', tmp_path / 'out' / 'maps.png'
    written = save_video_token_maps(pico(FUSE), random_clip(), gif, png, panel_size=40)
    assert written == [gif, png]
    with Image.open(gif) as picture:
        assert picture.format == 'GIF' and picture.n_frames == 8
        assert picture.size == frame_size(40, rows=2)  # a row per TokenLearner (blocks 2 and 3)
    with Image.open(png) as picture:
        width, height = frame_size(40, rows=2)
        assert picture.size == (width, 4 * height)  # the first frame of each of the 4 time steps
    assert sorted(p.name for p in gif.parent.iterdir()) == ['maps.gif', 'maps.png']  # no temporary left


def test_longer_clips_give_the_models_frames_evenly():
    clip = random_clip(frames=15)
    model_input = prepare_clip(pico(V11), clip)
    assert model_input.pixels.shape == (1, 3, 8, 32, 32) and model_input.display.shape == (8, 3, 32, 32)
    last = torch.from_numpy(clip[-1]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(model_input.display[-1], last, atol=1 / 255, rtol=0)  # first to last frame


@pytest.mark.parametrize('clip, message', [
    (random_clip()[..., 0], r'expected a clip \[T, H, W, 3\].*got shape \(8, 32, 32\)'),
    (random_clip(frames=4), 'expected at least 8 frames .*got 4'),
    (random_clip().astype(np.float32), 'expected uint8 pixels'),
])
def test_bad_clips_are_named(clip, message):
    with pytest.raises(VisualizationError, match=message):
        prepare_clip(pico(V11), clip)


def test_clips_load_from_npy_and_from_a_folder_of_frames_in_name_order(tmp_path):
    clip = random_clip(frames=3, height=12, width=10)
    np.save(tmp_path / 'clip.npy', clip)
    np.testing.assert_array_equal(load_clip(tmp_path / 'clip.npy'), clip)
    folder = tmp_path / 'frames'
    folder.mkdir()
    for index in (2, 0, 1):
        Image.fromarray(clip[index]).save(folder / f'frame_{index:03d}.png')
    (folder / 'notes.txt').write_text('not a frame')
    np.testing.assert_array_equal(load_clip(folder), clip)


def test_bad_clip_sources_are_named(tmp_path):
    with pytest.raises(VisualizationError, match='clip not found'):
        load_clip(tmp_path / 'missing.npy')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(VisualizationError, match='expected frame images'):
        load_clip(tmp_path / 'empty')
    (tmp_path / 'clip.txt').write_text('0')
    with pytest.raises(VisualizationError, match=r'expected a clip as a \.npy file'):
        load_clip(tmp_path / 'clip.txt')


@pytest.fixture(scope='module')
def script():
    return load_script('visualize')


def test_script_draws_a_generated_clip(script, tmp_path, capsys):
    np.save(tmp_path / 'clip.npy', random_clip(frames=10, height=40, width=48))
    output = tmp_path / 'maps.png'
    argv = ['--model', V11, '--clip', str(tmp_path / 'clip.npy'), '--output', str(output), '--panel-size', '32']
    assert script.main(argv) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'maps.gif'}\nwrote {output}\n"
    with Image.open(tmp_path / 'maps.gif') as picture:
        assert picture.n_frames == 8 and picture.size == frame_size(32)


@pytest.mark.parametrize('clip, extra, message', [
    (random_clip()[0], [], 'expected a clip [T, H, W, 3]'),
    (random_clip(frames=3), [], 'expected at least 8 frames'),
    (None, [], 'is a video model: give a clip with --clip'),
    (random_clip(), ['--model', 'tl_vit_nano_patch4_32_8at2'], 'is an image model: --clip needs a video model'),
])
def test_script_names_bad_clips(script, tmp_path, capsys, clip, extra, message):
    argv = ['--model', V11, '--output', str(tmp_path / 'maps.png')]
    if clip is not None:
        np.save(tmp_path / 'clip.npy', clip)
        argv += ['--clip', str(tmp_path / 'clip.npy')]
    assert script.main(argv + extra) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob('maps.*'))


def test_script_draws_a_held_out_moving_digits_clip(script, tmp_path, capsys):
    clip = moving_digit_clip(5)
    assert clip.shape == (8, 32, 32, 3) and clip.dtype == np.uint8 and clip.max() > 0
    assert np.array_equal(clip[..., 0], clip[..., 2])  # grey frames as RGB
    output = tmp_path / 'maps.png'
    assert script.main(['--model', V11, '--digit', '5', '--output', str(output), '--panel-size', '32']) == 0
    with Image.open(tmp_path / 'maps.gif') as picture:
        assert picture.n_frames == 8
    with pytest.raises(VisualizationError, match=r'expected a held-out moving-digits clip index in 0\.\.599, got 600'):
        moving_digit_clip(600)
