"""Initialisation of the TokenLearner layers: the official code's by default, timm's ViT one on request.

Regression: tl_models before 0.2 let timm's ViT initialisation (truncated normal, std 0.02) reach the
TokenLearner MLP, so every token's map started almost uniform and the tokens almost identical.
"""
import pytest
import timm
import torch

import tl_models  # noqa: F401  (registers the tl_ models)
from lab.study import pairwise_map_similarity
from tl_models import TokenFuser, TokenLearner, TokenLearnerV11

C, S = 128, 8


def _xavier_std(layer: torch.nn.Linear) -> float:
    fan_out, fan_in = layer.weight.shape
    return (2 / (fan_in + fan_out)) ** 0.5


def test_official_mlp_init_is_xavier_uniform_with_near_zero_biases():
    torch.manual_seed(0)
    learner = TokenLearnerV11(S, C)
    for layer in (learner.token_masking.fc1, learner.token_masking.fc2):
        bound = 3 ** 0.5 * _xavier_std(layer)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert layer.weight.std().item() == pytest.approx(_xavier_std(layer), rel=0.1)
        assert layer.bias.abs().max() < 1e-5


def test_vit_init_is_timms_truncated_normal():
    torch.manual_seed(0)
    learner = TokenLearnerV11(S, C, weight_init='vit')
    assert learner.token_masking.fc1.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(learner.token_masking.fc2.bias, torch.zeros(S))


def test_the_official_init_starts_with_distinct_maps_the_vit_init_with_uniform_ones():
    torch.manual_seed(0)
    tokens = torch.randn(4, 64, C)
    official = TokenLearnerV11(S, C).spatial_weights(tokens)
    vit = TokenLearnerV11(S, C, weight_init='vit').spatial_weights(tokens)
    assert (vit - 1 / 64).abs().max() < 2e-3  # every token pools (almost) the plain mean
    assert pairwise_map_similarity(vit).min() > 0.999
    assert pairwise_map_similarity(official).max() < 0.95


def test_v1_convolutions_are_lecun_normal():
    torch.manual_seed(0)
    learner = TokenLearner(S, C)
    first = learner.token_masking[0].weight
    assert first.std().item() == pytest.approx((1 / (C * 9)) ** 0.5, rel=0.1)
    default = TokenLearner(S, C, weight_init='vit').token_masking[0].weight  # PyTorch's: uniform +-1/sqrt(fan_in)
    assert default.std().item() == pytest.approx((1 / (3 * C * 9)) ** 0.5, rel=0.1)


def test_the_fusers_mixer_starts_at_zero_with_either_init():
    for weight_init in ('official', 'vit'):
        fuser = TokenFuser(S, C, weight_init=weight_init)
        assert not fuser.token_mixer.weight.any() and not fuser.token_mixer.bias.any()


@pytest.mark.parametrize('name', ['tl_vit_nano_patch4_32_8at2', 'tl_vit_nano_patch4_32_8at2_fuse'])
def test_models_keep_the_layer_init_after_timms_weight_init(name):
    torch.manual_seed(0)
    model = timm.create_model(name)
    layers = [m.token_masking.fc1 for m in [*model.token_learners.values(), *model.token_fusers.values()]]
    assert all(layer.weight.std().item() == pytest.approx(_xavier_std(layer), rel=0.1) for layer in layers)
    assert model.blocks[0].mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.1)  # timm's ViT init elsewhere
    vit = timm.create_model(name, tokenlearner_init='vit')
    assert all(m.token_masking.fc1.weight.std().item() == pytest.approx(0.02, rel=0.1)
               for m in vit.token_learners.values())


def test_an_unknown_init_is_refused():
    with pytest.raises(ValueError, match=r"weight_init must be one of official, vit, got 'xavier'"):
        TokenLearnerV11(S, C, weight_init='xavier')
    with pytest.raises(ValueError, match=r"weight_init must be one of official, vit, got 'he'"):
        timm.create_model('tl_vit_nano_patch4_32_8at2', tokenlearner_init='he')
