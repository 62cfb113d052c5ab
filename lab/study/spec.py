"""The study file: one training recipe, groups of models (each a size with its plain twin), seeds.

A study YAML file reads::

    description: TokenLearner against plain ViTs on CIFAR-10.
    dataset: cifar10                   # optional: the data's name and a line on it, for model cards
    dataset_description: CIFAR-10's 50,000 training images
    recipe: ../train/cifar10.yaml      # a recipe file (relative to this file) or a mapping of training options
    options: {eval_every: 5}           # optional: overrides of the recipe for every run
    seeds: [0, 1, 2]                   # default seeds of every run
    groups:
      nano:                            # a size: its models are compared with its twin
        twin: vit_nano_patch4_32       # optional: default, the run of the registry's twin of its TokenLearner models
        runs:
          vit_nano_patch4_32: {}                            # run name = model name
          tl_vit_nano_patch4_32_8at2: {ship: cifar10}       # seed 0's weights become the tag 'cifar10'
          tl_vit_nano_patch4_32_16at2: {seeds: [0]}
          lr_1e-3: {model: tl_vit_nano_patch4_32_8at2, options: {lr: 1.0e-3}}   # a recipe trial
          distilled: {model: tl_vit_nano_patch4_32_8at2, teacher: vit_nano_patch4_32}  # seed 0 of a run teaches

Every run of every group trains with the same recipe and number of epochs; a run's ``options`` are for
recipe trials (a tuning study), not for the comparisons of the main study.

Every error is a :class:`StudyConfigError` naming the file and the key.
"""
import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import timm
import yaml

from tl_models.registry import get_variant, twin_name
from tl_models.train.config import TrainConfig, TrainConfigError, check_options, load_recipe

__all__ = ['RunSpec', 'StudyConfigError', 'StudySpec', 'load_study']

RUN_NAME = re.compile(r'[A-Za-z0-9_.\-]+')
STUDY_KEYS = ('description', 'dataset', 'dataset_description', 'recipe', 'options', 'seeds', 'groups', 'targets',
              'weights_dir', 'ship_dtype', 'pretrained_description', 'licence')
SHIP_DTYPES = ('float32', 'float16')
# What each kind of target takes (see tl_models.study.report.check_targets).
TARGET_FIELDS = {
    'min_top1': ('run', 'top1'),
    'twin_match': ('max_gmacs_ratio', 'min_train_speedup', 'max_top1_drop'),
    'beat_equal_cost_plain': ('margin', 'cost_tolerance'),
}
# Targets that compare named runs (GROUP/RUN), each kind a list of comparisons: required fields, optional fields.
COMPARISON_FIELDS = {
    'within': (('run', 'of', 'points'), ('seed',)),           # run's mean within points of of's (or of its seed)
    'beats': (('run', 'rival'), ()),                            # run's mean above rival's
    'closes_gap': (('run', 'low', 'high', 'fraction'), ()),     # run closes fraction of the gap from low to high
    'speedup': (('run', 'of', 'workload', 'min'), ()),          # run's speed over of's for workload, at least min
}
RUN_FIELDS = ('run', 'of', 'rival', 'low', 'high')
GROUP_KEYS = ('twin', 'runs')
RUN_KEYS = ('model', 'seeds', 'options', 'ship', 'teacher')
# Options the study sets for each run itself; a run may not change the number of epochs either.
RESERVED_OPTIONS = ('model', 'seed', 'output', 'resume', 'data_dir', 'stop_after_epoch', 'cache_dir')
RUN_RESERVED_OPTIONS = (*RESERVED_OPTIONS, 'epochs')


