"""The checks timm's own model test suite applies to its models, on our variants.

Every registered variant up to Base size (but those on other timm backbones, tested small in
test_backbone_families.py) is built and run at its input size, and goes, made small (width 64, at most 64 px),
through timm's intermediates and features checks; the small (Tiny) variants also go through backward, default
cfg, TorchScript and FX checks. Features (NCHW) come from the spatial blocks only: the blocks after the
TokenLearner of a model without TokenFuser output learned tokens, which only NLC returns.
"""
import math

import pytest
import timm
import torch
from timm.models import create_feature_extractor, get_graph_node_names

import tl_models
from tl_models.registry import GENERIC_PLAIN, GENERIC_TOKENLEARNER, list_video_variants

from conftest import randomize_

# The variants on other timm backbones (DINOv2 at 518 px, ...) run at small sizes in test_backbone_families.py.
ON_TIMM_BACKBONES = {n for n in tl_models.list_variants() if tl_models.get_variant(n).backbone}
VIDEO = set(list_video_variants())  # clips, not images: tests/test_video_models.py
UP_TO_BASE = [n for n in timm.list_models('tl_*') if '_large_' not in n and n not in ON_TIMM_BACKBONES | VIDEO]
# timm's intermediates and features checks run on every TokenLearner variant, made small.
TOKENLEARNER = [n for n in UP_TO_BASE if n != GENERIC_PLAIN] + sorted(ON_TIMM_BACKBONES)
SMALL = timm.list_models('tl_vit_tiny_*')


def test_every_variant_is_listed_by_timm():
    assert set(timm.list_models('tl_*')) == {*tl_models.list_variants(), *VIDEO, GENERIC_TOKENLEARNER, GENERIC_PLAIN}
    assert len(tl_models.list_variants()) >= 12
    assert 'tl_vit' in timm.list_modules()


@pytest.mark.parametrize('model_name', UP_TO_BASE)
def test_forward_at_input_size(model_name):
    model = timm.create_model(model_name).eval()
    input_size = model.pretrained_cfg['input_size']
    with torch.no_grad():
        out = model(torch.randn(1, *input_size))
    assert out.shape == (1, model.pretrained_cfg['num_classes'])  # 10 for the CIFAR-10 default tags
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


def small_variant(model_name, **kwargs):
    """The variant's blocks, patch size, TokenLearner placement and prefix tokens at width 64 and <= 64 px."""
    size = min(timm.models.get_pretrained_cfg(model_name).input_size[-1], 64)
    model = timm.create_model(model_name, img_size=size, embed_dim=64, num_heads=2, **kwargs).eval()
    return model, torch.randn(1, 3, size, size)


def spatial_blocks(model):
    """The blocks whose output keeps the patch grid: all with TokenFuser, else those before the TokenLearner."""
    return len(model.blocks) if model.use_tokenfuse else model.tokenlearner_loc


@pytest.mark.parametrize('model_name', TOKENLEARNER)
def test_forward_intermediates_as_timm_checks_them(model_name):
    """timm's test_model_forward_intermediates; NCHW gives the spatial blocks, all of them in feature_info."""
    model, x = small_variant(model_name)
    feature_info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    assert model.num_spatial_blocks == spatial_blocks(model) == len(feature_info.channels()) >= 1
    with torch.no_grad():
        output, intermediates = model.forward_intermediates(x)
        torch.testing.assert_close(output, model.forward_features(x))
        intermediates_only = model.forward_intermediates(x, intermediates_only=True)
        model.set_grad_checkpointing()
        output_ckpt, _ = model.forward_intermediates(x)
        torch.testing.assert_close(output_ckpt, output, rtol=1e-4, atol=1e-5)
    assert len(intermediates) == len(intermediates_only) == model.num_spatial_blocks
    size, patch = x.shape[-1], model.patch_embed.patch_size[0]
    for channels, reduction, y, y_only in zip(
            feature_info.channels(), feature_info.reduction(), intermediates, intermediates_only):
        assert reduction == patch
        assert y.shape == (1, channels, size // patch, size // patch)
        assert y.shape[2] <= math.ceil(size / reduction) + 1 and y.shape[3] <= math.ceil(size / reduction) + 1
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y_only, y)


@pytest.mark.parametrize('model_name', TOKENLEARNER)
def test_features_only_as_timm_checks_them(model_name):
    """timm's test_model_forward_features: by default the last 3 spatial blocks, fewer where fewer exist."""
    model, x = small_variant(model_name, features_only=True)
    spatial = spatial_blocks(model.model)
    levels = min(3, spatial)
    assert model.out_indices == list(range(spatial - levels, spatial))
    assert len(model.model.blocks) == spatial and model.model.num_classes == 0  # later blocks and head pruned
    with torch.no_grad():
        features = model(x)
    assert len(features) == len(model.feature_info.channels()) == levels
    size = x.shape[-1]
    for channels, reduction, y in zip(model.feature_info.channels(), model.feature_info.reduction(), features):
        assert y.shape[:2] == (1, channels) == (1, 64)
        assert y.shape[2] <= math.ceil(size / reduction) + 1 and y.shape[3] <= math.ceil(size / reduction) + 1
        assert torch.isfinite(y).all()


