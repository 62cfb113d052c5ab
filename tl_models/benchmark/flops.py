"""Parameter and multiply-accumulate (MAC) counts of a model's forward pass, attention included.

torch's ``FlopCounterMode`` has formulas for the CUDA attention kernels but none for the fused CPU kernel
``aten._scaled_dot_product_flash_attention_for_cpu``, which timm's ``Attention`` calls on CPU: a plain count
there misses the two attention matmuls (ViT-B/16 at 224 reads 16.85 GMACs instead of 17.56). The counter here
adds a formula for that kernel to the counter's mapping for the one count, so fused and
unfused attention count alike; on the meta device attention runs unfused, as matmuls that torch counts itself.
"""
from typing import Any, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['count_gmacs', 'count_params_m']


def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    """FLOPs of ``_scaled_dot_product_flash_attention_for_cpu``: the matmuls ``q @ k^T`` and ``scores @ v``.

    Shapes: query ``[B, H, L, E]``, key ``[B, H, S, E]``, value ``[B, H, S, Ev]`` (the counter passes shapes).
    """
    batch, heads, queries, dim = query_shape
    keys, value_dim = key_shape[-2], value_shape[-1]
    return 2 * batch * heads * queries * keys * (dim + value_dim)


_FUSED_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops,
}


def count_params_m(model: nn.Module) -> float:
    """Parameters of ``model`` in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_gmacs(model: nn.Module, input_size: Sequence[int]) -> float:
    """Multiply-accumulates (in billions) of one eval-mode forward pass of one image (or one clip), counted as
    FLOPs / 2.

    Convolutions of any rank count (a video model's Conv3d tubelet embedding included), and the reshapes that
    fold time steps into the batch cost nothing, so a video model's count is its per-time-step TokenLearner,
    space-time attention and all (``tests/test_benchmark_video.py`` checks the pico video model by hand).

    Args:
        model: Any module taking ``[1, *input_size]`` images (or clips); it runs on the device of its parameters
            (the meta device counts without computing) and is left in the train/eval mode it was in, its
            parameters' ``requires_grad`` as they were.
        input_size: ``(channels, height, width)``, or ``(channels, frames, height, width)`` for a video model.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device('cpu')
    x = torch.zeros(1, *input_size, device=device)
    was_training = model.training
    requires_grad = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in requires_grad:  # torch's module tracker fails on parameters used outside a submodule's forward
        p.requires_grad_(False)  # (the latent query of timm's attention-pool head); no gradient is needed here
    try:
        with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=_FUSED_CPU_ATTENTION) as counter:
            model(x)
    finally:
        model.train(was_training)
        for p, flag in requires_grad:
            p.requires_grad_(flag)
    return counter.get_total_flops() / 2e9
