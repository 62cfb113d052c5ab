"""Preloaded data: crops as torchvision samples them, evaluation inputs equal to timm's, sharding, errors."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_input_data_config

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.data import build_loader, holdout_indices, load_split, preload_split
from tl_models.data.preload import PreloadedImages, PreloadedLoader, preload_images, random_resized_crop_boxes
from tl_models.runtime import Distributed
from tl_models.train import TrainConfig, TrainConfigError

CPU = Distributed(torch.device('cpu'))
DATA_CONFIG = dict(input_size=(3, 8, 8), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), crop_pct=1.0,
                   interpolation='bilinear')


def _photos(root: Path, size=(32, 32), per_class=6, classes=('cat', 'dog')) -> Path:
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f'{i}.png')
    return root


def _images(count=6, size=8) -> PreloadedImages:
    """Distinct images; each one's target is its index."""
    pixels = torch.arange(count * size * size * 3, dtype=torch.int64).reshape(count, size, size, 3) % 251
    return PreloadedImages(pixels.to(torch.uint8), torch.arange(count))


def test_crop_boxes_fit_the_image_and_follow_scale_and_ratio():
    generator = torch.Generator().manual_seed(0)
    boxes = random_resized_crop_boxes(4000, 32, 24, (0.2, 0.6), (0.5, 2.0), generator=generator)
    top, left, height, width = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + height <= 32 + 1e-4).all() and (left + width <= 24 + 1e-4).all()
    area = height * width / (32 * 24)
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 0.6 + 1e-5
    ratio = width / height
    assert ratio.min() >= 0.5 - 1e-5 and ratio.max() <= 2.0 + 1e-5
    square = random_resized_crop_boxes(4000, 32, 32, (0.2, 0.6), (0.5, 2.0), generator=generator)
    assert torch.log(square[:, 3] / square[:, 2]).mean().abs() < 0.05  # log-uniform, centred on 1


def test_a_crop_that_never_fits_falls_back_to_the_whole_image():
    boxes = random_resized_crop_boxes(5, 10, 10, (1.0, 1.0), (3.0, 3.0))
    assert torch.equal(boxes, torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(5, 1))


def test_evaluation_inputs_equal_timms_eval_transform(tmp_path):
    data = _photos(tmp_path / 'data')
    config = TrainConfig(model='vit_nano_patch4_32', data_dir=str(data), val_split='test', preload=True, batch_size=5)
    model = timm.create_model('vit_nano_patch4_32', num_classes=2)
    data_config = resolve_input_data_config(model)
    split = load_split(config, 'test')
    batches = list(build_loader(split, data_config, config, is_training=False, dist=CPU))
    images = torch.cat([b[0] for b in batches])
    transform = create_transform(**data_config, is_training=False)
    expected = torch.stack([transform(Image.open(path).convert('RGB')) for path, _ in split.dataset.reader.samples])
    assert torch.equal(images, expected)
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.tensor([t for _, t in split.dataset.reader.samples]))


def test_full_crops_are_exact_and_flips_mirror_the_image():
    data = _images()
    base = dict(batch_size=3, scale=[1.0, 1.0], ratio=[1.0, 1.0])
    mean, std = torch.tensor(DATA_CONFIG['mean']).view(1, 3, 1, 1), torch.tensor(DATA_CONFIG['std']).view(1, 3, 1, 1)
    expected = (data.images.permute(0, 3, 1, 2).float() / 255 - mean) / std
    for hflip, transform in ((0.0, lambda x: x), (1.0, lambda x: x.flip(-1))):
        loader = PreloadedLoader(data, DATA_CONFIG, TrainConfig(hflip=hflip, **base), True, CPU.device)
        loader.set_epoch(0)
        seen = 0
        for images, targets in loader:
            assert torch.allclose(images, transform(expected[targets]), atol=1e-5)
            seen += len(targets)
        assert seen == 6


def test_training_epochs_are_permutations_shared_by_every_process():
    data = PreloadedImages(torch.zeros(10, 4, 4, 3, dtype=torch.uint8), torch.arange(10))
    config = TrainConfig(batch_size=2, scale=[1.0, 1.0], ratio=[1.0, 1.0], seed=5)
    shards = []
    for rank in (0, 1):
        loader = PreloadedLoader(data, dict(DATA_CONFIG, input_size=(3, 4, 4)), config, True, CPU.device, rank, 2)
        loader.set_epoch(3)
        shards.append(torch.cat([targets for _, targets in loader]))
        assert len(loader) == 2
    assert len(set(shards[0].tolist()) | set(shards[1].tolist())) == 8  # disjoint; the odd item of each is dropped
    loader = PreloadedLoader(data, dict(DATA_CONFIG, input_size=(3, 4, 4)), config, True, CPU.device)
    orders = []
    for epoch in (0, 0, 1):
        loader.set_epoch(epoch)
        orders.append(torch.cat([targets for _, targets in loader]).tolist())
    assert orders[0] == orders[1] != orders[2] and sorted(orders[0]) == list(range(10))


