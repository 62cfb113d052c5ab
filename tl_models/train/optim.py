"""The optimizer: timm's ``create_optimizer_v2`` with its parameter groups (weight decay, layer decay), and the
TokenLearner/TokenFuser layers' learning rate optionally scaled against the rest of the model."""
import logging
from functools import partial
from typing import Any, Dict, List, Optional

import timm.optim
import torch
import torch.nn as nn
from timm.optim import param_groups_layer_decay, param_groups_weight_decay

from .config import TrainConfig

__all__ = ['TOKENLEARNER_PREFIXES', 'create_optimizer', 'tokenlearner_param_groups']

_logger = logging.getLogger(__name__)
TOKENLEARNER_PREFIXES = ('token_learners.', 'token_fusers.')


def create_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.opt`` over ``model``'s trainable parameters, in timm's groups; with ``config.tokenlearner_lr_scale``
    other than 1, the TokenLearner/TokenFuser parameters of each group in a group of their own, whose ``lr_scale``
    (read by timm's schedulers) is that many times the group's. A model without TokenLearner layers (a plain twin
    trained with the same recipe) has nothing to scale: every rate stays the recipe's, and the log says so.
    """
    scale = config.tokenlearner_lr_scale
    group_fn = None
    if scale != 1:
        if not any(name.startswith(TOKENLEARNER_PREFIXES) for name, _ in model.named_parameters()):
            _logger.info('--tokenlearner-lr-scale %g: %s has no TokenLearner or TokenFuser layers, so every learning '
                         'rate stays the recipe\'s', scale, type(model).__name__)
        else:
            group_fn = partial(tokenlearner_param_groups, weight_decay=config.weight_decay,
                               layer_decay=config.layer_decay, lr_scale=scale)
    return timm.optim.create_optimizer_v2(model, opt=config.opt, lr=config.lr, weight_decay=config.weight_decay,
                                          layer_decay=config.layer_decay, param_group_fn=group_fn)


def tokenlearner_param_groups(model: nn.Module, weight_decay: float, layer_decay: Optional[float],
                              lr_scale: float) -> List[Dict[str, Any]]:
    """timm's parameter groups for ``model`` (as ``create_optimizer_v2`` builds them), each split in two: the
    TokenLearner/TokenFuser parameters get ``lr_scale`` times the group's ``lr_scale`` (1 where it has none)."""
    no_weight_decay = getattr(model, 'no_weight_decay', lambda: set())()
    if layer_decay is not None:
        groups = param_groups_layer_decay(model, weight_decay=weight_decay, layer_decay=layer_decay,
                                          no_weight_decay_list=no_weight_decay)
    else:
        groups = param_groups_weight_decay(model, weight_decay=weight_decay, no_weight_decay_list=no_weight_decay)
    tokenlearner = {id(param) for name, param in model.named_parameters() if name.startswith(TOKENLEARNER_PREFIXES)}
    split = []
    for group in groups:
        for in_tokenlearner in (False, True):
            params = [param for param in group['params'] if (id(param) in tokenlearner) == in_tokenlearner]
            if params:
                scale = group.get('lr_scale', 1.0) * (lr_scale if in_tokenlearner else 1.0)
                split.append({**group, 'params': params, 'lr_scale': scale})
    return split
