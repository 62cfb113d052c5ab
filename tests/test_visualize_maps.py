"""Token maps read through hooks (issue #7): values, shapes, properties, loading by name, and the model left as it was.

The expected maps are computed without hooks: each TokenLearner's own ``spatial_weights`` on the patch tokens
that the block before it outputs (``forward_intermediates``), on the grid ``patch_embed`` gives the image.
"""
import pytest
import timm
import torch
import torch.nn as nn

import tl_models
from tl_models.visualize import VisualizationError, find_token_learners, load_model, names_weights, token_learner_maps

from conftest import randomize_


def tiny_model(variant: str = '', depth: int = 3, **kwargs) -> nn.Module:
    """A 3-block Tiny model with TokenLearner before block 1, random weights spread enough for distinct maps."""
    model = timm.create_model(f'tl_vit_tiny_patch16_224_8at6{variant}', depth=depth, tokenlearner_loc=1, **kwargs)
    return randomize_(model, std=0.2).eval()


def expected_maps(model: nn.Module, images: torch.Tensor) -> dict:
    """``token_learners.{i}`` -> ``[B, S, H, W]``: spatial_weights of the output of block i - 1 (i >= 1)."""
    height, width = model.patch_embed.dynamic_feat_size(images.shape[-2:])
    with torch.no_grad():
        outputs = model.forward_intermediates(images, output_fmt='NLC', intermediates_only=True)  # [B, N, C] each
        return {
            f'token_learners.{key}': learner.spatial_weights(outputs[int(key) - 1], (height, width)).reshape(
                images.shape[0], model.num_tokens, height, width)
            for key, learner in model.token_learners.items()
        }


def hook_counts(model: nn.Module) -> dict:
    return {name: (len(m._forward_pre_hooks), len(m._forward_hooks)) for name, m in model.named_modules()}


@pytest.mark.parametrize('variant', ['', '_v1', '_fuse'])
def test_maps_equal_each_learners_spatial_weights(variant):
    model = tiny_model(variant, img_size=64)
    images = torch.randn(2, 3, 64, 64)
    maps = token_learner_maps(model, images)
    expected = expected_maps(model, images)
    assert list(maps) == list(expected)
    for name, layer_maps in maps.items():
        assert layer_maps.shape == (2, 8, 4, 4)
        torch.testing.assert_close(layer_maps, expected[name])
    assert not torch.allclose(maps['token_learners.1'][0], maps['token_learners.1'][1])  # per image


@pytest.mark.parametrize('variant', ['', '_fuse'])
def test_v11_maps_are_a_softmax_over_space(variant):
    maps = token_learner_maps(tiny_model(variant, img_size=64), torch.randn(2, 3, 64, 64))
    for layer_maps in maps.values():
        assert (layer_maps > 0).all()
        torch.testing.assert_close(layer_maps.sum(dim=(2, 3)), torch.ones(2, 8))
        assert layer_maps.amax() > 2 * layer_maps.amin()  # not a uniform map, which would sum to 1 trivially


def test_v1_maps_are_sigmoids_in_the_open_unit_interval():
    maps = token_learner_maps(tiny_model('_v1', img_size=64), torch.randn(2, 3, 64, 64))
    (layer_maps,) = maps.values()
    assert ((layer_maps > 0) & (layer_maps < 1)).all()
    assert not torch.allclose(layer_maps.sum(dim=(2, 3)), torch.ones(2, 8), atol=0.1)  # each position on its own


def test_fuser_model_has_one_map_set_per_block_from_tokenlearner_loc():
    model = tiny_model('_fuse', depth=4, img_size=32)
    maps = token_learner_maps(model, torch.randn(1, 3, 32, 32))
    assert list(maps) == ['token_learners.1', 'token_learners.2', 'token_learners.3']
    assert all(m.shape == (1, 8, 2, 2) for m in maps.values())
    assert not torch.allclose(maps['token_learners.1'], maps['token_learners.3'])


@pytest.mark.parametrize('variant', ['', '_v1', '_fuse'])
@pytest.mark.parametrize('model_kwargs', [dict(img_size=(48, 80)), dict(img_size=64, dynamic_img_size=True)],
                         ids=['fixed', 'dynamic'])
def test_non_square_inputs_give_maps_on_their_patch_grid(variant, model_kwargs):
    model = tiny_model(variant, **model_kwargs)
    images = torch.randn(2, 3, 48, 80)
    maps = token_learner_maps(model, images)
    expected = expected_maps(model, images)
    for name, layer_maps in maps.items():
        assert layer_maps.shape == (2, 8, 3, 5)
        torch.testing.assert_close(layer_maps, expected[name])


