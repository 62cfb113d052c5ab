"""Fine-tuning: outputs of a run, exact resume, options, recipes, and bad configurations."""
import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import tl_models  # noqa: F401  (registers the tl_ models)
from tl_models.data import DigitsDataset, holdout_indices
from tl_models.evaluate import validate
from tl_models.train import TrainConfig, TrainConfigError, load_recipe, train
from tl_models.weights.checkpoint import load_checkpoint

QUICK = dict(epochs=2, warmup_epochs=1)


def test_digits_split_is_deterministic_stratified_and_disjoint():
    train_set, val_set = DigitsDataset('train'), DigitsDataset('validation')
    assert (len(train_set), len(val_set)) == (1437, 360)
    assert np.array_equal(DigitsDataset('validation').targets, val_set.targets)
    assert np.bincount(val_set.targets).min() >= 35  # every class held out, about 36 each
    train_rows = {img.tobytes() for img in train_set.images}
    assert sum(img.tobytes() in train_rows for img in val_set.images) < 5  # (a few digits repeat pixel for pixel)
    image, label = train_set[0]
    assert image.size == (8, 8) and image.mode == 'RGB' and 0 <= label < 10


@pytest.mark.slow
def test_run_writes_summary_metrics_checkpoints_and_a_loadable_model(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger='tl_models.train')
    summary = train(TrainConfig(output=str(tmp_path / 'run'), **QUICK))
    run = tmp_path / 'run'
    on_disk = json.loads((run / 'summary.json').read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for key in ('model', 'dataset', 'epochs', 'best_top1', 'best_epoch', 'seconds', 'train_images_per_second'):
        assert key in summary
    assert summary['model'] == 'tl_vit_pico_patch4_16_8at2' and summary['dataset'] == 'digits'
    assert summary['epochs'] == 2 and 0 < summary['best_top1'] <= 100 and summary['train_images_per_second'] > 0
    rows = list(csv.DictReader((run / 'metrics.csv').open()))
    assert [int(r['epoch']) for r in rows] == [1, 2]
    assert max(float(r['top1']) for r in rows) == pytest.approx(summary['best_top1'], abs=1e-3)
    assert yaml.safe_load((run / 'config.yaml').read_text())['epochs'] == 2
    assert load_checkpoint(run / 'checkpoints' / 'last.safetensors').epoch == 2
    assert load_checkpoint(run / 'checkpoints' / 'best.safetensors').epoch == summary['best_epoch']
    assert sum('epoch 2/2' in r.getMessage() for r in caplog.records) == 1  # a plain log line per epoch
    # the exported best model reproduces the best held-out accuracy
    metrics = validate(f"local-dir:{run / 'model'}", TrainConfig())
    assert metrics['top1'] == pytest.approx(summary['best_top1'], abs=1e-3)
    model = timm.create_model(f"local-dir:{run / 'model'}", pretrained=True)
    assert model.num_classes == 10 and model.pretrained_cfg['input_size'] == (3, 16, 16)
    # trained from scratch: the card says so, not the variant's default tag
    assert summary['started_from'] == 'a random initialisation (trained from scratch)'
    card = (run / 'model' / 'README.md').read_text()
    assert '**Started from:** a random initialisation (trained from scratch)' in card


@pytest.mark.slow
def test_a_run_started_from_a_weight_file_records_the_file_not_the_variants_tag(tmp_path):
    first = tmp_path / 'first'
    train(TrainConfig(output=str(first), epochs=1, warmup_epochs=0))
    weights = first / 'model' / 'model.safetensors'
    summary = train(TrainConfig(output=str(tmp_path / 'again'), epochs=1, warmup_epochs=0, pretrained=True,
                                model_kwargs={'pretrained_cfg_overlay': {'file': str(weights)}}))
    assert summary['started_from'] == 'the weight file model/model.safetensors'
    config = json.loads((tmp_path / 'again' / 'model' / 'config.json').read_text())
    assert config['tl_models']['started_from'] == 'the weight file model/model.safetensors'
    assert 'tag' not in config['pretrained_cfg'] and 'started_from_tag' not in config['tl_models']


@pytest.mark.slow
@pytest.mark.parametrize('preload', [False, True])
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, preload):
    config = dict(epochs=2, warmup_epochs=1, model_ema=True, mixup=0.2, seed=3, preload=preload)
    train(TrainConfig(output=str(tmp_path / 'straight'), **config))
    train(TrainConfig(output=str(tmp_path / 'resumed'), stop_after_epoch=1, **config))
    assert load_checkpoint(tmp_path / 'resumed' / 'checkpoints' / 'last.safetensors').epoch == 1
    summary = train(TrainConfig(resume=str(tmp_path / 'resumed'), **config))
    assert summary['epochs'] == 2
    straight = load_file(tmp_path / 'straight' / 'checkpoints' / 'last.safetensors')
    resumed = load_file(tmp_path / 'resumed' / 'checkpoints' / 'last.safetensors')
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), 'weights, EMA or optimizer state differ'
    deterministic = ('epoch', 'train_loss', 'val_loss', 'top1', 'top5', 'lr')  # not the timings

    def rows(run):
        return [{k: r[k] for k in deterministic} for r in csv.DictReader((tmp_path / run / 'metrics.csv').open())]

    assert rows('straight') == rows('resumed') and len(rows('resumed')) == 2


