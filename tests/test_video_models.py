"""Video models (issue 15): clip shapes, TokenLearner per time step, image backbones inflated exactly, the schema."""
import logging
import re
import textwrap

import pytest
import timm
import torch
from timm.models import VisionTransformer

import tl_models  # noqa: F401  (registers the variants)
from tl_models import TokenFuser, TokenLearner, TokenLearnerV11
from tl_models.models import (
    CheckpointMismatchError,
    TokenLearnerVideoTransformer,
    TokenLearnerVisionTransformer,
    video_checkpoint_filter_fn,
)
from tl_models.models.adapt_video import inflate_patch_embed
from tl_models.registry import (
    VariantConfigError,
    get_variant,
    list_plain_video_variants,
    list_variants,
    list_video_variants,
    parse_variant_file,
)

from conftest import randomize_

# 32 px frames, patch 4: an 8 x 8 grid, N = 64 patch tokens per time step; 4 frames in tubelets of 2: T' = 2.
IMAGE = dict(img_size=32, patch_size=4, embed_dim=32, depth=3, num_heads=2, class_token=False, global_pool='avg',
             num_classes=5)
VIDEO = dict(IMAGE, num_frames=4, tubelet_size=2)
T_STEPS, N = 2, 64
LEARNER_PREFIXES = ('token_learners.', 'token_fusers.')


def _video(**kwargs) -> TokenLearnerVideoTransformer:
    return TokenLearnerVideoTransformer(**dict(VIDEO, **kwargs)).eval()


def _clip(batch: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size)


def _twin_name(name: str) -> str:
    """tl_vivit_small_patch16_224_8f_8at6[_fuse] -> vivit_small_patch16_224_8f."""
    return re.sub(r'_\d+at\d+(_fuse)?$', '', name[len('tl_'):])


def _tokens_after(model: TokenLearnerVideoTransformer, input_size) -> int:
    steps = input_size[1] // model.tubelet_size
    patches = (input_size[2] // model.patch_embed.patch_size[0]) * (input_size[3] // model.patch_embed.patch_size[1])
    learns = model.has_tokenlearner and not model.use_tokenfuse
    return steps * (model.num_tokens if learns else patches)


# --- the registered variants -------------------------------------------------------------------------------------

def test_video_variants_are_registered_apart_from_the_image_ones():
    video, plain = list_video_variants(), list_plain_video_variants()
    assert {'tl_vivit_small_patch16_224_8f_8at6', 'tl_vivit_base_patch16_224_16f_8at6',
            'tl_vivit_pico_patch4_32_8f_8at2'} <= set(video)
    assert set(timm.list_models('tl_vivit_*')) == set(video) and set(timm.list_models('vivit_*')) == set(plain)
    assert not set(video) & set(list_variants())  # the image list is unchanged
    assert {_twin_name(n) for n in video} <= set(plain)


@pytest.mark.parametrize('name', list_video_variants() + list_plain_video_variants())
def test_every_video_variant_maps_its_clips_to_tokens_and_logits(name):
    """Built on the meta device at full size: shapes only, no compute."""
    with torch.device('meta'):
        model = timm.create_model(name).eval()
        input_size = model.pretrained_cfg['input_size']
        assert len(input_size) == 4 and input_size[1] == model.num_frames == get_variant(name).settings['num_frames']
        x = torch.empty(2, *input_size)
        features = model.forward_features(x)
        logits = model.forward_head(features)
    assert tuple(features.shape) == (2, _tokens_after(model, input_size), model.embed_dim)
    assert tuple(logits.shape) == (2, model.num_classes)
    assert isinstance(model, TokenLearnerVideoTransformer)
    assert model.has_tokenlearner == get_variant(name).is_tokenlearner


@pytest.mark.parametrize('name', list_video_variants())
def test_the_plain_twin_has_the_same_parameters_but_tokenlearner(name):
    with torch.device('meta'):
        model, twin = timm.create_model(name), timm.create_model(_twin_name(name))
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(LEARNER_PREFIXES)}
    assert own == {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert any(k.startswith(LEARNER_PREFIXES) for k in model.state_dict())


@pytest.mark.parametrize('name', ['tl_vivit_pico_patch4_32_8f_8at2', 'tl_vivit_pico_patch4_32_8f_8at2_fuse',
                                  'vivit_pico_patch4_32_8f'])
def test_the_demo_variants_run_on_tiny_clips(name):
    model = timm.create_model(name, num_classes=3).eval()
    with torch.no_grad():
        features = model.forward_features(_clip(2, 8, 32))
        logits = model(_clip(2, 8, 32))
    expected = 4 * 8 if name.endswith('8at2') else 4 * 64  # T' = 4 time steps of 8 learned or 64 patch tokens
    assert features.shape == (2, expected, 64) and logits.shape == (2, 3)


# --- TokenLearner and TokenFuser per time step -------------------------------------------------------------------

def _block_inputs(model, x, index):
    """What block ``index`` receives."""
    seen = []
    hook = model.blocks[index].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0]