class StudyConfigError(ValueError):
    """A study file breaks the schema; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: a model of a group with one seed.

    Attributes:
        name: The run's name in its group (the model name unless it is a recipe trial).
        group: The group (model size) it belongs to.
        model: The timm model name.
        seed: The random seed.
        options: Training options of this run over the study's recipe.
        ship: The pretrained tag its weights become (seed 0 only), or None.
        teacher: The run of the same group whose seed 0 it is distilled from (``--distill-from`` its run
            folder), or None.
    """
    name: str
    group: str
    model: str
    seed: int
    options: Dict[str, Any]
    ship: Optional[str] = None
    teacher: Optional[str] = None

    @property
    def teacher_key(self) -> Optional[str]:
        """The key of the teacher's run (its seed 0), or None."""
        return None if self.teacher is None else f'{self.teacher}-seed0'

    @property
    def key(self) -> str:
        """File-name key of the run: ``<name>-seed<seed>``."""
        return f'{self.name}-seed{self.seed}'


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """A parsed study file.

    Attributes:
        name: The file's stem (``cifar10``): the name of its results folder.
        path: The study file.
        description: One line on what it measures.
        recipe: Training options every run shares (the recipe, then the study's options).
        twins: Group -> the name of its plain twin run (None if the group has none).
        runs: Every run, in file order: group by group, each run's seeds in order.
        targets: Target kind -> its settings (see :data:`TARGET_FIELDS`), or the list of its comparisons (see
            :data:`COMPARISON_FIELDS`).
        dataset: The data's name (a hub dataset id, for model cards), or None.
        dataset_description: A line on the training data, for model cards.
        weights_dir: Where the weights of ``ship`` runs go (the study file's ``weights_dir``, relative to it), or None
            for the package's ``configs/weights`` (weights small enough for the wheel).
        ship_dtype: The dtype shipped weights are stored in ('float32' or 'float16').
        pretrained_description: What the runs that start pretrained start from, for model cards.
        licence: The licences of the shipped weights' sources and data, for model cards.
    """
    name: str
    path: Path
    description: str
    recipe: Dict[str, Any]
    twins: Dict[str, Optional[str]]
    runs: List[RunSpec]
    targets: Dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: Optional[str] = None
    dataset_description: str = ''
    weights_dir: Optional[Path] = None
    ship_dtype: str = 'float32'
    pretrained_description: str = ''
    licence: str = ''

    def config(self, run: RunSpec, **settings: Any) -> TrainConfig:
        """The training configuration of ``run``; ``settings`` (data_dir, output, device, ...) go on top."""
        return TrainConfig(**{**self.recipe, **run.options, 'model': run.model, 'seed': run.seed, **settings})

    def architecture(self, run: RunSpec) -> Dict[str, Any]:
        """The ``timm.create_model`` arguments that shape ``run``'s model beyond its name: its image size and the
        ``model_kwargs`` of its options (``tokenlearner_loc``, ``global_pool``, ...), weights left out."""
        config = self.config(run)
        kwargs = {k: v for k, v in config.model_kwargs.items() if k != 'pretrained_cfg_overlay'}
        return {**kwargs, **({'img_size': config.img_size} if config.img_size else {})}


def _fail(path: Path, key: str, problem: str) -> None:
    raise StudyConfigError(f"{path}: key '{key}': {problem}")


def _mapping(path: Path, value: Any, key: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, key, f'expected a mapping, got {type(value).__name__} {value!r}')
    return value


def _known(path: Path, value: Dict[str, Any], prefix: str, allowed: Tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            _fail(path, f'{prefix}{key}', f"unknown key; expected one of: {', '.join(allowed)}")


def _seeds(path: Path, value: Any, key: str) -> List[int]:
    if not (isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                       for s in value) and len(set(value)) == len(value)):
        _fail(path, key, f'expected a non-empty list of distinct seeds (integers >= 0), got {value!r}')
    return list(value)


def _options(path: Path, value: Any, key: str, reserved_keys: Tuple[str, ...] = RESERVED_OPTIONS) -> Dict[str, Any]:
    """Training options, validated as a recipe is (known TrainConfig fields of the right types)."""
    options = _mapping(path, value, key)
    reserved = [k for k in options if k in reserved_keys]
    if reserved:
        _fail(path, key, f"{', '.join(reserved)} cannot be set here: the study sets them (the same epochs for "
                         'every run, one model and seed per run, data and output from the command line)')
    try:
        return check_options(options, f"{path}: key '{key}'")
    except TrainConfigError as e:
        raise StudyConfigError(str(e)) from e


