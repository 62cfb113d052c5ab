"""What a study shows: one row per model (mean and spread over seeds, cost, speed), and its targets checked.

Rows come from the run result files and, when measured, the study's ``speed.json``; GMACs and parameters
are counted here (:func:`tl_models.benchmark.flops.count_gmacs`, attention included). The targets are those
of the study file's ``targets`` section (see :func:`check_targets`).
"""
import dataclasses
import json
import logging
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import timm

from tl_models.benchmark.flops import count_gmacs, count_params_m
from tl_models.io import write_json, write_text

from .model_rows import ModelRow, speed_unit
from .plot import COST_AXES, plot_top1_vs_cost
from .spec import RunSpec, StudySpec

_logger = logging.getLogger(__name__)

__all__ = ['TargetCheck', 'check_targets', 'format_table', 'load_results', 'load_speed', 'summarise',
           'write_report']

SPEED_FILE = 'speed.json'


def load_results(results_dir: Path) -> List[Dict[str, Any]]:
    """Every run result file under ``results_dir/runs``."""
    return [json.loads(p.read_text(encoding='utf-8')) for p in sorted(Path(results_dir).glob('runs/*/*.json'))]


def load_speed(results_dir: Path) -> Optional[Dict[str, Any]]:
    path = Path(results_dir) / SPEED_FILE
    return json.loads(path.read_text(encoding='utf-8')) if path.is_file() else None


def summarise(spec: StudySpec, results: List[Dict[str, Any]], speed: Optional[Dict[str, Any]] = None
              ) -> List[ModelRow]:
    """One row per (group, run name) of ``spec`` that has at least one finished seed, in file order."""
    rows: List[ModelRow] = []
    speeds = (speed or {}).get('models', {})
    by_run: Dict[tuple, List[Dict[str, Any]]] = {}
    for result in results:
        by_run.setdefault((result['group'], result['run']), []).append(result)
    named: Dict[tuple, RunSpec] = {}
    for run in spec.runs:  # one run spec per (group, run name), in file order
        named.setdefault((run.group, run.name), run)
    for (group, name), run in named.items():
        model = run.model
        done = sorted(by_run.get((group, name), []), key=lambda r: r['seed'])
        if not done:
            continue
        architecture = spec.architecture(run)  # a run may feed its model another image size, move its TokenLearner
        net = timm.create_model(model, num_classes=10, **architecture)
        img_size = architecture.get('img_size')
        input_size = (3, img_size, img_size) if img_size else net.pretrained_cfg['input_size']
        gmacs, params = count_gmacs(net, input_size), count_params_m(net)
        similarity = [statistics.fmean(r['token_similarity'].values()) for r in done if r.get('token_similarity')]
        kind = 'twin' if spec.twins.get(group) == name else 'tokenlearner' if model.startswith('tl_') else 'plain'
        rows.append(ModelRow(group, name, model, kind, [r['seed'] for r in done], [r['top1'] for r in done], gmacs,
                             params, dict(speeds.get(name, speeds.get(model, {}))),
                             statistics.fmean(similarity) if similarity else None))
    twins = {row.group: row for row in rows if row.kind == 'twin'}
    for row in rows:
        twin = twins.get(row.group)
        if twin is not None:
            row.twin_gmacs, row.twin_speed = twin.gmacs, twin.speed
    return rows


@dataclasses.dataclass
class TargetCheck:
    """One target in one group: what was asked, what was measured, and whether it is met (None: not measurable)."""
    group: str
    target: str
    measured: str
    met: Optional[bool]


def _fmt(row: ModelRow) -> str:
    spread = f' +- {row.std:.2f}' if row.std is not None else ''
    return f'{row.run} {row.mean:.2f}{spread} % (n={len(row.top1)})'


def _twin(rows: List[ModelRow], group: str) -> Optional[ModelRow]:
    return next((r for r in rows if r.group == group and r.kind == 'twin'), None)


def _claimable(rows: List[ModelRow], group: str, twin: Optional[ModelRow]) -> List[ModelRow]:
    """The TokenLearner variants of ``group`` that a claim may rest on: those with at least as many finished seeds as
    its ``twin`` (all of them while it has none)."""
    twin_seeds = len(twin.top1) if twin is not None else 0
    return [r for r in rows if r.group == group and r.kind == 'tokenlearner' and len(r.top1) >= twin_seeds]