@pytest.mark.parametrize('use_v11', [True, False])
@pytest.mark.parametrize('prefix', [dict(), dict(class_token=True, global_pool='token')])
def test_tokenlearner_runs_on_each_time_step_as_the_image_tokenlearner(use_v11, prefix):
    model = randomize_(_video(tokenlearner_loc=1, num_tokens=5, use_v11=use_v11, **prefix), std=0.2)
    x = _clip()
    with torch.no_grad():
        before = model.forward_intermediates(x, indices=[0], output_fmt='NLC', intermediates_only=True,
                                             return_prefix_tokens=bool(prefix))
    patches = before[0][0] if prefix else before[0]  # [B, T'*N, C]
    assert patches.shape == (2, T_STEPS * N, 32)
    image_learner = (TokenLearnerV11(5, 32) if use_v11 else TokenLearner(5, 32)).eval()
    image_learner.load_state_dict(model.token_learners['1'].state_dict())
    with torch.no_grad():
        per_frame = [image_learner(patches[:, t * N:(t + 1) * N], (8, 8)) for t in range(T_STEPS)]  # [B, S, C] each
    expected = torch.cat(per_frame, dim=1)  # [B, T'*S, C], frame-major
    received = _block_inputs(model, x, 1)
    P = model.num_prefix_tokens
    assert received.shape == (2, P + T_STEPS * 5, 32)
    torch.testing.assert_close(received[:, P:], expected, atol=1e-5, rtol=1e-5)


