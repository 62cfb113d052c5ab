"""Import paths that moved keep working, with a DeprecationWarning that names the new path."""
import importlib
import sys

import pytest

MOVED = [
    ('tl_models.checkpoint', 'tl_models.weights.checkpoint', 'save_checkpoint'),
    ('tl_models.pretrained.fetch', 'tl_models.weights.fetch', 'fetch_weight_file'),
    ('tl_models.pretrained.overlay', 'tl_models.weights.overlay', 'pretrained_file_overlay'),
    ('tl_models.pretrained.weights', 'tl_models.weights.files', 'check_weight_file'),
    ('tl_models.train.data', 'tl_models.data.datasets', 'DigitsDataset'),
    ('tl_models.train.memory', 'tl_models.data.preload', 'PreloadedLoader'),
    ('tl_models.train.video', 'tl_models.data.clips', 'VideoFolder'),
    ('tl_models.train.moving_digits', 'tl_models.data.moving_digits', 'MovingDigits'),
    ('tl_models.train.distributed', 'tl_models.runtime.distributed', 'Distributed'),
    ('tl_models.train.progress', 'tl_models.runtime.progress', 'EpochProgress'),
    ('tl_models.train.validate', 'tl_models.evaluate.validate', 'validate'),
    ('tl_models.hub.prefetch', 'tl_models.hub.tags', 'prefetch'),
    ('tl_models.benchmark.share', 'tl_models.benchmark.time_share', 'token_module_time_share'),
    ('tl_models.benchmark.memory', 'tl_models.benchmark.peak_memory', 'memory_meter'),
    ('tl_models.study.tokens', 'tl_models.visualize.similarity', 'token_map_similarity'),
    ('tl_models.visualize.clips', 'tl_models.visualize.video_input', 'prepare_clip'),
    ('tl_models.benchmark.targets', 'lab.benchmark_targets', 'TARGETS'),
    ('tl_models.benchmark.layers', 'lab.layer_benchmark', 'benchmark_token_learner'),
]


@pytest.mark.parametrize('old, new, name', MOVED, ids=[m[0] for m in MOVED])
def test_an_old_module_path_warns_and_gives_the_new_module(old, new, name):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace('.', r'\.')):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_old_package_paths_warn_and_export_the_new_names():
    for old, new, name in (('tl_models.pretrained', 'tl_models.weights', 'check_weight_file'),
                           ('tl_models.study', 'lab.study', 'run_study')):
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=new.replace('.', r'\.')):
            module = importlib.import_module(old)
        assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.warns(DeprecationWarning, match=r'lab\.benchmark_targets'):
        from tl_models.benchmark import TARGETS
    assert TARGETS is importlib.import_module('lab.benchmark_targets').TARGETS


def test_the_old_visualize_video_check_warns_and_asks_model_input():
    import timm

    from tl_models.visualize import is_video_model

    with pytest.warns(DeprecationWarning, match='model_input'):
        assert is_video_model(timm.create_model('tl_vivit_pico_patch4_32_8f_8at2'))
