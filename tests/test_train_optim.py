"""The optimizer's parameter groups: timm's, with the TokenLearner/TokenFuser learning rate optionally scaled."""
import logging
import math

import pytest
import timm
import timm.scheduler
import yaml

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.train import TrainConfig, TrainConfigError, train
from tl_models.train.optim import TOKENLEARNER_PREFIXES, create_optimizer

SMALL = dict(img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, tokenlearner_loc=2)


def _tl_model(**kwargs):
    return timm.create_model('tl_vit_tiny_patch16_224_8at6_fuse', **SMALL, **kwargs)


def _by_param(optimizer, key):
    return {id(p): group[key] for group in optimizer.param_groups for p in group['params']}


def _is_tokenlearner(model):
    return {id(p): name.startswith(TOKENLEARNER_PREFIXES) for name, p in model.named_parameters()}


def test_default_scale_is_timms_optimizer():
    model = _tl_model()
    ours = create_optimizer(model, TrainConfig(lr=1e-3, weight_decay=0.05))
    timms = timm.optim.create_optimizer_v2(model, 'adamw', lr=1e-3, weight_decay=0.05)
    assert [[id(p) for p in g['params']] for g in ours.param_groups] == \
        [[id(p) for p in g['params']] for g in timms.param_groups]
    assert all('lr_scale' not in g for g in ours.param_groups)


@pytest.mark.parametrize('layer_decay', [None, 0.5])
def test_scale_multiplies_only_the_tokenlearner_and_fuser_rates(layer_decay):
    model = _tl_model()
    plain = create_optimizer(model, TrainConfig(weight_decay=0.05, layer_decay=layer_decay))
    scaled = create_optimizer(model, TrainConfig(weight_decay=0.05, layer_decay=layer_decay,
                                                 tokenlearner_lr_scale=4.0))
    base_scale = {k: v.get('lr_scale', 1.0) for k, v in
                  {id(p): g for g in plain.param_groups for p in g['params']}.items()}
    scale, decay = _by_param(scaled, 'lr_scale'), _by_param(scaled, 'weight_decay')
    in_tokenlearner = _is_tokenlearner(model)
    assert sorted(scale) == sorted(base_scale)  # every trainable parameter once
    assert any(in_tokenlearner.values()) and not all(in_tokenlearner.values())
    assert any(name.startswith('token_fusers.') for name, _ in model.named_parameters())
    for key, value in scale.items():
        assert value == pytest.approx(base_scale[key] * (4.0 if in_tokenlearner[key] else 1.0))
    assert decay == _by_param(plain, 'weight_decay')


def test_scheduler_applies_the_scale_to_the_learning_rate():
    model = _tl_model()
    optimizer = create_optimizer(model, TrainConfig(lr=1e-3, tokenlearner_lr_scale=0.25))
    scheduler, _ = timm.scheduler.create_scheduler_v2(optimizer, sched='cosine', num_epochs=2, warmup_epochs=0)
    scheduler.step(1)
    in_tokenlearner = _is_tokenlearner(model)
    rates = {in_tokenlearner[id(g['params'][0])]: g['lr'] for g in optimizer.param_groups}
    assert rates[True] == pytest.approx(0.25 * rates[False]) and rates[False] > 0


def test_a_plain_model_keeps_every_rate_and_the_scale_must_be_positive(caplog):
    """One recipe for a TokenLearner model and its plain twin: the twin has nothing to scale."""
    plain = timm.create_model('vit_tiny_patch16_224', img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    caplog.set_level(logging.INFO, logger='tl_models.train')
    scaled = create_optimizer(plain, TrainConfig(tokenlearner_lr_scale=2.0))
    default = create_optimizer(plain, TrainConfig())
    assert [g.get('lr_scale', 1.0) for g in scaled.param_groups] == [g.get('lr_scale', 1.0)
                                                                     for g in default.param_groups]
    assert 'has no TokenLearner or TokenFuser layers' in caplog.text
    with pytest.raises(TrainConfigError, match='positive multiple'):
        TrainConfig(tokenlearner_lr_scale=0)


@pytest.mark.slow
def test_scaled_run_trains_and_records_the_scale(tmp_path):
    summary = train(TrainConfig(epochs=1, warmup_epochs=0, tokenlearner_lr_scale=3.0, output=str(tmp_path / 'run')))
    assert math.isfinite(summary['best_top1'])
    assert yaml.safe_load((tmp_path / 'run' / 'config.yaml').read_text())['tokenlearner_lr_scale'] == 3.0
