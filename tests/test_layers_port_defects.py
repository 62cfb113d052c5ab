"""One regression test per defect of other TokenLearner ports (shared/docs/tokenlearner.md)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tl_models import TokenFuser, TokenLearner, TokenLearnerV11

from conftest import randomize_

B, C, S = 2, 16, 4


def test_v11_token_s_attends_where_its_own_logits_are_high():
    """Seed v1.1 used view(B, S, -1) instead of a transpose, mixing up which positions a token attends to."""
    module = TokenLearnerV11(S, C, bottleneck_dim=C).eval()
    N = 6
    tokens = torch.randn(1, N, C)
    with torch.no_grad():  # logits[n, s] = 50 * [n == s]: token s must copy position s
        module.norm.weight.fill_(1.0)
        module.norm.bias.zero_()
        module.token_masking.fc1.weight.copy_(torch.eye(C))
        module.token_masking.fc1.bias.fill_(10.0)  # keeps GELU in its linear range
        module.token_masking.fc2.weight.zero_()
        module.token_masking.fc2.bias.zero_()
        normed = torch.nn.functional.layer_norm(tokens, (C,), eps=1e-6)[0] + 10.0  # fc1+act output per position
        selector = torch.linalg.lstsq(normed, 50.0 * torch.eye(N, S)).solution  # [C, S]
        module.token_masking.fc2.weight.copy_(selector.T)
    torch.testing.assert_close(module(tokens)[0], tokens[0, :S], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
def test_learner_normalises_each_position_on_its_own(layer):
    """The seed used GroupNorm(1, C) (statistics of the whole map) instead of a per-position LayerNorm."""
    module = randomize_(layer(S, C)).eval()
    x = torch.randn(B, C, 4, 4)
    scale = torch.rand(B, 1, 4, 4) * 4 + 0.25  # a different positive factor per position
    torch.testing.assert_close(module.spatial_weights(x * scale), module.spatial_weights(x), rtol=1e-4, atol=1e-5)


def test_fuser_normalises_each_position_of_original_on_its_own():
    module = randomize_(TokenFuser(S, C)).eval()
    tokens, original = torch.randn(B, S, C), torch.randn(B, 9, C)
    scale = torch.rand(B, 9, 1) * 4 + 0.25
    torch.testing.assert_close(module(tokens, original * scale), module(tokens, original), rtol=1e-4, atol=1e-5)


def test_fresh_fuser_outputs_exactly_zero():
    """The seed fuser used Linear(S->64) instead of the zero-initialised S->S token mixer."""
    module = TokenFuser(S, C)
    assert module.token_mixer.weight.shape == (S, S)
    fused = module(torch.randn(B, S, C), torch.randn(B, C, 3, 3))
    assert torch.equal(fused, torch.zeros_like(fused))


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
def test_fresh_learner_block_fuser_layer_is_the_identity(layer):
    learner, fuser = layer(S, C), TokenFuser(S, C)
    block = torch.nn.TransformerEncoderLayer(C, nhead=2, dim_feedforward=32, batch_first=True)
    x = torch.randn(B, 16, C)
    assert torch.equal(x + fuser(block(learner(x)), x), x)


def test_v1_non_square_tokens_without_grid_raise_a_clear_error():
    """The seed's v1 failed inside view() on a non-square N, before its own check."""
    with pytest.raises(ValueError, match=r'expected a square token count N=H\*W.*got N=15 in \(2, 15, 16\)'):
        TokenLearner(S, C)(torch.randn(B, 15, C))
    assert TokenLearner(S, C)(torch.randn(B, 15, C), grid_size=(3, 5)).shape == (B, S, C)


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize('layer', [TokenLearner, TokenLearnerV11])
@pytest.mark.parametrize('layout', ['BCHW', 'BNC'])
def test_no_intermediate_larger_than_the_input(layer, layout):
    """The seed's v1 materialised a [B, S, C, N] product: S times the input's memory."""
    module = layer(8, 64).eval()  # C >= the v1.1 bottleneck width D = 64, as in every ViT
    x = torch.randn(2, 64, 8, 8) if layout == 'BCHW' else torch.randn(2, 64, 64)
    with torch.no_grad(), _LargestTensor() as largest:
        module(x)
    assert largest.numel <= x.numel()


def test_fuser_has_no_intermediate_larger_than_its_output():
    module = TokenFuser(8, 64).eval()
    original = torch.randn(2, 64, 64)
    with torch.no_grad(), _LargestTensor() as largest:
        module(torch.randn(2, 8, 64), original)
    assert largest.numel <= original.numel()


@pytest.mark.parametrize('make', [
    lambda: TokenLearner(S, C),
    lambda: TokenLearner(S, C, use_sum_pooling=False),
    lambda: TokenLearnerV11(S, C, bottleneck_dim=8),
])
def test_every_learner_parameter_is_registered_and_trained(make):
    """Other ports kept sub-modules in a plain Python list: never registered, never trained."""
    module = make()
    expected = (2 * C + C * S * 9 + 3 * S * S * 9 if isinstance(module, TokenLearner)
                else 2 * C + (C * 8 + 8) + (8 * S + S))
    assert sum(p.numel() for p in module.parameters()) == expected
    module(torch.randn(B, C, 4, 4)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_every_fuser_parameter_is_registered_and_trained():
    module = randomize_(TokenFuser(S, C, bottleneck_dim=8))
    expected = 3 * 2 * C + (S * S + S) + (C * 8 + 8) + (8 * S + S)
    assert sum(p.numel() for p in module.parameters()) == expected
    module(torch.randn(B, S, C), torch.randn(B, C, 3, 3)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
