"""The weights shipped with tl_models: trained by a study, loadable offline, card = config.

Every tag with a ``file`` is a study's shipped run, in the package (``configs/weights``, small models) or beside it
in a source checkout (a study's ``weights_dir``, e.g. ``weights/`` for the 224-px models, kept out of the wheel); its
folder is hub-ready (config.json, model.safetensors, README.md), loads with ``pretrained=True`` and no network, gives
finite outputs, and its card and config agree with each other and with the study's result for seed 0. No accuracy
is asserted here: the study measures it.
"""
import json
import re
from pathlib import Path

import pytest
import timm
import torch

from lab.study.cards import shipped_folder, study_weights_dir
from lab.study.runner import result_path
from lab.study.spec import load_study
from tl_models.evaluate import load_eval_model
from tl_models.registry import builtin_config_dir, get_variant, list_plain_variants, list_variants

REPO = Path(__file__).resolve().parents[1]
STUDY_FILES = sorted((REPO / 'lab' / 'studies').glob('*.yaml'))
MAX_SHIPPED_BYTES = 10 * 1024 * 1024


def _file_tags():
    """(model, tag, fields) of every registered tag whose weights are a file shipped with the package."""
    return [(name, tag, fields)
            for name in list_variants() + list_plain_variants()
            for tag, fields in get_variant(name).tags.items() if 'file' in fields]


def _study_ships():
    """(study, run) of every run a study ships."""
    return [(spec, run) for spec in map(load_study, STUDY_FILES) for run in spec.runs if run.ship]


def _shipped_folders():
    """(model, tag) -> the folder a study ships them to."""
    return {(run.model, run.ship): shipped_folder(study_weights_dir(spec), run.model, run.ship).resolve()
            for spec, run in _study_ships()}


FILE_TAGS = _file_tags()
TAG_IDS = [f'{name}.{tag}' for name, tag, _ in FILE_TAGS]


def test_weights_ship_with_the_package():
    assert FILE_TAGS, 'no tag names a shipped weight file'


def test_every_shipped_tag_is_a_study_run_marked_ship():
    ships = {(run.model, run.ship) for _, run in _study_ships()}
    assert {(name, tag) for name, tag, _ in FILE_TAGS} <= ships


@pytest.mark.parametrize('name, tag, fields', FILE_TAGS, ids=TAG_IDS)
def test_shipped_file_is_the_study_folder(name, tag, fields):
    folder = _shipped_folders()[name, tag]
    assert Path(fields['file']).resolve() == folder / 'model.safetensors'
    assert {'config.json', 'model.safetensors', 'README.md'} <= {p.name for p in folder.iterdir()}


def test_weights_in_the_package_stay_small():
    package = (builtin_config_dir() / 'weights').resolve()
    files = [Path(fields['file']).resolve() for _, _, fields in FILE_TAGS]
    in_package = [f for f in files if f.is_relative_to(package)]
    assert in_package and sum(f.stat().st_size for f in in_package) <= MAX_SHIPPED_BYTES


@pytest.mark.parametrize('name, tag, fields', FILE_TAGS, ids=TAG_IDS)
def test_shipped_weights_load_offline_with_finite_outputs(name, tag, fields, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    model = timm.create_model(f'{name}.{tag}', pretrained=True).eval()
    config = json.loads((Path(fields['file']).parent / 'config.json').read_text(encoding='utf-8'))
    assert model.num_classes == fields['num_classes'] == config['num_classes']
    fresh = timm.create_model(name, num_classes=model.num_classes)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    size = model.pretrained_cfg['input_size']
    with torch.no_grad():
        logits = model(torch.randn(2, *size, generator=torch.Generator().manual_seed(0)))
    assert logits.shape == (2, model.num_classes)
    assert torch.isfinite(logits).all()


def _card_number(card: str, label: str) -> float:
    match = re.search(rf'\| {re.escape(label)} \| ([0-9.]+) \|', card)
    assert match, f'the card has no row {label!r}'
    return float(match.group(1))


@pytest.mark.parametrize('spec, run', _study_ships(), ids=lambda v: getattr(v, 'key', None) or getattr(v, 'name', ''))
def test_card_matches_config_and_study_result(spec, run):
    folder = shipped_folder(study_weights_dir(spec), run.model, run.ship)
    result_file = result_path(REPO / 'results' / spec.name, run)
    if not (folder / 'config.json').is_file():
        assert not result_file.is_file(), f'{run.key} finished but its weights were not shipped to {folder}'
        return
    config = json.loads((folder / 'config.json').read_text(encoding='utf-8'))
    card = (folder / 'README.md').read_text(encoding='utf-8')
    result = json.loads(result_file.read_text(encoding='utf-8'))
    assert config['architecture'] == run.model
    assert f'{run.model}.{run.ship}' in config['pretrained_cfg']['description']
    assert f"`{json.dumps(config['model_args'], sort_keys=True)}`" in card
    shipped = result.get('shipped')  # the file as shipped (another dtype), evaluated end to end
    if shipped:
        label = f"top-1 % on {result['held_out']} (this {shipped['dtype']} file, seed {run.seed}, tl-validate)"
    else:
        label = f"top-1 % on {result['held_out']} (these weights, seed {run.seed})"
    assert _card_number(card, label) == round((shipped or result)['top1'], 2)
    assert run.ship in get_variant(run.model).tags


@pytest.mark.parametrize('name, tag, fields', FILE_TAGS, ids=TAG_IDS)
def test_shipped_weights_start_fine_tuning_on_other_classes(name, tag, fields):
    trained = timm.create_model(f'{name}.{tag}', pretrained=True).state_dict()
    model = timm.create_model(f'{name}.{tag}', pretrained=True, num_classes=3)
    assert model.get_classifier().out_features == 3
    body = {k: v for k, v in model.state_dict().items() if not k.startswith('head.')}
    assert body and all(torch.equal(v, trained[k]) for k, v in body.items())


@pytest.mark.parametrize('name, tag, fields', FILE_TAGS[:1], ids=TAG_IDS[:1])
def test_validate_loads_a_tag_only_with_pretrained_and_says_so(name, tag, fields):
    trained, description = load_eval_model(f'{name}.{tag}', pretrained=True)
    assert description == f'{name}.{tag}'
    untrained, description = load_eval_model(f'{name}.{tag}')
    assert 'random weights' in description and '--pretrained' in description
    assert not torch.equal(trained.head.weight, untrained.head.weight)
