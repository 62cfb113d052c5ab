"""The timed steps, the TokenLearner time share and the graph-break count, on tiny models."""
import itertools

import pytest
import timm
import torch
import torch.nn as nn

import tl_models  # noqa: F401  (registers the variants)
from tl_models.benchmark import time_share, token_module_time_share
from tl_models.benchmark.time_share import token_modules
from tl_models.benchmark.workloads import (
    count_graph_breaks,
    inference_step,
    make_batch,
    make_optimizer,
    precision_context,
    training_step,
)

CPU = torch.device('cpu')
TINY = dict(depth=2, tokenlearner_loc=1, img_size=32)


def tiny(name: str, **kwargs) -> nn.Module:
    return timm.create_model(name, **dict(TINY, **kwargs))


def test_training_step_updates_every_weight_and_inference_step_none():
    model = tiny('tl_vit_tiny_patch16_224_8at6').train()
    batch = make_batch(2, (3, 32, 32), model.num_classes, CPU)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.eval()
    inference_step(model, batch, precision_context(CPU, 'fp32'))()
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.train()
    training_step(model, optimizer, batch, precision_context(CPU, 'fp32'))()
    unchanged = [n for (n, p), b in zip(model.named_parameters(), before) if torch.equal(p, b)]
    assert not unchanged


def test_fused_and_default_adamw_take_the_same_step():
    weights = {}
    for kind in ('adamw-fused', 'adamw'):
        torch.manual_seed(0)
        model = tiny('tl_vit_tiny_patch16_224_8at6').train()
        optimizer = make_optimizer(model, kind)
        assert bool(optimizer.defaults['fused']) == (kind == 'adamw-fused')
        torch.manual_seed(1)
        training_step(model, optimizer, make_batch(2, (3, 32, 32), model.num_classes, CPU),
                      precision_context(CPU, 'fp32'))()
        weights[kind] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(weights['adamw-fused'], weights['adamw'])
    with pytest.raises(ValueError, match='optimizer must be one of adamw-fused, adamw'):
        make_optimizer(model, 'sgd')


def test_bf16_runs_under_autocast():
    model = tiny('tl_vit_tiny_patch16_224_8at6').eval()
    batch = make_batch(2, (3, 32, 32), model.num_classes, CPU, channels_last=True)
    assert batch.images.is_contiguous(memory_format=torch.channels_last)
    with precision_context(CPU, 'bf16')():
        assert model(batch.images).dtype == torch.bfloat16
    with precision_context(CPU, 'fp32')():
        assert model(batch.images).dtype == torch.float32
    with pytest.raises(ValueError, match='precision must be one of fp32, bf16'):
        precision_context(CPU, 'fp16')


@pytest.mark.parametrize('name', ['tl_vit_tiny_patch16_224_8at6', 'tl_vit_tiny_patch16_224_8at6_v1',
                                  'tl_vit_tiny_patch16_224_8at6_fuse', 'vit_tiny_patch16_224'])
def test_no_graph_breaks(name):
    model = tiny(name) if name.startswith('tl_') else timm.create_model(name, depth=2, img_size=32)
    model.train()
    batch = make_batch(2, (3, 32, 32), model.num_classes, CPU)
    assert count_graph_breaks(model, batch, precision_context(CPU, 'fp32')) == 0
    assert model.training


def test_graph_breaks_are_counted_in_both_modes():
    class Breaking(nn.Module):
        def forward(self, x):
            x = x + 1
            torch._dynamo.graph_break()
            return x * 2

    batch = make_batch(2, (3, 4, 4), 10, CPU)
    assert count_graph_breaks(Breaking(), batch, precision_context(CPU, 'fp32')) == 2


@pytest.mark.parametrize('name, modules, calls', [('tl_vit_tiny_patch16_224_8at6', 1, 1),
                                                  ('tl_vit_tiny_patch16_224_8at6_fuse', 2, 2)])
def test_time_share_times_every_token_module(monkeypatch, name, modules, calls):
    """On a clock that ticks once per reading, each module call adds one tick inside out of 2 per call + 1 in all.

    The fuse model holds a TokenLearner and a TokenFuser (each called once), the other a TokenLearner.
    """
    model = tiny(name).train()
    assert len(token_modules(model)) == modules
    ticks = itertools.count()
    monkeypatch.setattr(time_share, 'perf_counter', lambda: float(next(ticks)))
    images = torch.randn(2, 3, 32, 32)
    fraction = token_module_time_share(model, images, passes=3, precision=precision_context(CPU, 'fp32'))
    assert fraction == pytest.approx(calls / (2 * calls + 1))
    assert model.training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_time_share_of_a_real_forward_is_a_fraction():
    model = tiny('tl_vit_tiny_patch16_224_8at6_fuse')
    fraction = token_module_time_share(model, torch.randn(2, 3, 32, 32), passes=2,
                                       precision=precision_context(CPU, 'fp32'))
    assert 0 < fraction < 1


def test_time_share_needs_token_modules():
    with pytest.raises(ValueError, match='has no TokenLearner or TokenFuser module'):
        token_module_time_share(timm.create_model('vit_tiny_patch16_224', depth=1, img_size=32),
                                torch.randn(1, 3, 32, 32), passes=1, precision=precision_context(CPU, 'fp32'))
