"""Fine-tuning with frozen first blocks (--freeze-blocks) and from their cached outputs (--cache-frozen)."""
import json

import numpy as np
import pytest
import timm
import torch

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.data import DigitsDataset, SplitData
from tl_models.data.feature_cache import CachedTokenLoader, load_cached_split, prefix_tokens
from tl_models.train import TrainConfig, TrainConfigError, train
from tl_models.train.frozen import PartlyFrozen, cache_depth, freeze_blocks

from conftest import randomize_

CACHED = dict(freeze_blocks=2, cache_frozen=True, scale=[1.0, 1.0], ratio=[1.0, 1.0], epochs=2, warmup_epochs=1)


def _model(name: str, **kwargs) -> torch.nn.Module:
    return randomize_(timm.create_model(name, num_classes=10, **kwargs), std=0.1).eval()


@pytest.mark.parametrize('name, kwargs', [
    ('vit_nano_patch4_32', {}),
    ('tl_vit_nano_patch4_32_8at2', {}),
    ('tl_vit_nano_patch4_32_8at1', {}),                    # TokenLearner before the frozen part ends
    ('tl_vit_nano_patch4_32_8at2_fuse', {}),
    ('tl_vit_small_patch14_dinov2_8at6', dict(img_size=28, depth=8)),   # class token and layer scale
])
def test_trunk_on_cached_tokens_computes_what_the_model_computes_on_images(name, kwargs):
    model = _model(name, **kwargs)
    freeze = 2 if 'nano' in name else 6
    depth = cache_depth(model, freeze)
    images = torch.randn(3, 3, *model.pretrained_cfg['input_size'][1:]) if not kwargs else torch.randn(3, 3, 28, 28)
    trunk = PartlyFrozen(model, freeze, start=depth).eval()
    with torch.no_grad():
        tokens = prefix_tokens(model, images, depth)  # [B, P+N, C]
        assert tokens.shape[1] == model.num_prefix_tokens + model.patch_embed.num_patches
        torch.testing.assert_close(trunk(tokens), model(images), rtol=1e-5, atol=1e-5)


def test_cache_depth_stops_at_the_tokenlearner():
    assert cache_depth(timm.create_model('tl_vit_nano_patch4_32_8at1'), 2) == 1
    assert cache_depth(timm.create_model('tl_vit_nano_patch4_32_8at2'), 2) == 2
    assert cache_depth(timm.create_model('vit_nano_patch4_32'), 3) == 3


def test_forward_features_from_refuses_a_block_after_the_tokenlearner():
    model = timm.create_model('tl_vit_nano_patch4_32_8at2')
    with pytest.raises(ValueError, match=r'block_index must be in 0\.\.2'):
        model.forward_features_from(torch.zeros(1, 64, 128), 3)


def test_frozen_blocks_get_no_gradients_and_stay_in_eval_mode():
    model = timm.create_model('tl_vit_nano_patch4_32_8at2', drop_path_rate=0.5)
    freeze_blocks(model, 2)
    wrapped = PartlyFrozen(model, 2).train()
    assert not model.blocks[1].training and model.blocks[2].training and not model.patch_embed.training
    wrapped(torch.randn(2, 3, 32, 32)).sum().backward()
    frozen = [n for n, p in model.named_parameters() if n.startswith(('blocks.0.', 'blocks.1.', 'patch_embed',
                                                                        'pos_embed'))]
    assert frozen and all(model.get_parameter(n).grad is None for n in frozen)
    assert model.blocks[2].attn.qkv.weight.grad is not None and model.token_learners['2'].norm.weight.grad is not None


def test_freeze_blocks_needs_a_block_left_to_train():
    with pytest.raises(TrainConfigError, match=r'expects a number of blocks in 1\.\.3'):
        freeze_blocks(timm.create_model('vit_nano_patch4_32'), 4)


def _digits_split(split='train'):
    dataset = DigitsDataset(split)
    return SplitData(dataset, dataset.classes, 'digits')


def test_cache_holds_both_views_and_is_reused(tmp_path):
    model = _model('vit_nano_patch4_32', img_size=16)
    config = TrainConfig(hflip=0.5, batch_size=100, **{k: v for k, v in CACHED.items() if k != 'epochs'})
    data_config = timm.data.resolve_input_data_config(model)
    cpu = torch.device('cpu')
    cached = load_cached_split(model, _digits_split('validation'), 2, data_config, config, tmp_path, cpu, True)
    assert len(cached.views) == 2 and cached.views[0].shape == (360, 16, 128) and cached.views[0].dtype == np.float16
    files = sorted(tmp_path.glob('*.npy'))
    stamps = [f.stat().st_mtime_ns for f in files]
    loader = timm.data.create_loader(DigitsDataset('validation'), input_size=data_config['input_size'], batch_size=4,
                                     is_training=False, use_prefetcher=False, mean=data_config['mean'],
                                     std=data_config['std'], crop_pct=data_config['crop_pct'],
                                     interpolation=data_config['interpolation'])
    images, _ = next(iter(loader))
    with torch.no_grad():
        for view, batch in enumerate((images, images.flip(-1))):
            expected = prefix_tokens(model, batch, 2)
            torch.testing.assert_close(torch.from_numpy(cached.views[view][:4].astype(np.float32)), expected,
                                       atol=2e-3, rtol=2e-3)
    again = load_cached_split(model, _digits_split('validation'), 2, data_config, config, tmp_path, cpu, True)
    assert [f.stat().st_mtime_ns for f in files] == stamps and again.views[0].shape == cached.views[0].shape
    assert json.loads(next(tmp_path.glob('*.json')).read_text())['depth'] == 2
    with torch.no_grad():  # other frozen weights: another file
        model.blocks[0].attn.proj.weight.add_(1.0)
    load_cached_split(model, _digits_split('validation'), 2, data_config, config, tmp_path, cpu, True)
    assert len(list(tmp_path.glob('*.npy'))) == 4


