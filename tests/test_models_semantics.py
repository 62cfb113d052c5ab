"""Where TokenLearner and TokenFuser sit in the ViT (official semantics) and the timm features around them."""
import pytest
import timm
import timm.optim
import torch
import torch.nn as nn

import tl_models  # noqa: F401  (registers the variants)
from tl_models import TokenLearner, TokenLearnerV11

from conftest import randomize_

SMALL = dict(depth=4, tokenlearner_loc=2, img_size=64, embed_dim=64, num_heads=2)  # 4 x 4 = 16 patch tokens


def _block_input_lengths(model, x):
    lengths = []
    hooks = [blk.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1])) for blk in model.blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return lengths


@pytest.mark.parametrize('loc', [0, 1, 3])
@pytest.mark.parametrize('prefix', [dict(class_token=False, global_pool='avg'),
                                    dict(class_token=True, global_pool='token'),
                                    dict(class_token=True, reg_tokens=2, global_pool='avg')])
def test_blocks_from_tokenlearner_loc_on_see_s_plus_prefix_tokens(loc, prefix):
    kwargs = dict(SMALL, tokenlearner_loc=loc, num_tokens=5, **prefix)
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', **kwargs)
    P = model.num_prefix_tokens
    assert _block_input_lengths(model.eval(), torch.randn(2, 3, 64, 64)) == [P + 16] * loc + [P + 5] * (4 - loc)


@pytest.mark.parametrize('prefix', [dict(class_token=False, global_pool='avg'), dict(class_token=True)])
def test_fuser_blocks_see_s_tokens_and_the_sequence_keeps_n(prefix):
    kwargs = dict(SMALL, tokenlearner_loc=1, num_tokens=5, **prefix)
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **kwargs)
    P = model.num_prefix_tokens
    assert _block_input_lengths(model.eval(), torch.randn(2, 3, 64, 64)) == [P + 16] + [P + 5] * 3
    assert model.forward_features(torch.randn(2, 3, 64, 64)).shape == (2, P + 16, 64)
    assert sorted(model.token_learners) == sorted(model.token_fusers) == ['1', '2', '3']


def test_tokenlearner_runs_once_without_fuser():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', **SMALL)
    assert list(model.token_learners) == ['2'] and len(model.token_fusers) == 0


def test_fresh_fuser_model_equals_its_first_blocks():
    """A fresh TokenFuser outputs zero, so every fused block starts as the identity on the patch tokens."""
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **SMALL).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, intermediates = model.forward_intermediates(x, indices=[1], output_fmt='NLC', norm=True)
        torch.testing.assert_close(model.forward_features(x), intermediates[0])