def test_model_is_left_unchanged_and_maps_are_those_of_inference():
    model = tiny_model('_fuse', img_size=32, tokenlearner_drop_rate=0.5, drop_rate=0.5).train()
    model.blocks[0].eval()  # a mixed state, to check that every module gets its own flag back
    flags = {name: m.training for name, m in model.named_modules()}
    hooks = hook_counts(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(2, 3, 32, 32)

    maps = token_learner_maps(model, images)

    assert hook_counts(model) == hooks
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert model.state_dict().keys() == state.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    model.eval()
    for name, layer_maps in expected_maps(model, images).items():  # dropout was off: eval-mode maps
        torch.testing.assert_close(maps[name], layer_maps)
    with torch.no_grad():
        logits = model(images)
        token_learner_maps(model, images)
        torch.testing.assert_close(model(images), logits, rtol=0, atol=0)


def test_hooks_are_removed_and_flags_restored_when_the_forward_pass_fails():
    model = tiny_model(img_size=32).train()
    hooks = hook_counts(model)
    with pytest.raises(RuntimeError):
        token_learner_maps(model, torch.randn(1, 5, 32, 32))  # 5 channels for a 3-channel patch embedding
    assert hook_counts(model) == hooks
    assert all(m.training for m in model.modules())


def test_model_without_token_learner_gives_a_clear_error():
    model = timm.create_model('vit_tiny_patch16_224', depth=1, img_size=32)
    message = r"vit_tiny_patch16_224 has no TokenLearner.*timm.list_models\('tl_\*'\)"
    with pytest.raises(VisualizationError, match=message):
        token_learner_maps(model, torch.randn(1, 3, 32, 32))


def test_find_token_learners_lists_every_learner_by_module_name():
    learners = find_token_learners(tiny_model('_fuse', img_size=32))
    assert list(learners) == ['token_learners.1', 'token_learners.2']
    assert all(isinstance(m, tl_models.TokenLearnerV11) for m in learners.values())
    (learner,) = find_token_learners(tiny_model('_v1', img_size=32)).values()
    assert isinstance(learner, tl_models.TokenLearner)


class _LearnerCalls(nn.Module):
    """Calls one TokenLearner v1.1 ``calls`` times on a ``[B, C, H, W]`` input."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls
        self.learner = tl_models.TokenLearnerV11(num_tokens=2, in_channels=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(self.learner(x) for _ in range(self.calls))


def test_a_learner_on_a_feature_map_gives_maps_on_its_grid():
    model = _LearnerCalls(calls=1)
    x = torch.randn(2, 4, 3, 5)
    (layer_maps,) = token_learner_maps(model, x).values()
    torch.testing.assert_close(layer_maps, model.learner.spatial_weights(x).reshape(2, 2, 3, 5))


@pytest.mark.parametrize('calls', [0, 2])
def test_a_learner_that_does_not_run_exactly_once_is_an_error(calls):
    with pytest.raises(VisualizationError, match=rf"run once per forward pass.*'learner': {calls}"):
        token_learner_maps(_LearnerCalls(calls), torch.randn(1, 4, 3, 3))


def test_local_dir_model_loads_its_weights_and_gives_the_same_maps(tmp_path):
    model = tiny_model('_fuse', img_size=32)
    timm.models.save_for_hf(model, tmp_path / 'model', safe_serialization=True)
    loaded = load_model(f'local-dir:{tmp_path / "model"}')
    assert not loaded.training
    images = torch.randn(1, 3, 32, 32)
    original, reloaded = token_learner_maps(model, images), token_learner_maps(loaded, images)
    assert list(reloaded) == list(original) == ['token_learners.1', 'token_learners.2']
    for name in original:
        torch.testing.assert_close(reloaded[name], original[name])


def test_registered_names_build_without_weights_by_default():
    assert names_weights('hf-hub:org/repo') and names_weights('local-dir:/some/folder')
    assert not names_weights('tl_vit_tiny_patch16_224_8at6')
    model = load_model('tl_vit_tiny_patch16_224_8at6_v1')  # no download: random weights, in eval mode
    assert isinstance(model, tl_models.TokenLearnerVisionTransformer) and not model.training
    assert list(find_token_learners(model)) == ['token_learners.6']


@pytest.mark.parametrize('name, message', [
    ('tl_vit_nonexistent', r"unknown model 'tl_vit_nonexistent': expected a registered name"),
    ('local-dir:/nonexistent/model', r'no model at local-dir:/nonexistent/model: expected a folder with config.json'),
])
def test_bad_model_names_give_a_clear_error(name, message):
    with pytest.raises(VisualizationError, match=message):
        load_model(name)
