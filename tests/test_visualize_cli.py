"""tl-visualize (issue #7): the PNG and GIF it writes, its default image, and its error messages.

Most runs call the command's ``main`` in this process (fast); one runs it in a subprocess, as the installed command.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
from PIL import Image
from sklearn.datasets import load_sample_image

import tl_models  # noqa: F401  (registers the tl_* models)
from tl_models.visualize import GridLayout, panel_shape

from conftest import command, load_script, randomize_

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def script():
    return load_script('visualize')


@pytest.fixture(scope='module')
def fuser_model_dir(tmp_path_factory) -> Path:
    """A trained-model stand-in: a 3-block TokenFuser model at 32 px (TokenLearner before blocks 1 and 2)."""
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', depth=3, tokenlearner_loc=1, img_size=32)
    folder = tmp_path_factory.mktemp('run') / 'model'
    timm.models.save_for_hf(randomize_(model, std=0.2), folder, safe_serialization=True)
    return folder


@pytest.fixture
def image_path(tmp_path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'photo.png')
    return tmp_path / 'photo.png'


def picture_size(rows: int, image_side: int, panel_size: int, tokens: int = 8) -> tuple:
    panel_height, panel_width = panel_shape(image_side, image_side, panel_size)
    return GridLayout(rows=rows, cols=1 + tokens, panel_width=panel_width, panel_height=panel_height).size


def test_script_writes_a_png_of_the_promised_size(script, image_path, tmp_path, capsys):
    output = tmp_path / 'out' / 'maps.png'
    argv = ['--model', 'tl_vit_tiny_patch16_224_8at6', '--image', str(image_path), '--output', str(output),
            '--panel-size', '48']
    assert script.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == f'wrote {output}\n'
    assert 'tl_vit_tiny_patch16_224_8at6 has random weights' in captured.err
    with Image.open(output) as picture:
        assert picture.format == 'PNG'
        assert picture.size == picture_size(rows=1, image_side=224, panel_size=48)


def test_fuser_model_from_local_dir_gives_a_row_and_a_gif_frame_per_block(script, fuser_model_dir, image_path,
                                                                           tmp_path, capsys):
    output = tmp_path / 'maps.png'
    argv = ['--model', f'local-dir:{fuser_model_dir}', '--image', str(image_path), '--output', str(output),
            '--gif', '--panel-size', '40', '--frame-ms', '250']
    assert script.main(argv) == 0
    gif = tmp_path / 'maps.gif'
    captured = capsys.readouterr()
    assert captured.out == f'wrote {output}\nwrote {gif}\n'
    assert captured.err == ''  # local-dir: models load their weights
    with Image.open(output) as picture:
        assert picture.size == picture_size(rows=2, image_side=32, panel_size=40)
    with Image.open(gif) as animation:
        assert animation.format == 'GIF' and animation.n_frames == 2
        assert animation.size == picture_size(rows=1, image_side=32, panel_size=40)
        assert animation.info['duration'] == 250


def test_several_images_stack_their_rows_in_the_png_and_in_every_gif_frame(script, fuser_model_dir, image_path,
                                                                          tmp_path):
    output = tmp_path / 'maps.png'
    argv = ['--model', f'local-dir:{fuser_model_dir}', '--image', str(image_path), str(image_path), str(image_path),
            '--output', str(output), '--gif', '--panel-size', '20']
    assert script.main(argv) == 0
    width, height = picture_size(rows=2, image_side=32, panel_size=20)
    with Image.open(output) as picture:
        assert picture.size == (width, 3 * height)
    with Image.open(tmp_path / 'maps.gif') as animation:
        frame_width, frame_height = picture_size(rows=1, image_side=32, panel_size=20)
        assert animation.n_frames == 2 and animation.size == (frame_width, 3 * frame_height)


def test_gif_goes_where_asked(script, fuser_model_dir, image_path, tmp_path):
    gif = tmp_path / 'anim' / 'blocks.gif'
    argv = ['--model', f'local-dir:{fuser_model_dir}', '--image', str(image_path),
            '--output', str(tmp_path / 'maps.png'), '--gif', str(gif), '--panel-size', '16']
    assert script.main(argv) == 0
    with Image.open(gif) as animation:
        assert animation.n_frames == 2
    assert not (tmp_path / 'maps.gif').exists()


def test_without_image_the_scikit_learn_sample_photo_is_used(script, fuser_model_dir, tmp_path):
    def picture(*image_args: str) -> np.ndarray:
        output = tmp_path / f'maps{len(list(tmp_path.iterdir()))}.png'
        argv = ['--model', f'local-dir:{fuser_model_dir}', '--output', str(output), '--panel-size', '32']
        assert script.main([*argv, *image_args]) == 0
        with Image.open(output) as written:
            return np.asarray(written)

    for name in ('china.jpg', 'flower.jpg'):
        Image.fromarray(load_sample_image(name)).save(tmp_path.parent / f'{name}.png')
    default = picture()
    np.testing.assert_array_equal(default, picture('--image', str(tmp_path.parent / 'china.jpg.png')))
    assert not np.array_equal(default, picture('--image', str(tmp_path.parent / 'flower.jpg.png')))


@pytest.mark.parametrize('case, message', [
    ('missing image', r'error: image not found: .*missing\.png \(expected an image file'),
    ('unreadable image', r'error: cannot read .*notes\.png as an image'),
    ('model without TokenLearner', r'error: vit_tiny_patch16_224 has no TokenLearner module'),
    ('unknown model', r"error: unknown model 'tl_vit_unknown': expected a registered name"),
    ('missing local-dir', r'error: no model at local-dir:.*nowhere: expected a folder with config\.json'),
    ('output not a png', r'error: expected an output file name ending in \.png, got .*maps\.jpg'),
    ('unknown colour map', r"error: unknown colour map 'rainbowish'"),
])
def test_bad_input_gives_a_clear_message_and_writes_nothing(script, image_path, tmp_path, capsys, case, message):
    (tmp_path / 'notes.png').write_text('not an image')
    model, image, output, extra = 'tl_vit_tiny_patch16_224_8at6', image_path, tmp_path / 'maps.png', []
    if case == 'missing image':
        image = tmp_path / 'missing.png'
    elif case == 'unreadable image':
        image = tmp_path / 'notes.png'
    elif case == 'model without TokenLearner':
        model = 'vit_tiny_patch16_224'
    elif case == 'unknown model':
        model = 'tl_vit_unknown'
    elif case == 'missing local-dir':
        model = f'local-dir:{tmp_path / "nowhere"}'
    elif case == 'output not a png':
        output = tmp_path / 'maps.jpg'
    elif case == 'unknown colour map':
        extra = ['--cmap', 'rainbowish']
    argv = ['--model', model, '--image', str(image), '--output', str(output), '--gif', *extra]
    assert script.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert len([line for line in captured.err.splitlines() if line.startswith('error: ')]) == 1
    assert re.search(message, captured.err), captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.png', 'photo.png']


@pytest.mark.slow
def test_script_runs_from_the_repository_root(fuser_model_dir, image_path, tmp_path):
    output = tmp_path / 'maps.png'
    result = subprocess.run(
        [*command('visualize'), '--model', f'local-dir:{fuser_model_dir}', '--image', str(image_path),
         '--output', str(output), '--panel-size', '16'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'wrote {output}\n'
    with Image.open(output) as picture:
        assert picture.size == picture_size(rows=2, image_side=32, panel_size=16)


@pytest.mark.slow
def test_importing_the_package_does_not_import_matplotlib():
    code = 'import sys, tl_models.visualize; print("matplotlib" in sys.modules)'
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'False'
