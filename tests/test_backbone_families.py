"""TokenLearner variants on timm's own ViT families (DeiT-III, DINOv2, CLIP, SigLIP): named by their backbone.

The registry takes each variant's architecture, preprocessing and tags from timm; a backbone checkpoint of
that architecture (random weights, served by the loopback hub) loads exactly: every block before the
TokenLearner computes what timm's block computes. Nothing here touches the network.
"""
import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
import timm
import torch
import yaml
from safetensors.torch import save

import tl_models
from tl_models.benchmark.selection import default_model_names, twin_name
from tl_models.models import BackboneError, checkpoint_filter_fn, vit_arguments
from tl_models.registry import VariantConfigError, builtin_config_dir, parse_variant_file

from conftest import command
from hub_server import randomize

ROOT = Path(__file__).parents[1]
LEARNER_PREFIXES = ('token_learners.', 'token_fusers.')
FAMILIES = {
    'tl_deit3_small_patch16_224_8at6': 'deit3_small_patch16_224',
    'tl_deit3_base_patch16_224_8at6': 'deit3_base_patch16_224',
    'tl_vit_small_patch14_dinov2_8at6': 'vit_small_patch14_dinov2',
    'tl_vit_base_patch14_dinov2_8at6': 'vit_base_patch14_dinov2',
    'tl_vit_small_patch14_reg4_dinov2_8at6': 'vit_small_patch14_reg4_dinov2',
    'tl_vit_base_patch14_reg4_dinov2_8at6': 'vit_base_patch14_reg4_dinov2',
    'tl_vit_base_patch16_clip_224_8at6': 'vit_base_patch16_clip_224',
    'tl_vit_base_patch16_siglip_224_8at6': 'vit_base_patch16_siglip_224',
}
FAMILY_FILES = ('tl_deit3.yaml', 'tl_dinov2.yaml', 'tl_clip.yaml', 'tl_siglip.yaml')
TOKENLEARNER_AT = 6
# The other settings of the real-resolution study's DINOv2 ViT-S/14 (lab/studies/imagenette.yaml).
STUDY_VARIANTS = {
    'tl_vit_small_patch14_dinov2_16at6': {'num_tokens': 16, 'tokenlearner_loc': 6},
    'tl_vit_small_patch14_dinov2_8at4': {'num_tokens': 8, 'tokenlearner_loc': 4},
    'tl_vit_small_patch14_dinov2_8at6_fuse': {'num_tokens': 8, 'tokenlearner_loc': 6, 'use_tokenfuse': True},
}


def _small(backbone: str) -> dict:
    """Small sizes of a family (width 48, 8 blocks, a 4x4 grid) that keep all its features."""
    return dict(embed_dim=48, num_heads=3, depth=8, img_size=56 if 'patch14' in backbone else 64)


def _plain(value):
    """Lists (from YAML) and tuples (timm) compare equal."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _as_text(settings: dict) -> dict:
    """Settings with their values as text: layers such as CLIP's ``partial(LayerNorm, eps=1e-5)`` compare by repr."""
    return {k: repr(v) for k, v in settings.items()}


def _block_outputs(model, x, blocks):
    """The outputs ``[B, P+N, C]`` (prefix tokens first) of ``blocks``, through timm's forward_intermediates."""
    outputs = model.forward_intermediates(x, indices=blocks, output_fmt='NLC', intermediates_only=True,
                                          return_prefix_tokens=True)
    return [torch.cat([y[1], y[0]], dim=1) if isinstance(y, tuple) else y for y in outputs]


def test_family_files_copy_no_architecture_numbers():
    for name in FAMILY_FILES:
        document = yaml.safe_load((builtin_config_dir() / name).read_text())
        assert set(document) == {'variants'}, name
        for variant_name, spec in document['variants'].items():
            assert set(spec) - {'tags'} == {'description', 'backbone', 'architecture'}, variant_name
            for tag, fields in spec.get('tags', {}).items():  # only to add trained weights to the backbone's tags
                assert 'file' in fields or fields['hf_hub_id'].startswith(f"timm/{spec['backbone']}."), tag
            assert 'tags' not in spec or any('file' in fields for fields in spec['tags'].values()), variant_name
            expected = STUDY_VARIANTS.get(variant_name, {'num_tokens': 8, 'tokenlearner_loc': TOKENLEARNER_AT})
            assert spec['architecture'] == expected, variant_name
            family = variant_name if variant_name in FAMILIES else 'tl_vit_small_patch14_dinov2_8at6'
            assert FAMILIES[family] == spec['backbone']


