"""Standardising tokens: a LayerNorm without its affine, shared by a TokenLearner and TokenFuser on one input.

The TokenLearner before a block and the TokenFuser after it both LayerNorm the same ``[B, N, C]`` tokens, each
with its own scale and shift. Standardising once and folding each module's scale and shift into the first
layer of its MLP (:class:`~tl_models.layers.mlp.BottleneckMlp`) gives the same result with one pass over the
tokens instead of two.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layout import check_standardized


def standardize(tokens: torch.Tensor) -> torch.Tensor:
    """Each position's channels to zero mean and unit variance: ``[..., C]`` -> ``[..., C]``.

    The epsilon, 1e-6, is the one of every LayerNorm in the TokenLearner modules (the official code's).
    """
    return F.layer_norm(tokens, [tokens.shape[-1]], eps=1e-6)


def standardized_tokens(tokens: torch.Tensor, standardized: Optional[torch.Tensor], name: str) -> torch.Tensor:
    """``standardized``, checked to be shaped like tokens ``[B, N, C]``, or else ``standardize(tokens)``."""
    if standardized is None:
        return standardize(tokens)
    check_standardized(standardized, tokens, name)
    return standardized


def layer_norm_tokens(
        tokens: torch.Tensor,
        standardized: Optional[torch.Tensor],
        weight: torch.Tensor,
        bias: torch.Tensor,
        name: str,
) -> torch.Tensor:
    """LayerNorm of tokens ``[B, N, C]`` with scale ``weight`` and shift ``bias`` (``[C]``): ``[B, N, C]``.

    From ``standardized`` (checked to be shaped like the tokens) in one fused pass when it is given.
    """
    if standardized is None:
        return F.layer_norm(tokens, [tokens.shape[-1]], weight, bias, eps=1e-6)
    check_standardized(standardized, tokens, name)
    return torch.addcmul(bias, standardized, weight)


class Standardize(nn.Module):
    """:func:`standardize` as a module without parameters, for timing hooks to see: ``[B, N, C]`` -> ``[B, N, C]``."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return standardize(tokens)