@pytest.mark.parametrize('model_name', SMALL)
def test_nchw_indices_pick_the_blocks_that_nlc_returns(model_name):
    model, x = small_variant(model_name)
    randomize_(model, std=0.1)  # fresh TokenFusers output zero: fused blocks would all equal their input
    spatial = model.num_spatial_blocks  # 6 (TokenLearner before block 6), 12 with TokenFuser
    with torch.no_grad():
        nlc = model.forward_intermediates(x, output_fmt='NLC', intermediates_only=True)  # every block
        chosen = model.forward_intermediates(x, indices=[0, 2, -7], intermediates_only=True)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
    for i, y in zip([0, 2, 5], chosen):
        torch.testing.assert_close(y.flatten(2).transpose(1, 2), nlc[i])  # [B, C, H, W] -> [B, N, C]
    for i, y in zip([spatial - 2, spatial - 1], last_two):
        torch.testing.assert_close(y.flatten(2).transpose(1, 2), nlc[i])
    assert not torch.allclose(nlc[spatial - 2], nlc[spatial - 1])


def test_features_only_at_chosen_spatial_blocks():
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6', features_only=True, out_indices=(0, 2, 5))
    assert model.feature_info.module_name() == ['blocks.0', 'blocks.2', 'blocks.5']
    assert len(model.model.blocks) == 6 and len(model.model.token_learners) == 0
    with torch.no_grad():
        assert [tuple(y.shape) for y in model(x)] == [(1, 64, 4, 4)] * 3


def test_learned_tokens_come_as_nlc():
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6', class_token=True, global_pool='token')
    with torch.no_grad():
        nlc = model.forward_intermediates(x, output_fmt='NLC', intermediates_only=True)
        pairs = model.forward_intermediates(
            x, indices=[5, 6], output_fmt='NLC', return_prefix_tokens=True, intermediates_only=True)
        last = model.forward_intermediates(x, indices=1, output_fmt='NLC', norm=True, intermediates_only=True)
        features = model.forward_features(x)
    assert [tuple(y.shape) for y in nlc] == [(1, 16, 64)] * 6 + [(1, 8, 64)] * 6  # N patch tokens, then S learned
    assert [(tuple(y.shape), tuple(p.shape)) for y, p in pairs] == [((1, 16, 64), (1, 1, 64)), ((1, 8, 64), (1, 1, 64))]
    torch.testing.assert_close(last[0], features[:, 1:])  # the class token split off


@pytest.mark.parametrize('indices, named', [([6], r'\[6\]'), ([2, 5, 6, 9], r'\[6, 9\]'), ([-1], r'\[11\]')])
def test_nchw_of_learned_token_blocks_raises(indices, named):
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6')
    message = rf"blocks {named} output 8 learned tokens with no spatial layout: NCHW takes blocks 0..5; " \
              r"use output_fmt='NLC'"
    with pytest.raises(ValueError, match=message):
        model.forward_intermediates(x, indices=indices)
    with pytest.raises(ValueError, match=message):
        model.prune_intermediate_layers(indices)
    with pytest.raises(ValueError, match=message):
        small_variant('tl_vit_tiny_patch16_224_8at6', features_only=True, out_indices=indices)
    assert len(model.blocks) == 12  # nothing pruned


def test_prune_keeps_the_spatial_blocks_asked_for():
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6')
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert model.prune_intermediate_layers(2) == [4, 5]
        assert len(model.blocks) == 6 and len(model.token_learners) == 0 and model.num_classes == 0
        assert model.num_spatial_blocks == 6
        torch.testing.assert_close(model.forward_intermediates(x, indices=[4, 5], intermediates_only=True), expected)


def test_tokenlearner_before_block_0_has_no_nchw_features():
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6', depth=3, tokenlearner_loc=0)
    assert model.num_spatial_blocks == 0 and model.feature_info == []
    message = r"no block outputs the patch grid \(tokenlearner_loc=0, no TokenFuser\).*use output_fmt='NLC'"
    with pytest.raises(ValueError, match=message):
        model.forward_intermediates(x)
    with pytest.raises(ValueError, match=message):
        small_variant('tl_vit_tiny_patch16_224_8at6', depth=3, tokenlearner_loc=0, features_only=True)
    with torch.no_grad():
        nlc = model.forward_intermediates(x, output_fmt='NLC', intermediates_only=True)
    assert [tuple(y.shape) for y in nlc] == [(1, 8, 64)] * 3


def test_tokenfuser_before_block_0_keeps_the_grid_everywhere():
    model, x = small_variant('tl_vit_tiny_patch16_224_8at6_fuse', depth=3, tokenlearner_loc=0, features_only=True)
    assert model.out_indices == [0, 1, 2]
    with torch.no_grad():
        assert [tuple(y.shape) for y in model(x)] == [(1, 64, 4, 4)] * 3


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