@pytest.mark.parametrize('name', FAMILIES)
def test_family_settings_are_timms_arguments_with_the_tokenlearner(name):
    variant = tl_models.get_variant(name)
    assert variant.backbone == FAMILIES[name]
    assert variant.model_args == {'backbone': FAMILIES[name], 'num_tokens': 8, 'tokenlearner_loc': TOKENLEARNER_AT}
    expected = dict(vit_arguments(FAMILIES[name]), num_tokens=8, tokenlearner_loc=TOKENLEARNER_AT)
    assert _as_text(variant.settings) == _as_text(expected)


@pytest.mark.parametrize('name', FAMILIES)
def test_family_builds_timms_architecture_with_timms_preprocessing(name):
    with torch.device('meta'):
        plain = timm.create_model(FAMILIES[name])
        model = timm.create_model(name)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(LEARNER_PREFIXES)}
    assert shapes == {k: tuple(v.shape) for k, v in plain.state_dict().items()}
    assert (model.num_prefix_tokens, model.global_pool, model.no_embed_class, model.num_classes) == (
        plain.num_prefix_tokens, plain.global_pool, plain.no_embed_class, plain.num_classes)
    assert [type(m) for m in model.blocks[0].modules()] == [type(m) for m in plain.blocks[0].modules()]
    x = torch.empty(1, *model.pretrained_cfg['input_size'], device='meta')
    assert model(x).shape == plain(x).shape  # at the input size, with timm's head (or none)
    ours, theirs = model.pretrained_cfg, plain.pretrained_cfg
    for key in ('input_size', 'mean', 'std', 'crop_pct', 'crop_mode', 'interpolation', 'num_classes', 'license'):
        assert _plain(ours[key]) == _plain(theirs[key]), key


@pytest.mark.parametrize('name', FAMILIES)
def test_family_tags_are_timms_tags_with_weights_on_the_hub(name):
    backbone = FAMILIES[name]
    timm_cfgs = timm.models.get_arch_pretrained_cfgs(backbone)
    expected = [n.partition('.')[2] for n, cfg in timm_cfgs.items() if cfg.hf_hub_id]
    tags = tl_models.get_variant(name).tags
    assert [t for t in tags if 'file' not in tags[t]] == expected  # and trained weights, if any, after them
    assert timm.models.get_pretrained_cfg(name).tag == timm.models.get_pretrained_cfg(backbone).tag  # the default
    for tag in expected:
        ours, theirs = timm.models.get_pretrained_cfg(f'{name}.{tag}'), timm_cfgs[f'{backbone}.{tag}']
        assert ours.hf_hub_id == theirs.hf_hub_id
        assert (ours.num_classes, _plain(ours.mean), ours.crop_pct) == (
            theirs.num_classes, _plain(theirs.mean), theirs.crop_pct)
        assert 'Initialisation for fine-tuning' in ours.description
        assert 'not a trained TokenLearner model' in ours.description and f'{backbone}.{tag}' in ours.description


@pytest.mark.parametrize('name', FAMILIES)
def test_family_backbone_transfers_exactly(name, hub, caplog):
    backbone, small = FAMILIES[name], _small(FAMILIES[name])
    source = randomize(timm.create_model(backbone, weight_init='skip', **small))
    repo = f'test/{backbone}'
    hub.add_repo(repo, {'model.safetensors': save(source.state_dict()), 'config.json': b'{}'})
    torch.manual_seed(1)
    fresh = timm.create_model(name, weight_init='skip', **small).state_dict()
    torch.manual_seed(1)
    with caplog.at_level(logging.WARNING, logger='tl_models'):
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id=repo),
                                  weight_init='skip', **small).eval()

    x = torch.randn(2, 3, small['img_size'], small['img_size'])
    blocks = list(range(TOKENLEARNER_AT))
    with torch.no_grad():
        for i, (ours, theirs) in enumerate(zip(_block_outputs(model, x, blocks), _block_outputs(source, x, blocks))):
            # 1e-6, relative too: outputs reach ~20, where float32 steps are 2e-6 (and MKL may round differently
            # for differently aligned copies of the same weights)
            torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6, msg=f'block {i}')

    loaded, expected = model.state_dict(), source.state_dict()
    new = [k for k in loaded if k.startswith(LEARNER_PREFIXES)]
    assert new and set(loaded) == set(expected) | set(new)
    for key, value in loaded.items():
        if key in new:
            assert torch.equal(value, fresh[key]), f'{key} should keep its fresh initialisation'
        else:
            assert torch.equal(value, expected[key]) and not torch.equal(value, fresh[key]), key
    logged = [r.getMessage() for r in caplog.records if 'tensors are new' in r.getMessage()]
    assert len(logged) == 1 and logged[0].startswith(f'hf-hub:{repo} ')
    assert logged[0].rpartition('(fine-tune before use): ')[2].split(', ') == new


