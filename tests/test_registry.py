"""Variants from YAML: the shipped files, user files, and an error naming file, variant and key for each rule."""
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch
import yaml

import tl_models
from tl_models import VariantConfigError, register_variants
from tl_models.hub import WeightFileError
from tl_models.registry import GENERIC_PLAIN, GENERIC_TOKENLEARNER, builtin_config_dir, parse_variant_file

_names = (f'tl_test_{i}' for i in itertools.count())

VALID = textwrap.dedent("""\
    defaults:
      architecture: {patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, class_token: false, global_pool: avg}
      pretrained_cfg: {input_size: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1.0,
                       license: apache-2.0}
    variants:
      NAME:
        description: A tiny test variant.
        architecture: {num_tokens: 4, tokenlearner_loc: 1}
    """)


def _write(tmp_path: Path, text: str, name: str = 'variants.yaml') -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _valid(tmp_path: Path, **replacements) -> tuple:
    name = next(_names)
    text = VALID.replace('NAME', name)
    for old, new in replacements.items():
        text = text.replace(old, new)
    return _write(tmp_path, text, f'{name}.yaml'), name


def test_shipped_files_define_the_registered_variants():
    shipped = [v.name for path in sorted(builtin_config_dir().glob('*.yaml')) for v in parse_variant_file(path)]
    every = (tl_models.list_variants() + tl_models.registry.list_plain_variants()
             + tl_models.registry.list_video_variants() + tl_models.registry.list_plain_video_variants())
    registered = sorted(n for n in every if tl_models.get_variant(n).path.parent == builtin_config_dir())
    assert sorted(shipped) == registered
    assert set(registered) <= set(timm.list_models('tl_*') + timm.list_models('vit_*') + timm.list_models('vivit_*'))
    assert not any(p.name == 'train' for p in builtin_config_dir().glob('*.yaml'))


def test_shipped_variants_cover_the_paper_settings():
    variants = {n: tl_models.get_variant(n) for n in tl_models.list_variants()}
    arch = {n: v.settings for n, v in variants.items()}
    size = {n: tuple(v.pretrained_cfg['input_size'][1:]) for n, v in variants.items()}
    # the official ImageNet config: B/16, v1.1, 16 tokens at block 9, no fuser, GAP head
    official = arch['tl_vit_base_patch16_224_16at9']
    assert (official['embed_dim'], official['num_tokens'], official['tokenlearner_loc']) == (768, 16, 9)
    assert official['class_token'] is False and official['global_pool'] == 'avg'
    # the paper's headline image setting: 8 tokens at the middle, B/16 at 384; and L/16 16at12 at 384
    b384 = arch['tl_vit_base_patch16_384_8at6']
    assert b384['tokenlearner_loc'] == b384['depth'] // 2 and b384['num_tokens'] == 8
    assert size['tl_vit_base_patch16_384_8at6'] == size['tl_vit_large_patch16_384_16at12'] == (384, 384)
    assert arch['tl_vit_large_patch16_384_16at12']['num_tokens'] == 16
    for width in (192, 384, 768, 1024):  # Ti, S, B, L at 224
        assert any(a['embed_dim'] == width and size[n] == (224, 224) for n, a in arch.items())
    assert any(a.get('use_v11') is False for a in arch.values())
    assert any(a.get('use_tokenfuse') for a in arch.values())
    assert len(variants) >= 12


def test_backbone_tags_state_the_source_checkpoints_preprocessing():
    shipped, checked = builtin_config_dir().resolve(), 0
    for name in tl_models.list_variants():
        variant = tl_models.get_variant(name)
        if variant.path.resolve().parent != shipped:
            continue  # a user's YAML (the docs' snippets register some): its tags name the user's own weights
        for tag, fields in variant.tags.items():
            if 'file' in fields:
                continue  # weights trained by tl_models, shipped in the package (tests/test_shipped_weights.py)
            cfg = timm.models.get_pretrained_cfg(f'{name}.{tag}')
            source = timm.models.get_pretrained_cfg(fields['hf_hub_id'].split('/', 1)[1])
            assert source is not None, f'{name}.{tag}: {fields["hf_hub_id"]} is not a timm checkpoint'
            for key in ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'license'):
                assert getattr(cfg, key) == getattr(source, key), (name, tag, key)
            assert 'not a trained TokenLearner model' in cfg.description
            checked += 1
    assert checked >= 30  # every shipped family has backbone tags


