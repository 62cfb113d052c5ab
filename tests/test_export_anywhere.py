"""An exported model loads in any Python with tl-models, also when its variant comes from a YAML file of your own."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch

import tl_models
from tl_models.hub import Provenance, export_model
from tl_models.registry import GENERIC_PLAIN, GENERIC_TOKENLEARNER
from tl_models.weights.checkpoint import save_checkpoint

from conftest import command

ROOT = Path(__file__).parents[1]
OWN_VARIANTS = textwrap.dedent("""\
    defaults:
      architecture: {patch_size: 4, embed_dim: 48, depth: 3, num_heads: 3, mlp_ratio: 2.0, class_token: false,
                     global_pool: avg}
      pretrained_cfg: {input_size: [3, 16, 16], mean: [0.4, 0.5, 0.6], std: [0.2, 0.2, 0.2], crop_pct: 1.0,
                       license: apache-2.0}
    variants:
      tl_vit_ownexport_patch4_16_4at1:
        description: A variant only this file defines.
        architecture: {num_tokens: 4, tokenlearner_loc: 1, use_tokenfuse: true}
      vit_ownexport_patch4_16:
        description: Its plain twin.
        architecture: {}
      tl_deit3_ownexport_patch4_16_4at1:
        description: On timm's DeiT-III S/16 (layer scale, class token outside the position embedding), made small.
        backbone: deit3_small_patch16_224
        architecture: {num_tokens: 4, tokenlearner_loc: 1}
        tags: {}
    """)


@pytest.fixture(scope='module')
def own_variants(tmp_path_factory):
    path = tmp_path_factory.mktemp('variants') / 'own.yaml'
    path.write_text(OWN_VARIANTS)
    if not timm.is_model('tl_vit_ownexport_patch4_16_4at1'):
        tl_models.register_variants(path)
    return path


def _export(name: str, folder: Path) -> torch.Tensor:
    """Exports a randomised ``name`` to ``folder``; returns its logits for a fixed input."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.2)
    export_model(model, folder, Provenance(summary='Random weights for a test.'), label_names=list('abcde'))
    with torch.no_grad():
        return model(torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16))


def _load_elsewhere(folder: Path) -> subprocess.CompletedProcess:
    """Loads ``folder`` in a fresh Python that has registered only the shipped variants; prints its logits."""
    script = textwrap.dedent(f"""
        import json, timm, torch
        import tl_models
        model = timm.create_model('local-dir:{folder}', pretrained=True).eval()
        with torch.no_grad():
            logits = model(torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16))
        print(json.dumps(dict(logits=logits.tolist(), architecture=model.pretrained_cfg['architecture'],
                              type=type(model).__name__)))
        """)
    env = dict(os.environ, TL_MODELS_NO_TIMM_HOOK='1')
    return subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize('name, generic, kind', [
    ('tl_vit_ownexport_patch4_16_4at1', GENERIC_TOKENLEARNER, 'TokenLearnerVisionTransformer'),
    ('vit_ownexport_patch4_16', GENERIC_PLAIN, 'VisionTransformer'),
    ('tl_deit3_ownexport_patch4_16_4at1', GENERIC_TOKENLEARNER, 'TokenLearnerVisionTransformer'),
])
def test_a_variant_of_your_own_file_loads_where_that_file_was_never_registered(own_variants, tmp_path, name, generic,
                                                                                kind):
    expected = _export(name, tmp_path / 'model')
    config = json.loads((tmp_path / 'model' / 'config.json').read_text())
    assert config['architecture'] == generic and config['tl_models']['variant'] == name
    assert config['model_args']['embed_dim'] == 48 and config['model_args']['depth'] == 3
    card = (tmp_path / 'model' / 'README.md').read_text()
    assert f'# Model card for {name}' in card and f'names `{generic}`' in card
    result = _load_elsewhere(tmp_path / 'model')
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded['type'] == kind and loaded['architecture'] == generic
    assert torch.allclose(torch.tensor(loaded['logits']), expected, atol=1e-6)


def test_a_variant_on_a_timm_backbone_exports_the_backbone_by_name(own_variants, tmp_path):
    _export('tl_deit3_ownexport_patch4_16_4at1', tmp_path / 'model')
    args = json.loads((tmp_path / 'model' / 'config.json').read_text())['model_args']
    assert args['backbone'] == 'deit3_small_patch16_224' and args['embed_dim'] == 48
    model = timm.create_model(f"local-dir:{tmp_path / 'model'}", pretrained=True)
    assert model.no_embed_class and type(model.blocks[0].ls1).__name__ == 'LayerScale'  # DeiT-III's, from timm


