"""Benchmark rows compared and written out: ratios against the twin, a table for the screen, CSV and JSON files.

For a TokenLearner row measured beside its twin (same compile setting):

- ``flop_bound`` = twin GMACs / variant GMACs: the speed-up the saved compute allows;
- ``{mode}_speedup`` = how many times faster than the twin: the median over the timing rounds of
  (twin seconds / variant seconds) in that round. Each round runs both back to back, so a slow stretch of a
  noisy machine slows both and cancels out (the ratio of the two medians, where rounds do not pair up);
- ``{mode}_of_bound`` = speed-up / bound: 1.0 turns every saved FLOP into time saved.

For a compiled row measured beside its eager form, ``{mode}_vs_eager`` = the same paired ratio against eager.

A video model's row also holds ``frames`` (T of its clips ``[B, 3, T, H, W]``); its GMACs are per clip, its
``img/s`` are clips per second.
"""
import csv
import io
import re
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..io import write_json, write_text

__all__ = ['CSV_COLUMNS', 'add_comparisons', 'default_output_prefix', 'format_table', 'paired_speedup', 'write_csv',
           'write_results_json']

MODE_NAMES = {'infer': 'inference', 'train': 'training'}

# Every scalar a row may hold, in file order: (key, table header or None to leave it off the screen, format).
_COLUMNS = [
    ('model', 'model', '{}'),
    ('compiled', 'compiled', '{}'),
    ('tokenlearner', None, '{}'),
    ('baseline', None, '{}'),
    ('img_size', 'px', '{}'),
    ('frames', 'frames', '{}'),
    ('batch_size', None, '{}'),
    ('params_m', 'params M', '{:.1f}'),
    ('gmacs', 'GMACs', '{:.4g}'),
    ('flop_bound', 'bound', '{:.2f}x'),
    ('infer_ips', 'infer img/s', '{:.1f}'),
    ('infer_spread_pct', '+-%', '{:.0f}'),
    ('infer_ms', 'infer ms', '{:.1f}'),
    ('infer_speedup', None, '{:.3f}'),
    ('infer_of_bound', 'of bound', '{:.2f}'),
    ('infer_vs_eager', 'vs eager', '{:.2f}'),
    ('train_ips', 'train img/s', '{:.1f}'),
    ('train_spread_pct', '+-%', '{:.0f}'),
    ('train_ms', 'train ms', '{:.1f}'),
    ('train_speedup', None, '{:.3f}'),
    ('train_of_bound', 'of bound', '{:.2f}'),
    ('train_vs_eager', 'vs eager', '{:.2f}'),
    ('infer_peak_mb', 'infer MiB', '{:.0f}'),
    ('train_peak_mb', 'train MiB', '{:.0f}'),
    ('tl_share_pct', 'TL/TF %', '{:.2f}'),
    ('graph_breaks', 'breaks', '{}'),
]
CSV_COLUMNS = [key for key, _, _ in _COLUMNS]


def _find(rows: Sequence[Dict[str, Any]], model: str, compiled: bool) -> Optional[Dict[str, Any]]:
    return next((r for r in rows if r['model'] == model and r['compiled'] == compiled), None)


def paired_speedup(row: Dict[str, Any], other: Dict[str, Any], mode: str) -> float:
    """How many times faster ``row`` ran than ``other`` in ``mode``: the median of the per-round ratios when both
    were timed in the same rounds, else the ratio of their throughputs."""
    ours, theirs = row.get(f'{mode}_round_s'), other.get(f'{mode}_round_s')
    if ours and theirs and len(ours) == len(theirs):
        return statistics.median(t / o for t, o in zip(theirs, ours))
    return row[f'{mode}_ips'] / other[f'{mode}_ips']


def add_comparisons(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Adds the twin and eager comparisons to the rows that have their counterpart measured; returns the rows."""
    for row in rows:
        twin = _find(rows, row['baseline'], row['compiled']) if row['baseline'] else None
        if twin is not None:
            row['flop_bound'] = twin['gmacs'] / row['gmacs']
        eager = _find(rows, row['model'], False) if row['compiled'] else None
        for mode in MODE_NAMES:
            key = f'{mode}_ips'
            if twin is not None and key in row and key in twin:
                row[f'{mode}_speedup'] = paired_speedup(row, twin, mode)
                row[f'{mode}_of_bound'] = row[f'{mode}_speedup'] / row['flop_bound']
            if eager is not None and key in row and key in eager:
                row[f'{mode}_vs_eager'] = paired_speedup(row, eager, mode)
    return rows


def _cell(row: Dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return fmt.format(value)


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """A plain-text table of the rows, with the columns at least one row fills."""
    columns = [(k, h, f) for k, h, f in _COLUMNS if h is not None and any(r.get(k) is not None for r in rows)]
    if not any(r['compiled'] for r in rows):
        columns = [c for c in columns if c[0] != 'compiled']
    cells = [[h for _, h, _ in columns]] + [[_cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def write_csv(path: Path, rows: Sequence[Dict[str, Any]]) -> None:
    """Writes the scalar fields of the rows as CSV, atomically (empty cells where a row has no value)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_results_json(path: Path, meta: Dict[str, Any], rows: Sequence[Dict[str, Any]],
                       targets: Sequence[Dict[str, Any]]) -> None:
    """Writes everything, round times included, as JSON, atomically."""
    write_json(path, {'meta': meta, 'rows': list(rows), 'targets': list(targets)})


def _slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')


def default_output_prefix(meta: Dict[str, Any]) -> Path:
    """``results/benchmark_<device name>_<precision>_b<batch>[_compile-<setting>]_<date>`` (extension added later)."""
    config = meta['config']
    parts = ['benchmark', _slug(meta['device_name']), config['precision'], f"b{config['batch_size']}"]
    if config['compile'] != 'off':
        parts.append(f"compile-{config['compile']}")
    if config['flops_only']:
        parts.append('flops')
    parts.append(meta['date'][:10].replace('-', ''))
    return Path('results') / '_'.join(parts)