@pytest.mark.slow
def test_freeze_backbone_trains_only_tokenlearner_and_head(tmp_path):
    train(TrainConfig(output=str(tmp_path / 'run'), freeze_backbone=True, epochs=1, warmup_epochs=0))
    trained = load_checkpoint(tmp_path / 'run' / 'checkpoints' / 'last.safetensors').model_state
    torch.manual_seed(0)
    fresh = timm.create_model('tl_vit_pico_patch4_16_8at2', num_classes=10).state_dict()
    changed = {k for k in fresh if not torch.equal(fresh[k], trained[k])}
    assert changed and all(k.startswith(('token_learners.', 'fc_norm.', 'head.')) for k in changed)
    assert any(k.startswith('token_learners.') for k in changed) and 'head.weight' in changed


@pytest.mark.slow
def test_recipe_options_run_together(tmp_path):
    summary = train(TrainConfig(
        output=str(tmp_path / 'run'), epochs=1, warmup_epochs=0, model_ema=True, mixup=0.8, cutmix=1.0,
        clip_grad=1.0, amp=True, grad_checkpointing=True, layer_decay=0.75, smoothing=0.1, aa='rand-m9-mstd0.5',
        reprob=0.25, color_jitter=0.2, opt='adamw'))
    ckpt = load_checkpoint(tmp_path / 'run' / 'checkpoints' / 'last.safetensors')
    assert ckpt.ema_state is not None and ckpt.ema_state.keys() == ckpt.model_state.keys()
    assert summary['ema'] is True and np.isfinite(summary['best_top1'])


def _image_folder(root: Path, classes=(0, 1), per_class=12, splits=('train', 'validation')) -> Path:
    digits = DigitsDataset('train')
    for split in splits:
        for c in classes:
            folder = root / split / f'digit_{c}'
            folder.mkdir(parents=True)
            for i, index in enumerate(np.flatnonzero(digits.targets == c)[:per_class]):
                Image.fromarray(digits.images[index]).resize((32, 32)).convert('RGB').save(folder / f'{i}.png')
    return root


@pytest.mark.slow
def test_image_folder_training_uses_its_class_names(tmp_path):
    data = _image_folder(tmp_path / 'data')
    summary = train(TrainConfig(output=str(tmp_path / 'run'), data_dir=str(data), batch_size=8, **QUICK))
    assert summary['num_classes'] == 2 and summary['dataset'] == f'folder {data}'
    config = json.loads((tmp_path / 'run' / 'model' / 'config.json').read_text())
    assert config['num_classes'] == 2 and config['label_names'] == ['digit_0', 'digit_1']


@pytest.mark.parametrize('overrides, message', [
    (dict(model='tl_vit_bse_patch16_224_8at6'), r"unknown model 'tl_vit_bse_patch16_224_8at6'.*did you mean "
                                                 r"tl_vit_base_patch16_224_8at6"),
    (dict(data_dir='/no/such/folder'), r'--data-dir /no/such/folder: no such folder'),
    (dict(dataset='folder'), r'--dataset folder needs --data-dir'),
    (dict(dataset='digits', data_dir='.'), r'--dataset digits comes with scikit-learn'),
    (dict(batch_size=5000), r'--batch-size 5000 is larger than the 1437 training images per process of digits'),
    (dict(val_split='test2'), r"digits has the splits 'train' and 'validation', got 'test2'"),
    (dict(dataset='no_such_backend/thing'), r"dataset 'no_such_backend/thing' \(train\) could not be loaded"),
])
def test_bad_configuration_stops_before_training(tmp_path, overrides, message):
    with pytest.raises(TrainConfigError, match=message):
        train(TrainConfig(output=str(tmp_path / 'run'), **overrides))
    assert not (tmp_path / 'run').exists()


