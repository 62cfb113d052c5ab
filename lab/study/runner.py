"""Runs a study: every run whose result is not yet in the results folder, one or several at a time.

Each finished run leaves one JSON file, ``<results>/runs/<group>/<run>-seed<k>.json``: its configuration,
the trainer's summary and per-epoch rows, the top-1 of its selected epoch on the held-out split, and for
TokenLearner models how alike their learned tokens' spatial maps are. A run that stops part-way (the
machine ended) resumes from its run folder's last checkpoint when that folder still exists and was started
with the same configuration, else starts again; finished runs are never repeated. A run marked ``ship``
copies its exported model (seed 0) into the weights folder as the hub-ready folder of its pretrained tag, and
evaluates that folder end to end (in the dtype it ships in) for its model card.
"""
import concurrent.futures
import csv
import dataclasses
import datetime
import json
import logging
import multiprocessing
import platform
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import timm
import torch
import yaml
from safetensors.torch import load_file

from tl_models.evaluate import validate
from tl_models.io import atomic_dir, write_json, write_safetensors
from tl_models.registry import parse_variant_file, register_variants
from tl_models.train import TrainConfig, train
from tl_models.version import __version__
from tl_models.visualize.similarity import token_map_similarity

from .spec import RunSpec, StudySpec, load_study

__all__ = ['StudySettings', 'pending_runs', 'result_path', 'run_study']

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """Where and how a study runs (what the command line gives, not the study file).

    Attributes:
        data_dir: The dataset folder (timm's layout), or None for the recipe's embedded dataset.
        results_dir: The study's results folder (``results/<study>``): one JSON file per finished run.
        runs_dir: Run folders (checkpoints, exported models); scratch, not kept.
        weights_dir: Where the models of ``ship`` runs go, as ``<model>.<tag>/`` hub-ready folders.
        device: 'cpu' or 'cuda' (default: cuda if available).
        jobs: Runs trained at the same time (each in its own process).
        threads: CPU threads per run (default: torch's choice; with several jobs, give each a share).
        variants: Variant YAML files of your own, registered in every process that trains.
        pretrained_file: A weight file for the runs that start from pretrained weights (e.g. a converted backbone),
            instead of their model's default tag.
    """
    data_dir: Optional[str]
    results_dir: Path
    runs_dir: Path
    weights_dir: Path
    device: Optional[str] = None
    jobs: int = 1
    threads: Optional[int] = None
    variants: Tuple[str, ...] = ()
    pretrained_file: Optional[str] = None

    @property
    def cache_dir(self) -> Path:
        """Where the runs keep cached block outputs (``--cache-frozen``), shared between them."""
        return self.runs_dir / 'feature_cache'

    def run_dir(self, group: str, key: str) -> Path:
        """The run folder of the run ``key`` (``<name>-seed<k>``) of ``group``."""
        return self.runs_dir / group / key


def result_path(results_dir: Path, run: RunSpec) -> Path:
    """The result file of ``run``."""
    return Path(results_dir) / 'runs' / run.group / f'{run.key}.json'


def pending_runs(spec: StudySpec, results_dir: Path, selected: Optional[Callable[[RunSpec], bool]] = None
                 ) -> List[RunSpec]:
    """The runs without a result yet, seed by seed (every run's first seed before any second seed)."""
    runs = [r for r in spec.runs if not result_path(results_dir, r).is_file() and (selected is None or selected(r))]
    return sorted(runs, key=lambda r: (r.seed, spec.runs.index(r)))


def _history(run_dir: Path) -> List[Dict[str, Any]]:
    with (run_dir / 'metrics.csv').open(newline='') as f:
        return [{k: (float(v) if v not in ('', None) else None) for k, v in row.items()} for row in csv.DictReader(f)]


def _environment(threads: Optional[int]) -> Dict[str, Any]:
    return dict(tl_models=__version__, torch=torch.__version__, timm=timm.__version__, python=platform.python_version(),
                machine=platform.machine(), processor=platform.processor() or None, threads=torch.get_num_threads(),
                threads_asked=threads, cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)


# Settings that may differ between a run's sessions without changing what it trains.
SESSION_SETTINGS = ('output', 'resume', 'data_dir', 'device', 'threads', 'workers', 'cache_dir')


def _as_saved(config: TrainConfig) -> Dict[str, Any]:
    """``config`` as its saved YAML reads back (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _resumable(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a checkpoint of a run started with ``config`` (session settings aside).

    A setting missing from the saved configuration (one added to ``TrainConfig`` after the run began) counts as
    its default, so upgrading the package does not throw away a half-trained run."""
    saved = run_dir / 'config.yaml'
    if not (run_dir / 'checkpoints' / 'last.safetensors').is_file() or not saved.is_file():
        return False
    before = yaml.safe_load(saved.read_text(encoding='utf-8'))
    now, defaults = _as_saved(config), _as_saved(TrainConfig())
    return all(before.get(k, defaults[k]) == v for k, v in now.items() if k not in SESSION_SETTINGS)


def _run_config(spec: StudySpec, run: RunSpec, settings: StudySettings) -> TrainConfig:
    """The training configuration of ``run`` with the command line's settings: data, device, threads, the shared
    feature cache, the teacher's run folder, and the pretrained weight file."""
    config = spec.config(run, data_dir=settings.data_dir, device=settings.device, threads=settings.threads,
                         cache_dir=str(settings.cache_dir))
    if run.teacher is not None:
        config = dataclasses.replace(config, distill_from=str(settings.run_dir(run.group, run.teacher_key)))
    if settings.pretrained_file is not None and config.pretrained:
        overlay = dict(config.model_kwargs.get('pretrained_cfg_overlay') or {}, file=str(settings.pretrained_file))
        config = dataclasses.replace(config, model_kwargs=dict(config.model_kwargs, pretrained_cfg_overlay=overlay))
    return config