def _recipe(path: Path, document: Dict[str, Any]) -> Dict[str, Any]:
    recipe = document.get('recipe')
    if isinstance(recipe, str):
        try:
            values = load_recipe(path.parent / recipe)
        except TrainConfigError as e:
            raise StudyConfigError(f"{path}: key 'recipe': {e}") from e
    elif isinstance(recipe, dict):
        try:
            values = check_options(recipe, f"{path}: key 'recipe'")
        except TrainConfigError as e:
            raise StudyConfigError(str(e)) from e
    else:
        _fail(path, 'recipe', f'expected a recipe file name or a mapping of training options, got {recipe!r}')
    values.update(_options(path, document.get('options') or {}, 'options'))
    values.pop('model', None)
    try:
        TrainConfig(**values)
    except TrainConfigError as e:
        raise StudyConfigError(f'{path}: the recipe: {e}') from e
    return values


def _group_runs(path: Path, group: str, spec: Dict[str, Any], seeds: List[int]) -> List[RunSpec]:
    runs: List[RunSpec] = []
    for name, run in _mapping(path, spec.get('runs'), f'groups.{group}.runs').items():
        key = f'groups.{group}.runs.{name}'
        if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
            _fail(path, key, "run names may hold letters, digits and '_.-'")
        run = _mapping(path, run or {}, key)
        _known(path, run, f'{key}.', RUN_KEYS)
        model = run.get('model', name)
        if not isinstance(model, str) or not timm.is_model(timm.models.get_arch_name(model)):
            _fail(path, f'{key}.model', f'expected a registered timm model name, got {model!r}')
        ship = run.get('ship')
        if ship is not None and not (isinstance(ship, str) and re.fullmatch(r'[a-z0-9_]+', ship)):
            _fail(path, f'{key}.ship', f"expected a pretrained tag name ('[a-z0-9_]+'), got {ship!r}")
        run_seeds = _seeds(path, run.get('seeds', seeds), f'{key}.seeds')
        if ship is not None and 0 not in run_seeds:
            _fail(path, f'{key}.ship', 'the shipped weights are seed 0: add seed 0 to the run')
        options = _options(path, run.get('options') or {}, f'{key}.options', RUN_RESERVED_OPTIONS)
        teacher = run.get('teacher')
        if teacher is not None and 'distill_from' in options:
            _fail(path, f'{key}.teacher', 'a run takes its teacher from teacher: or options.distill_from, not both')
        runs += [RunSpec(name, group, model, seed, options, ship if seed == 0 else None, teacher)
                 for seed in run_seeds]
    teachers = {r.name: r for r in runs if r.seed == 0}
    for run in runs:
        if run.teacher is not None and (run.teacher not in teachers or run.teacher == run.name):
            _fail(path, f'groups.{group}.runs.{run.name}.teacher',
                  f"expected another run of group '{group}' with seed 0, got {run.teacher!r}")
    return runs


def _registry_twin(runs: List[RunSpec]) -> Optional[str]:
    """The run of a group that is the registry's twin of its TokenLearner runs (:func:`tl_models.registry.twin_name`),
    when the group names none: the one run, without options of its own, of the model that every TokenLearner run's
    twin is; None if there is no such single run."""
    twins = set()
    for run in runs:
        try:
            if get_variant(run.model).is_tokenlearner:
                twins.add(twin_name(run.model))
        except (KeyError, ValueError):  # timm's own model, or a variant without a twin
            continue
    if len(twins) != 1:
        return None
    (twin,) = twins
    names = {r.name for r in runs if r.model == twin and not r.options}
    return names.pop() if len(names) == 1 else None


