"""Fine-tuning with the first blocks of a ViT frozen, optionally from their cached outputs.

``--freeze-blocks K`` keeps the stem (patch and position embeddings, class and register tokens, ``norm_pre``) and
blocks ``0 .. K-1`` as loaded: no gradients, and eval mode (no stochastic depth) while the rest trains. With
``--cache-frozen`` their output is computed once per image (:mod:`tl_models.data.feature_cache`) and every epoch
trains from there: a step then costs only the blocks that train. For a TokenLearner model the cache is taken where the
frozen part ends or where the TokenLearner runs, whichever comes first (:func:`cache_depth`): the blocks between
(frozen, on the learned tokens) run in every step, as the TokenLearner before them trains.

The model that trains is a :class:`PartlyFrozen` wrapper around the timm model; checkpoints and exports hold the
timm model itself, which takes images as before.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from timm.models import VisionTransformer

from ..data import SplitData
from ..data.feature_cache import STEM, CachedTokenLoader, frozen_state, load_cached_split
from ..models import TokenLearnerVideoTransformer, TokenLearnerVisionTransformer
from ..runtime import Distributed
from .config import TrainConfig, TrainConfigError
from .distill import DistillationLoss

__all__ = ['PartlyFrozen', 'cache_depth', 'cached_training', 'check_cache_options', 'check_freezable', 'freeze_blocks',
           'frozen_modules', 'use_cached_teacher']

# Options that change images in ways cached block outputs cannot follow, with the value that means "off".
_IMAGE_AUGMENTATIONS = {'color_jitter': 0.0, 'aa': None, 'reprob': 0.0, 'mixup': 0.0, 'cutmix': 0.0}


def check_freezable(model: nn.Module, count: int) -> None:
    """Raises TrainConfigError unless ``model`` is a ViT (timm's or ours, images) with more than ``count`` blocks."""
    if isinstance(model, TokenLearnerVideoTransformer) or not isinstance(model, VisionTransformer):
        raise TrainConfigError(f'--freeze-blocks needs an image ViT (timm VisionTransformer or a tl_ image variant), '
                               f'got {type(model).__name__}')
    if not 0 < count < len(model.blocks):
        raise TrainConfigError(f'--freeze-blocks expects a number of blocks in 1..{len(model.blocks) - 1} '
                               f'({type(model).__name__} has {len(model.blocks)}), got {count}')


def frozen_modules(model: VisionTransformer, count: int) -> List[nn.Module]:
    """The stem's modules and blocks ``0 .. count-1`` (parameters such as ``pos_embed`` are frozen apart)."""
    stem = [getattr(model, name) for name in STEM if isinstance(getattr(model, name, None), nn.Module)]
    return stem + list(model.blocks[:count])


def freeze_blocks(model: VisionTransformer, count: int) -> None:
    """Stops gradients to the stem and blocks ``0 .. count-1`` of ``model``."""
    check_freezable(model, count)
    for module in frozen_modules(model, count):
        module.requires_grad_(False)
    for name in STEM:
        param = getattr(model, name, None)
        if isinstance(param, nn.Parameter):
            param.requires_grad_(False)


def check_cache_options(config: TrainConfig) -> None:
    """Raises TrainConfigError for options that ``--cache-frozen`` cannot honour."""
    if not config.freeze_blocks:
        raise TrainConfigError('--cache-frozen caches the outputs of frozen blocks: set --freeze-blocks K too')
    for name, off in _IMAGE_AUGMENTATIONS.items():
        if getattr(config, name) != off:
            raise TrainConfigError(f'--cache-frozen trains from cached block outputs, so the only augmentation is the '
                                   f'horizontal flip (--hflip); --{name.replace("_", "-")} needs the images: drop it '
                                   'or drop --cache-frozen')
    if list(config.scale) != [1.0, 1.0] or list(config.ratio) != [1.0, 1.0]:
        raise TrainConfigError(f'--cache-frozen takes whole images (no random-resized crop): set --scale 1 1 and '
                               f'--ratio 1 1 (got scale {config.scale}, ratio {config.ratio})')
    for name in ('model_ema', 'preload'):
        if getattr(config, name):
            raise TrainConfigError(f'--cache-frozen does not work with --{name.replace("_", "-")}')


def cache_depth(model: VisionTransformer, frozen: int) -> int:
    """The number of leading blocks whose output can be cached: the frozen ones, up to the first TokenLearner."""
    if isinstance(model, TokenLearnerVisionTransformer):
        return min(frozen, model.tokenlearner_loc)
    return frozen


class PartlyFrozen(nn.Module):
    """A ViT with its stem and first ``frozen`` blocks frozen, which trains from images or from the cached tokens
    entering block ``start``.

    Args:
        model: The timm ViT (its parameters are shared, not copied).
        frozen: Blocks ``0 .. frozen-1`` (and the stem) stay in eval mode when the wrapper trains.
        start: None: ``forward`` takes images ``[B, 3, H, W]``. An int: ``forward`` takes the tokens entering
            block ``start``, ``[B, P+N, C]`` (prefix tokens first), as :func:`.feature_cache.prefix_tokens` gives.
    """

    def __init__(self, model: VisionTransformer, frozen: int, start: Optional[int] = None) -> None:
        super().__init__()
        self.model = model
        self.frozen = frozen_modules(model, frozen)
        self.start = start
        self.num_classes = model.num_classes
        self.num_features = model.num_features

    def train(self, mode: bool = True) -> 'PartlyFrozen':
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images, or tokens entering block ``start`` -> normalised tokens, as the model's ``forward_features``."""
        if self.start is None:
            return self.model.forward_features(x)
        if isinstance(self.model, TokenLearnerVisionTransformer):
            return self.model.forward_features_from(x, self.start)
        for block in self.model.blocks[self.start:]:
            x = block(x)
        return self.model.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.model.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` (or tokens ``[B, P+N, C]`` entering block ``start``) -> logits ``[B, classes]``."""
        return self.forward_head(self.forward_features(x))


def cached_training(config: TrainConfig, model: nn.Module, train_split: SplitData, val_split: SplitData,
                     data_config: Dict[str, Any], output: Path, dist: Distributed
                     ) -> Tuple[PartlyFrozen, CachedTokenLoader, CachedTokenLoader]:
    """The model that trains from cached outputs of its frozen blocks, and the loaders of those outputs."""
    check_cache_options(config)
    depth = cache_depth(model, config.freeze_blocks)
    if depth == 0:
        raise TrainConfigError(f'--cache-frozen: the TokenLearner of {config.model} runs before block 0, so no '
                               'frozen block output is left to cache')
    cache_dir = Path(config.cache_dir) if config.cache_dir else output / 'feature_cache'
    loaders = [CachedTokenLoader(load_cached_split(model, split, depth, data_config, config, cache_dir, dist.device,
                                                   flipped=training and config.hflip > 0),
                                 config.batch_size, training, config.seed, config.hflip, dist.rank, dist.world_size)
               for split, training in ((train_split, True), (val_split, False))]
    return PartlyFrozen(model, config.freeze_blocks, start=depth), loaders[0], loaders[1]


def use_cached_teacher(distiller: DistillationLoss, student: nn.Module, teacher: nn.Module, start: int,
                        config: TrainConfig) -> None:
    """Lets the teacher read the student's cached block outputs: only if its stem and blocks before ``start`` are
    the student's and it normalises images alike."""
    mine, theirs = frozen_state(student, start), teacher.state_dict()
    differ = [k for k, v in mine.items() if k not in theirs or theirs[k].shape != v.shape
              or not torch.equal(theirs[k].to(v.device), v)]
    if differ or distiller.input_transform is not None:
        why = f'its {differ[0]} differs' if differ else 'it normalises images differently'
        raise TrainConfigError(f"--cache-frozen with --distill-from {config.distill_from}: the teacher cannot read "
                               f"the student's cached outputs of blocks 0..{start - 1}: {why}; distil without "
                               '--cache-frozen')
    distiller.teacher = PartlyFrozen(teacher, config.freeze_blocks, start=start).eval()
