"""Video models keep timm's model contract (issue 29): the checks timm applies to its own models, on every video
variant: TorchScript, FX forward and backward, FX then TorchScript, ``torch.compile(fullgraph=True)``,
``forward_intermediates`` and ``features_only`` (maps ``[B, C, T', H, W]`` of the blocks that keep the patch grid; a
clear error for learned tokens, as for images), ``reset_classifier``, ``set_grad_checkpointing``, ONNX against
onnxruntime; one description of the input (``(C, T, H, W)``) for every consumer; timm's own scripts.

The pico variants run at their own size (32 px, 8 frames), the size timm's checks would use; the S/16 and B/16
ones are made small (width 64, 2 heads, 32 px frames: a 2 x 2 grid), the size those checks fall back to for large
models, keeping their depth, TokenLearner placement, frames and tubelets. The B/16 variants run the forward checks
once each.
"""
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.models import create_feature_extractor, get_graph_node_names

import tl_models  # noqa: F401  (registers the tl_vivit_* models)
from tl_models.data import model_data_config, model_input
from tl_models.registry import list_plain_video_variants, list_video_variants

from conftest import randomize_

ALL = list_video_variants() + list_plain_video_variants()
BASE = [n for n in ALL if '_base_' in n]
CHECKED = [n for n in ALL if n not in BASE]
SMALL = dict(embed_dim=64, num_heads=2, img_size=32)
FIXTURES = Path(__file__).parent / 'timm_scripts'


def _model(name: str, **kwargs) -> torch.nn.Module:
    """The variant at the size of these checks: pico as registered, S/16 and B/16 at width 64 and 32 px."""
    small = {} if '_pico_' in name else SMALL
    return timm.create_model(name, **dict(small, **kwargs))


def _clip(model: torch.nn.Module, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, *model.pretrained_cfg['input_size'])  # [B, 3, T, H, W]


def _spatial(model) -> int:
    """Blocks whose output keeps the patch grid: before the TokenLearner, all with TokenFuser or without one."""
    return model.num_spatial_blocks


@pytest.mark.parametrize('name', CHECKED + BASE)
def test_forward_and_the_one_description_of_the_input(name):
    model = _model(name).eval()
    input_size = model.pretrained_cfg['input_size']
    assert len(input_size) == 4 and input_size[1] == model.num_frames == model_input(model).num_frames
    for config in (timm.data.resolve_data_config(model=model), timm.data.resolve_model_data_config(model),
                   model_data_config(model)):
        assert tuple(config['input_size']) == tuple(input_size)  # (C, T, H, W) everywhere
    with torch.no_grad():
        out = model(_clip(model, 2))
    assert out.shape == (2, model.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize('name', CHECKED)
def test_torchscript_and_its_input_check(name):
    model = randomize_(_model(name), std=0.05).eval()
    scripted = torch.jit.script(model)
    x = _clip(model, 2)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))
    with pytest.raises(Exception, match=re.escape('expected clips [B, 3')):
        scripted(torch.randn(2, 3, *x.shape[-2:]))  # images: the scripted model keeps the clear error


def _fx_model(model):
    train_nodes, eval_nodes = get_graph_node_names(model)
    return create_feature_extractor(model, return_nodes={train_nodes[-1] if model.training else eval_nodes[-1]: 'out'})


@pytest.mark.parametrize('name', CHECKED)
def test_fx_forward_backward_and_then_torchscript(name):
    model = randomize_(_model(name, num_classes=7), std=0.05).eval()
    x = _clip(model, 2)
    fx_model = _fx_model(model)
    with torch.no_grad():
        torch.testing.assert_close(fx_model(x)['out'], model(x))
        torch.testing.assert_close(torch.jit.script(fx_model)(x)['out'], model(x))
    model.train()
    fx_train = _fx_model(model)
    fx_train(x)['out'].mean().backward()
    missing = [n for n, p in fx_train.named_parameters() if p.grad is None]
    assert not missing, f'no gradient for {missing}'


@pytest.mark.parametrize('name', CHECKED)
def test_forward_intermediates_as_timm_checks_them(name):
    """timm's test_model_forward_intermediates: NCHW maps [B, C, T', H, W] of the spatial blocks, all of them in
    feature_info; NLC every block's tokens."""
    model = randomize_(_model(name), std=0.05).eval()
    x = _clip(model, 2)
    feature_info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    assert len(feature_info.channels()) == _spatial(model) >= 1
    with torch.no_grad():
        output, intermediates = model.forward_intermediates(x)
        torch.testing.assert_close(output, model.forward_features(x))
        nlc = model.forward_intermediates(x, output_fmt='NLC', intermediates_only=True)
        model.set_grad_checkpointing()
        output_ckpt, _ = model.forward_intermediates(x)
        torch.testing.assert_close(output_ckpt, output, rtol=1e-4, atol=1e-5)
    steps, (H, W) = model.patch_embed.temporal_size, model.patch_embed.grid_size
    assert len(intermediates) == len(feature_info.channels()) and len(nlc) == len(model.blocks)
    for i, (channels, reduction, y) in enumerate(zip(feature_info.channels(), feature_info.reduction(), intermediates)):
        assert y.shape == (2, channels, steps, H, W) and reduction == model.patch_embed.patch_size[0]
        assert y.shape[-1] <= math.ceil(x.shape[-1] / reduction) + 1 and torch.isfinite(y).all()
        prefix = model.num_prefix_tokens
        torch.testing.assert_close(y.flatten(2).transpose(1, 2), nlc[i][:, prefix:] if prefix else nlc[i])
    if _spatial(model) < len(model.blocks):  # the learned tokens: NLC only, as for images
        with pytest.raises(ValueError, match='learned tokens with no spatial layout'):
            model.forward_intermediates(x, indices=[len(model.blocks) - 1])