def load_study(path: Path) -> StudySpec:
    """Reads and validates a study file.

    Raises:
        StudyConfigError: unreadable or broken YAML, or a study that breaks the schema.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as e:
        raise StudyConfigError(f'{path}: cannot read the study file: {e.strerror or e}') from e
    except yaml.YAMLError as e:
        raise StudyConfigError(f'{path}: not valid YAML: {e}') from e
    document = _mapping(path, document, '<file>')
    _known(path, document, '', STUDY_KEYS)
    seeds = _seeds(path, document.get('seeds', [0]), 'seeds')
    recipe = _recipe(path, document)
    twins: Dict[str, Optional[str]] = {}
    runs: List[RunSpec] = []
    for group, spec in _mapping(path, document.get('groups'), 'groups').items():
        spec = _mapping(path, spec, f'groups.{group}')
        _known(path, spec, f'groups.{group}.', GROUP_KEYS)
        group_runs = _group_runs(path, str(group), spec, seeds)
        twin = spec.get('twin', _registry_twin(group_runs))
        if twin is not None and twin not in {r.name for r in group_runs}:
            _fail(path, f'groups.{group}.twin', f'expected the name of one of the group\'s runs, got {twin!r}')
        twins[str(group)] = twin
        runs += group_runs
    keys = [r.key for r in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        _fail(path, 'groups', f"run names must be unique across groups, repeated: {', '.join(duplicates)}")
    if not runs:
        _fail(path, 'groups', 'expected at least one run')
    targets = _targets(path, document.get('targets') or {}, runs)
    weights_dir = document.get('weights_dir')
    if weights_dir is not None and not isinstance(weights_dir, str):
        _fail(path, 'weights_dir', f'expected a folder relative to the study file, got {weights_dir!r}')
    ship_dtype = document.get('ship_dtype', 'float32')
    if ship_dtype not in SHIP_DTYPES:
        _fail(path, 'ship_dtype', f"expected one of {', '.join(SHIP_DTYPES)}, got {ship_dtype!r}")
    return StudySpec(path.stem, path, str(document.get('description', '')), recipe, twins, runs, targets,
                     document.get('dataset'), str(document.get('dataset_description', '')),
                     (path.parent / weights_dir).resolve() if weights_dir else None, ship_dtype,
                     str(document.get('pretrained_description', '')), str(document.get('licence', '')))


def _comparisons(path: Path, kind: str, value: Any, runs: List[RunSpec]) -> List[Dict[str, Any]]:
    """A list of comparisons of ``kind`` (see :data:`COMPARISON_FIELDS`), each naming runs of the study."""
    if not isinstance(value, list) or not value:
        _fail(path, f'targets.{kind}', f'expected a list of comparisons, got {value!r}')
    required, optional = COMPARISON_FIELDS[kind]
    names = {f'{r.group}/{r.name}' for r in runs}
    for index, item in enumerate(value):
        key = f'targets.{kind}[{index}]'
        item = _mapping(path, item, key)
        _known(path, item, f'{key}.', required + optional)
        for field in required:
            if field not in item:
                _fail(path, f'{key}.{field}', 'missing required key')
            if field in RUN_FIELDS and item[field] not in names:
                _fail(path, f'{key}.{field}', f'expected GROUP/RUN of a run of this study, got {item[field]!r}')
        for field in ('points', 'fraction', 'min', 'seed'):
            if field in item and (not isinstance(item[field], (int, float)) or isinstance(item[field], bool)):
                _fail(path, f'{key}.{field}', f'expected a number, got {item[field]!r}')
    return value


def _targets(path: Path, value: Any, runs: List[RunSpec]) -> Dict[str, Any]:
    targets = _mapping(path, value, 'targets')
    _known(path, targets, 'targets.', (*TARGET_FIELDS, *COMPARISON_FIELDS))
    for kind, settings in targets.items():
        if kind in COMPARISON_FIELDS:
            _comparisons(path, kind, settings, runs)
            continue
        settings = _mapping(path, settings, f'targets.{kind}')
        _known(path, settings, f'targets.{kind}.', TARGET_FIELDS[kind])
        for field in TARGET_FIELDS[kind]:
            if field not in settings:
                _fail(path, f'targets.{kind}.{field}', 'missing required key')
            number = isinstance(settings[field], (int, float)) and not isinstance(settings[field], bool)
            if field != 'run' and not number:
                _fail(path, f'targets.{kind}.{field}', f'expected a number, got {settings[field]!r}')
        if kind == 'min_top1' and settings['run'] not in {f'{r.group}/{r.name}' for r in runs}:
            _fail(path, f'targets.{kind}.run', f"expected GROUP/RUN of a run of this study, got {settings['run']!r}")
    return targets