def test_user_yaml_registers_a_model_timm_can_create(tmp_path):
    path, name = _valid(tmp_path)
    assert register_variants(path) == [name]
    assert name in timm.list_models('tl_test_*') and name in tl_models.list_variants()
    model = timm.create_model(name, num_classes=3).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    assert model.pretrained_cfg['input_size'] == (3, 32, 32) and model.num_tokens == 4
    assert timm.models.model_entrypoint(name).__doc__.startswith('A tiny test variant.')


def test_a_variant_with_tags_registers_each_tag(tmp_path):
    path, name = _valid(tmp_path, **{'architecture: {num_tokens: 4, tokenlearner_loc: 1}': textwrap.dedent("""\
        architecture: {num_tokens: 4, tokenlearner_loc: 1}
            tags:
              first: {hf_hub_id: someone/first, mean: [0.1, 0.2, 0.3]}
              second: {hf_hub_id: someone/second}""")})
    register_variants(path)
    assert timm.list_pretrained(f'{name}*') == [f'{name}.first', f'{name}.second']
    assert timm.models.get_pretrained_cfg(f'{name}.first').mean == (0.1, 0.2, 0.3)
    assert timm.models.get_pretrained_cfg(f'{name}.second').hf_hub_id == 'someone/second'
    assert timm.models.get_pretrained_cfg(name).hf_hub_id == 'someone/first'  # the first tag is the default


def test_registering_leaves_timm_models_and_their_pretrained_cfgs_alone():
    script = textwrap.dedent("""
        import json, timm
        before = {n: repr(timm.models.get_pretrained_cfg(n)) for n in timm.list_pretrained()}
        names = set(timm.list_models())
        import tl_models
        after = {n: repr(timm.models.get_pretrained_cfg(n)) for n in before}
        now = set(timm.list_models())
        print(json.dumps(dict(changed=[n for n in before if before[n] != after[n]],
                              added=sorted(now - names), removed=sorted(names - now))))
        """)
    env = dict(os.environ, TL_MODELS_NO_TIMM_HOOK='1')  # else an installed package registers on `import timm`
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300, check=True,
                            env=env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['changed'] == [] and report['removed'] == []
    shipped = {v.name for path in builtin_config_dir().glob('*.yaml') for v in parse_variant_file(path)}
    assert set(report['added']) == shipped | {GENERIC_TOKENLEARNER, GENERIC_PLAIN}


@pytest.mark.parametrize('old, new, key, problem', [
    ('description: A tiny', 'colour: red\n    description: A tiny', "key 'colour'", 'unknown key; expected one of'),
    ('num_tokens: 4,', 'num_tokens: 4, tokenlearner_depth: 1,', "key 'architecture.tokenlearner_depth'", 'unknown key'),
    ('crop_pct: 1.0,', 'crop_pct: 1.0, color: red,', "key 'pretrained_cfg.color'", 'unknown key'),
    ('num_tokens: 4,', 'num_tokens: four,', "key 'architecture.num_tokens'", "expected an integer, got 'four'"),
    ('class_token: false', 'class_token: 0', "key 'architecture.class_token'", 'expected true or false, got 0'),
    ('input_size: [3, 32, 32]', 'input_size: [32, 32]', "key 'pretrained_cfg.input_size'",
     'expected a list [channels, height, width] of integers'),
    ('crop_pct: 1.0', 'crop_pct: 1.5', "key 'pretrained_cfg.crop_pct'", 'expected a number in (0, 1]'),
    ('global_pool: avg', 'global_pool: mean', "key 'architecture.global_pool'", "expected one of '', 'avg'"),
    ('tokenlearner_loc: 1', 'tokenlearner_loc: 2', "key 'architecture.tokenlearner_loc'",
     'expected a block index in 0..1 (depth 2), got 2'),
    ('tokenlearner_loc: 1', 'tokenlearner_loc: -1', "key 'architecture.tokenlearner_loc'", 'got -1'),
    ('num_tokens: 4', 'num_tokens: 0', "key 'architecture.num_tokens'", 'expected at least 1 learned token, got 0'),
    ('num_tokens: 4,', '', "key 'architecture.num_tokens'", 'missing required key'),
    ('description: A tiny test variant.', 'description: ""', "key 'description'", 'expected a non-empty string'),
    ('crop_pct: 1.0,', 'crop_pct: 1.0, hf_hub_id: a/b,', "key 'pretrained_cfg.hf_hub_id'",
     'weights belong to a pretrained tag'),
])
def test_schema_errors_name_the_file_the_variant_and_the_key(tmp_path, old, new, key, problem):
    path, name = _valid(tmp_path, **{old: new})
    with pytest.raises(VariantConfigError) as info:
        register_variants(path)
    message = str(info.value)
    assert str(path) in message and f"variant '{name}'" in message and key in message and problem in message
    assert name not in timm.list_models('tl_test_*')