def _check_min_top1(rows: List[ModelRow], spec: Dict[str, Any]) -> List[TargetCheck]:
    group, run = spec['run'].split('/')
    row = next((r for r in rows if r.group == group and r.run == run), None)
    target = f"{run} reaches at least {spec['top1']}% top-1"
    if row is None:
        return [TargetCheck(group, target, 'not run yet', None)]
    return [TargetCheck(group, target, _fmt(row), row.mean >= spec['top1'])]


def _check_twin_match(rows: List[ModelRow], spec: Dict[str, Any]) -> List[TargetCheck]:
    checks, unit = [], speed_unit(rows)
    for group in dict.fromkeys(r.group for r in rows):
        twin = _twin(rows, group)
        target = (f"a TokenLearner variant with as many seeds as the twin, at <= {spec['max_gmacs_ratio']}x the "
                  f"twin's GMACs and >= {spec['min_train_speedup']}x its training {unit}, is within "
                  f"{spec['max_top1_drop']} points of it")
        if twin is None:
            checks.append(TargetCheck(group, target, 'twin not run yet', None))
            continue
        cheap = [r for r in _claimable(rows, group, twin) if r.gmacs_ratio <= spec['max_gmacs_ratio']]
        fast = [r for r in cheap if (r.speedup('train_model') or 0) >= spec['min_train_speedup']]
        if not cheap:
            checks.append(TargetCheck(group, target, 'no TokenLearner variant at that cost with as many seeds as the '
                                                     'twin yet', None))
            continue
        if not twin.speed:
            best = max(cheap, key=lambda r: r.mean)
            checks.append(TargetCheck(group, target, f'speed not measured yet; best: {_fmt(best)} against twin '
                                                     f'{_fmt(twin)}', None))
            continue
        best = max(fast or cheap, key=lambda r: r.mean)
        gap = best.mean - twin.mean
        measured = (f'{_fmt(best)} at {best.gmacs_ratio:.2f}x GMACs, {best.speedup("train_model"):.2f}x training '
                    f'{unit}; twin {_fmt(twin)}; difference {gap:+.2f}')
        checks.append(TargetCheck(group, target, measured, bool(fast) and gap >= -spec['max_top1_drop']))
    return checks


def _check_beat_plain(rows: List[ModelRow], spec: Dict[str, Any]) -> List[TargetCheck]:
    checks = []
    for group in dict.fromkeys(r.group for r in rows):
        learners = _claimable(rows, group, _twin(rows, group))
        target = (f"the best TokenLearner variant with as many seeds as the twin beats the plain ViTs of equal (within "
                  f"{spec['cost_tolerance']:.0%}) or higher GMACs, twin aside, by >= {spec['margin']} points")
        if not learners:
            checks.append(TargetCheck(group, target, 'no TokenLearner variant with as many seeds as the twin yet',
                                      None))
            continue
        best = max(learners, key=lambda r: r.mean)
        rivals = [r for r in rows if r.group == group and r.kind == 'plain'
                  and r.gmacs >= (1 - spec['cost_tolerance']) * best.gmacs]
        if not rivals:
            checks.append(TargetCheck(group, target, f'best {_fmt(best)}; no plain ViT of that cost run yet', None))
            continue
        rival = max(rivals, key=lambda r: r.mean)
        gap = best.mean - rival.mean
        measured = (f'best {_fmt(best)} ({best.gmacs * 1e3:.1f} MMACs); strongest rival {_fmt(rival)} '
                    f'({rival.gmacs * 1e3:.1f} MMACs); difference {gap:+.2f}')
        checks.append(TargetCheck(group, target, measured, gap >= spec['margin']))
    return checks


def _row(rows: List[ModelRow], name: str) -> Optional[ModelRow]:
    group, run = name.split('/')
    return next((r for r in rows if r.group == group and r.run == run), None)


def _unfinished(rows: List[ModelRow], spec: Dict[str, Any], fields: Sequence[str]) -> List[str]:
    return [spec[f] for f in fields if _row(rows, spec[f]) is None]


def _check_within(rows: List[ModelRow], specs: List[Dict[str, Any]]) -> List[TargetCheck]:
    checks = []
    for spec in specs:
        run, of = _row(rows, spec['run']), _row(rows, spec['of'])
        versus = spec['of'] + (f" (seed {spec['seed']})" if 'seed' in spec else '')
        target = f"{spec['run']} within {spec['points']} points of {versus}"
        missing = _unfinished(rows, spec, ('run', 'of'))
        if missing or ('seed' in spec and spec['seed'] not in of.seeds):
            checks.append(TargetCheck(spec['run'].split('/')[0], target, 'not run yet', None))
            continue
        reference = of.top1[of.seeds.index(spec['seed'])] if 'seed' in spec else of.mean
        gap = run.mean - reference
        checks.append(TargetCheck(run.group, target, f'{_fmt(run)} against {reference:.2f} %: {gap:+.2f}',
                                  gap >= -spec['points']))
    return checks


