"""TokenLearner v1 and v1.1 (Ryoo et al., "TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?").

Notation: B batch, N = H * W input positions, C channels, S learned tokens, D bottleneck width.
Both modules return ``[B, S, C]``: each learned token is a weighted combination of the N input
tokens, ``out = weights @ tokens`` with ``weights [B, S, N]``, computed as one batched matmul.
"""
from typing import Final, Optional, Tuple

import torch
import torch.nn as nn

from .layout import flatten_tokens, token_grid
from .mlp import BottleneckMlp, check_weight_init

torch.fx.wrap('flatten_tokens')
torch.fx.wrap('token_grid')


class TokenLearner(nn.Module):
    """TokenLearner v1, the module of the paper's experiments.

    weights = sigmoid(Conv3x3(GELU(Conv3x3(GELU(Conv3x3(GELU(Conv3x3(LayerNorm_C(x)))))))))  # [B, S, N]
    with convolutions C->S, S->S, S->S, S->S (no bias), then out = weights @ x, divided by N for mean pooling.
    Each position is weighted independently (sigmoid, not normalised over space).

    Input ``[B, C, H, W]`` or ``[B, N, C]``; the convolutions need the grid, so a ``[B, N, C]`` input takes
    ``grid_size=(H, W)`` or must have a square N. Output ``[B, S, C]``.
    """
    num_tokens: Final[int]
    in_channels: Final[int]
    use_sum_pooling: Final[bool]

    def __init__(self, num_tokens: int, in_channels: int, use_sum_pooling: bool = True,
                 weight_init: str = 'official') -> None:
        """
        Args:
            num_tokens: S, the number of learned tokens.
            in_channels: C, the channels of the input tokens.
            use_sum_pooling: Sum the weighted positions (official default); otherwise average them.
            weight_init: 'official' (the convolutions LeCun-normal, as flax initialises them) or 'vit'
                (PyTorch's default, which timm's ViT initialisation leaves); see :mod:`.mlp`.
        """
        super().__init__()
        self.weight_init = check_weight_init(weight_init)
        self.num_tokens = num_tokens
        self.in_channels = in_channels
        self.use_sum_pooling = use_sum_pooling
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.token_masking = nn.Sequential(
            nn.Conv2d(in_channels, num_tokens, kernel_size=3, padding=1, bias=False),
            nn.GELU(),
            nn.Conv2d(num_tokens, num_tokens, kernel_size=3, padding=1, bias=False),
            nn.GELU(),
            nn.Conv2d(num_tokens, num_tokens, kernel_size=3, padding=1, bias=False),
            nn.GELU(),
            nn.Conv2d(num_tokens, num_tokens, kernel_size=3, padding=1, bias=False),
        )
        self.init_weights()

    def init_weights(self) -> None:
        """LeCun-normal convolutions (truncated at 2 std) for 'official'; 'vit' keeps PyTorch's default."""
        if self.weight_init != 'official':
            return
        for conv in self.token_masking:
            if isinstance(conv, nn.Conv2d):
                fan_in = conv.weight[0].numel()
                std = (1 / fan_in) ** 0.5 / .87962566103423978  # flax's truncated normal: variance 1 / fan_in
                nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)

    def _weights(self, tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Spatial weights ``[B, S, N]`` of tokens ``[B, N, C]`` on an ``(H, W)`` grid."""
        B, _, C = tokens.shape
        x = self.norm(tokens)  # [B, N, C]
        x = x.reshape(B, grid[0], grid[1], C).permute(0, 3, 1, 2)  # [B, C, H, W] (channels-last strides)
        x = self.token_masking(x)  # [B, S, H, W]
        return x.flatten(2).sigmoid()  # [B, S, N]

    def spatial_weights(self, x: torch.Tensor, grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """The weight each learned token gives each position: ``[B, S, N]``, values in (0, 1)."""
        tokens = flatten_tokens(x, self.in_channels, 'TokenLearner')
        return self._weights(tokens, token_grid(x, grid_size, 'TokenLearner'))

    def forward(self, x: torch.Tensor, grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Learns S tokens: ``[B, C, H, W]`` or ``[B, N, C]`` (on the grid ``grid_size``) -> ``[B, S, C]``."""
        tokens = flatten_tokens(x, self.in_channels, 'TokenLearner')  # [B, N, C]
        weights = self._weights(tokens, token_grid(x, grid_size, 'TokenLearner'))  # [B, S, N]
        learned = weights @ tokens  # [B, S, C]
        if self.use_sum_pooling:
            return learned
        return learned / tokens.shape[1]


class TokenLearnerV11(nn.Module):
    """TokenLearner v1.1, the official default since 2022 ("works better in general").

    logits = MLP(LayerNorm_C(x)) with MLP = Linear(C->D), GELU, Dropout, Linear(D->S), Dropout  # [B, N, S]
    weights = softmax over N of logits transposed to [B, S, N]; out = weights @ x.
    Each learned token is a convex combination of the input positions; no grid is needed.

    Input ``[B, C, H, W]`` or ``[B, N, C]`` of any N; output ``[B, S, C]``.
    """
    num_tokens: Final[int]
    in_channels: Final[int]

    def __init__(self, num_tokens: int, in_channels: int, bottleneck_dim: int = 64, dropout_rate: float = 0.,
                 weight_init: str = 'official') -> None:
        """
        Args:
            num_tokens: S, the number of learned tokens.
            in_channels: C, the channels of the input tokens.
            bottleneck_dim: D, the hidden width of the MLP that scores positions.
            dropout_rate: Dropout after each MLP layer.
            weight_init: 'official' (the MLP Xavier-uniform, as scenic initialises it) or 'vit' (timm's ViT
                initialisation, truncated normal with std 0.02); see :mod:`.mlp`.
        """
        super().__init__()
        self.num_tokens = num_tokens
        self.in_channels = in_channels
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.token_masking = BottleneckMlp(in_channels, bottleneck_dim, num_tokens, dropout_rate, weight_init)

    def _weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """Spatial weights ``[B, S, N]`` of tokens ``[B, N, C]``."""
        logits = self.token_masking(self.norm(tokens))  # [B, N, S]
        return logits.transpose(1, 2).softmax(dim=-1)  # [B, S, N], sums to 1 over N

    def spatial_weights(self, x: torch.Tensor, grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """The weight each learned token gives each position: ``[B, S, N]``, each row sums to 1."""
        return self._weights(flatten_tokens(x, self.in_channels, 'TokenLearnerV11'))

    def forward(self, x: torch.Tensor, grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Learns S tokens: ``[B, C, H, W]`` or ``[B, N, C]`` -> ``[B, S, C]``.

        ``grid_size`` is not used (v1.1 needs no grid, and patch dropout may leave any N); it is accepted
        so that both TokenLearner versions share one call signature.
        """
        tokens = flatten_tokens(x, self.in_channels, 'TokenLearnerV11')  # [B, N, C]
        return self._weights(tokens) @ tokens  # [B, S, C]
