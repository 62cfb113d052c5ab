"""The two input layouts the TokenLearner layers accept, and their checks.

A layer takes either a channels-first feature map ``[B, C, H, W]`` (as the seed API does) or a token
sequence ``[B, N, C]``, and works internally on ``[B, N, C]`` tokens. Modules that call these helpers register
them with ``torch.fx.wrap`` so that the shape checks become leaf calls in traced graphs.
"""
import math
from typing import List, Optional, Tuple

import torch


def shape_str(shape: List[int]) -> str:
    """Formats a shape as ``(2, 512, 14, 14)`` for error messages."""
    return '(' + ', '.join([str(s) for s in shape]) + ')'


def flatten_tokens(x: torch.Tensor, channels: int, name: str) -> torch.Tensor:
    """Returns ``x`` as tokens ``[B, N, C]``.

    Args:
        x: ``[B, C, H, W]`` (flattened row-major, N = H * W) or ``[B, N, C]``.
        channels: The expected C.
        name: The layer or argument named in errors.

    Raises:
        ValueError: ``x`` has another rank or another channel count.
    """
    if x.dim() == 4 and x.shape[1] == channels:
        return x.flatten(2).transpose(1, 2).contiguous()  # [B, N, C]
    if x.dim() == 3 and x.shape[2] == channels:
        return x
    raise ValueError(
        f'{name}: expected [B, {channels}, H, W] or [B, N, {channels}], got {shape_str(list(x.shape))}')


def token_grid(x: torch.Tensor, grid_size: Optional[Tuple[int, int]], name: str) -> Tuple[int, int]:
    """Returns the ``(H, W)`` grid of an input that :func:`flatten_tokens` accepted.

    A ``[B, C, H, W]`` input carries its grid. A ``[B, N, C]`` input takes ``grid_size`` when given
    (any H x W with H * W = N), otherwise N must be a square.

    Raises:
        ValueError: ``grid_size`` does not match the input, or N is not a square and no grid was given.
    """
    if x.dim() == 4:
        grid = (x.shape[2], x.shape[3])
        if grid_size is not None and (grid_size[0] != grid[0] or grid_size[1] != grid[1]):
            raise ValueError(
                f'{name}: grid_size {shape_str(list(grid_size))} does not match the input grid '
                f'{shape_str(list(grid))} of an input shaped {shape_str(list(x.shape))}')
        return grid
    num_positions = x.shape[1]
    if grid_size is not None:
        if grid_size[0] * grid_size[1] != num_positions:
            raise ValueError(
                f'{name}: grid_size {shape_str(list(grid_size))} holds {grid_size[0] * grid_size[1]} positions, '
                f'the input {shape_str(list(x.shape))} has N={num_positions}')
        return grid_size
    side = int(math.sqrt(num_positions) + 0.5)
    if side * side != num_positions:
        raise ValueError(
            f'{name}: expected a square token count N=H*W for an input without grid_size, got N={num_positions} '
            f'in {shape_str(list(x.shape))}; pass grid_size=(H, W) or a [B, C, H, W] input')
    return side, side


def check_learned_tokens(tokens: torch.Tensor, num_tokens: int, original: torch.Tensor, channels: int) -> None:
    """Checks the TokenFuser inputs: tokens ``[B, S, C]`` against an original of batch B and C channels.

    Raises:
        ValueError: a rank, token count, channel count or batch size differs from what is expected.
    """
    if tokens.dim() != 3 or tokens.shape[1] != num_tokens or tokens.shape[2] != channels:
        raise ValueError(
            f'TokenFuser: expected tokens [B, {num_tokens}, {channels}], got {shape_str(list(tokens.shape))}')
    if tokens.shape[0] != original.shape[0]:
        raise ValueError(
            f'TokenFuser: tokens and original differ in batch size: tokens {shape_str(list(tokens.shape))}, '
            f'original {shape_str(list(original.shape))}')


def restore_layout(tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Returns tokens ``[B, N, C]`` in the layout of ``like``: ``[B, C, H, W]`` if ``like`` is 4D, else unchanged."""
    if like.dim() == 4:
        return tokens.transpose(1, 2).reshape(like.shape)  # [B, C, H, W]
    return tokens
