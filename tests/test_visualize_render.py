"""Token map pictures (issue #7): pixel layout, colours, frames, and the PNG/GIF files."""
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from tl_models.visualize import (
    GridLayout,
    VisualizationError,
    layer_label,
    panel_shape,
    render_token_map_frames,
    render_token_maps,
    write_gif,
    write_png,
)


def random_maps(layers: int, tokens: int = 4, grid=(3, 5)) -> dict:
    """``token_learners.{i}`` -> ``[S, H, W]`` softmax maps, as one batch entry of token_learner_maps gives."""
    return {f'token_learners.{i + 2}': torch.randn(tokens, grid[0] * grid[1]).softmax(-1).reshape(tokens, *grid)
            for i in range(layers)}


def rgb(colour) -> np.ndarray:
    """Floats in [0, 1] -> the uint8 values a picture stores."""
    return (np.asarray(colour)[:3] * 255).round().astype(np.uint8)


def test_layout_size_is_cells_and_gaps():
    layout = GridLayout(rows=2, cols=9, panel_width=40, panel_height=24, title_height=18, gap=4)
    assert layout.size == (9 * 40 + 10 * 4, 2 * (18 + 24) + 3 * 4)
    assert layout.title_origin(1, 2) == (4 + 2 * 44, 4 + 1 * 46)
    assert layout.panel_origin(1, 2) == (4 + 2 * 44, 4 + 1 * 46 + 18)


@pytest.mark.parametrize('height, width, panel_size, shape', [(224, 224, 160, (160, 160)), (48, 80, 40, (24, 40)),
                                                              (80, 48, 40, (40, 24)), (1, 1000, 10, (1, 10))])
def test_panel_shape_keeps_the_aspect_with_the_longer_side_at_panel_size(height, width, panel_size, shape):
    assert panel_shape(height, width, panel_size) == shape


def test_picture_has_one_row_per_layer_and_a_column_per_token_plus_the_input(tmp_path):
    display = torch.rand(3, 48, 80)
    picture = render_token_maps(display, random_maps(layers=3, tokens=4), panel_size=40)
    promised = GridLayout(rows=3, cols=1 + 4, panel_width=40, panel_height=24).size
    assert picture.size == promised

    path = write_png(tmp_path / 'maps.png', picture)
    assert path == tmp_path / 'maps.png'
    assert [p.name for p in tmp_path.iterdir()] == ['maps.png']  # no temporary left beside it
    with Image.open(path) as written:
        assert written.format == 'PNG' and written.mode == 'RGB'
        assert written.size == promised
        np.testing.assert_array_equal(np.asarray(written), np.asarray(picture))


def test_panels_show_the_image_and_each_map_scaled_onto_the_colour_map():
    colour = torch.tensor([0.2, 0.6, 1.0])
    display = colour.view(3, 1, 1).expand(3, 32, 32)
    maps = torch.full((2, 4, 4), 0.1)
    maps[0, 0, 0], maps[0, -1, -1] = 0.7, 0.05  # token 0: hottest top-left, coldest bottom-right
    maps[1, -1, -1], maps[1, 0, 0] = 0.7, 0.05  # token 1: the other way round
    alpha = 0.25
    picture = render_token_maps(display, {'token_learners.6': maps}, cmap='viridis', alpha=alpha, panel_size=32)
    pixels = np.asarray(picture)
    layout = GridLayout(rows=1, cols=3, panel_width=32, panel_height=32)
    viridis = matplotlib.colormaps['viridis']

    x, y = layout.panel_origin(0, 0)
    assert (pixels[y:y + 32, x:x + 32] == rgb(colour.numpy())).all()  # the input, unchanged
    for token, (hot, cold) in enumerate([((0, 0), (31, 31)), ((31, 31), (0, 0))]):
        x, y = layout.panel_origin(0, 1 + token)
        for (row, col), value in ((hot, 1.0), (cold, 0.0)):
            blend = (1 - alpha) * colour.numpy() + alpha * np.asarray(viridis(value))[:3]
            np.testing.assert_allclose(pixels[y + row, x + col], rgb(blend), atol=1)
        title_x, title_y = layout.title_origin(0, 1 + token)
        assert (pixels[title_y:y, title_x:title_x + 32] < 128).any()  # a title is written above each panel


def test_frames_are_the_rows_of_the_picture_one_per_layer(tmp_path):
    display = torch.rand(3, 32, 32)
    maps = random_maps(layers=3, tokens=2, grid=(2, 2))
    picture = np.asarray(render_token_maps(display, maps, panel_size=24))
    frames = render_token_map_frames(display, maps, panel_size=24)
    full, row = GridLayout(3, 3, 24, 24), GridLayout(1, 3, 24, 24)
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        assert frame.size == row.size
        top = full.title_origin(index, 0)[1]
        height = row.title_height + row.panel_height
        np.testing.assert_array_equal(np.asarray(frame)[row.gap:row.gap + height], picture[top:top + height])

    path = write_gif(tmp_path / 'maps.gif', frames, frame_ms=300)
    with Image.open(path) as gif:
        assert gif.format == 'GIF' and gif.is_animated
        assert gif.n_frames == 3 and gif.size == row.size
        assert gif.info['duration'] == 300


def test_layer_label_names_the_block_of_a_tokenlearner():
    assert layer_label('token_learners.6') == 'block 6'
    assert layer_label('encoder.tokenizer') == 'encoder.tokenizer'


@pytest.mark.parametrize('kwargs, message', [
    (dict(cmap='no_such_map'), r"unknown colour map 'no_such_map'; expected a matplotlib colour map name"),
    (dict(alpha=1.5), r'expected alpha in \[0, 1\], got 1.5'),
    (dict(panel_size=0), 'expected a panel size of at least 1 pixel, got 0'),
])
def test_bad_drawing_settings_give_a_clear_error(kwargs, message):
    with pytest.raises(VisualizationError, match=message):
        render_token_maps(torch.rand(3, 16, 16), random_maps(layers=1), **kwargs)


def test_no_maps_give_a_clear_error():
    with pytest.raises(VisualizationError, match='expected maps of at least one TokenLearner, got none'):
        render_token_maps(torch.rand(3, 16, 16), {})


def test_writers_insist_on_their_format_and_leave_nothing_behind_on_error(tmp_path):
    picture = Image.new('RGB', (8, 8))
    with pytest.raises(VisualizationError, match=r'expected an output file name ending in \.png, got .*maps\.jpg'):
        write_png(tmp_path / 'maps.jpg', picture)
    with pytest.raises(VisualizationError, match=r'expected an output file name ending in \.gif, got .*maps\.png'):
        write_gif(tmp_path / 'maps.png', [picture])
    with pytest.raises(VisualizationError, match='expected at least one frame'):
        write_gif(tmp_path / 'maps.gif', [])
    with pytest.raises(VisualizationError, match='expected a frame duration of at least 1 ms, got 0'):
        write_gif(tmp_path / 'maps.gif', [picture], frame_ms=0)
    assert list(tmp_path.iterdir()) == []