def test_tokenfuser_runs_on_each_time_step_as_the_image_tokenfuser():
    model = randomize_(_video(tokenlearner_loc=1, num_tokens=5, use_tokenfuse=True), std=0.2)
    x = _clip()
    with torch.no_grad():
        r, out = model.forward_intermediates(x, indices=[0, 1], output_fmt='NLC', intermediates_only=True)
        learner, fuser = TokenLearnerV11(5, 32).eval(), TokenFuser(5, 32).eval()
        learner.load_state_dict(model.token_learners['1'].state_dict())
        fuser.load_state_dict(model.token_fusers['1'].state_dict())
        frames = [r[:, t * N:(t + 1) * N] for t in range(T_STEPS)]  # T' x [B, N, C]
        y = model.blocks[1](torch.cat([learner(f, (8, 8)) for f in frames], dim=1))  # [B, T'*S, C]
        expected = torch.cat([fuser(y[:, t * 5:(t + 1) * 5], f) + f for t, f in enumerate(frames)], dim=1)
    assert out.shape == (2, T_STEPS * N, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


# --- image checkpoints inflated onto video models ----------------------------------------------------------------

def test_central_frame_inflation_puts_the_image_filter_in_the_middle_slice():
    weight = torch.randn(8, 3, 4, 4)
    for tubelet, middle in ((1, 0), (2, 1), (3, 1), (4, 2)):
        inflated = inflate_patch_embed(weight, tubelet)
        assert inflated.shape == (8, 3, tubelet, 4, 4)
        assert torch.equal(inflated[:, :, middle], weight)
        assert inflated.abs().sum() == weight.abs().sum()  # zeros elsewhere


@pytest.mark.parametrize('video_args', [dict(), dict(tokenlearner_loc=2), dict(tokenlearner_loc=2, use_tokenfuse=True)],
                         ids=['plain_twin', 'tokenlearner', 'tokenfuser'])
def test_an_image_vit_transfers_exactly_to_blocks_before_the_tokenlearner(video_args, caplog):
    image = randomize_(VisionTransformer(**IMAGE), std=0.2).eval()
    video = _video(**video_args)
    fresh = {k: v.clone() for k, v in video.state_dict().items() if k.startswith(LEARNER_PREFIXES)}
    with caplog.at_level(logging.WARNING, logger='tl_models.models.adapt'):
        video.load_state_dict(video_checkpoint_filter_fn(image.state_dict(), video))  # strict
    assert all(torch.equal(video.state_dict()[k], v) for k, v in fresh.items())  # kept their initialisation
    assert ('keep their fresh initialisation' in caplog.text) == bool(fresh)

    frame = torch.randn(2, 3, 32, 32)
    clip = frame.unsqueeze(2).expand(-1, -1, 4, -1, -1)  # 4 identical frames
    with torch.no_grad():
        image_out = image.forward_intermediates(frame, indices=[0, 1], output_fmt='NLC', intermediates_only=True)
        video_out = video.forward_intermediates(clip, indices=[0, 1], output_fmt='NLC', intermediates_only=True)
    for i, v in zip(image_out, video_out):
        torch.testing.assert_close(v, i.repeat(1, T_STEPS, 1), atol=1e-5, rtol=1e-5)  # [B, T'*N, C]
    if not video_args:  # without TokenLearner the whole model agrees: average pooling over repeated tokens
        with torch.no_grad():
            torch.testing.assert_close(video(clip), image(frame), atol=1e-5, rtol=1e-5)


def test_an_image_tokenlearner_vit_brings_its_tokenlearner():
    image = randomize_(TokenLearnerVisionTransformer(**IMAGE, tokenlearner_loc=2, num_tokens=5), std=0.2)
    video = _video(tokenlearner_loc=2, num_tokens=5)
    video.load_state_dict(video_checkpoint_filter_fn(image.state_dict(), video))
    for key, value in image.token_learners.state_dict().items():
        assert torch.equal(video.token_learners.state_dict()[key], value)


def test_class_tokens_and_another_grid_are_adapted():
    """A class-token ViT at 64 px, patch 8 onto the 32 px patch-4 video model without class token."""
    image = VisionTransformer(**dict(IMAGE, img_size=64, patch_size=8, class_token=True, global_pool='token'))
    video = _video(tokenlearner_loc=2)
    state = video_checkpoint_filter_fn(image.state_dict(), video)
    assert 'cls_token' not in state
    assert state['pos_embed'].shape == (1, T_STEPS * N, 32)  # 8 x 8 grid resampled, repeated over T'
    assert state['patch_embed.proj.weight'].shape == (32, 3, 2, 4, 4)
    torch.testing.assert_close(state['pos_embed'][:, :N], state['pos_embed'][:, N:])
    video.load_state_dict(state)


def test_a_video_checkpoint_loads_as_it_is_and_another_clip_length_is_refused():
    source = randomize_(_video(tokenlearner_loc=2))
    target = _video(tokenlearner_loc=2)
    state = video_checkpoint_filter_fn(source.state_dict(), target)
    assert all(torch.equal(state[k], v) for k, v in source.state_dict().items())
    with pytest.raises(CheckpointMismatchError, match=r'pos_embed \(1, 128, 32\) vs model \(1, 256, 32\)'):
        video_checkpoint_filter_fn(source.state_dict(), _video(tokenlearner_loc=2, num_frames=8))


def test_a_pretrained_tag_builds_through_the_inflation_filter(tmp_path):
    """The tag mechanism end to end, with an in-memory image checkpoint instead of the hub's."""
    image = randomize_(VisionTransformer(**dict(IMAGE, embed_dim=64, depth=4, num_classes=1000)), std=0.2)
    model = timm.create_model('vivit_pico_patch4_32_8f', pretrained=True, num_classes=1000,
                              pretrained_cfg_overlay=dict(state_dict=image.state_dict()))
    assert model.pretrained_cfg['input_size'] == (3, 8, 32, 32)
    assert torch.equal(model.patch_embed.proj.weight[:, :, 1], image.patch_embed.proj.weight)
    assert torch.equal(model.blocks[3].mlp.fc2.weight, image.blocks[3].mlp.fc2.weight)


# --- errors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(2, 3, 4, 32, 32), (2, 1, 8, 32, 32), (2, 3, 8, 32), (2, 3, 8, 16, 32),
                                   (2, 3, 32, 32)])
def test_a_clip_of_another_shape_is_refused_with_the_expected_one(shape):
    model = timm.create_model('tl_vivit_pico_patch4_32_8f_8at2')
    message = re.escape(f'expected clips [B, 3, 8, 32, 32], got {shape}')
    with pytest.raises(ValueError, match=message):
        model(torch.randn(shape))


@pytest.mark.parametrize('kwargs, message', [
    (dict(patch_drop_rate=0.1), 'do not support patch_drop_rate > 0'),
    (dict(dynamic_img_size=True), 'dynamic_img_size is not supported'),
    (dict(use_tokenfuse=True), 'use_tokenfuse=True needs a TokenLearner'),
    (dict(num_frames=5), 'expected num_frames a positive multiple of tubelet_size, got num_frames=5'),
])
def test_unsupported_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _video(**kwargs)