def _train_run(spec_path: Path, run: RunSpec, settings: StudySettings) -> Dict[str, Any]:
    """Trains one run (resuming its folder if it holds a checkpoint of the same configuration) and writes its
    result file; in a worker."""
    spec = load_study(spec_path)
    run_dir = settings.run_dir(run.group, run.key)
    config = _run_config(spec, run, settings)
    resume = _resumable(run_dir, config)
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # stopped before its first checkpoint, or another configuration: start afresh
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / 'train.log')
    handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    package_logger = logging.getLogger('tl_models')
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        config = dataclasses.replace(config, output=None if resume else str(run_dir),
                                     resume=str(run_dir) if resume else None)
        summary = train(config)
        similarity = token_map_similarity(run_dir / 'model', config, device=config.device)
    finally:
        package_logger.removeHandler(handler)
        handler.close()
    result = dict(
        study=spec.name, group=run.group, run=run.name, model=run.model, seed=run.seed, options=run.options,
        config={k: v for k, v in dataclasses.asdict(config).items() if k not in ('output', 'resume')},
        top1=summary['selected_top1'], top5=summary['selected_top5'], epoch=summary['selected_epoch'],
        held_out=config.val_split if config.holdout == 0 else f'{config.holdout:.0%} of {config.train_split}',
        token_similarity=similarity, summary=summary, history=_history(run_dir),
        environment=_environment(settings.threads),
        finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    )
    if run.ship is not None:
        result['shipped'] = _ship(spec, run, run_dir / 'model', settings.weights_dir, config)
    write_json(result_path(settings.results_dir, run), result)
    return result


def _ship(spec: StudySpec, run: RunSpec, model_dir: Path, weights_dir: Path, config: TrainConfig) -> Dict[str, Any]:
    """Copies a run's exported model to the folder of its pretrained tag (in ``spec.ship_dtype``) and evaluates that
    folder end to end on the held-out split: the figures its model card gives for the file it ships."""
    target = weights_dir / f'{timm.models.get_arch_name(run.model)}.{run.ship}'
    with atomic_dir(target, overwrite=True) as folder:
        for item in model_dir.iterdir():
            shutil.copy2(item, folder / item.name)
        if spec.ship_dtype == 'float16':
            _to_float16(folder / 'model.safetensors')
    metrics = validate(f'local-dir:{target}', config, device=config.device)
    return dict(folder=target.name, dtype=spec.ship_dtype, top1=metrics['top1'], top5=metrics['top5'],
                images=metrics['images'], evaluated_on=metrics['split'])


def _to_float16(path: Path) -> None:
    """Rewrites a safetensors file with its floating-point tensors in float16 (half the size to ship)."""
    tensors = load_file(str(path))
    write_safetensors(path, {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                      metadata={'format': 'pt'})


def _worker_init(threads: Optional[int], variants: Tuple[str, ...]) -> None:
    """A training process: its threads, and the variants the study's models may need besides the shipped ones."""
    if threads is not None:
        torch.set_num_threads(threads)
    for path in variants:  # in the main process (one job) the script has registered them already
        if not all(timm.is_model(v.name) for v in parse_variant_file(path)):
            register_variants(path)


def run_study(spec: StudySpec, settings: StudySettings, runs: List[RunSpec],
              report: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Trains ``runs`` of ``spec``, ``settings.jobs`` at a time; returns their results in finishing order.

    A run that fails is reported and the others go on; the first failure is raised at the end.
    """
    results: List[Dict[str, Any]] = []
    failures: List[BaseException] = []

    def done(run: RunSpec, result: Optional[Dict[str, Any]], error: Optional[BaseException]) -> None:
        if error is not None:
            failures.append(error)
            report(f'failed   {run.group}/{run.key}: {type(error).__name__}: {error}')
        else:
            results.append(result)
            report(f"finished {run.group}/{run.key}: top-1 {result['top1']:.2f}% on {result['held_out']} "
                   f"({result['summary']['seconds'] / 60:.1f} min)")

    waiting = list(runs)

    def ready() -> List[RunSpec]:
        """The waiting runs whose teacher (if any) has finished."""
        return [r for r in waiting if r.teacher is None or result_path(settings.results_dir, dataclasses.replace(
            r, name=r.teacher, seed=0, teacher=None)).is_file()]

    if settings.jobs == 1:
        _worker_init(settings.threads, settings.variants)
        while ready():
            run = ready()[0]
            waiting.remove(run)
            report(f'started  {run.group}/{run.key}')
            try:
                done(run, _train_run(spec.path, run, settings), None)
            except Exception as e:  # reported, then raised after the other runs
                done(run, None, e)
    else:
        context = multiprocessing.get_context('spawn')
        with concurrent.futures.ProcessPoolExecutor(settings.jobs, mp_context=context, initializer=_worker_init,
                                                    initargs=(settings.threads, settings.variants)) as pool:
            futures: Dict[concurrent.futures.Future, RunSpec] = {}
            while True:
                for run in ready()[:settings.jobs - len(futures)]:
                    waiting.remove(run)
                    futures[pool.submit(_train_run, spec.path, run, settings)] = run
                if not futures:
                    break
                finished, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    run = futures.pop(future)
                    try:
                        done(run, future.result(), None)
                    except Exception as e:  # reported, then raised after the other runs
                        done(run, None, e)
    for run in waiting:
        report(f'skipped  {run.group}/{run.key}: its teacher {run.group}/{run.teacher_key} has no result')
    if failures:
        raise failures[0]
    return results
