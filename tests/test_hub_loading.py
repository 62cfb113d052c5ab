"""Pretrained weights through the hub protocol (a loopback server): backbone tags, our own weights, round trips.

Nothing here touches the network: huggingface_hub talks to the server of ``hub_server.py``, with its
cache in a temporary HF_HOME. The models are shipped variants (no test variant is registered here).
"""
import json
import logging

import pytest
import timm
import torch
from safetensors.torch import save, save_file
from timm.layers import resample_abs_pos_embed, resample_patch_embed

import tl_models
from tl_models.hub import Provenance, export_model, list_pretrained_tags
from tl_models.models.adapt import checkpoint_filter_fn

from hub_server import (
    SMALL,
    TINY_SOURCE_REPO,
    TINY_TAG,
    folder_files,
    plain_vit,
    randomize,
    small_tl,
    use_hub,
)

LEARNER_PREFIXES = ('token_learners.', 'token_fusers.')



@pytest.fixture(scope='module')
def tiny_source():
    """A random ViT-Ti/16 (timm's architecture of the tiny tags' source), as bytes of model.safetensors."""
    model = randomize(timm.create_model('vit_tiny_patch16_224', weight_init='skip'))  # skip: randomized anyway
    return model.state_dict(), save(model.state_dict())


def _plain(value):
    """Lists (from JSON / YAML) and tuples (timm) compare equal."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _file_backbone(tmp_path, model):
    path = tmp_path / 'backbone.safetensors'
    save_file(model.state_dict(), str(path))
    return dict(file=str(path), num_classes=model.num_classes)


def _small_pair(overlay, **kwargs):
    """The small model fresh and pretrained from ``overlay``, with the same seed: what it did not load is equal."""
    torch.manual_seed(1)
    fresh = small_tl(**kwargs).state_dict()
    torch.manual_seed(1)
    return fresh, small_tl(pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)


def test_shipped_backbone_tag_downloads_and_maps_every_shared_parameter(hub, tiny_source, caplog):
    source, data = tiny_source
    hub.add_repo(TINY_SOURCE_REPO, {'model.safetensors': data, 'config.json': b'{}'})
    skip_init = dict(weight_init='skip')  # torch's default initialisation: spares timm's (slow) one of ViT-Ti
    torch.manual_seed(1)
    fresh = timm.create_model(TINY_TAG, **skip_init).state_dict()
    torch.manual_seed(1)
    with caplog.at_level(logging.WARNING, logger='tl_models'):
        model = timm.create_model(TINY_TAG, pretrained=True, **skip_init)
    loaded = model.state_dict()

    assert 'cls_token' not in loaded  # the variant has no class token: dropped, with its position embedding
    assert torch.equal(loaded['pos_embed'], source['pos_embed'][:, 1:])
    learner_keys = [k for k in loaded if k.startswith(LEARNER_PREFIXES)]
    assert learner_keys
    for key, value in loaded.items():
        if key in learner_keys:
            assert torch.equal(value, fresh[key]), f'{key} should keep its fresh initialisation'
        elif key.startswith('fc_norm.'):  # the variant pools, then normalises: the source's final norm
            assert torch.equal(value, source['norm.' + key[len('fc_norm.'):]]), key
        elif key != 'pos_embed':
            assert torch.equal(value, source[key]), f'{key} should come from the backbone'

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f'hf-hub:{TINY_SOURCE_REPO}' in m and ', '.join(learner_keys) in m for m in warnings), warnings
    assert ('HEAD', f'/{TINY_SOURCE_REPO}/resolve/main/model.safetensors') in hub.requests
    assert model.pretrained_cfg['hf_hub_id'] == TINY_SOURCE_REPO
    assert model.pretrained_cfg['file'].endswith('model.safetensors')


@pytest.mark.parametrize('img_size, patch_size', [(48, 8), (32, 4)], ids=['6x6-grid', '4px-patches'])
def test_backbone_embeddings_are_resampled_to_the_model(tmp_path, img_size, patch_size):
    backbone = plain_vit(img_size=img_size, patch_size=patch_size)
    _, model = _small_pair(_file_backbone(tmp_path, backbone))
    source, loaded = backbone.state_dict(), model.state_dict()
    old_grid = (img_size // patch_size,) * 2
    assert tuple(model.patch_embed.grid_size) == (4, 4) != old_grid

    expected_pos = resample_abs_pos_embed(source['pos_embed'][:, 1:], new_size=(4, 4), old_size=old_grid,
                                          num_prefix_tokens=0)
    torch.testing.assert_close(loaded['pos_embed'], expected_pos)
    expected_patch = source['patch_embed.proj.weight']
    if patch_size != 8:
        expected_patch = resample_patch_embed(expected_patch, [8, 8])
    torch.testing.assert_close(loaded['patch_embed.proj.weight'], expected_patch)
    assert torch.equal(loaded['blocks.1.mlp.fc2.weight'], source['blocks.1.mlp.fc2.weight'])
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_class_token_kept_when_the_model_has_one(tmp_path):
    backbone = plain_vit()
    _, model = _small_pair(_file_backbone(tmp_path, backbone), class_token=True, global_pool='token')
    loaded, source = model.state_dict(), backbone.state_dict()
    assert torch.equal(loaded['cls_token'], source['cls_token'])
    assert torch.equal(loaded['pos_embed'], source['pos_embed'])
    assert torch.equal(loaded['norm.weight'], source['norm.weight'])  # pooled by the token: norm stays norm


@pytest.mark.parametrize('use_v11', [True, False], ids=['v1.1', 'v1'])
def test_backbone_into_a_tokenfuser_model_keeps_every_new_module_fresh(tmp_path, use_v11):
    backbone = plain_vit()
    fresh, model = _small_pair(_file_backbone(tmp_path, backbone), use_tokenfuse=True, use_v11=use_v11)
    loaded = model.state_dict()
    new = [k for k in loaded if k.startswith(LEARNER_PREFIXES)]
    assert any(k.startswith('token_fusers.') for k in new)
    assert all(torch.equal(loaded[k], fresh[k]) for k in new)
    assert torch.equal(loaded['blocks.0.attn.qkv.weight'], backbone.state_dict()['blocks.0.attn.qkv.weight'])


def test_head_kept_for_the_same_classes_and_reset_for_others(tmp_path, caplog):
    backbone = plain_vit(num_classes=10)
    overlay = _file_backbone(tmp_path, backbone)  # the cfg says 10 classes, as the weights have
    _, same = _small_pair(overlay, num_classes=10)
    assert torch.equal(same.head.weight, backbone.head.weight)

    with caplog.at_level(logging.WARNING, logger='tl_models'):
        fresh, other = _small_pair(overlay, num_classes=3)
    assert other.head.weight.shape == (3, 32)
    assert torch.equal(other.head.weight, fresh['head.weight'])
    assert torch.equal(other.blocks[1].attn.proj.weight, backbone.blocks[1].attn.proj.weight)
    assert any('head.weight, head.bias' in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_other_input_channels_are_adapted_by_timm(tmp_path):
    backbone = plain_vit()
    _, model = _small_pair(_file_backbone(tmp_path, backbone), in_chans=1)
    torch.testing.assert_close(model.patch_embed.proj.weight,
                               backbone.patch_embed.proj.weight.sum(dim=1, keepdim=True))


def test_features_only_backbone(tmp_path):
    backbone = plain_vit()
    _, model = _small_pair(_file_backbone(tmp_path, backbone), features_only=True)
    assert torch.equal(model.model.blocks[0].attn.qkv.weight, backbone.blocks[0].attn.qkv.weight)
    with torch.no_grad():
        features = model(torch.randn(1, 3, 32, 32))
    assert [f.shape for f in features] == [(1, 32, 4, 4)]  # block 0: block 1 outputs learned tokens, with no grid


def test_shipped_backbone_tags_keep_the_source_checkpoints_preprocessing():
    checked = 0
    for tag in list_pretrained_tags():
        if tag.hf_hub_id and tag.hf_hub_id.startswith('timm/'):
            source = timm.models.get_pretrained_cfg(tag.hf_hub_id[len('timm/'):])
            ours = timm.models.get_pretrained_cfg(tag.name)
            for key in ('input_size', 'mean', 'std', 'crop_pct', 'interpolation', 'num_classes'):
                assert _plain(getattr(ours, key)) == _plain(getattr(source, key)), (tag.name, key)
            assert 'Initialisation for fine-tuning' in ours.description, tag.name
            checked += 1
    assert checked >= 12


def _shipped_backbone_tags():
    """One shipped tag per source checkpoint, and every tiny variant (v1, TokenFuser): what the mapping varies by."""
    chosen, sources = [], set()
    for tag in (t for t in list_pretrained_tags() if t.hf_hub_id):
        if tag.hf_hub_id not in sources or tag.name.startswith('tl_vit_tiny_'):
            chosen.append(tag)
            sources.add(tag.hf_hub_id)
    return chosen


@pytest.mark.parametrize('tag', _shipped_backbone_tags(), ids=lambda t: t.name)
def test_shipped_backbone_tags_fit_their_source_architecture(tag, caplog):
    """The real timm ViT of each tag, built without weights (meta tensors), maps onto the variant completely."""
    with torch.device('meta'):
        source = timm.create_model(tag.hf_hub_id.partition('/')[2])
        model = timm.create_model(tag.name)
    own = model.state_dict()
    with caplog.at_level(logging.WARNING, logger='tl_models'):
        mapped = checkpoint_filter_fn(source.state_dict(), model)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in own.items()}
    new = [k for k in own if k.startswith(LEARNER_PREFIXES)]
    assert [r.getMessage() for r in caplog.records] == [
        f'hf-hub:{tag.hf_hub_id} is a plain ViT backbone: {len(new)} tensors are new and keep their fresh '
        f"initialisation (fine-tune before use): {', '.join(new)}"]


def test_a_tag_on_a_repo_of_our_own_weights_loads_exactly_and_again_offline(hub, tmp_path, monkeypatch):
    """A tag names a repo; holding a TokenLearner model (config.json + model.safetensors), it loads strictly.

    The shipped tiny tag's repo serves such a model here, as a repo of ours would behind a tag of ours.
    """
    skip_init = dict(weight_init='skip')  # every weight is loaded: spare timm's (slow) initialisation of ViT-Ti
    trained = randomize(timm.create_model(SMALL, **skip_init))
    folder = export_model(trained, tmp_path / 'export', Provenance('Test weights.'), repo_id=TINY_SOURCE_REPO)
    hub.add_repo(TINY_SOURCE_REPO, folder_files(folder))
    expected = trained.state_dict()

    def assert_exact(model):
        loaded = model.state_dict()
        assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)

    assert_exact(timm.create_model(TINY_TAG, pretrained=True, **skip_init))
    requests = len(hub.requests)
    use_hub(monkeypatch, hub.endpoint, tmp_path / 'hf_home', offline=True)
    assert_exact(timm.create_model(TINY_TAG, pretrained=True, **skip_init))
    assert len(hub.requests) == requests, 'an offline load must not reach the hub'


def test_export_then_hf_hub_and_local_dir_give_the_same_outputs(hub, tmp_path):
    trained = randomize(small_tl(num_classes=5, use_tokenfuse=True, use_v11=False))
    folder = export_model(trained, tmp_path / 'export', Provenance('Test weights.'), repo_id='hubtest/exported')
    config = json.loads((folder / 'config.json').read_text())
    assert config['architecture'] == SMALL and config['num_classes'] == 5
    assert config['model_args']['use_tokenfuse'] is True and config['model_args']['use_v11'] is False
    assert config['model_args']['embed_dim'] == 32 and config['pretrained_cfg']['input_size'] == [3, 32, 32]
    assert 'import tl_models' in config['tl_models']['usage']
    hub.add_repo('hubtest/exported', folder_files(folder))

    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = trained(x)
        from_hub = timm.create_model('hf-hub:hubtest/exported', pretrained=True).eval()
        from_dir = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
        assert torch.equal(from_hub(x), expected)
        assert torch.equal(from_dir(x), expected)
    for model in (from_hub, from_dir):
        for key in ('mean', 'std', 'crop_pct', 'interpolation'):
            assert _plain(model.pretrained_cfg[key]) == _plain(trained.pretrained_cfg[key]), key
        assert _plain(model.pretrained_cfg['input_size']) == (3, 32, 32)
    assert from_hub.pretrained_cfg['hf_hub_id'] == 'hubtest/exported'


def test_export_after_reset_classifier_keeps_the_new_head(tmp_path):
    model = randomize(small_tl(num_classes=10))
    model.reset_classifier(5)
    randomize(model)
    folder = export_model(model, tmp_path / 'export', Provenance('Test weights.'))
    loaded = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    assert loaded.num_classes == 5
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_no_test_variant_is_registered():
    """These tests use shipped variants only: the registry other test modules check stays as shipped."""
    assert not [n for n in tl_models.list_variants() if n.startswith('tl_hubtest')]