def test_folder_with_one_class_or_too_few_images(tmp_path):
    one_class = _image_folder(tmp_path / 'one', classes=(3,))
    with pytest.raises(TrainConfigError, match=r'needs at least 2 classes, folder .* has 1'):
        train(TrainConfig(output=str(tmp_path / 'a'), data_dir=str(one_class)))
    few = _image_folder(tmp_path / 'few', per_class=3)
    with pytest.raises(TrainConfigError, match=r'--batch-size 64 is larger than the 6 training images'):
        train(TrainConfig(output=str(tmp_path / 'b'), data_dir=str(few)))
    no_val = _image_folder(tmp_path / 'noval', splits=('train',))
    with pytest.raises(TrainConfigError, match=r"no folder for the 'validation' split; expected one of validation/"):
        train(TrainConfig(output=str(tmp_path / 'c'), data_dir=str(no_val), batch_size=4))


def test_an_existing_run_is_not_overwritten(tmp_path):
    (tmp_path / 'run' / 'checkpoints').mkdir(parents=True)
    with pytest.raises(TrainConfigError, match=r'already holds a run; continue it with --resume'):
        train(TrainConfig(output=str(tmp_path / 'run')))
    with pytest.raises(TrainConfigError, match=r'--resume .*: no checkpoints/last.safetensors there'):
        train(TrainConfig(resume=str(tmp_path / 'elsewhere')))


def test_recipes_load_and_flags_override_them(tmp_path):
    import argparse

    from tl_models.train import add_arguments, config_from_args

    recipe = tmp_path / 'recipe.yaml'
    recipe.write_text('epochs: 7\nlr: 1\nmodel_ema: true\nscale: [0.5, 1]\n')
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(['--config', str(recipe), '--lr', '0.01', '--no-model-ema']))
    assert (config.epochs, config.lr, config.model_ema, config.scale) == (7, 0.01, False, [0.5, 1.0])
    assert config.batch_size == TrainConfig().batch_size
    for shipped in sorted(Path(__file__).parents[1].glob('configs/train/*.yaml')):
        recipe = TrainConfig(**load_recipe(shipped))
        # CIFAR-10 trains from scratch; fine-tuning recipes (Imagenette's too) start pretrained
        assert recipe.pretrained == shipped.name.startswith(('finetune', 'tokenlearner', 'imagenette'))


@pytest.mark.parametrize('text, message', [
    ('epochs: [3\n', r'not valid YAML'),
    ('epoch: 3\n', r"unknown option\(s\) 'epoch'"),
    ('epochs: three\n', r"'epochs' expects int, got 'three'"),
    ('scale: [0.5]\n', r"'scale' expects two numbers \[min, max\], got \[0.5\]"),
    ('model_ema: 1\n', r"'model_ema' expects bool, got 1"),
    ('- 1\n', r'expected a mapping of training options, got list'),
])
def test_bad_recipes_name_the_file_and_the_option(tmp_path, text, message):
    recipe = tmp_path / 'bad.yaml'
    recipe.write_text(text)
    with pytest.raises(TrainConfigError, match=message) as info:
        load_recipe(recipe)
    assert str(recipe) in str(info.value)