@pytest.mark.parametrize('reg_tokens', [4, 0], ids=['registers-kept', 'registers-dropped'])
def test_registers_on_a_small_grid_map_onto_the_model(reg_tokens):
    """A 3x3 grid with 5 prefix tokens: 9 - 5 rows would pass for a 2x2 grid with embedded prefix tokens."""
    small = dict(embed_dim=48, num_heads=3, depth=2, img_size=42)
    source = randomize(timm.create_model('vit_small_patch14_reg4_dinov2', weight_init='skip', **small))
    model = timm.create_model('tl_vit', backbone='vit_small_patch14_reg4_dinov2', reg_tokens=reg_tokens,
                              num_tokens=4, tokenlearner_loc=1, num_classes=0, **small)
    mapped = checkpoint_filter_fn(source.state_dict(), model)
    assert torch.equal(mapped['pos_embed'], source.state_dict()['pos_embed'])  # the grid's, prefix not embedded
    assert ('reg_token' in mapped) == bool(reg_tokens)


def _write_variant(tmp_path, name='tl_test_backbone_8at1', **entry):
    path = tmp_path / 'backbone.yaml'
    spec = dict(description='A test variant on a timm backbone.', **entry)
    path.write_text(yaml.safe_dump({'variants': {name: spec}}))
    return path


def test_architecture_and_pretrained_cfg_override_the_backbone(tmp_path):
    path = _write_variant(
        tmp_path, backbone='vit_small_patch14_reg4_dinov2',
        architecture=dict(num_tokens=4, tokenlearner_loc=1, depth=2, class_token=False, global_pool='avg'),
        pretrained_cfg=dict(input_size=[3, 224, 224], crop_pct=0.875))
    variant, = parse_variant_file(path)
    assert variant.settings == dict(vit_arguments('vit_small_patch14_reg4_dinov2'), num_tokens=4,
                                    tokenlearner_loc=1, depth=2, class_token=False, global_pool='avg')
    assert variant.pretrained_cfg['input_size'] == [3, 224, 224] and variant.pretrained_cfg['mean'] == [
        0.485, 0.456, 0.406]
    assert variant.tags['lvd142m']['input_size'] == [3, 224, 224] and variant.tags['lvd142m']['crop_pct'] == 0.875
    assert variant.tags['lvd142m']['hf_hub_id'] == 'timm/vit_small_patch14_reg4_dinov2.lvd142m'


def test_given_tags_replace_timms(tmp_path):
    path = _write_variant(tmp_path, backbone='deit3_small_patch16_224',
                          architecture=dict(num_tokens=8, tokenlearner_loc=6),
                          tags={'mine': {'hf_hub_id': 'me/mine', 'num_classes': 10}})
    variant, = parse_variant_file(path)
    assert list(variant.tags) == ['mine'] and variant.pretrained_cfg['num_classes'] == 1000


def test_create_model_resolves_a_backbone_and_explicit_arguments_win():
    model = timm.create_model('tl_vit', backbone='vit_small_patch14_reg4_dinov2', embed_dim=48, num_heads=3,
                              depth=2, img_size=56, num_tokens=4, tokenlearner_loc=1, num_classes=3)
    assert (model.embed_dim, len(model.blocks), model.num_reg_tokens, model.has_class_token) == (48, 2, 4, True)
    assert model.no_embed_class and type(model.blocks[0].ls1).__name__ == 'LayerScale'  # DINOv2's layer scale
    assert model(torch.randn(1, 3, 56, 56)).shape == (1, 3)


@pytest.mark.parametrize('backbone, problem', [
    ('eva02_small_patch14_224', "timm's eva02_small_patch14_224 is a Eva, not a VisionTransformer"),
    ('vit_base_r50_s16_224', 'hybrid CNN stem (embed_layer)'),
    ('vit_smal_patch14_dinov2', "unknown timm model 'vit_smal_patch14_dinov2' as backbone; expected a timm "
                                'VisionTransformer architecture'),
])
def test_unsupported_backbones_are_named_with_what_is_supported(tmp_path, backbone, problem):
    with pytest.raises(BackboneError, match='expected a timm VisionTransformer architecture') as info:
        vit_arguments(backbone)
    assert problem in str(info.value)
    path = _write_variant(tmp_path, backbone=backbone, architecture=dict(num_tokens=8, tokenlearner_loc=6))
    with pytest.raises(VariantConfigError) as info:
        parse_variant_file(path)
    message = str(info.value)
    assert str(path) in message and "key 'backbone'" in message and problem in message
    assert 'vit_small_patch14_dinov2' in message  # among the supported examples, or the close match


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(BackboneError, match='did you mean vit_small_patch14_dinov2'):
        vit_arguments('vit_smal_patch14_dinov2')