def test_tag_errors(tmp_path):
    path, _ = _valid(tmp_path, **{'architecture: {num_tokens: 4, tokenlearner_loc: 1}':
                                  'architecture: {num_tokens: 4, tokenlearner_loc: 1}\n    tags: {My-Tag: {}}'})
    with pytest.raises(VariantConfigError, match=r"variant '.*': key 'tags.My-Tag': tag names must match"):
        register_variants(path)
    path, _ = _valid(tmp_path, **{'architecture: {num_tokens: 4, tokenlearner_loc: 1}':
                                  'architecture: {num_tokens: 4, tokenlearner_loc: 1}\n    tags: {ok: {mean: [1]}}'})
    with pytest.raises(VariantConfigError, match=r"key 'tags.ok': a tag needs its weights: hf_hub_id \(a hub repo\) "
                                                 r"or file \(a weight file\)"):
        register_variants(path)


@pytest.mark.parametrize('bad_name, problem', [
    ('resnet_mine', "variant names must match 'tl_[a-z0-9_]+' (a TokenLearner ViT) or 'vit_[a-z0-9_]+'"),
    ('tl_Mine', "variant names must match 'tl_[a-z0-9_]+'"),
])
def test_names_need_the_tl_or_vit_prefix(tmp_path, bad_name, problem):
    path = _write(tmp_path, VALID.replace('NAME', bad_name))
    with pytest.raises(VariantConfigError) as info:
        register_variants(path)
    assert str(path) in str(info.value) and f"got '{bad_name}'" in str(info.value) and problem in str(info.value)


def test_duplicate_names_in_one_file_across_files_and_with_shipped_variants(tmp_path):
    path, name = _valid(tmp_path)
    doubled = _write(tmp_path, path.read_text() + f'  {name}:\n    description: again\n', 'doubled.yaml')
    with pytest.raises(VariantConfigError, match=rf"{doubled}: not valid YAML: .*duplicate key '{name}'"):
        register_variants(doubled)
    other = _write(tmp_path, path.read_text(), 'other.yaml')
    with pytest.raises(VariantConfigError, match=rf"{other}: variant '{name}': key 'variants': duplicate name, "
                                                 rf"already defined in {path}"):
        register_variants([path, other])
    assert name not in tl_models.list_variants()  # a bad batch registers nothing
    shipped = _write(tmp_path, VALID.replace('NAME', 'tl_vit_base_patch16_224_8at6'), 'shipped.yaml')
    with pytest.raises(VariantConfigError, match=r"duplicate name, already defined in .*tl_vit_base.yaml"):
        register_variants(shipped)


def test_a_name_timm_already_registers_is_refused(tmp_path):
    name = next(_names)

    def stand_in(pretrained=False, **kwargs):
        raise AssertionError('never built')

    stand_in.__name__ = name
    timm.models.register_model(stand_in)  # a model of timm's own with a tl_ name
    path = _write(tmp_path, VALID.replace('NAME', name))
    with pytest.raises(VariantConfigError, match=rf"variant '{name}': key 'variants': clashes with a model timm "
                                                 r"already registers"):
        register_variants(path)
    assert timm.models.model_entrypoint(name) is stand_in


@pytest.mark.parametrize('text, problem', [
    ('variants: [a, b]\n', "key 'variants': expected a mapping"),
    ('defaults: {}\n', "key 'variants': expected a mapping, got NoneType"),
    ('variants: {}\n', "key 'variants': expected at least one variant"),
    ('models: {}\n', "key 'models': unknown key; expected one of: defaults, variants"),
    ('variants: {tl_x: {description: [unclosed\n', 'not valid YAML'),
    ('- a list\n', "key '<file>': expected a mapping, got list"),
])
def test_broken_files(tmp_path, text, problem):
    path = _write(tmp_path, text)
    with pytest.raises(VariantConfigError, match=f'^{path}: ') as info:
        register_variants(path)
    assert problem in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(VariantConfigError, match=r'nope.yaml: cannot read the variant file'):
        register_variants(tmp_path / 'nope.yaml')


