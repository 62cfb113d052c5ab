"""Top-1 against cost: where TokenLearner models land against plain ViTs, one plot per cost measure.

Each group (model size) has a colour. Plain ViTs are squares (the twin filled, others hollow), TokenLearner
models are dots; error bars span one standard deviation over seeds. The dashed line of a group joins its
Pareto front: the models no other model of the group beats at equal or lower cost.

Needs matplotlib (``pip install 'tl-models[plot]'``); draws with the Agg canvas, without pyplot's global state.
"""
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from tl_models.io import atomic_path

from .model_rows import ModelRow, sample_noun

__all__ = ['COST_AXES', 'pareto_front', 'plot_top1_vs_cost']

# Cost axis name -> (axis label, with {sample} for 'image' or 'clip'; the row's value; whether lower is cheaper).
COST_AXES = {
    'gmacs': ('MMACs per {sample} (attention included)', lambda r: r.gmacs * 1e3, True),
    'train_speed': ('training {sample}s/s, model only', lambda r: r.speed.get('train_model'), False),
    'infer_speed': ('inference {sample}s/s, model only', lambda r: r.speed.get('infer_model'), False),
}


def _short(row: ModelRow) -> str:
    name = row.run if row.run != row.model else row.model
    for long, short in (('tl_vit_', 'TL-'), ('vit_', 'ViT-'), ('_patch4_32', ''), ('_patch14_dinov2', '')):
        name = name.replace(long, short)
    return name


def pareto_front(rows: Sequence[ModelRow], cost: Callable[[ModelRow], float], cheaper_is_lower: bool
                 ) -> List[ModelRow]:
    """The rows no other row beats on top-1 at equal or lower cost, from cheapest to dearest."""
    ordered = sorted(rows, key=lambda r: (cost(r) if cheaper_is_lower else -cost(r), -r.mean))
    front: List[ModelRow] = []
    for row in ordered:
        if not front or row.mean > front[-1].mean:
            front.append(row)
    return front


def plot_top1_vs_cost(path: Path, rows: Sequence[ModelRow], axis: str, title: Optional[str] = None) -> bool:
    """Writes the plot of top-1 against ``axis`` (a key of :data:`COST_AXES`) to ``path``, atomically.

    Returns:
        False (and writes nothing) if no row has that cost measured.

    Raises:
        ImportError: matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("the study plots need matplotlib: pip install 'tl-models[plot]'") from e
    label, cost, cheaper_is_lower = COST_AXES[axis]
    measured = [r for r in rows if cost(r) is not None]
    if not measured:
        return False
    figure = Figure(figsize=(7, 5), layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, group in enumerate(dict.fromkeys(r.group for r in measured)):
        colour = f'C{index % 10}'
        members = [r for r in measured if r.group == group]
        for row in members:
            marker = 's' if row.kind != 'tokenlearner' else 'o'
            face = 'none' if row.kind == 'plain' else colour
            axes.errorbar([cost(row)], [row.mean], yerr=[row.std or 0.0], color=colour, marker=marker,
                          markerfacecolor=face, capsize=2, linestyle='none')
            axes.annotate(_short(row), (cost(row), row.mean), textcoords='offset points', xytext=(4, 3), fontsize=6)
        front = pareto_front(members, cost, cheaper_is_lower)
        axes.plot([cost(r) for r in front], [r.mean for r in front], color=colour, linestyle='--', linewidth=0.8,
                  label=f'{group}: Pareto front')
    axes.plot([], [], 'ks', label='plain ViT twin (hollow: other plain ViTs)')
    axes.plot([], [], 'ko', label='TokenLearner ViT')
    axes.set_xlabel(label.format(sample=sample_noun(measured)) + ('' if cheaper_is_lower else ' (right: faster)'))
    axes.set_ylabel('top-1 (%), mean over seeds (bars: 1 std)')
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize=7, loc='lower right')
    if title:
        axes.set_title(title, fontsize=9)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip('.') or 'png', dpi=150)
    return True