@pytest.mark.slow
def test_torchrun_ddp_on_two_cpu_processes(tmp_path):
    """gloo DDP: data sharded (half the optimizer steps), exact held-out metrics, one writer."""
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    run = tmp_path / 'ddp'
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
         '-m', 'tl_models.cli.train', '--epochs', '1', '--warmup-epochs', '0', '--output', str(run)],
        cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['processes'] == 2
    assert summary['optimizer_steps'] == (1437 // 2 + 1) // 64  # each process sees its half: 719 images, 11 batches
    assert result.stdout.count('epoch 1/1 ') == 1  # only rank 0 reports and writes
    assert sorted(p.name for p in run.iterdir()) == ['checkpoints', 'config.yaml', 'metrics.csv', 'model',
                                                     'summary.json']
    metrics = validate(f"local-dir:{run / 'model'}", TrainConfig())
    assert metrics['top1'] == pytest.approx(summary['best_top1'], abs=1e-3)  # sharded eval counted each image once


def test_progress_bar_on_a_terminal_only(monkeypatch):
    import io
    import sys

    from tl_models.runtime import EpochProgress

    monkeypatch.setattr(sys, 'stderr', io.StringIO())
    assert EpochProgress(3, 'epoch 1').bar is None  # not a terminal: the trainer logs a line per epoch instead

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, 'stderr', Terminal())
    progress = EpochProgress(3, 'epoch 1')
    for _ in range(3):
        progress.update(loss=0.5)
    progress.close()
    assert progress.bar.n == 3 and progress.bar.postfix == 'loss=0.5000' and 'epoch 1' in sys.stderr.getvalue()
    assert EpochProgress(3, 'epoch 1', enabled=False).bar is None  # other ranks than 0 show nothing


@pytest.mark.slow
def test_plain_timm_vit_trains_evaluates_every_few_epochs_and_exports_the_last_epoch(tmp_path):
    run = tmp_path / 'run'
    summary = train(TrainConfig(model='vit_nano_d2_patch4_32', output=str(run), preload=True, epochs=3,
                                warmup_epochs=1, eval_every=2, select='last'))
    rows = list(csv.DictReader((run / 'metrics.csv').open()))
    assert [r['top1'] != '' for r in rows] == [False, True, True]  # epochs 2 and the last
    assert summary['model'] == 'vit_nano_d2_patch4_32' and summary['select'] == 'last'
    assert summary['selected_epoch'] == 3 and summary['selected_top1'] == summary['last_top1']
    assert not (run / 'checkpoints' / 'best.safetensors').exists()
    model = timm.create_model(f"local-dir:{run / 'model'}", pretrained=True)
    assert type(model) is timm.models.VisionTransformer and len(model.blocks) == 2
    metrics = validate(str(run), TrainConfig(preload=True))
    assert metrics['top1'] == pytest.approx(summary['selected_top1'], abs=1e-6)


def test_holdout_trains_on_the_rest_of_the_training_split(tmp_path):
    summary = train(TrainConfig(output=str(tmp_path / 'run'), holdout=0.25, epochs=1, warmup_epochs=0, batch_size=128))
    assert summary['dataset'] == 'digits (train less 25% held out)'
    kept, held_out = holdout_indices(DigitsDataset('train').targets, 0.25)
    assert (len(kept), len(held_out)) == (1078, 359)
    assert summary['optimizer_steps'] == 1078 // 128  # timm's training loader drops the incomplete last batch


@pytest.mark.parametrize('overrides, message', [
    (dict(select='first'), r"'select' expects one of best, last, got 'first'"),
    (dict(holdout=1.0), r"'holdout' expects a fraction in \[0, 1\), got 1.0"),
    (dict(eval_every=0), r"'eval_every' expects a positive number of epochs, got 0"),
    (dict(threads=0), r"'threads' expects a positive number, got 0"),
])
def test_bad_values_are_refused_when_the_configuration_is_made(overrides, message):
    with pytest.raises(TrainConfigError, match=message):
        TrainConfig(**overrides)


def test_the_main_job_ends_on_the_last_epochs_figure_not_the_best_picked_one():
    from tl_models.cli.train import final_lines

    summary = dict(select='best', selected_epoch=46, selected_top1=100.0, epochs=60, epochs_planned=60,
                   last_top1=99.72)
    lines = final_lines(summary).splitlines()
    assert lines[-1] == ('held-out top-1 accuracy: 99.72% (the last epoch, 60 of 60; not picked on the held-out '
                         'split)')
    assert 'best held-out epoch, 46 of 60 (100.00%)' in lines[0] and 'biased' in lines[0]
    last = final_lines(dict(summary, select='last', selected_epoch=60, selected_top1=99.72)).splitlines()
    assert last == lines[-1:]
    stopped = final_lines(dict(summary, select='last', epochs=5, last_top1=None))
    assert stopped.endswith('not measured yet (stopped after epoch 5; continue with --resume)')