def test_evaluation_is_sharded_as_timms_ordered_sampler():
    data = PreloadedImages(torch.zeros(5, 4, 4, 3, dtype=torch.uint8), torch.arange(5))
    config = TrainConfig(batch_size=2)
    shares = [torch.cat([t for _, t in PreloadedLoader(data, dict(DATA_CONFIG, input_size=(3, 4, 4)), config, False,
                                                      CPU.device, rank, 2)]).tolist() for rank in (0, 1)]
    assert shares == [[0, 1, 2], [3, 4, 0]]  # the last process padded with a repeat, as timm's sampler does


def test_centre_crop_takes_timms_crop_pct():
    data = _images(count=2, size=8)
    loader = PreloadedLoader(data, dict(DATA_CONFIG, input_size=(3, 4, 4), crop_pct=0.5), TrainConfig(batch_size=2),
                             False, CPU.device)
    images, _ = next(iter(loader))
    mean, std = torch.tensor(DATA_CONFIG['mean']).view(1, 3, 1, 1), torch.tensor(DATA_CONFIG['std']).view(1, 3, 1, 1)
    centre = (data.images.permute(0, 3, 1, 2).float() / 255)[:, :, 2:6, 2:6]  # the middle half, at full resolution
    assert torch.allclose(images * std + mean, centre, atol=1e-5)


def test_per_image_augmentations_are_refused_with_preload():
    with pytest.raises(TrainConfigError, match=r'--preload augments with random-resized crop and flip only; '
                                               r'--aa needs the per-image pipeline'):
        PreloadedLoader(_images(), DATA_CONFIG, TrainConfig(aa='rand-m9-mstd0.5'), True, CPU.device)


def test_images_of_several_sizes_cannot_be_preloaded(tmp_path):
    data = _photos(tmp_path / 'data')
    Image.new('RGB', (40, 30)).save(data / 'test' / 'dog' / 'odd.png')
    config = TrainConfig(data_dir=str(data), val_split='test', preload=True)
    with pytest.raises(TrainConfigError, match=r'--preload needs images of one size: .* has 32x32 px and 40x30 px'):
        preload_split(load_split(config, 'test'))


def test_preloaded_split_decodes_every_image_once(tmp_path):
    data = _photos(tmp_path / 'data', per_class=3)
    split = preload_split(load_split(TrainConfig(data_dir=str(data)), 'train'))
    assert isinstance(split.dataset, PreloadedImages) and split.dataset.images.shape == (6, 32, 32, 3)
    assert split.dataset.targets.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match=r'expected uint8 images \[N, H, W, 3\]'):
        PreloadedImages(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2))
    assert preload_images(load_split(TrainConfig(data_dir=str(data)), 'train').dataset, 'x').images.dtype == torch.uint8


def test_holdout_is_stratified_fixed_and_disjoint():
    targets = np.repeat(np.arange(4), [100, 50, 20, 10])
    kept, held_out = holdout_indices(targets, 0.1)
    assert np.array_equal(np.bincount(targets[held_out]), [10, 5, 2, 1])
    assert len(np.intersect1d(kept, held_out)) == 0 and len(kept) + len(held_out) == len(targets)
    again_kept, again_held = holdout_indices(targets, 0.1)
    assert np.array_equal(held_out, again_held) and np.array_equal(kept, again_kept)
    assert not np.array_equal(held_out, holdout_indices(targets, 0.1, seed=1)[1])


def test_holdout_splits_come_from_the_training_folder(tmp_path):
    data = _photos(tmp_path / 'data', per_class=10)
    config = TrainConfig(data_dir=str(data), holdout=0.2, val_split='test')
    train_split, held_split = load_split(config, 'train'), load_split(config, 'test')
    assert (len(train_split.dataset), len(held_split.dataset)) == (16, 4)
    assert held_split.description.endswith('(train, 20% held out)')
    train_paths = {train_split.dataset.dataset.reader.samples[i][0] for i in train_split.dataset.indices}
    held_paths = {held_split.dataset.dataset.reader.samples[i][0] for i in held_split.dataset.indices}
    assert not train_paths & held_paths and all('/train/' in p for p in held_paths)
    batches = list(build_loader(held_split, DATA_CONFIG, dataclasses.replace(config, batch_size=2), False, CPU))
    assert [len(t) for _, t in batches] == [2, 2]
