"""Images for the token maps (issue #7): reading files, the scikit-learn sample photo, the model's preprocessing."""
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

import tl_models  # noqa: F401  (registers the tl_* models)
from tl_models.visualize import SAMPLE_IMAGE, VisualizationError, load_image, prepare_image, sample_image


def tiny_model(**kwargs) -> torch.nn.Module:
    return timm.create_model('tl_vit_tiny_patch16_224_8at6', depth=2, tokenlearner_loc=1, **kwargs).eval()


def test_load_image_reads_the_pixels(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'image.png')
    image = load_image(tmp_path / 'image.png')
    assert image.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_load_image_turns_the_image_upright_by_its_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated by 90 degrees
    Image.new('RGB', (30, 20), 'red').save(tmp_path / 'turned.jpg', exif=exif)
    assert load_image(tmp_path / 'turned.jpg').size == (20, 30)


def test_missing_image_gives_a_clear_error(tmp_path):
    with pytest.raises(VisualizationError, match=r'image not found: .*nope\.png \(expected an image file'):
        load_image(tmp_path / 'nope.png')


def test_folder_instead_of_image_gives_a_clear_error(tmp_path):
    with pytest.raises(VisualizationError, match=r'is not a file \(expected an image file'):
        load_image(tmp_path)


def test_file_that_is_no_image_gives_a_clear_error(tmp_path):
    (tmp_path / 'notes.jpg').write_text('not an image')
    with pytest.raises(VisualizationError, match=r'cannot read .*notes\.jpg as an image \(expected a PNG, JPEG'):
        load_image(tmp_path / 'notes.jpg')


def test_truncated_image_gives_a_clear_error(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / 'full.png')
    data = (tmp_path / 'full.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:len(data) // 2])
    with pytest.raises(VisualizationError, match=r'cannot read .*cut\.png as an image'):
        load_image(tmp_path / 'cut.png')


def test_sample_image_is_the_photo_scikit_learn_ships():
    image = sample_image()
    assert image.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(image), load_sample_image(SAMPLE_IMAGE))


def test_prepare_image_applies_the_preprocessing_of_the_model_config():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6').eval()
    image = sample_image()
    model_input = prepare_image(model, image)
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))
    torch.testing.assert_close(model_input.pixels, transform(image).unsqueeze(0))
    assert model_input.pixels.shape == (1, 3, 224, 224)


@pytest.mark.parametrize('img_size, shape', [(64, (64, 64)), ((48, 80), (48, 80))])
def test_prepare_image_follows_the_models_input_size(img_size, shape):
    model_input = prepare_image(tiny_model(img_size=img_size), sample_image())
    assert model_input.pixels.shape == (1, 3, *shape)
    assert model_input.display.shape == (3, *shape)


def test_display_is_the_unnormalised_crop_in_rgb_order():
    mean, std = (0.2, 0.4, 0.6), (0.1, 0.2, 0.3)
    model = tiny_model(img_size=32, pretrained_cfg_overlay=dict(mean=mean, std=std))
    model_input = prepare_image(model, Image.new('RGB', (50, 40), (255, 0, 51)))
    colour = torch.tensor([1.0, 0.0, 0.2]).view(3, 1, 1)
    torch.testing.assert_close(model_input.display, colour.expand(3, 32, 32))
    expected = (colour - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(model_input.pixels[0], expected.expand(3, 32, 32))


def test_grey_models_take_one_channel_and_display_it_as_grey():
    model_input = prepare_image(tiny_model(img_size=32, in_chans=1), Image.new('RGB', (40, 40), (255, 0, 0)))
    assert model_input.pixels.shape == (1, 1, 32, 32)
    grey = 76 / 255  # Pillow's luma of pure red: 255 * 299 / 1000
    torch.testing.assert_close(model_input.display, torch.full((3, 32, 32), grey), atol=1e-6, rtol=0)


def test_models_with_other_channel_counts_give_a_clear_error():
    with pytest.raises(VisualizationError, match='expected a model that takes 1 or 3 image channels, got 2'):
        prepare_image(tiny_model(img_size=32, in_chans=2), sample_image())


def test_digit_image_is_the_held_out_digit():
    from tl_models.data import DigitsDataset
    from tl_models.visualize import VisualizationError, digit_image

    image = digit_image(5)
    assert image.size == (8, 8) and image.mode == 'RGB'
    assert image.tobytes() == DigitsDataset('validation')[5][0].tobytes()
    with pytest.raises(VisualizationError, match=r'expected a held-out digit index in 0..359, got 360'):
        digit_image(360)