def _check_beats(rows: List[ModelRow], specs: List[Dict[str, Any]]) -> List[TargetCheck]:
    checks = []
    for spec in specs:
        target = f"{spec['run']} more accurate than {spec['rival']}"
        if _unfinished(rows, spec, ('run', 'rival')):
            checks.append(TargetCheck(spec['run'].split('/')[0], target, 'not run yet', None))
            continue
        run, rival = _row(rows, spec['run']), _row(rows, spec['rival'])
        gap = run.mean - rival.mean
        checks.append(TargetCheck(run.group, target, f'{_fmt(run)} against {_fmt(rival)}: {gap:+.2f}', gap > 0))
    return checks


def _check_closes_gap(rows: List[ModelRow], specs: List[Dict[str, Any]]) -> List[TargetCheck]:
    checks = []
    for spec in specs:
        target = (f"{spec['run']} closes at least {spec['fraction']:.0%} of the gap from {spec['low']} to "
                  f"{spec['high']}")
        if _unfinished(rows, spec, ('run', 'low', 'high')):
            checks.append(TargetCheck(spec['run'].split('/')[0], target, 'not run yet', None))
            continue
        run, low, high = (_row(rows, spec[k]) for k in ('run', 'low', 'high'))
        gap = high.mean - low.mean
        closed = (run.mean - low.mean) / gap if gap > 0 else None
        measured = (f'{_fmt(run)}; {_fmt(low)}; {_fmt(high)}: '
                    + (f'closes {closed:.0%} of the {gap:.2f}-point gap' if closed is not None else
                       f'no gap to close ({gap:+.2f})'))
        checks.append(TargetCheck(run.group, target, measured,
                                  None if closed is None else closed >= spec['fraction']))
    return checks


def _check_speedup(rows: List[ModelRow], specs: List[Dict[str, Any]]) -> List[TargetCheck]:
    checks = []
    unit = speed_unit(rows)
    for spec in specs:
        target = f"{spec['run']} at least {spec['min']}x the {unit} of {spec['of']} ({spec['workload']})"
        run, of = _row(rows, spec['run']), _row(rows, spec['of'])
        if run is None or of is None or spec['workload'] not in run.speed or spec['workload'] not in of.speed:
            checks.append(TargetCheck(spec['run'].split('/')[0], target, 'not measured yet', None))
            continue
        ratio = run.speed[spec['workload']] / of.speed[spec['workload']]
        measured = (f"{run.speed[spec['workload']]:.1f} against {of.speed[spec['workload']]:.1f} {unit}: "
                    f'{ratio:.2f}x')
        checks.append(TargetCheck(run.group, target, measured, ratio >= spec['min']))
    return checks


TARGET_KINDS = {'min_top1': _check_min_top1, 'twin_match': _check_twin_match,
                'beat_equal_cost_plain': _check_beat_plain, 'within': _check_within, 'beats': _check_beats,
                'closes_gap': _check_closes_gap, 'speedup': _check_speedup}


def check_targets(rows: List[ModelRow], targets: Dict[str, Any]) -> List[TargetCheck]:
    """Checks the study file's targets: ``min_top1`` ({run: GROUP/RUN, top1}), ``twin_match``
    ({max_gmacs_ratio, min_train_speedup, max_top1_drop}) and ``beat_equal_cost_plain`` ({margin,
    cost_tolerance}); the last two in every group, on the TokenLearner variants with at least as many finished seeds as
    the group's twin (a claim rests on as many seeds as the model it is measured against). Comparisons of named runs
    (lists): ``within`` ({run, of, points, seed?}), ``beats`` ({run, rival}), ``closes_gap`` ({run, low, high,
    fraction}) and ``speedup`` ({run, of, workload, min})."""
    return [check for kind, spec in targets.items() for check in TARGET_KINDS[kind](rows, spec)]


def _speed_cell(row: ModelRow, workload: str) -> str:
    if workload not in row.speed:
        return '-'
    ratio = row.speedup(workload)
    return f'{row.speed[workload]:.0f}' + (f' ({ratio:.2f}x)' if ratio is not None and row.kind != 'twin' else '')


