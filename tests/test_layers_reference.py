"""The layers compute the reference math (shared/docs/tokenlearner.md) on random parameters."""
import pytest
import torch

from tl_models import TokenFuser, TokenLearner, TokenLearnerV11

import reference
from conftest import randomize_

B, C, S = 2, 12, 4


def _tokens(grid):
    return torch.randn(B, grid[0] * grid[1], C)


@pytest.mark.parametrize('use_sum_pooling', [True, False])
@pytest.mark.parametrize('grid', [(4, 4), (3, 5)])
def test_v1_matches_reference(use_sum_pooling, grid):
    module = randomize_(TokenLearner(S, C, use_sum_pooling=use_sum_pooling)).eval()
    tokens = _tokens(grid)
    expected = reference.token_learner_v1(module, tokens, grid, use_sum_pooling)
    torch.testing.assert_close(module(tokens, grid).double(), expected, rtol=1e-4, atol=1e-4)


def test_v11_matches_reference():
    module = randomize_(TokenLearnerV11(S, C, bottleneck_dim=6)).eval()
    tokens = _tokens((3, 5))
    torch.testing.assert_close(module(tokens).double(), reference.token_learner_v11(module, tokens),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('use_normalization', [True, False])
def test_fuser_matches_reference(use_normalization):
    module = randomize_(TokenFuser(S, C, use_normalization=use_normalization, bottleneck_dim=6)).eval()
    tokens, original = torch.randn(B, S, C), _tokens((3, 5))
    expected = reference.token_fuser(module, tokens, original, use_normalization)
    torch.testing.assert_close(module(tokens, original).double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
def test_channels_first_input_equals_token_input(layer):
    module = randomize_(layer(S, C)).eval()
    feature_map = torch.randn(B, C, 3, 5)
    tokens = feature_map.flatten(2).transpose(1, 2)  # row-major positions
    torch.testing.assert_close(module(feature_map), module(tokens, (3, 5)))


def test_fuser_returns_channels_first_for_channels_first_original():
    module = randomize_(TokenFuser(S, C)).eval()
    feature_map, tokens = torch.randn(B, C, 3, 5), torch.randn(B, S, C)
    fused = module(tokens, feature_map)
    assert fused.shape == feature_map.shape
    torch.testing.assert_close(fused.flatten(2).transpose(1, 2), module(tokens, feature_map.flatten(2).transpose(1, 2)))


def test_v1_weights_are_independent_sigmoids():
    weights = TokenLearner(S, C).spatial_weights(torch.randn(B, C, 4, 4))
    assert weights.shape == (B, S, 16)
    assert ((weights > 0) & (weights < 1)).all()
    assert not torch.allclose(weights.sum(-1), torch.ones(B, S))


def test_v11_weights_sum_to_one_over_space():
    weights = randomize_(TokenLearnerV11(S, C)).spatial_weights(torch.randn(B, 20, C))
    assert weights.shape == (B, S, 20)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, S))