def test_a_shipped_variant_keeps_its_own_name(tmp_path):
    _export('tl_vit_pico_patch4_16_8at2', tmp_path / 'model')
    config = json.loads((tmp_path / 'model' / 'config.json').read_text())
    assert config['architecture'] == config['tl_models']['variant'] == 'tl_vit_pico_patch4_16_8at2'


def test_a_model_loaded_through_the_generic_architecture_exports_again(own_variants, tmp_path):
    expected = _export('tl_vit_ownexport_patch4_16_4at1', tmp_path / 'first')
    model = timm.create_model(f"local-dir:{tmp_path / 'first'}", pretrained=True).eval()
    export_model(model, tmp_path / 'second', Provenance(summary='Exported again.'))
    again = timm.create_model(f"local-dir:{tmp_path / 'second'}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.allclose(again(torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)), expected, atol=1e-6)


def test_the_generic_architectures_are_timm_models_of_their_own():
    model = timm.create_model(GENERIC_TOKENLEARNER, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                              num_tokens=4, tokenlearner_loc=1, num_classes=3)
    assert type(model).__name__ == 'TokenLearnerVisionTransformer' and model.num_tokens == 4
    plain = timm.create_model(GENERIC_PLAIN, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    assert type(plain) is timm.models.VisionTransformer
    assert GENERIC_TOKENLEARNER not in tl_models.list_variants()  # not YAML variants


@pytest.mark.slow
@pytest.mark.parametrize('script, arguments', [
    ('train', ['--model', 'tl_vit_ownexport_patch4_16_4at1', '--epochs', '1', '--warmup-epochs', '0',
                  '--output', '{tmp}/run']),
    ('validate', ['{tmp}/checkpoint.safetensors']),
    ('tl-benchmark', ['--models', 'tl_vit_ownexport_patch4_16_4at1', '--flops-only', '--out', '{tmp}/bench']),
    ('visualize', ['--model', 'tl_vit_ownexport_patch4_16_4at1', '--digit', '0', '--output', '{tmp}/maps.png']),
    ('study', ['{tmp}/study.yaml', '--list', '--results', '{tmp}/results']),
])
def test_every_script_that_takes_a_model_name_takes_your_variant_files(own_variants, tmp_path, script, arguments):
    (tmp_path / 'study.yaml').write_text(
        'recipe: {epochs: 1}\ngroups:\n  g:\n    runs:\n      tl_vit_ownexport_patch4_16_4at1: {}\n')
    model = timm.create_model('tl_vit_ownexport_patch4_16_4at1', num_classes=10)
    save_checkpoint(tmp_path / 'checkpoint.safetensors', model=model, model_name='tl_vit_ownexport_patch4_16_4at1',
                    model_args={'num_classes': 10}, epoch=1)
    argv = [a.replace('{tmp}', str(tmp_path)) for a in arguments]
    env = dict(os.environ, TL_MODELS_NO_TIMM_HOOK='1')
    argv0 = [sys.executable, 'scripts/study.py'] if script == 'study' else command(script)
    without = subprocess.run([*argv0, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert without.returncode != 0 and 'tl_vit_ownexport_patch4_16_4at1' in without.stderr
    result = subprocess.run([*argv0, *argv, '--variants', str(own_variants)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def test_card_says_which_weights_training_started_from_and_never_the_models_own_tag(tmp_path):
    model = timm.create_model('tl_vit_nano_patch4_32_8at2', num_classes=10)
    assert model.pretrained_cfg['tag'] == 'cifar10'  # a rebuilt model carries its default tag, whatever it started from
    provenance = Provenance('fine-tuned', started_from='the weight file w.safetensors')
    folder = export_model(model, tmp_path / 'file', provenance)
    config = json.loads((folder / 'config.json').read_text())
    assert config['tl_models']['started_from'] == 'the weight file w.safetensors'
    assert '**Started from:** the weight file w.safetensors' in (folder / 'README.md').read_text()
    unknown = export_model(model, tmp_path / 'unknown', Provenance('a bare checkpoint'))
    assert 'started_from' not in json.loads((unknown / 'config.json').read_text())['tl_models']
    assert 'Started from' not in (unknown / 'README.md').read_text()