@pytest.mark.parametrize('name', CHECKED)
def test_features_only_as_timm_checks_them(name):
    model = _model(name, features_only=True)
    levels = min(3, _spatial(model.model))
    assert len(model.feature_info.channels()) == levels
    x = _clip(model.model)
    with torch.no_grad():
        features = model(x)
    assert len(features) == levels
    steps, (H, W) = model.model.patch_embed.temporal_size, model.model.patch_embed.grid_size
    assert all(f.shape == (1, c, steps, H, W) for f, c in zip(features, model.feature_info.channels()))


@pytest.mark.parametrize('name', CHECKED)
def test_reset_classifier_and_grad_checkpointing(name):
    model = randomize_(_model(name), std=0.05).train()
    x = _clip(model, 2)
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)
    torch.manual_seed(0)
    plain = model(x)
    model.set_grad_checkpointing(True)
    torch.manual_seed(0)
    torch.testing.assert_close(model(x), plain)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['tl_vivit_pico_patch4_32_8f_8at2', 'tl_vivit_pico_patch4_32_8f_8at2_fuse',
                                  'vivit_pico_patch4_32_8f', 'tl_vivit_small_patch16_224_8f_8at6'])
def test_torch_compile_fullgraph(name):
    model = randomize_(_model(name), std=0.05).eval()
    x = _clip(model, 2)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['tl_vivit_pico_patch4_32_8f_8at2', 'tl_vivit_pico_patch4_32_8f_8at2_fuse',
                                  'vivit_pico_patch4_32_8f'])
def test_onnx_export_matches_onnxruntime(name, tmp_path):
    import onnxruntime

    model = randomize_(_model(name), std=0.05).eval()
    x = _clip(model, 2)
    path = tmp_path / 'model.onnx'
    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-4)


def _timm_script(script: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A copy of timm's own ``script`` (tests/timm_scripts/) run with the start-up hook's registration."""
    return subprocess.run([sys.executable, str(FIXTURES / script), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_timms_benchmark_script_runs_a_video_model(tmp_path):
    result = _timm_script('benchmark.py', '--model', 'tl_vivit_pico_patch4_32_8f_8at2', '--bench', 'both', '-b', '2',
                          '--num-warm-iter', '1', '--num-bench-iter', '5', '--no-retry', '--device', 'cpu',
                          tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"infer_samples_per_sec"' in result.stdout and '"train_samples_per_sec"' in result.stdout
    assert 'input size (3, 8, 32, 32)' in result.stdout + result.stderr  # random clips, the model's description


@pytest.mark.slow
def test_timms_validate_script_stops_at_once_naming_what_to_run(tmp_path):
    data = tmp_path / 'data' / 'validation' / 'a'
    data.mkdir(parents=True)
    for i in range(2):
        Image.new('RGB', (32, 32), (i * 100, 0, 0)).save(data / f'{i}.png')
    checkpoint = tmp_path / 'video.safetensors'
    save_file(timm.create_model('tl_vivit_pico_patch4_32_8f_8at2', num_classes=40).state_dict(), str(checkpoint))
    result = _timm_script('validate.py', str(tmp_path / 'data'), '--model', 'tl_vivit_pico_patch4_32_8f_8at2',
                          '--checkpoint', str(checkpoint), '--split', 'validation', '-b', '2', '--num-classes', '40',
                          '--device', 'cpu', tmp_path=tmp_path)
    assert result.returncode != 0
    assert 'a video model takes clips' in result.stderr and 'tl-validate' in result.stderr


def test_an_exported_video_model_and_its_card_describe_clips(tmp_path):
    import json

    from tl_models.hub import Provenance, export_model

    model = timm.create_model('tl_vivit_pico_patch4_32_8f_8at2', num_classes=40)
    folder = export_model(model, tmp_path / 'video', Provenance('Random weights for a test.'),
                          data_config=model_data_config(model))
    config = json.loads((folder / 'config.json').read_text())
    assert config['pretrained_cfg']['input_size'] == [3, 8, 32, 32]
    assert '**Input:** 3 x 8 x 32 x 32' in (folder / 'README.md').read_text()
    loaded = timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert loaded.pretrained_cfg['input_size'] == (3, 8, 32, 32) and model_input(loaded).num_frames == 8