def format_table(rows: List[ModelRow]) -> str:
    """The study's table in Markdown: top-1 over seeds, cost, speed (with ratios to the twin), token similarity;
    speed in clips/s for video models."""
    unit = speed_unit(rows)
    lines = [f'| group | model | kind | seeds | top-1 % mean +- std (min-max) | MMACs (x twin) | params (M) | '
             f'train {unit}, model only | train {unit}, end to end | infer {unit}, model only | '
             f'infer {unit}, end to end | token map similarity |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        spread = f' +- {row.std:.2f} ({min(row.top1):.2f}-{max(row.top1):.2f})' if row.std is not None else ''
        ratio = f' ({row.gmacs_ratio:.2f}x)' if row.gmacs_ratio is not None and row.kind != 'twin' else ''
        name = f'`{row.run}`' if row.run == row.model else f'`{row.run}` (`{row.model}`)'
        similarity = f'{row.token_similarity:.3f}' if row.token_similarity is not None else '-'
        lines.append(
            f"| {row.group} | {name} | {row.kind} | {','.join(map(str, row.seeds))} | {row.mean:.2f}{spread} | "
            f"{row.gmacs * 1e3:.1f}{ratio} | {row.params_m:.3f} | {_speed_cell(row, 'train_model')} | "
            f"{_speed_cell(row, 'train_end_to_end')} | {_speed_cell(row, 'infer_model')} | "
            f"{_speed_cell(row, 'infer_end_to_end')} | {similarity} |")
    return '\n'.join(lines) + '\n'


def _targets_text(checks: List[TargetCheck]) -> str:
    lines = ['| group | target | measured | |', '|---|---|---|---|']
    verdict = {True: 'met', False: 'missed', None: 'open'}
    lines += [f'| {c.group} | {c.target} | {c.measured} | {verdict[c.met]} |' for c in checks]
    return '\n'.join(lines) + '\n'


def write_report(spec: StudySpec, results_dir: Path) -> List[ModelRow]:
    """Writes ``summary.md`` (table and targets), ``summary.json`` and ``summary.csv`` to ``results_dir``,
    and the plots when matplotlib is installed; returns the rows."""
    results_dir = Path(results_dir)
    speed = load_speed(results_dir)
    results = load_results(results_dir)
    rows = summarise(spec, results, speed)
    checks = check_targets(rows, spec.targets)
    measured_on = ', '.join(sorted({f"{r['held_out']} (epoch {r['epoch']})" for r in results}))
    speed_line = (f"Speed: {speed['environment']['device_name']}, batch {speed['batch_size']}, median of "
                  f"{speed['rounds']} interleaved rounds (`speed.json`).\n\n" if speed else '')
    text = (f'# {spec.name}\n\n{spec.description}\n\nTop-1 measured on: {measured_on}.\n\n{speed_line}'
            f'{format_table(rows)}')
    if checks:
        text += f'\n## Targets\n\n{_targets_text(checks)}'
    write_text(results_dir / 'summary.md', text)
    records = [dict(dataclasses.asdict(r), mean=r.mean, std=r.std, gmacs_ratio=r.gmacs_ratio) for r in rows]
    write_json(results_dir / 'summary.json', dict(
        study=spec.name, rows=records, targets=[dataclasses.asdict(c) for c in checks],
        speed_environment=(speed or {}).get('environment')))
    columns = ['group', 'run', 'model', 'kind', 'seeds', 'top1_mean', 'top1_std', 'top1_min', 'top1_max', 'gmacs',
               'params_m', 'train_model', 'train_end_to_end', 'infer_model', 'infer_end_to_end', 'token_similarity']
    csv_lines = [','.join(columns)]
    for r in rows:
        values = [r.group, r.run, r.model, r.kind, ' '.join(map(str, r.seeds)), r.mean, r.std, min(r.top1),
                  max(r.top1), r.gmacs, r.params_m, *(r.speed.get(w) for w in
                                                       ('train_model', 'train_end_to_end', 'infer_model',
                                                        'infer_end_to_end')), r.token_similarity]
        csv_lines.append(','.join('' if v is None else f'{v:.6g}' if isinstance(v, float) else str(v)
                                  for v in values))
    write_text(results_dir / 'summary.csv', '\n'.join(csv_lines) + '\n')
    _write_plots(spec, results_dir, rows)
    return rows


def _write_plots(spec: StudySpec, results_dir: Path, rows: List[ModelRow]) -> None:
    for axis in COST_AXES:
        try:
            plot_top1_vs_cost(results_dir / f'top1_vs_{axis}.png', rows, axis, title=spec.name)
        except ImportError as e:  # plots are optional: the table and targets are written anyway
            _logger.warning('%s', e)
            return
