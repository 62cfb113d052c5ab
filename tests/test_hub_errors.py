"""Bad weights give errors that name the file and the keys: truncated, corrupt, partial, malicious, mismatched.

Served by the loopback hub of ``hub_server.py`` or read from local files; no network.
"""
import hashlib
import re

import pytest
import timm
import torch
from safetensors.torch import save, save_file

from tl_models.hub import (
    HubDownloadError,
    NoPretrainedWeightsError,
    Provenance,
    WeightFileError,
    WeightsUnavailableError,
    check_weight_file,
    export_model,
)
from tl_models.models.adapt import CheckpointMismatchError
from tl_models.weights.checkpoint import save_checkpoint

from hub_server import TINY_SOURCE_REPO, TINY_TAG, folder_files, plain_vit, small_tl, use_hub

BACKBONE_REPO = 'hubtest/vit-backbone'
FROM_BACKBONE_REPO = dict(hf_hub_id=BACKBONE_REPO)  # what a tag pointing at that repo gives



def _from_backbone_repo(**kwargs):
    return small_tl(pretrained=True, pretrained_cfg_overlay=FROM_BACKBONE_REPO, **kwargs)


def _from_file(path, **kwargs):
    return small_tl(pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)


def _cache_files(tmp_path, pattern='*'):
    return sorted(p for p in (tmp_path / 'hf_home' / 'hub').rglob(pattern) if p.is_file())


