"""The seed README's API (shared/seed/README.md) and clear errors for bad input."""
import inspect

import pytest
import torch

from tl_models import TokenFuser, TokenLearner, TokenLearnerV11


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
def test_seed_readme_examples_print_the_same_shapes(layer, capsys):
    # The seed README's examples, verbatim but for the import line.
    num_tokens, in_channels = 8, 256
    tokenlearner = layer(num_tokens, in_channels)
    tokenfuser = TokenFuser(num_tokens, in_channels)

    inputs = torch.zeros(1, 16, in_channels)
    out = tokenlearner(inputs)
    fused = tokenfuser(out, inputs)

    print(inputs.shape, out.shape, fused.shape)

    inputs = torch.zeros(1, in_channels, 4, 4)
    out = tokenlearner(inputs)
    fused = tokenfuser(out, inputs)

    print(inputs.shape, out.shape, fused.shape)
    assert capsys.readouterr().out.splitlines() == [
        'torch.Size([1, 16, 256]) torch.Size([1, 8, 256]) torch.Size([1, 16, 256])',
        'torch.Size([1, 256, 4, 4]) torch.Size([1, 8, 256]) torch.Size([1, 256, 4, 4])',
    ]


def test_seed_constructor_arguments():
    assert TokenLearner(8, 32, use_sum_pooling=False).use_sum_pooling is False
    v11 = TokenLearnerV11(8, 32, bottleneck_dim=16, dropout_rate=0.1)
    assert v11.token_masking.fc1.out_features == 16 and v11.token_masking.drop1.p == 0.1
    fuser = TokenFuser(8, 32, use_normalization=False, bottleneck_dim=16, dropout_rate=0.1)
    assert isinstance(fuser.mix_norm1, torch.nn.Identity) and fuser.token_masking.fc1.out_features == 16


@pytest.mark.parametrize('grid', [(2, 8), (5, 3)])
def test_v1_takes_non_square_grids(grid):
    module = TokenLearner(8, 32)
    assert module(torch.randn(2, 32, *grid)).shape == (2, 8, 32)
    assert module(torch.randn(2, grid[0] * grid[1], 32), grid_size=grid).shape == (2, 8, 32)


def test_v11_takes_any_token_count():
    assert TokenLearnerV11(8, 32)(torch.randn(2, 13, 32)).shape == (2, 8, 32)


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
@pytest.mark.parametrize('shape, expected', [
    ((2, 512, 14, 14), r'expected \[B, 768, H, W\] or \[B, N, 768\], got \(2, 512, 14, 14\)'),
    ((2, 196, 512), r'expected \[B, 768, H, W\] or \[B, N, 768\], got \(2, 196, 512\)'),
    ((196, 768), r'expected \[B, 768, H, W\] or \[B, N, 768\], got \(196, 768\)'),
    ((2, 768, 2, 7, 7), r'expected \[B, 768, H, W\] or \[B, N, 768\], got \(2, 768, 2, 7, 7\)'),
])
def test_learner_rejects_wrong_rank_and_channels(layer, shape, expected):
    with pytest.raises(ValueError, match=expected):
        layer(8, 768)(torch.randn(shape))


def test_v1_rejects_a_grid_that_does_not_match():
    with pytest.raises(ValueError, match=r'grid_size \(3, 4\) holds 12 positions, the input \(2, 16, 8\) has N=16'):
        TokenLearner(4, 8)(torch.randn(2, 16, 8), grid_size=(3, 4))
    with pytest.raises(ValueError, match=r'grid_size \(3, 4\) does not match the input grid \(4, 4\)'):
        TokenLearner(4, 8)(torch.randn(2, 8, 4, 4), grid_size=(3, 4))


def test_v11_needs_no_grid_and_ignores_one():
    module, tokens = TokenLearnerV11(4, 8).eval(), torch.randn(2, 16, 8)
    torch.testing.assert_close(module(tokens, grid_size=(3, 4)), module(tokens))


@pytest.mark.parametrize('tokens, original, expected', [
    ((3, 8, 64), (2, 16, 64), r'tokens and original differ in batch size: tokens \(3, 8, 64\), original \(2, 16, 64\)'),
    ((2, 8, 32), (2, 16, 64), r'expected tokens \[B, 8, 64\], got \(2, 8, 32\)'),
    ((2, 4, 64), (2, 16, 64), r'expected tokens \[B, 8, 64\], got \(2, 4, 64\)'),
    ((2, 8, 64), (2, 16, 32), r'original: expected \[B, 64, H, W\] or \[B, N, 64\], got \(2, 16, 32\)'),
    ((2, 8, 64), (16, 64), r'original: expected \[B, 64, H, W\] or \[B, N, 64\], got \(16, 64\)'),
])
def test_fuser_rejects_mismatched_inputs(tokens, original, expected):
    with pytest.raises(ValueError, match=expected):
        TokenFuser(8, 64)(torch.randn(tokens), torch.randn(original))


def test_forward_signatures_read_like_the_math():
    """The public forward takes the tokens (and, for learners, their grid): nothing else."""
    for layer in (TokenLearner, TokenLearnerV11):
        assert list(inspect.signature(layer.forward).parameters) == ['self', 'x', 'grid_size']
    assert list(inspect.signature(TokenFuser.forward).parameters) == ['self', 'tokens', 'original']
