"""The small MLP that scores positions in TokenLearner v1.1 and TokenFuser (scenic's ``MlpBlock``).

Its input is always LayerNorm-ed. The owner standardises the tokens (possibly once for two modules, see
:mod:`tl_models.layers.norm`) and applies ``fc1`` with its LayerNorm's scale and shift folded into it
(:func:`affine_linear`); :class:`BottleneckMlp` runs the layers after ``fc1``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def affine_linear(
        x: torch.Tensor,
        scale: torch.Tensor,
        shift: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
) -> torch.Tensor:
    """``linear(x * scale + shift)``: ``[..., in]`` -> ``[..., out]``; scale, shift ``[in]``, weight ``[out, in]``.

    Scale and shift fold into the weights (``W diag(scale)``, ``b + W shift``), so the scaled input, as large
    as ``x``, is never materialised: a LayerNorm's affine on standardised tokens comes for free.
    """
    return F.linear(x, weight * scale, torch.addmv(bias, weight, shift))


class BottleneckMlp(nn.Module):
    """Linear(in->hidden) ``fc1``, GELU, Dropout, Linear(hidden->out) ``fc2``, Dropout.

    ``forward`` takes the output of ``fc1`` (``[..., hidden]``), which the owner computes with
    :func:`affine_linear` from its standardised tokens, and returns ``[..., out]``.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int, dropout_rate: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout_rate)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(dropout_rate)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``fc1``'s output ``[..., hidden]`` -> ``[..., out]``."""
        return self.drop2(self.fc2(self.drop1(self.act(hidden))))