def test_get_variant_suggests_close_names():
    with pytest.raises(KeyError, match=r"unknown TokenLearner model 'tl_vit_base_patch16_224_8at7'; did you mean "
                                       r"tl_vit_base_patch16_224_8at6"):
        tl_models.get_variant('tl_vit_base_patch16_224_8at7')
    assert tl_models.get_variant('tl_vit_base_patch16_224_8at6.vit_augreg2_in21k_ft_in1k').name == \
        'tl_vit_base_patch16_224_8at6'


def test_config_dir_yaml_is_plain_safe_yaml():
    for path in builtin_config_dir().glob('*.yaml'):
        assert isinstance(yaml.safe_load(path.read_text()), dict)


PLAIN = VALID.split('variants:')[0] + textwrap.dedent("""\
    variants:
      vit_NAME:
        description: A tiny plain twin.
        architecture: {}
      tl_NAME:
        description: Its TokenLearner variant.
        architecture: {num_tokens: 4, tokenlearner_loc: 1}
    """)


def test_vit_variants_are_timms_plain_vision_transformer(tmp_path):
    name = next(_names).replace('tl_', '')
    register_variants(_write(tmp_path, PLAIN.replace('NAME', name)))
    plain, learner = timm.create_model(f'vit_{name}'), timm.create_model(f'tl_{name}')
    assert type(plain) is timm.models.VisionTransformer and plain.global_pool == 'avg' and plain.cls_token is None
    assert f'vit_{name}' in tl_models.registry.list_plain_variants() and f'vit_{name}' not in tl_models.list_variants()
    shared = {k: v.shape for k, v in learner.state_dict().items() if not k.startswith(('token_learners', 'token_fus'))}
    assert shared == {k: v.shape for k, v in plain.state_dict().items()}  # twins: the same tensors but the TokenLearner
    from tl_models.benchmark import twin_name
    assert twin_name(f'tl_{name}') == f'vit_{name}'
    for shipped in ('vit_nano_patch4_32', 'vit_micro_patch4_32'):
        assert type(timm.create_model(shipped)) is timm.models.VisionTransformer


def test_a_plain_variant_takes_no_tokenlearner_keys(tmp_path):
    text = PLAIN.replace('NAME', 'x_plain').replace('architecture: {}', 'architecture: {num_tokens: 8}')
    with pytest.raises(VariantConfigError, match=r"variant 'vit_x_plain': key 'architecture.num_tokens': a plain vit_ "
                                                 r"variant has no TokenLearner"):
        parse_variant_file(_write(tmp_path, text))


def test_a_tag_file_is_read_beside_the_yaml_file_with_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    from safetensors.torch import save_file

    name = next(_names)
    source = timm.create_model('tl_vit_pico_patch4_16_8at2', num_classes=3)
    (tmp_path / 'weights').mkdir()
    save_file(source.state_dict(), tmp_path / 'weights' / 'model.safetensors')
    text = textwrap.dedent(f"""\
        variants:
          {name}:
            description: Pico with shipped weights.
            architecture: {{patch_size: 4, embed_dim: 64, depth: 4, num_heads: 2, class_token: false,
                           global_pool: avg, num_tokens: 8, tokenlearner_loc: 2}}
            pretrained_cfg: {{input_size: [3, 16, 16], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1.0,
                             license: apache-2.0}}
            tags:
              mine: {{file: weights/model.safetensors, num_classes: 3}}
        """)
    register_variants(_write(tmp_path, text))
    assert timm.models.get_pretrained_cfg(f'{name}.mine').file == str(tmp_path / 'weights' / 'model.safetensors')
    loaded = timm.create_model(f'{name}.mine', pretrained=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())
    (tmp_path / 'weights' / 'model.safetensors').unlink()
    with pytest.raises(WeightFileError, match=r'model\.safetensors.*source checkout.*pip install -e'):
        timm.create_model(f'{name}.mine', pretrained=True)
