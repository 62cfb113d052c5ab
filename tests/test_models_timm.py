"""The checks timm's own model test suite applies to its models, on our variants.

Every registered variant up to Base size (but those on other timm backbones) is built and run at its input
size; the small (Tiny) variants also go through backward, default cfg, TorchScript, FX, intermediates and
features checks.
"""
import math

import pytest
import timm
import torch
from timm.models import create_feature_extractor, get_graph_node_names

import tl_models
from tl_models.registry import GENERIC_PLAIN, GENERIC_TOKENLEARNER

# The variants on other timm backbones (DINOv2 at 518 px, ...) run at small sizes in test_backbone_families.py.
ON_TIMM_BACKBONES = {n for n in tl_models.list_variants() if tl_models.get_variant(n).backbone}
UP_TO_BASE = [n for n in timm.list_models('tl_*') if '_large_' not in n and n not in ON_TIMM_BACKBONES]
SMALL = timm.list_models('tl_vit_tiny_*')


def test_every_variant_is_listed_by_timm():
    assert set(timm.list_models('tl_*')) == {*tl_models.list_variants(), GENERIC_TOKENLEARNER, GENERIC_PLAIN}
    assert len(tl_models.list_variants()) >= 12
    assert 'tl_vit' in timm.list_modules()


@pytest.mark.parametrize('model_name', UP_TO_BASE)
def test_forward_at_input_size(model_name):
    model = timm.create_model(model_name).eval()
    input_size = model.pretrained_cfg['input_size']
    with torch.no_grad():
        out = model(torch.randn(1, *input_size))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('model_name', SMALL)
def test_backward_with_new_num_classes_reaches_every_parameter(model_name):
    model = timm.create_model(model_name, num_classes=42).train()
    out = model(torch.randn(2, *model.pretrained_cfg['input_size']))
    assert out.shape == (2, 42)
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f'no gradient for {missing}'
    num_params = sum(p.numel() for p in model.parameters())
    assert sum(p.grad.numel() for p in model.parameters()) == num_params


@pytest.mark.parametrize('model_name', SMALL)
def test_default_cfg_and_heads(model_name):
    model = timm.create_model(model_name).eval()
    cfg = model.pretrained_cfg
    for key in ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'license', 'first_conv', 'classifier'):
        assert cfg.get(key) is not None, key
    state_dict = model.state_dict()
    assert cfg['classifier'] + '.weight' in state_dict and cfg['first_conv'] + '.weight' in state_dict
    x = torch.randn(1, *cfg['input_size'])
    with torch.no_grad():
        features = model.forward_features(x)
        num_tokens = 196 if model.use_tokenfuse else model.num_tokens
        assert features.shape == (1, num_tokens, model.num_features)
        assert model.forward_head(features, pre_logits=True).shape == (1, model.num_features)
        model.reset_classifier(0)
        assert model(x).shape == (1, model.num_features)
        model.reset_classifier(7)
        assert model(x).shape == (1, 7)


@pytest.mark.slow
@pytest.mark.parametrize('model_name', SMALL)
def test_torchscript(model_name):
    model = timm.create_model(model_name).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, *model.pretrained_cfg['input_size'])
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


def _fx_model(model):
    train_nodes, eval_nodes = get_graph_node_names(model)
    return create_feature_extractor(model, return_nodes={train_nodes[-1]: 'out'} if model.training
                                    else {eval_nodes[-1]: 'out'})


@pytest.mark.parametrize('model_name', SMALL)
def test_fx_forward_equals_eager(model_name):
    model = timm.create_model(model_name).eval()
    x = torch.randn(1, *model.pretrained_cfg['input_size'])
    with torch.no_grad():
        assert torch.equal(_fx_model(model)(x)['out'], model(x))


@pytest.mark.parametrize('model_name', SMALL)
def test_fx_backward_reaches_every_parameter(model_name):
    model = timm.create_model(model_name, num_classes=42).train()
    fx_model = _fx_model(model)
    out = fx_model(torch.randn(2, *model.pretrained_cfg['input_size']))['out']
    out.mean().backward()
    assert all(p.grad is not None for p in fx_model.parameters())
    assert out.shape == (2, 42)


@pytest.mark.parametrize('model_name', SMALL)
def test_forward_intermediates_as_timm_checks_them(model_name):
    model = timm.create_model(model_name).eval()
    input_size = model.pretrained_cfg['input_size']
    feature_info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    x = torch.randn(1, *input_size)
    with torch.no_grad():
        output, intermediates = model.forward_intermediates(x)
        torch.testing.assert_close(output, model.forward_features(x))
    assert len(intermediates) == len(feature_info.channels()) == len(model.blocks)
    for channels, reduction, y in zip(feature_info.channels(), feature_info.reduction(), intermediates):
        assert y.shape[0] == 1 and y.shape[1] == channels
        assert y.shape[2] <= math.ceil(input_size[1] / reduction) + 1
        assert y.shape[3] <= math.ceil(input_size[2] / reduction) + 1
        assert torch.isfinite(y).all()


@pytest.mark.parametrize('model_name', SMALL)
def test_features_only(model_name):
    model = timm.create_model(model_name, features_only=True, out_indices=(2, 5, 11)).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 224, 224))
    assert model.feature_info.channels() == [192, 192, 192]
    assert [f.shape[:2] for f in features] == [(1, 192)] * 3
    assert features[0].shape[2:] == (14, 14)
    # after the TokenLearner (block 6) the learned tokens come as a 1 x S strip, unless a TokenFuser keeps the grid
    assert features[2].shape[2:] == ((14, 14) if model_name.endswith('_fuse') else (1, 8))


@pytest.mark.parametrize('model_name', SMALL)
def test_grad_checkpointing_gives_the_same_outputs_and_gradients(model_name):
    model = timm.create_model(model_name, depth=4, tokenlearner_loc=2, img_size=64).train()
    x = torch.randn(2, 3, 64, 64)

    def run():
        torch.manual_seed(0)
        model.zero_grad()
        out = model(x)
        out.sum().backward()
        return out, [p.grad.clone() for p in model.parameters()]

    out, grads = run()
    model.set_grad_checkpointing(True)
    out_ckpt, grads_ckpt = run()
    torch.testing.assert_close(out_ckpt, out)
    for g, g_ckpt in zip(grads, grads_ckpt):
        torch.testing.assert_close(g_ckpt, g)


@pytest.mark.slow
@pytest.mark.parametrize('model_name', SMALL)
def test_torch_compile_fullgraph(model_name):
    model = timm.create_model(model_name, depth=3, tokenlearner_loc=1, img_size=48).eval()
    x = torch.randn(2, 3, 48, 48)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
