"""Which models a benchmark runs: defaults, twins, patterns and bad names."""
import dataclasses

import pytest
import timm
import torch

import tl_models
from tl_models.benchmark import default_model_names, group_by_baseline, resolve_models, selection, twin_name
from tl_models.registry import twins


def test_twins_are_timms_standard_vits_of_the_same_size():
    for name in ['tl_vit_tiny_patch16_224_8at6', 'tl_vit_small_patch16_224_8at6_fuse',
                 'tl_vit_base_patch16_224_8at6', 'tl_vit_base_patch16_384_16at9', 'tl_vit_large_patch16_384_8at12']:
        twin = twin_name(name)
        with torch.device('meta'):
            plain = timm.create_model(twin)
            variant = timm.create_model(name)
        assert type(plain) is timm.models.VisionTransformer
        assert (plain.embed_dim, len(plain.blocks), plain.patch_embed.patch_size, plain.patch_embed.img_size) == (
            variant.embed_dim, len(variant.blocks), variant.patch_embed.patch_size, variant.patch_embed.img_size)
        assert plain.blocks[0].attn.num_heads == variant.blocks[0].attn.num_heads
        assert plain.cls_token is not None and plain.global_pool == 'token'  # timm's model as a user gets it
    assert twin_name('tl_vit_base_patch16_224_8at6') == 'vit_base_patch16_224'


def test_variant_of_an_unknown_size_has_no_twin_and_runs_alone(monkeypatch):
    name = 'tl_vit_tiny_patch16_224_8at6'
    odd = dataclasses.replace(tl_models.get_variant(name),
                              architecture=dict(tl_models.get_variant(name).architecture, embed_dim=200))
    monkeypatch.setattr(twins, 'get_variant', lambda n: odd if n == name else tl_models.get_variant(n))
    monkeypatch.setattr(selection, 'get_variant', lambda n: odd if n == name else tl_models.get_variant(n))
    with pytest.raises(ValueError, match='no timm ViT twin for embed_dim 200'):
        twin_name(name)
    specs = resolve_models([name])
    assert [(s.name, s.is_tokenlearner, s.baseline) for s in specs] == [(name, True, None)]
    assert name not in default_model_names()


def test_variant_with_other_architecture_changes_has_no_twin(monkeypatch):
    name = 'tl_vit_tiny_patch16_224_8at6'
    odd = dataclasses.replace(tl_models.get_variant(name),
                              architecture=dict(tl_models.get_variant(name).architecture, mlp_ratio=3.0))
    monkeypatch.setattr(twins, 'get_variant', lambda n: odd)
    with pytest.raises(ValueError, match='also sets mlp_ratio'):
        twin_name(name)


def test_default_is_the_reference_variant_of_each_size():
    names = default_model_names()
    assert 'tl_vit_base_patch16_224_8at6' in names
    sizes = [(tl_models.get_variant(n).architecture['embed_dim'], tl_models.get_variant(n).architecture['depth'])
             for n in names]
    assert sizes == sorted(set(sizes))  # one per size, smallest first
    for name in names:
        variant = tl_models.get_variant(name)
        arch = variant.architecture
        assert variant.pretrained_cfg['input_size'][-1] == 224
        assert arch['num_tokens'] == 8 and arch['tokenlearner_loc'] == arch['depth'] // 2
        assert not arch.get('use_tokenfuse', False) and arch.get('use_v11', True)


def test_twins_come_first_once_and_get_only_shared_arguments():
    specs = resolve_models(['tl_vit_base_patch16_224*', 'vit_base_patch16_224'],
                           {'depth': 2, 'tokenlearner_loc': 1, 'img_size': 32})
    assert [s.name for s in specs] == ['vit_base_patch16_224', *timm.list_models('tl_vit_base_patch16_224*')]
    twin, variants = specs[0], specs[1:]
    assert twin.kwargs == {'depth': 2, 'img_size': 32} and not twin.is_tokenlearner and twin.baseline is None
    assert all(v.kwargs == {'depth': 2, 'tokenlearner_loc': 1, 'img_size': 32} for v in variants)
    assert all(v.baseline == 'vit_base_patch16_224' and v.input_size == (3, 32, 32) for v in variants)
    assert [len(g) for g in group_by_baseline(specs)] == [5]


def test_groups_and_input_sizes_follow_each_variant():
    specs = resolve_models(['tl_vit_base_patch16_384_8at6', 'tl_vit_tiny_patch16_224_8at6'])
    assert [(s.name, s.input_size) for s in specs] == [
        ('vit_base_patch16_384', (3, 384, 384)), ('tl_vit_base_patch16_384_8at6', (3, 384, 384)),
        ('vit_tiny_patch16_224', (3, 224, 224)), ('tl_vit_tiny_patch16_224_8at6', (3, 224, 224))]
    assert [[s.name for s in g] for g in group_by_baseline(specs)] == [
        ['vit_base_patch16_384', 'tl_vit_base_patch16_384_8at6'],
        ['vit_tiny_patch16_224', 'tl_vit_tiny_patch16_224_8at6']]


def test_without_twins_and_all():
    assert [s.name for s in resolve_models(['tl_vit_tiny_patch16_224_8at6'], add_twins=False)] == [
        'tl_vit_tiny_patch16_224_8at6']
    every = [s.name for s in resolve_models(['all'], add_twins=False)]
    assert sorted(every) == tl_models.list_variants()


def test_unknown_names_list_close_ones():
    with pytest.raises(ValueError, match=r"unknown model 'tl_vit_base_patch16_224_8at7'.*did you mean "
                                         r".*tl_vit_base_patch16_224_8at6"):
        resolve_models(['tl_vit_base_patch16_224_8at7'])
    with pytest.raises(ValueError, match="pattern 'tl_nothing_\\*' matches no"):
        resolve_models(['tl_nothing_*'])
