"""tl-download, tl-export and tl-push, against the loopback hub; no network.

One test runs tl-download as a process, with the environment (HF_ENDPOINT, HF_HOME) as a user sets it;
the others call the scripts' ``main`` in this process, with huggingface_hub pointed at the server.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load, save

from tl_models.hub import ExportFolderError, Provenance, WeightsUnavailableError, export_model, push_folder
from tl_models.registry import list_plain_variants
from tl_models.weights.checkpoint import model_from_checkpoint, save_checkpoint

from conftest import command, load_script
from hub_server import (
    SMALL,
    SMALL_ARGS,
    SUBPROCESS_VARIANTS_YAML,
    TINY_SOURCE_REPO,
    TINY_TAG,
    folder_files,
    hub_environment,
    randomize,
    small_tl,
    use_hub,
)

ROOT = Path(__file__).resolve().parents[1]
SKIP_INIT = dict(weight_init='skip')  # for ViT-Ti models whose weights are all loaded: spares timm's slow init


def _script(name):
    return load_script('push' if name == 'push_to_hub' else name)


download, export, push_to_hub = _script('download'), _script('export'), _script('push_to_hub')



@pytest.fixture(scope='module')
def tiny_source_bytes():
    return save(randomize(timm.create_model('vit_tiny_patch16_224', **SKIP_INIT)).state_dict())


@pytest.fixture
def tiny_backbone(hub, tiny_source_bytes):
    """The repo of the shipped tiny tag, holding a random ViT-Ti; returns its state dict."""
    hub.add_repo(TINY_SOURCE_REPO, {'model.safetensors': tiny_source_bytes, 'config.json': b'{}'})
    return load(tiny_source_bytes)


def _trained(**kwargs):
    return randomize(small_tl(**kwargs))


def test_download_script_fills_the_cache_for_offline_loads(hub, tiny_backbone, tmp_path, monkeypatch):
    exported = _trained(num_classes=4)
    folder = export_model(exported, tmp_path / 'export', Provenance('Test weights.'), repo_id='hubtest/exported')
    hub.add_repo('hubtest/exported', folder_files(folder))
    own = export_model(_trained(num_classes=10), tmp_path / 'own', Provenance('Ours.'), repo_id='hubtest/tl-trained')
    hub.add_repo('hubtest/tl-trained', folder_files(own))
    variants = tmp_path / 'variants.yaml'  # tl_hubtest_small.trained: a tag on hubtest/tl-trained
    variants.write_text(SUBPROCESS_VARIANTS_YAML, encoding='utf-8')
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN')}
    env.update(hub_environment(hub.endpoint, tmp_path / 'hf_home'))
    env['TQDM_POSITION'] = '-1'  # tqdm hides bars when stderr is no terminal; huggingface_hub's switch shows them
    done = subprocess.run(
        [*command('download'), '--variants', str(variants), '--',
         'tl_hubtest_small.trained', 'hf-hub:hubtest/exported', TINY_TAG],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cache = tmp_path / 'hf_home' / 'hub'
    for name, repo in (('tl_hubtest_small.trained', 'tl-trained'), ('hf-hub:hubtest/exported', 'exported')):
        assert f"{name}: {cache / f'models--hubtest--{repo}' / 'snapshots'}" in done.stdout
    assert f"{TINY_TAG}: {cache / 'models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k'}" in done.stdout
    assert '100%' in done.stderr  # huggingface_hub's progress bars
    cached_own, = (cache / 'models--hubtest--tl-trained' / 'snapshots').glob('*/model.safetensors')
    assert cached_own.read_bytes() == (own / 'model.safetensors').read_bytes()

    requests = len(hub.requests)
    use_hub(monkeypatch, hub.endpoint, tmp_path / 'hf_home', offline=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        from_hub = timm.create_model('hf-hub:hubtest/exported', pretrained=True).eval()
        assert torch.equal(from_hub(x), exported(x))
    tagged = timm.create_model(TINY_TAG, pretrained=True, **SKIP_INIT)
    assert torch.equal(tagged.blocks[1].attn.qkv.weight, tiny_backbone['blocks.1.attn.qkv.weight'])
    assert len(hub.requests) == requests


def _listed_tags(capsys):
    """``tl-download --list`` as {name.tag: (repo, cached)}."""
    assert download.main(['--list']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['NAME.TAG', 'SOURCE', 'REPO', 'CACHED']
    return {line.split()[0]: tuple(line.split()[1:]) for line in lines[1:]}


def test_download_list_shows_every_tag_its_repo_and_whether_it_is_cached(hub, tiny_backbone, capsys):
    import tl_models
    before = _listed_tags(capsys)
    expected = {f'{v}.{t}': f.get('hf_hub_id', 'tl-models')
                for v in tl_models.list_variants() + list_plain_variants()
                for t, f in tl_models.get_variant(v).tags.items()}
    assert {name: repo for name, (repo, _) in before.items()} == expected
    assert before['tl_vit_nano_patch4_32_8at2.cifar10'] == ('tl-models', 'shipped')
    assert before['tl_vit_base_patch16_224_8at6.vit_augreg2_in21k_ft_in1k'][0] == \
        'timm/vit_base_patch16_224.augreg2_in21k_ft_in1k'
    assert before[TINY_TAG] == (TINY_SOURCE_REPO, 'no')

    assert download.main([SMALL]) == 0  # no tag: the default (first) tag, TINY_TAG
    assert f'{SMALL}: ' in capsys.readouterr().out
    after = _listed_tags(capsys)
    assert after[TINY_TAG] == (TINY_SOURCE_REPO, 'yes')
    cached = sorted(name for name, (_, cached) in after.items() if cached == 'yes')
    assert cached == sorted(name for name, repo in expected.items() if repo == TINY_SOURCE_REPO)  # same repo
    assert len(cached) == 3


def test_download_into_a_cache_dir_that_create_model_then_uses(hub, tiny_backbone, tmp_path, monkeypatch, capsys):
    cache = tmp_path / 'my-cache'
    assert download.main(['--cache-dir', str(cache), TINY_TAG]) == 0
    assert str(cache / 'models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k') in capsys.readouterr().out
    use_hub(monkeypatch, hub.endpoint, tmp_path / 'hf_home', offline=True)  # the default cache stays empty
    model = timm.create_model(TINY_TAG, pretrained=True, cache_dir=cache, **SKIP_INIT)
    assert torch.equal(model.blocks[0].attn.qkv.weight, tiny_backbone['blocks.0.attn.qkv.weight'])
    empty = tmp_path / 'empty-cache'
    with pytest.raises(WeightsUnavailableError, match=f'tl-download {TINY_TAG} --cache-dir {empty}'):
        timm.create_model(TINY_TAG, pretrained=True, cache_dir=empty)


def test_download_offline_with_nothing_cached_says_what_is_missing(hub, tmp_path, monkeypatch, capsys):
    use_hub(monkeypatch, hub.endpoint, tmp_path / 'hf_home', offline=True)
    assert download.main([TINY_TAG, 'hf-hub:hubtest/somewhere']) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert (f'error: {TINY_TAG}: hf-hub:{TINY_SOURCE_REPO}: model.safetensors or pytorch_model.bin '
            f'not in the cache') in err
    assert 'error: hf-hub:hubtest/somewhere: hf-hub:hubtest/somewhere: config.json not in the cache' in err
    assert f'tl-download {TINY_TAG}' in err
    assert 'tl-download hf-hub:hubtest/somewhere' in err
    assert err.count('local-dir:PATH') == 2


def test_download_reports_bad_names_without_a_traceback(hub, capsys):
    hub.add_repo('hubtest/unregistered', {'config.json': json.dumps({'architecture': 'tl_not_registered'}).encode()})
    assert download.main([f'{SMALL}.nosuchtag', f'{SMALL}x', 'hf-hub:hubtest/unregistered']) == 1
    err = capsys.readouterr().err
    assert f"{SMALL}: no pretrained tag 'nosuchtag'; its tags: {TINY_TAG}" in err
    assert f"unknown TokenLearner model '{SMALL}x'; did you mean {SMALL}" in err
    assert "unknown model architecture 'tl_not_registered'" in err and 'import tl_models' in err
    assert 'register_variants' in err and 'Traceback' not in err


def _training_run(tmp_path, ema=True):
    """A training run folder as tl_models.train writes it: checkpoints/{best,last}.safetensors, summary.json."""
    run = tmp_path / 'run'
    model_args = dict(SMALL_ARGS, num_classes=10)
    save_checkpoint(run / 'checkpoints' / 'best.safetensors', model=_trained(num_classes=10), model_name=SMALL,
                    model_args=model_args, epoch=2, metrics={'top1': 91.25, 'val_loss': 0.3},
                    ema=_trained(num_classes=10) if ema else None)
    save_checkpoint(run / 'checkpoints' / 'last.safetensors', model=_trained(num_classes=10), model_name=SMALL,
                    model_args=model_args, epoch=3)
    (run / 'summary.json').write_text(json.dumps(
        {'model': SMALL, 'dataset': 'digits', 'best_top1': 91.25, 'best_epoch': 2, 'ema': ema}))
    return run


def test_export_of_a_training_run_gives_a_hub_ready_folder(hub, tmp_path, capsys):
    run = _training_run(tmp_path)
    out = tmp_path / 'out'
    assert export.main([str(run), str(out), '--repo-id', 'hubtest/digits']) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ['README.md', 'config.json', 'model.safetensors']

    config = json.loads((out / 'config.json').read_text())
    assert config['architecture'] == SMALL and config['num_classes'] == 10
    assert config['model_args']['num_tokens'] == 4 and config['model_args']['embed_dim'] == 32
    assert 'tag' not in config['pretrained_cfg']
    assert 'EMA weights of best.safetensors (epoch 2)' in config['pretrained_cfg']['description']
    card = (out / 'README.md').read_text()
    for expected in ('license: apache-2.0', 'datasets:\n- digits', "timm.create_model('hf-hub:hubtest/digits'",
                     'import tl_models', 'Unknown model (tl_...)', '| best_top1 | 91.25 |', '**weights:** EMA',
                     'TokenLearner: What Can 8 Learned Tokens'):
        assert expected in card, expected
    assert 'Initialisation for fine-tuning' not in card  # trained weights, not the tag's initialisation
    assert 'hf_hub_id: hubtest/digits' in printed and 'num_classes: 10' in printed

    expected_model = model_from_checkpoint(run / 'checkpoints' / 'best.safetensors', use_ema=True)
    loaded = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected_model(x))


def test_export_of_a_checkpoint_file_without_ema(hub, tmp_path):
    run = _training_run(tmp_path, ema=False)
    out = tmp_path / 'out'
    assert export.main([str(run / 'checkpoints' / 'last.safetensors'), str(out)]) == 0
    card = (out / 'README.md').read_text()
    assert "timm.create_model('local-dir:" in card and 'last.safetensors' in card
    assert 'No evaluation metrics were recorded' in card  # last.safetensors was saved without metrics
    expected_model = model_from_checkpoint(run / 'checkpoints' / 'last.safetensors')
    loaded = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected_model(x))


def test_export_of_a_backbone_tag_says_it_is_an_initialisation(hub, tiny_backbone, tmp_path):
    out = tmp_path / 'init'
    assert export.main([TINY_TAG, str(out), '--pretrained']) == 0
    card = (out / 'README.md').read_text()
    assert f'Exported from {TINY_TAG}. Initialisation for fine-tuning, not a trained TokenLearner model.' in card
    weights = load((out / 'model.safetensors').read_bytes())
    assert torch.equal(weights['blocks.0.mlp.fc1.weight'], tiny_backbone['blocks.0.mlp.fc1.weight'])


def test_export_failures_leave_nothing_behind(hub, tmp_path, capsys):
    run = _training_run(tmp_path)
    best = run / 'checkpoints' / 'best.safetensors'
    best.write_bytes(best.read_bytes()[:1000])
    out = tmp_path / 'exports' / 'digits'
    assert export.main([str(run), str(out)]) == 1
    err = capsys.readouterr().err
    assert str(best) in err and 'truncated or corrupt' in err and 'Traceback' not in err
    assert not (tmp_path / 'exports').exists() or list((tmp_path / 'exports').iterdir()) == []

    out.mkdir(parents=True)
    (out / 'keep.txt').write_text('mine')
    assert export.main([str(run / 'checkpoints' / 'last.safetensors'), str(out)]) == 1
    assert 'already exists' in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ['keep.txt']
    assert export.main(['runs/nothing-here', str(tmp_path / 'x')]) == 1
    assert 'no such training checkpoint file or run folder' in capsys.readouterr().err


class _RecordingApi:
    """Stands in for huggingface_hub.HfApi: records what would be sent."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(('create_repo', repo_id, kwargs))

    def create_commit(self, **kwargs):
        self.calls.append(('create_commit', kwargs['repo_id'], kwargs))
        return 'https://hub.invalid/commit/1'


