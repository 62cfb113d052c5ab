"""Independent float64 reference computations of the TokenLearner math (``shared/docs/tokenlearner.md``).

Written from the formulas with elementary tensor operations only (no ``nn`` modules, no ``F.conv2d``,
no ``F.layer_norm``), reading the parameters out of a module's state dict. Inputs are ``[B, N, C]``
tokens on an ``(H, W)`` grid, row-major.
"""
import torch


def _p(module, name):
    return module.state_dict()[name].double()


def layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / 2 ** 0.5))


def conv3x3_same(x, weight):
    """Zero-padded cross-correlation: x ``[B, H, W, Cin]``, weight ``[Cout, Cin, 3, 3]`` -> ``[B, H, W, Cout]``."""
    B, H, W, _ = x.shape
    padded = torch.zeros(B, H + 2, W + 2, x.shape[-1], dtype=x.dtype)
    padded[:, 1:-1, 1:-1] = x
    out = 0
    for dy in range(3):
        for dx in range(3):
            out = out + torch.einsum('bhwi,oi->bhwo', padded[:, dy:dy + H, dx:dx + W], weight[:, :, dy, dx])
    return out


def mlp(module, prefix, x):
    hidden = gelu(x @ _p(module, f'{prefix}.fc1.weight').T + _p(module, f'{prefix}.fc1.bias'))
    return hidden @ _p(module, f'{prefix}.fc2.weight').T + _p(module, f'{prefix}.fc2.bias')


def token_learner_v1(module, tokens, grid, use_sum_pooling=True):
    """out[b, s] = sum_n sigmoid(conv_stack(LN(x))[b, n, s]) * x[b, n]  (mean: divided by N)."""
    x = tokens.double()
    B, N, C = x.shape
    a = layer_norm(x, _p(module, 'norm.weight'), _p(module, 'norm.bias')).reshape(B, grid[0], grid[1], C)
    for i, conv in enumerate((0, 2, 4, 6)):
        a = conv3x3_same(a, _p(module, f'token_masking.{conv}.weight'))
        if i < 3:
            a = gelu(a)
    weights = torch.sigmoid(a.reshape(B, N, -1))  # [B, N, S]
    out = torch.einsum('bns,bnc->bsc', weights, x)
    return out if use_sum_pooling else out / N


def token_learner_v11(module, tokens):
    """out[b, s] = sum_n softmax_n(MLP(LN(x))[b, :, s])[n] * x[b, n]."""
    x = tokens.double()
    logits = mlp(module, 'token_masking', layer_norm(x, _p(module, 'norm.weight'), _p(module, 'norm.bias')))
    weights = torch.softmax(logits, dim=1)  # normalised over the N positions
    return torch.einsum('bns,bnc->bsc', weights, x)


def token_fuser(module, tokens, original, use_normalization=True):
    """out[b, n] = sum_s sigmoid(MLP(LN(original))[b, n, s]) * LN(Mix(LN(tokens)))[b, s]."""
    t, x = tokens.double(), original.double()
    if use_normalization:
        t = layer_norm(t, _p(module, 'mix_norm1.weight'), _p(module, 'mix_norm1.bias'))
    t = torch.einsum('bsc,ts->btc', t, _p(module, 'token_mixer.weight')) + _p(module, 'token_mixer.bias')[:, None]
    if use_normalization:
        t = layer_norm(t, _p(module, 'mix_norm2.weight'), _p(module, 'mix_norm2.bias'))
    mix = torch.sigmoid(mlp(module, 'token_masking', layer_norm(x, _p(module, 'norm.weight'), _p(module, 'norm.bias'))))
    return torch.einsum('bns,bsc->bnc', mix, t)
