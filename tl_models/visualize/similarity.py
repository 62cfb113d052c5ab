"""How alike a trained model's learned tokens are: the pairwise cosine similarity of their spatial maps.

For one image, TokenLearner gives S maps ``[S, H, W]`` (where each learned token looks). The similarity of
an image is the mean cosine similarity over the S (S - 1) / 2 pairs of maps, each flattened to H * W values;
the model's figure is its mean over the held-out images (for a video model: over every time step of every
held-out clip, since its TokenLearner runs per time step). 1 means every token pools the same positions with
the same weights (collapsed onto one map: S copies of one token); maps on disjoint regions give 0. The
maps are non-negative, so the similarity of unrelated maps is above 0 (maps of independent uniform noise,
``v`` in [0, 1] at each of 64 positions, give about 0.75).
"""
from pathlib import Path
from typing import Dict, Optional

import timm
import torch

from ..data import DataConfig, build_loader, load_split, model_data_config, model_input
from ..runtime import Distributed, default_device
from .maps import find_token_learners, token_learner_maps

__all__ = ['pairwise_map_similarity', 'token_map_similarity']


def pairwise_map_similarity(maps: torch.Tensor) -> torch.Tensor:
    """Per image, the mean cosine similarity over all pairs of its token maps.

    Args:
        maps: ``[B, S, H, W]`` (or ``[B, S, N]``), S >= 2.

    Returns:
        ``[B]``.
    """
    if maps.dim() < 3 or maps.shape[1] < 2:
        raise ValueError(f'expected maps [B, S, H, W] or [B, S, N] with S >= 2, got {tuple(maps.shape)}')
    flat = torch.nn.functional.normalize(maps.flatten(2).double(), dim=2)  # [B, S, N], unit length
    cosine = flat @ flat.transpose(1, 2)  # [B, S, S]
    tokens = maps.shape[1]
    off_diagonal = cosine.sum(dim=(1, 2)) - cosine.diagonal(dim1=1, dim2=2).sum(dim=1)
    return (off_diagonal / (tokens * (tokens - 1))).float()


def token_map_similarity(model_dir: Path, config: DataConfig, limit: Optional[int] = None,
                         device: Optional[str] = None) -> Dict[str, float]:
    """The mean pairwise map similarity of every TokenLearner of an exported model over the held-out split.

    Args:
        model_dir: A hub-ready model folder (a run's ``model/``).
        config: The data and held-out split (a run's configuration).
        limit: Use at most this many images (clips).
        device: 'cpu' or 'cuda' (default: cuda if available).

    Returns:
        TokenLearner module name (``'token_learners.2'``) -> similarity; empty for a model without TokenLearner.
    """
    model = timm.create_model(f'local-dir:{model_dir}', pretrained=True).eval()
    try:
        find_token_learners(model)
    except ValueError:
        return {}
    dist = Distributed(torch.device(device or default_device()))
    model.to(dist.device)
    inputs = model_input(model)
    loader = build_loader(load_split(config, config.val_split, inputs), model_data_config(model), config,
                          is_training=False, dist=dist, inputs=inputs)
    sums: Dict[str, float] = {}
    counts: Dict[str, int] = {}
    seen = 0
    for images, _ in loader:  # images [B, 3, H, W] or clips [B, 3, T, H, W]
        if limit is not None:
            images = images[:max(0, limit - seen)]
        if not len(images):
            break
        for name, maps in token_learner_maps(model, images).items():  # [B (x T'), S, H, W]
            similarity = pairwise_map_similarity(maps)
            sums[name] = sums.get(name, 0.0) + float(similarity.sum())
            counts[name] = counts.get(name, 0) + len(similarity)
        seen += len(images)
    return {name: total / counts[name] for name, total in sums.items()}