@pytest.mark.parametrize('use_v11', [True, False])
@pytest.mark.parametrize('prefix', [dict(class_token=False, global_pool='avg'), dict(class_token=True)])
def test_fuser_blocks_compute_r_plus_tf_of_block_of_tl(use_v11, prefix):
    """Every block i >= L computes r + TF_i(block_i(TL_i(r)), r) on the patch tokens, here written out with the
    modules' own forward (each standardising r itself), against the model's path that standardises r once."""
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **dict(SMALL, use_v11=use_v11, **prefix))
    model = randomize_(model, std=0.2).eval()
    P, grid = model.num_prefix_tokens, model.patch_embed.grid_size
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        x = model.norm_pre(model._pos_embed(model.patch_embed(images)))
        for i, blk in enumerate(model.blocks):
            if i < model.tokenlearner_loc:
                x = blk(x)
                continue
            prefix_tokens, r = x[:, :P], x[:, P:]
            y = blk(torch.cat([prefix_tokens, model.token_learners[str(i)](r, grid)], dim=1))
            x = torch.cat([y[:, :P], r + model.token_fusers[str(i)](y[:, P:], r)], dim=1)
        torch.testing.assert_close(model.forward_features(images), model.norm(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('use_v11, layer', [(True, TokenLearnerV11), (False, TokenLearner)])
def test_use_v11_picks_the_tokenlearner_version(use_v11, layer):
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', use_v11=use_v11, **SMALL)
    assert isinstance(model.token_learners['2'], layer)


@pytest.mark.parametrize('kwargs, message', [
    (dict(tokenlearner_loc=4), r'tokenlearner_loc must be a block index in 0..3, got 4'),
    (dict(tokenlearner_loc=-1), r'tokenlearner_loc must be a block index in 0..3, got -1'),
    (dict(num_tokens=0), r'num_tokens must be at least 1, got 0'),
    (dict(use_v11=False, patch_drop_rate=0.1), r'patch_drop_rate > 0 needs use_v11=True'),
])
def test_bad_tokenlearner_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timm.create_model('tl_vit_tiny_patch16_224_8at6', **dict(SMALL, **kwargs))


def test_plain_vit_checkpoint_keys_map_one_to_one():
    vit = timm.create_model('vit_tiny_patch16_224', class_token=False, global_pool='avg')
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6')
    ours, theirs = model.state_dict(), vit.state_dict()
    assert all(ours[k].shape == v.shape for k, v in theirs.items())
    assert all(k.startswith(('token_learners.', 'token_fusers.')) for k in ours.keys() - theirs.keys())


def test_blocks_before_tokenlearner_compute_what_the_plain_vit_computes():
    vit_args = {k: v for k, v in SMALL.items() if k != 'tokenlearner_loc'}
    vit = timm.create_model('vit_tiny_patch16_224', class_token=False, global_pool='avg', **vit_args).eval()
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', **SMALL).eval()
    model.load_state_dict(vit.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = vit.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        torch.testing.assert_close(model.forward_intermediates(x, indices=[0, 1], intermediates_only=True), expected)


def test_group_matcher_puts_tokenlearner_and_fuser_with_their_block():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **SMALL)
    groups = timm.models.group_parameters(model, model.group_matcher())
    group_of = {name: gid for gid, names in groups.items() for name in names}
    for i in (2, 3):
        assert group_of[f'token_learners.{i}.norm.weight'] == group_of[f'blocks.{i}.norm1.weight']
        assert group_of[f'token_fusers.{i}.token_mixer.weight'] == group_of[f'blocks.{i}.norm1.weight']
    assert group_of['blocks.2.norm1.weight'] != group_of['blocks.3.norm1.weight']


def test_layer_decay_scales_tokenlearner_like_its_block():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', **SMALL)
    optimizer = timm.optim.create_optimizer_v2(model, 'adamw', lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    scale_of = {id(p): g['lr_scale'] for g in optimizer.param_groups for p in g['params']}
    block2 = scale_of[id(model.blocks[2].attn.qkv.weight)]
    assert scale_of[id(model.token_learners['2'].token_masking.fc1.weight)] == block2
    assert scale_of[id(model.blocks[1].attn.qkv.weight)] < block2


def test_no_weight_decay_and_decay_groups():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', **SMALL)
    assert {'pos_embed', 'cls_token'} <= model.no_weight_decay()
    optimizer = timm.optim.create_optimizer_v2(model, 'adamw', lr=1e-3, weight_decay=0.05)
    decay_of = {id(p): g['weight_decay'] for g in optimizer.param_groups for p in g['params']}
    learner = model.token_learners['2']
    assert decay_of[id(learner.token_masking.fc1.weight)] == 0.05
    assert decay_of[id(learner.token_masking.fc1.bias)] == 0 and decay_of[id(learner.norm.weight)] == 0
    assert decay_of[id(model.pos_embed)] == 0


@pytest.mark.parametrize('name', ['tl_vit_tiny_patch16_224_8at6', 'tl_vit_tiny_patch16_224_8at6_fuse'])
def test_forward_intermediates_formats_and_prefix_tokens(name):
    model = timm.create_model(name, class_token=True, global_pool='token', **SMALL).eval()
    fuse = name.endswith('_fuse')
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        nchw = model.forward_intermediates(x, intermediates_only=True)  # the spatial blocks: all 4 with TokenFuser
        nlc = model.forward_intermediates(x, output_fmt='NLC', intermediates_only=True)  # every block
        pairs = model.forward_intermediates(
            x, indices=[1, 3], output_fmt='NLC', return_prefix_tokens=True, intermediates_only=True)
        as_dict = model.forward_intermediates(x, indices=2, output_dict=True, return_prefix_tokens=True)
    assert [tuple(y.shape) for y in nchw] == [(2, 64, 4, 4)] * (4 if fuse else 2)
    assert [tuple(y.shape) for y in nlc] == [(2, 16, 64)] * 2 + [(2, 16 if fuse else 8, 64)] * 2
    assert [tuple(p.shape) for _, p in pairs] == [(2, 1, 64)] * 2
    assert len(as_dict['image_intermediates']) == 2 and len(as_dict['image_intermediates_prefix']) == 2
    assert as_dict['image_features'].shape == (2, 1 + (16 if fuse else 8), 64)


def test_forward_intermediates_stop_early_and_pruning():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **dict(SMALL, tokenlearner_loc=1)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = model.forward_intermediates(x, indices=[2], intermediates_only=True)
        early = model.forward_intermediates(x, indices=[2], stop_early=True, intermediates_only=True)
        torch.testing.assert_close(early, full)
        assert model.prune_intermediate_layers([2]) == [2]
        assert len(model.blocks) == 3 and sorted(model.token_learners) == sorted(model.token_fusers) == ['1', '2']
        torch.testing.assert_close(model.forward_intermediates(x, indices=[2], intermediates_only=True), full)
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW' or 'NLC'"):
        model.forward_intermediates(x, output_fmt='NHWC')


@pytest.mark.parametrize('name', ['tl_vit_tiny_patch16_224_8at6', 'tl_vit_tiny_patch16_224_8at6_v1',
                                  'tl_vit_tiny_patch16_224_8at6_fuse'])
def test_other_input_sizes(name):
    model = timm.create_model(name, **dict(SMALL, img_size=(48, 80))).eval()
    assert model(torch.randn(1, 3, 48, 80)).shape == (1, 1000)
    model.set_input_size((64, 32))
    assert model(torch.randn(1, 3, 64, 32)).shape == (1, 1000)
    dynamic = timm.create_model(name, dynamic_img_size=True, **SMALL).eval()
    for size in ((64, 64), (96, 48), (32, 80)):
        assert dynamic(torch.randn(1, 3, *size)).shape == (1, 1000)


def test_patch_dropout_with_v11_trains():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', patch_drop_rate=0.5, **SMALL).train()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert model.token_learners['2'].norm.weight.grad is not None


def test_fuser_mixer_stays_zero_after_timm_weight_init():
    for mode in ('', 'jax', 'moco'):
        model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', weight_init=mode, **SMALL)
        model.init_weights(mode)
        for fuser in model.token_fusers.values():
            assert not fuser.token_mixer.weight.any() and not fuser.token_mixer.bias.any()
        assert model.token_learners['2'].token_masking.fc1.weight.std() > 0


def test_tokenlearner_modules_live_beside_the_blocks():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **SMALL)
    assert all(isinstance(b, timm.models.vision_transformer.Block) for b in model.blocks)
    assert not any(isinstance(m, (TokenLearner, TokenLearnerV11)) for m in model.blocks.modules())
    assert isinstance(model.token_learners, nn.ModuleDict)