def test_video_intermediates_are_nlc_tokens_or_maps_of_time_steps():
    model = _video(tokenlearner_loc=2, num_tokens=5)
    with torch.no_grad():
        final, blocks = model.forward_intermediates(_clip(), output_fmt='NLC')
        _, maps = model.forward_intermediates(_clip())  # NCHW: the blocks that keep the grid, [B, C, T', H, W]
    assert [tuple(b.shape) for b in blocks] == [(2, T_STEPS * N, 32)] * 2 + [(2, T_STEPS * 5, 32)]
    assert final.shape == (2, T_STEPS * 5, 32) and len(model.feature_info) == 2
    assert [tuple(m.shape) for m in maps] == [(2, 32, T_STEPS, 8, 8)] * 2
    with pytest.raises(ValueError, match='learned tokens with no spatial layout'):
        model.forward_intermediates(_clip(), indices=[2])
    assert model.prune_intermediate_layers(1) == [1] and len(model.blocks) == 2


VIDEO_YAML = textwrap.dedent("""\
    defaults:
      architecture: {patch_size: 4, embed_dim: 32, depth: 2, num_heads: 2, class_token: false, global_pool: avg,
                     num_frames: 4, tubelet_size: 2}
      pretrained_cfg: {input_size: [3, 4, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1.0,
                       license: apache-2.0}
    variants:
      tl_vivit_test_4f_4at1:
        description: A tiny test video variant.
        architecture: {num_tokens: 4, tokenlearner_loc: 1}
    """)


def test_a_valid_video_yaml_parses(tmp_path):
    path = tmp_path / 'video.yaml'
    path.write_text(VIDEO_YAML)
    (variant,) = parse_variant_file(path)
    assert variant.is_video and variant.is_tokenlearner and variant.pretrained_cfg['input_size'] == [3, 4, 32, 32]


@pytest.mark.parametrize('old, new, key, problem', [
    ('num_frames: 4,', 'num_frames: 5,', 'architecture.num_frames', 'expected a multiple of tubelet_size 2, got 5'),
    ('num_frames: 4,', 'num_frames: 0,', 'architecture.num_frames', 'expected a positive integer, got 0'),
    ('num_frames: 4, tubelet_size: 2', 'tubelet_size: 2', 'architecture.num_frames', 'missing required key'),
    ('input_size: [3, 4, 32, 32]', 'input_size: [3, 32, 32]', 'pretrained_cfg.input_size',
     'expected a list [channels, frames, height, width] of integers'),
    ('input_size: [3, 4, 32, 32]', 'input_size: [3, 8, 32, 32]', 'pretrained_cfg.input_size',
     'expected [channels, 4, height, width] (num_frames 4), got [3, 8, 32, 32]'),
    ('global_pool: avg,', 'global_pool: avg, dynamic_img_size: true,', 'architecture.dynamic_img_size',
     'video variants take clips of a fixed size'),
    ('tl_vivit_test_4f_4at1:', 'vivit_test_4f:', 'architecture.num_tokens',
     'a plain vivit_ variant has no TokenLearner'),
    ('tl_vivit_test_4f_4at1:', 'tl_test_4f_4at1:', 'architecture.num_frames', 'only video variants'),
])
def test_bad_video_yaml_names_the_key_and_the_problem(tmp_path, old, new, key, problem):
    path = tmp_path / 'video.yaml'
    assert old in VIDEO_YAML
    path.write_text(VIDEO_YAML.replace(old, new))
    with pytest.raises(VariantConfigError, match=re.escape(f"key '{key}': {problem}")):
        parse_variant_file(path)


# --- timm API ----------------------------------------------------------------------------------------------------

def test_grad_checkpointing_gives_the_same_outputs_and_gradients():
    model = randomize_(_video(tokenlearner_loc=1, use_tokenfuse=True), std=0.2).train()
    x = _clip()

    def run():
        model.zero_grad()
        out = model(x)
        out.sum().backward()
        return out, [p.grad.clone() for p in model.parameters() if p.grad is not None]

    out, grads = run()
    model.set_grad_checkpointing(True)
    out_ckpt, grads_ckpt = run()
    torch.testing.assert_close(out_ckpt, out)
    assert len(grads) == len(grads_ckpt) > 0
    for g, g_ckpt in zip(grads, grads_ckpt):
        torch.testing.assert_close(g_ckpt, g)


def test_reset_classifier_changes_the_head():
    model = _video(tokenlearner_loc=2)
    model.reset_classifier(7)
    assert model(_clip()).shape == (2, 7)
    model.reset_classifier(0)
    assert model(_clip()).shape == (2, 32)


@pytest.mark.slow
def test_torch_compile_fullgraph():
    model = _video(tokenlearner_loc=1, depth=2)
    x = _clip()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