@pytest.mark.parametrize('name, entry, key, problem', [
    ('vit_test_plain', dict(backbone='deit3_small_patch16_224', architecture={}), "key 'backbone'",
     "a plain vit_ variant is timm's model itself"),
    ('tl_test_x', dict(backbone='deit3_small_patch16_224.fb_in1k', architecture=dict(num_tokens=8,
                                                                                    tokenlearner_loc=6)),
     "key 'backbone'", 'without a pretrained tag'),
    ('tl_test_x', dict(backbone='deit3_small_patch16_224', architecture=dict(tokenlearner_loc=6)),
     "key 'architecture.num_tokens'", 'missing required key'),
    ('tl_test_x', dict(backbone='deit3_small_patch16_224', architecture=dict(num_tokens=8, tokenlearner_loc=12)),
     "key 'architecture.tokenlearner_loc'", 'expected a block index in 0..11 (depth 12), got 12'),
    ('tl_test_x', dict(backbone='deit3_small_patch16_224', architecture=dict(num_tokens=8, tokenlearner_loc=2,
                                                                             depth=2)),
     "key 'architecture.tokenlearner_loc'", 'expected a block index in 0..1 (depth 2), got 2'),
    ('tl_test_x', dict(backbone=16, architecture=dict(num_tokens=8, tokenlearner_loc=6)), "key 'backbone'",
     'expected the name of a timm ViT architecture'),
])
def test_backbone_schema_errors_name_the_key(tmp_path, name, entry, key, problem):
    path = _write_variant(tmp_path, name=name, **entry)
    with pytest.raises(VariantConfigError) as info:
        parse_variant_file(path)
    message = str(info.value)
    assert f"variant '{name}'" in message and key in message and problem in message


def test_family_twins_are_their_timm_backbones():
    for name, backbone in FAMILIES.items():
        assert twin_name(name) == backbone
    assert not set(FAMILIES) & set(default_model_names())  # large: benchmarked when named


def _run(script, *args, cwd):
    env = dict(os.environ, TL_MODELS_NO_TIMM_HOOK='1')
    result = subprocess.run([*command(script), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f'{script}: {result.stderr[-3000:]}'
    return result


@pytest.mark.slow
@pytest.mark.parametrize('name', ['tl_vit_small_patch14_reg4_dinov2_8at6', 'tl_vit_base_patch16_siglip_224_8at6'])
def test_family_runs_through_train_validate_visualize_and_benchmark(name, tmp_path):
    small = dict(embed_dim=48, num_heads=3, depth=2, tokenlearner_loc=1)
    size = 28 if 'patch14' in name else 32
    kwargs = [f'{k}={v}' for k, v in small.items()]
    run = tmp_path / 'run'
    _run('train', '--model', name, '--model-kwargs', *kwargs, '--img-size', size, '--epochs', 1,
         '--warmup-epochs', 0, '--batch-size', 128, '--preload', '--threads', 2, '--output', run, cwd=tmp_path)
    config = json.loads((run / 'model' / 'config.json').read_text())
    assert config['architecture'] == name and config['model_args']['embed_dim'] == 48
    metrics = tmp_path / 'metrics.json'
    _run('validate', run, '--json', metrics, cwd=tmp_path)
    assert 0 <= json.loads(metrics.read_text())['top1'] <= 100
    _run('visualize', '--model', f"local-dir:{run / 'model'}", '--digit', 0, '--output', tmp_path / 'maps.png',
         cwd=tmp_path)
    assert (tmp_path / 'maps.png').read_bytes().startswith(b'\x89PNG')
    bench = tmp_path / 'bench'
    _run('tl-benchmark', '--models', name, '--model-args', *kwargs, '--img-size', size, '--batch-size', 2,
         '--rounds', 1, '--steps', 1, '--warmup', 0, '--threads', 2, '--out', bench, '--no-plot', '--quiet',
         cwd=tmp_path)
    rows = json.loads(Path(f'{bench}.json').read_text())['rows']
    assert [(r['model'], r['baseline']) for r in rows] == [(FAMILIES[name], ''), (name, FAMILIES[name])]
    assert all(r['gmacs'] > 0 and r['train_ips'] > 0 for r in rows)  # headless backbones get a head to train
