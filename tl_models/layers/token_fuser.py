"""TokenFuser: maps S learned tokens back onto the N positions of the tensor they were learned from."""
from typing import Final

import torch
import torch.nn as nn

from .layout import check_learned_tokens, flatten_tokens, restore_layout
from .mlp import BottleneckMlp

torch.fx.wrap('check_learned_tokens')
torch.fx.wrap('flatten_tokens')
torch.fx.wrap('restore_layout')


class TokenFuser(nn.Module):
    """Token fusion (Ryoo et al. 2021, section 3.2), as in the official scenic code.

    t = LayerNorm_C(Linear_{S->S}(LayerNorm_C(tokens)^T)^T)        # [B, S, C], mixes across tokens
    m = sigmoid(MLP(LayerNorm_C(original)))                         # [B, N, S], MLP C->D->S
    out = Dropout(m @ t)                                            # [B, N, C]

    The token mixer's weight and bias start at zero, so a fresh fuser outputs exactly zero and a
    TokenLearner -> block -> TokenFuser layer with the residual ``original + out`` starts as the identity.
    The caller adds that residual.

    Inputs: tokens ``[B, S, C]`` and original ``[B, N, C]`` or ``[B, C, H, W]``; the output has the
    shape of ``original``.
    """
    num_tokens: Final[int]
    in_channels: Final[int]

    def __init__(
            self,
            num_tokens: int,
            in_channels: int,
            use_normalization: bool = True,
            bottleneck_dim: int = 64,
            dropout_rate: float = 0.,
            weight_init: str = 'official',
    ) -> None:
        """
        Args:
            num_tokens: S, the number of learned tokens to fuse.
            in_channels: C, the channels of tokens and original.
            use_normalization: LayerNorm before and after the token mixer (needed after sum pooling).
            bottleneck_dim: D, the hidden width of the MLP that scores positions.
            dropout_rate: Dropout in the MLP and on the output.
            weight_init: The MLP's initialisation, 'official' or 'vit' (see :mod:`.mlp`); the token mixer
                starts at zero either way.
        """
        super().__init__()
        self.num_tokens = num_tokens
        self.in_channels = in_channels
        self.mix_norm1 = nn.LayerNorm(in_channels, eps=1e-6) if use_normalization else nn.Identity()
        self.token_mixer = nn.Linear(num_tokens, num_tokens)
        self.mix_norm2 = nn.LayerNorm(in_channels, eps=1e-6) if use_normalization else nn.Identity()
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.token_masking = BottleneckMlp(in_channels, bottleneck_dim, num_tokens, dropout_rate, weight_init)
        self.dropout = nn.Dropout(dropout_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """Zeroes the token mixer, the paper's initialisation (timm's weight init calls this after its own)."""
        nn.init.zeros_(self.token_mixer.weight)
        nn.init.zeros_(self.token_mixer.bias)

    def forward(self, tokens: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """Fuses tokens ``[B, S, C]`` into original ``[B, N, C]`` / ``[B, C, H, W]``; returns original's shape."""
        positions = flatten_tokens(original, self.in_channels, 'TokenFuser original')  # [B, N, C]
        check_learned_tokens(tokens, self.num_tokens, original, self.in_channels)
        t = self.mix_norm1(tokens)  # [B, S, C]
        t = self.token_mixer(t.transpose(1, 2)).transpose(1, 2)  # [B, S, C]
        t = self.mix_norm2(t)  # [B, S, C]
        mix = self.token_masking(self.norm(positions)).sigmoid()  # [B, N, S]
        fused = self.dropout(mix @ t)  # [B, N, C]
        return restore_layout(fused, original)