def test_only_the_views_asked_for_are_computed(tmp_path):
    model = _model('vit_nano_patch4_32', img_size=16)
    config = TrainConfig(hflip=0.5, batch_size=100, **{k: v for k, v in CACHED.items() if k != 'epochs'})
    data_config, cpu = timm.data.resolve_input_data_config(model), torch.device('cpu')
    held_out = load_cached_split(model, _digits_split('validation'), 2, data_config, config, tmp_path, cpu, False)
    (plain,) = tmp_path.glob('*-view0.npy')
    assert len(held_out.views) == 1 and not list(tmp_path.glob('*-view1.npy'))  # evaluation reads no flips
    stamp = plain.stat().st_mtime_ns
    flipped = load_cached_split(model, _digits_split('validation'), 2, data_config, config, tmp_path, cpu, True)
    assert len(flipped.views) == 2 and plain.stat().st_mtime_ns == stamp  # only the missing view was computed


def test_cached_loader_flips_per_item_and_epoch():
    views = [np.zeros((10, 2, 3), np.float16), np.ones((10, 2, 3), np.float16)]
    cached = type('Cached', (), dict(views=views, targets=torch.arange(10), indices=np.arange(10)))
    loader = CachedTokenLoader(cached, batch_size=5, is_training=True, seed=0, hflip=0.5)
    flips = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        flips.append(torch.cat([tokens[:, 0, 0] for tokens, _ in loader]))
    assert 0 < flips[0].sum() < 10 and not torch.equal(flips[0], flips[1])
    evaluation = CachedTokenLoader(cached, batch_size=5, is_training=False, seed=0, hflip=0.5)
    assert all(tokens.sum() == 0 for tokens, _ in evaluation)  # evaluation reads the unflipped images


@pytest.mark.slow
def test_cached_run_trains_exports_a_model_that_takes_images_and_shares_its_cache(tmp_path):
    cache = tmp_path / 'cache'
    summary = train(TrainConfig(output=str(tmp_path / 'a'), cache_dir=str(cache), **CACHED))
    files = sorted(p.name for p in cache.glob('*.npy'))
    assert len(files) == 2  # train and held-out digits, one view each (no flip)
    again = train(TrainConfig(output=str(tmp_path / 'b'), cache_dir=str(cache), **CACHED))
    assert sorted(p.name for p in cache.glob('*.npy')) == files and again['last_top1'] == summary['last_top1']
    model = timm.create_model(f"local-dir:{tmp_path / 'a' / 'model'}", pretrained=True)
    from tl_models.evaluate import validate
    assert validate(f"local-dir:{tmp_path / 'a' / 'model'}", TrainConfig())['top1'] == pytest.approx(
        summary['last_top1'], abs=0.6)  # end to end on images, against the cached (float16) evaluation
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 10)


@pytest.mark.parametrize('options, message', [
    (dict(freeze_blocks=0), 'set --freeze-blocks K too'),
    (dict(mixup=0.2), '--mixup needs the images'),
    (dict(scale=[0.8, 1.0]), 'set --scale 1 1 and --ratio 1 1'),
    (dict(model_ema=True), 'does not work with --model-ema'),
    (dict(model='tl_vit_nano_patch4_32_8at2', img_size=16, freeze_blocks=4), r'in 1\.\.3 \(TokenLearner'),
])
def test_cache_refuses_what_it_cannot_honour(tmp_path, options, message):
    with pytest.raises(TrainConfigError, match=message):
        train(TrainConfig(output=str(tmp_path / 'run'), **dict(CACHED, **options)))


@pytest.mark.slow
def test_distillation_from_cached_outputs_needs_the_teachers_frozen_blocks(tmp_path):
    teacher = tmp_path / 'teacher'
    train(TrainConfig(model='vit_nano_patch4_32', img_size=16, output=str(teacher), cache_dir=str(tmp_path / 'c'),
                      **CACHED))
    student = train(TrainConfig(model='tl_vit_nano_patch4_32_8at2', img_size=16, distill_from=str(teacher),
                                output=str(tmp_path / 'student'), cache_dir=str(tmp_path / 'c'), **CACHED))
    assert student['teacher_seconds'] > 0 and len(list((tmp_path / 'c').glob('*.npy'))) == 2  # one shared cache
    with pytest.raises(TrainConfigError, match=r"cannot read the student's cached outputs of blocks 0\.\.1"):
        train(TrainConfig(model='tl_vit_nano_patch4_32_8at2', img_size=16, distill_from=str(teacher),
                          distill_init=False, output=str(tmp_path / 'other'), **CACHED))
