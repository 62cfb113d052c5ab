"""Throughput against GMACs: where each TokenLearner variant lands against the plain timm ViTs.

One panel per measured mode (inference, training), both axes logarithmic. Plain ViTs are black squares joined
by a line; each TokenLearner variant is a coloured dot joined to its twin by a dotted line. The dashed line
from each twin is its FLOP-ratio bound, throughput x GMACs constant, ending in a tick at the variant's GMACs:
a variant on the tick turns every saved FLOP into speed, a variant below it loses part of the saving.
Compiled entries have hollow markers. A run of video models only (rows with ``frames``) reads per clip, and its
plain models are the plain video twins.

Needs matplotlib (``pip install 'tl-models[plot]'``); draws with the Agg canvas, without pyplot's global state.
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence

from ..io import atomic_path
from .report import MODE_NAMES

__all__ = ['plot_throughput_vs_gmacs']


_SHORT_PREFIXES = (('tl_vivit_', 'TL-ViViT-'), ('tl_vit_', 'TL-'), ('vivit_', 'ViViT-'), ('vit_', 'ViT-'))


def _short_name(model: str) -> str:
    model = model.replace('_patch16', '/16')
    prefix, short = next(((p, s) for p, s in _SHORT_PREFIXES if model.startswith(p)), ('', ''))
    return short + model[len(prefix):]


def _draw_mode(axes, rows: Sequence[Dict[str, Any]], mode: str) -> None:
    video = all('frames' in r for r in rows)
    unit, plain_label = ('clip', 'plain video ViT') if video else ('image', 'timm ViT')
    key = f'{mode}_ips'
    measured = [r for r in rows if r.get(key) is not None]
    by_name = {(r['model'], r['compiled']): r for r in measured}
    for compiled in (False, True):
        plain = sorted((r for r in measured if not r['tokenlearner'] and r['compiled'] == compiled),
                       key=lambda r: r['gmacs'])
        if plain:
            axes.plot([r['gmacs'] for r in plain], [r[key] for r in plain], color='black', linewidth=0.8,
                      linestyle=':' if compiled else '-', marker='s', markerfacecolor='none' if compiled else 'black',
                      label=f'{plain_label} (compiled)' if compiled else plain_label)
    variants = [r for r in measured if r['tokenlearner']]
    bound_label = 'FLOP-ratio bound'
    for index, row in enumerate(variants):
        colour = f'C{index % 10}'  # matplotlib's default colour cycle
        axes.plot([row['gmacs']], [row[key]], marker='o', linestyle='none', color=colour,
                  markerfacecolor='none' if row['compiled'] else colour,
                  label='TokenLearner variant (dotted to its twin)' if index == 0 else None)
        twin = by_name.get((row['baseline'], row['compiled']))
        if twin is not None:
            axes.plot([twin['gmacs'], row['gmacs']], [twin[key], row[key]], color=colour, linestyle=':', linewidth=0.8)
            bound_ips = twin[key] * twin['gmacs'] / row['gmacs']
            axes.plot([twin['gmacs'], row['gmacs']], [twin[key], bound_ips], color='grey', linestyle='--',
                      linewidth=0.8, marker='_', markevery=[1], markersize=10, label=bound_label)
            bound_label = None
    for row in measured:
        label = _short_name(row['model']) + (' (c)' if row['compiled'] else '')
        axes.annotate(label, (row['gmacs'], row[key]), textcoords='offset points',
                      xytext=(4, 4), fontsize=6)
    axes.set_xscale('log')
    axes.set_yscale('log')
    axes.set_xlabel(f'GMACs per {unit}')
    axes.set_ylabel(f'{MODE_NAMES[mode]} throughput ({unit}s/s)')
    axes.set_title(MODE_NAMES[mode])
    axes.grid(True, which='both', linewidth=0.3)


def plot_throughput_vs_gmacs(path: Path, rows: Sequence[Dict[str, Any]], meta: Dict[str, Any]) -> None:
    """Writes the plot to ``path`` (format from its extension: .png, .svg, .pdf), atomically.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: no row has a measured throughput.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("the benchmark plot needs matplotlib: pip install 'tl-models[plot]'") from e
    modes: List[str] = [m for m in MODE_NAMES if any(r.get(f'{m}_ips') is not None for r in rows)]
    if not modes:
        raise ValueError('no measured throughput to plot (a FLOP-only run has none)')
    figure = Figure(figsize=(6.5 * len(modes), 5.5), layout='constrained')
    FigureCanvasAgg(figure)
    for index, mode in enumerate(modes):
        _draw_mode(figure.add_subplot(1, len(modes), index + 1), rows, mode)
    first = figure.axes[0]
    first.legend(fontsize=6, loc='best')
    config = meta['config']
    compiled = {'off': '', 'on': ', compiled', 'both': '; (c): compiled'}[config['compile']]
    figure.suptitle(f"{meta['device_name']}, {config['precision']}, batch {config['batch_size']}{compiled}", fontsize=9)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip('.') or 'png', dpi=150)