def test_push_checks_the_folder_and_uploads_only_its_three_files(hub, tmp_path, capsys):
    folder = export_model(_trained(), tmp_path / 'export', Provenance('Test.'), repo_id='hubtest/pushed')
    (folder / 'notes.txt').write_text('not for upload')

    assert push_to_hub.main([str(folder), 'hubtest/pushed', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'dry run' in out and all(name in out for name in ('config.json', 'model.safetensors', 'README.md'))

    assert push_to_hub.main([str(folder), 'hubtest/other', '--dry-run']) == 1
    assert "does not show loading from 'hf-hub:hubtest/other'" in capsys.readouterr().err

    api = _RecordingApi()
    result = push_folder(folder, 'hubtest/pushed', private=True, api=api)
    assert result.commit_url == 'https://hub.invalid/commit/1'
    assert api.calls[0] == ('create_repo', 'hubtest/pushed', {'repo_type': 'model', 'private': True, 'exist_ok': True})
    upload = {op.path_in_repo: op for op in api.calls[1][2]['operations']}
    assert sorted(upload) == ['README.md', 'config.json', 'model.safetensors']
    assert upload['model.safetensors'].path_or_fileobj == str(folder / 'model.safetensors')
    assert upload['README.md'].path_or_fileobj == (folder / 'README.md').read_bytes()


def test_push_uploads_a_card_written_without_a_repo_loading_from_the_repo(hub, tmp_path):
    folder = export_model(_trained(), tmp_path / 'export', Provenance('Test.'))  # as the shipped weights
    card = (folder / 'README.md').read_text()
    assert 'local-dir:PATH/TO/THIS/FOLDER' in card and 'hf-hub:' not in card
    api = _RecordingApi()
    push_folder(folder, 'hubtest/shipped', api=api)
    upload = {op.path_in_repo: op for op in api.calls[1][2]['operations']}
    uploaded = upload['README.md'].path_or_fileobj.decode()
    assert "timm.create_model('hf-hub:hubtest/shipped'" in uploaded and 'PATH/TO/THIS/FOLDER' not in uploaded
    assert (folder / 'README.md').read_text() == card  # the folder is left as it was


def test_push_refuses_a_folder_whose_weights_do_not_load(hub, tmp_path, capsys):
    folder = export_model(_trained(), tmp_path / 'export', Provenance('Test.'), repo_id='hubtest/pushed')
    config = json.loads((folder / 'config.json').read_text())
    config['model_args']['embed_dim'] = 64
    (folder / 'config.json').write_text(json.dumps(config))
    api = _RecordingApi()
    assert push_to_hub.main([str(folder), 'hubtest/pushed']) == 1
    err = capsys.readouterr().err
    assert str(folder / 'model.safetensors') in err and 'shapes differ' in err
    (folder / 'README.md').unlink()
    with pytest.raises(ExportFolderError, match=r'missing README\.md'):
        push_folder(folder, 'hubtest/pushed', api=api)
    assert api.calls == []