class _WritesAFile:
    """Pickles to a call of exec() that creates ``marker``: what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("pwned")',)


@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'legacy'])
def test_a_pickle_that_carries_code_is_refused_and_never_runs(hub, tmp_path, zip_format):
    marker = tmp_path / 'pwned'
    checkpoint = tmp_path / 'pytorch_model.bin'
    state = plain_vit().state_dict()
    torch.save({'state_dict': state, 'extra': _WritesAFile(marker)}, checkpoint,
               _use_new_zipfile_serialization=zip_format)
    hub.add_repo(BACKBONE_REPO, {'pytorch_model.bin': checkpoint.read_bytes()})  # no safetensors in the repo

    with pytest.raises(WeightFileError) as error:
        _from_backbone_repo()
    assert 'pytorch_model.bin' in str(error.value) and str(tmp_path / 'hf_home') in str(error.value)
    assert 'refused' in str(error.value)
    if zip_format:
        assert 'would run code (builtins.exec)' in str(error.value)
    assert not marker.exists()

    torch.load(checkpoint, weights_only=False)  # the payload is live: an unsafe load would have run it
    assert marker.read_text() == 'pwned'


def test_a_plain_pickle_checkpoint_loads_when_there_is_no_safetensors(hub, tmp_path):
    source = plain_vit()
    path = tmp_path / 'pytorch_model.bin'
    torch.save({'model': source.state_dict(), 'epoch': 3}, path)
    hub.add_repo(BACKBONE_REPO, {'pytorch_model.bin': path.read_bytes()})
    model = _from_backbone_repo()
    assert torch.equal(model.blocks[1].mlp.fc1.weight, source.blocks[1].mlp.fc1.weight)
    assert model.pretrained_cfg['file'].endswith('pytorch_model.bin')


def test_safetensors_are_preferred_to_a_pickle(hub, tmp_path):
    safe, pickled = plain_vit(), plain_vit()
    path = tmp_path / 'pytorch_model.bin'
    torch.save(pickled.state_dict(), path)
    hub.add_repo(BACKBONE_REPO, {'pytorch_model.bin': path.read_bytes(), 'model.safetensors': save(safe.state_dict())})
    start = len(hub.requests)
    model = _from_backbone_repo()
    assert torch.equal(model.blocks[0].attn.qkv.weight, safe.blocks[0].attn.qkv.weight)
    requested = [path for _, path in hub.requests[start:]]
    assert any(p.endswith('/model.safetensors') for p in requested)
    assert not any(p.endswith('/pytorch_model.bin') for p in requested)


def test_a_truncated_file_on_the_hub_is_named(hub):
    data = save(plain_vit().state_dict())
    hub.add_repo(BACKBONE_REPO, {'model.safetensors': data[:len(data) // 2]})
    with pytest.raises(WeightFileError, match='truncated or corrupt') as error:
        _from_backbone_repo()
    assert 'models--hubtest--vit-backbone' in str(error.value) and 'model.safetensors' in str(error.value)


def test_a_partial_download_is_never_kept_or_used(hub, tmp_path):
    source = plain_vit()
    hub.add_repo(BACKBONE_REPO, {'model.safetensors': save(source.state_dict())})
    hub.break_transfer(BACKBONE_REPO, 'model.safetensors', 'short')
    with pytest.raises(HubDownloadError, match=f'hf-hub:{BACKBONE_REPO}: downloading model.safetensors failed'):
        _from_backbone_repo()
    assert _cache_files(tmp_path, '*.incomplete') == []
    assert not [p for p in _cache_files(tmp_path) if p.parent.name == 'blobs']

    hub.break_transfer(BACKBONE_REPO, 'model.safetensors', None)
    model = _from_backbone_repo()
    assert torch.equal(model.blocks[0].norm1.weight, source.blocks[0].norm1.weight)


def test_a_download_corrupted_in_transit_fails_the_hub_checksum(hub, tmp_path):
    source = plain_vit()
    data = save(source.state_dict())
    hub.add_repo(BACKBONE_REPO, {'model.safetensors': data})
    hub.break_transfer(BACKBONE_REPO, 'model.safetensors', 'corrupt')  # same size, last byte flipped
    with pytest.raises(WeightFileError, match='corrupt download') as error:
        _from_backbone_repo()
    blob = tmp_path / 'hf_home' / 'hub' / 'models--hubtest--vit-backbone' / 'blobs' / hashlib.sha256(data).hexdigest()
    assert f'Delete {blob}' in str(error.value)

    hub.break_transfer(BACKBONE_REPO, 'model.safetensors', None)
    with pytest.raises(WeightFileError, match='corrupt download'):  # the damaged cache file is not used either
        _from_backbone_repo()
    blob.unlink()  # what the message says to do
    model = _from_backbone_repo()
    assert torch.equal(model.blocks[0].norm1.weight, source.blocks[0].norm1.weight)


def test_a_truncated_local_dir_file_is_named(hub, tmp_path):
    folder = export_model(small_tl(), tmp_path / 'export', Provenance('Test.'))
    weights = folder / 'model.safetensors'
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(WeightFileError, match='truncated or corrupt') as error:
        timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert str(weights) in str(error.value)


def test_another_architecture_names_the_file_and_the_keys(tmp_path):
    path = tmp_path / 'resnet.safetensors'
    resnet = timm.create_model('test_resnet').state_dict()
    save_file(resnet, str(path))
    with pytest.raises(CheckpointMismatchError) as error:
        _from_file(path)
    message = str(error.value)
    assert message.startswith(f'{path}: ')  # a file given by the caller: not the tag's hub repo
    assert 'does not have' in message and sorted(k for k in resnet if not k.startswith('head'))[0] in message


def test_mismatched_shapes_name_the_file_and_the_keys(tmp_path):
    path = tmp_path / 'wide.safetensors'
    save_file(plain_vit(embed_dim=48).state_dict(), str(path))
    with pytest.raises(CheckpointMismatchError, match='shapes differ') as error:
        _from_file(path)
    assert str(path) in str(error.value)
    assert 'blocks.0.attn.qkv.weight (144, 48) vs model (96, 32)' in str(error.value)
    assert 'num_classes' not in str(error.value)  # the classes agree: no hint about them


def test_own_weights_for_other_classes_than_the_tag_says(hub, tmp_path):
    trained = small_tl(num_classes=5)
    folder = export_model(trained, tmp_path / 'export', Provenance('Test.'))
    hub.add_repo('hubtest/tl-trained', folder_files(folder))
    with pytest.raises(CheckpointMismatchError) as error:  # a tag saying num_classes: 10
        small_tl(pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id='hubtest/tl-trained', num_classes=10))
    message = str(error.value)
    assert 'hf-hub:hubtest/tl-trained' in message and 'head.weight (5, 32) vs model (10, 32)' in message
    assert "the weights have 5 classes: set the tag's num_classes to that" in message
    fixed = small_tl(pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id='hubtest/tl-trained', num_classes=5))
    assert torch.equal(fixed.head.weight, trained.head.weight)


def test_own_weights_missing_a_tokenlearner_parameter(tmp_path):
    state = small_tl().state_dict()
    del state['token_learners.1.norm.weight']
    path = tmp_path / 'partial.safetensors'
    save_file(state, str(path))
    expected = re.escape('missing from the checkpoint: token_learners.1.norm.weight')
    with pytest.raises(CheckpointMismatchError, match=expected):
        _from_file(path)


def test_a_training_checkpoint_is_not_taken_for_weights(tmp_path):
    path = tmp_path / 'last.safetensors'
    save_checkpoint(path, model=small_tl(), model_name='tl_vit_tiny_patch16_224_8at6', model_args={}, epoch=1)
    with pytest.raises(WeightFileError, match='training checkpoint') as error:
        _from_file(path)
    assert 'tl-export' in str(error.value) and 'tl_models.weights.model_from_checkpoint' in str(error.value)


def test_a_state_dict_is_expected_in_a_pickle(tmp_path):
    path = tmp_path / 'numbers.pth'
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightFileError, match='expected a state dict'):
        check_weight_file(path)


def test_missing_repo_and_missing_weights_are_named(hub):
    with pytest.raises(HubDownloadError, match='hf-hub:hubtest/nowhere: no such repo'):
        small_tl(pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id='hubtest/nowhere'))
    hub.add_repo(BACKBONE_REPO, {'config.json': b'{}'})
    with pytest.raises(HubDownloadError, match=re.escape('no weight file (model.safetensors or pytorch_model.bin)')):
        _from_backbone_repo()


def test_offline_with_nothing_cached_says_how_to_get_the_weights(hub, tmp_path, monkeypatch):
    use_hub(monkeypatch, hub.endpoint, tmp_path / 'hf_home', offline=True)
    requests = len(hub.requests)
    with pytest.raises(WeightsUnavailableError) as error:
        timm.create_model(TINY_TAG, pretrained=True)
    message = str(error.value)
    assert f'hf-hub:{TINY_SOURCE_REPO}: model.safetensors or pytorch_model.bin not in the cache' in message
    assert 'HF_HUB_OFFLINE' in message and str(tmp_path / 'hf_home' / 'hub') in message
    assert f'tl-download {TINY_TAG}' in message and 'local-dir:' in message

    with pytest.raises(WeightsUnavailableError) as error:  # another repo than the tag's: the hint names it
        _from_backbone_repo()
    assert f'tl-download hf-hub:{BACKBONE_REPO}' in str(error.value)
    assert len(hub.requests) == requests


def test_a_model_without_weights_points_at_its_pretrained_tags():
    with pytest.raises(NoPretrainedWeightsError, match=re.escape(f'load one of its pretrained tags ({TINY_TAG}')):
        small_tl(pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id=None))
