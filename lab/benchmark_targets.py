"""The targets of the benchmark issue, checked against a run's rows.

Each target names the models it is about (a pattern), the row value it checks, and the run settings it is
defined for; a target whose models were not measured, or whose settings differ from the run's, reads 'n/a'.
"""
import dataclasses
import fnmatch
from typing import Any, Dict, List, Optional, Sequence

__all__ = ['TARGETS', 'Target', 'TargetResult', 'evaluate_targets', 'failed', 'format_targets']

# The setting of the throughput targets: CPU, fp32, batch 8, 2 threads, variants as registered.
_THROUGHPUT_SETTING = {'device': 'cpu', 'precision': 'fp32', 'batch_size': 8, 'torch_threads': 2, 'model_args': {}}
# FLOP targets hold for the registered variants at their own size, whatever the device.
_AS_REGISTERED = {'model_args': {}}


@dataclasses.dataclass(frozen=True)
class Target:
    """One requirement on one value of the matching rows.

    Attributes:
        description: What is required, in words.
        pattern: The models it is about (``fnmatch`` pattern on the row's model name).
        key: The row value checked.
        low: The value must be at least this (None: no lower limit).
        high: The value must be at most this (None: no upper limit).
        compiled: Which rows: eager (False) or compiled (True).
        setting: The run settings the target is defined for (keys of the configuration or environment).
    """
    description: str
    pattern: str
    key: str
    low: Optional[float] = None
    high: Optional[float] = None
    compiled: bool = False
    setting: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    @property
    def requirement(self) -> str:
        if self.low is not None and self.high is not None:
            return f'in [{self.low:g}, {self.high:g}]'
        return f'>= {self.low:g}' if self.low is not None else f'<= {self.high:g}'


def _within(reference: float, tolerance: float) -> Dict[str, float]:
    return {'low': reference * (1 - tolerance), 'high': reference * (1 + tolerance)}


TARGETS = [
    Target('TL-ViT-B/16 (8 tokens at block 6) inference throughput, fraction of the FLOP-ratio bound',
           'tl_vit_base_patch16_224_8at6', 'infer_of_bound', low=0.95, setting=_THROUGHPUT_SETTING),
    Target('TL-ViT-B/16 (8 tokens at block 6) training throughput, fraction of the FLOP-ratio bound',
           'tl_vit_base_patch16_224_8at6', 'train_of_bound', low=0.9, setting=_THROUGHPUT_SETTING),
    Target('TokenFuser variant inference throughput, fraction of the FLOP-ratio bound',
           'tl_*_fuse', 'infer_of_bound', low=0.9, setting=_THROUGHPUT_SETTING),
    Target('TokenFuser variant training throughput, fraction of the FLOP-ratio bound',
           'tl_*_fuse', 'train_of_bound', low=0.9, setting=_THROUGHPUT_SETTING),
    Target('video TokenLearner variant inference throughput against its plain video twin, fraction of the FLOP-ratio '
           'bound', 'tl_vivit_*', 'infer_of_bound', low=0.9, setting=_THROUGHPUT_SETTING),
    Target('video TokenLearner variant training throughput against its plain video twin, fraction of the FLOP-ratio '
           'bound', 'tl_vivit_*', 'train_of_bound', low=0.9, setting=_THROUGHPUT_SETTING),
    Target('TokenLearner/TokenFuser modules, percent of TL-ViT-B/16 forward time',
           'tl_vit_base_patch16_*', 'tl_share_pct', high=3.0),
    Target("ViT-B/16 at 224 GMACs read 17.6, as timm's tables", 'vit_base_patch16_224', 'gmacs',
           low=17.55, high=17.65, setting=_AS_REGISTERED),
    Target('TokenLearner B/16 at 384, 8 tokens at the middle: GMACs within 5% of the paper (28.7)',
           'tl_vit_base_patch16_384_8at6', 'gmacs', **_within(28.7, 0.05), setting=_AS_REGISTERED),
    Target('ViT-B/16 at 384: GMACs within 5% of the paper (55.6)',
           'vit_base_patch16_384', 'gmacs', **_within(55.6, 0.05), setting=_AS_REGISTERED),
    Target('torch.compile: graph breaks', 'tl_*', 'graph_breaks', high=0, compiled=True),
    Target('torch.compile: inference throughput relative to eager', 'tl_*', 'infer_vs_eager', low=1.0, compiled=True),
    Target('torch.compile: training throughput relative to eager', 'tl_*', 'train_vs_eager', low=1.0, compiled=True),
]


@dataclasses.dataclass(frozen=True)
class TargetResult:
    """The outcome of one target on one model: status 'pass', 'fail' or 'n/a', and what was found."""
    description: str
    model: str
    status: str
    detail: str


def _setting_mismatch(target: Target, meta: Dict[str, Any]) -> Optional[str]:
    """Why the run's settings are not the target's, or None when they are."""
    run = dict(meta['config'], **{k: v for k, v in meta.items() if k != 'config'})
    differ = [f'{k}={run.get(k)!r} (target: {v!r})' for k, v in target.setting.items() if run.get(k) != v]
    return f"defined for other settings: {', '.join(differ)}" if differ else None


def evaluate_targets(meta: Dict[str, Any], rows: Sequence[Dict[str, Any]],
                     targets: Sequence[Target] = TARGETS) -> List[TargetResult]:
    """Checks every target against the matching rows; one result per target and matching row (or one 'n/a')."""
    results = []
    for target in targets:
        matching = [r for r in rows if fnmatch.fnmatchcase(r['model'], target.pattern)
                    and r['compiled'] == target.compiled and r.get(target.key) is not None]
        mismatch = _setting_mismatch(target, meta)
        if not matching or mismatch:
            results.append(TargetResult(target.description, target.pattern, 'n/a',
                                        mismatch or f'{target.key} not measured for {target.pattern} in this run'))
            continue
        for row in matching:
            value = row[target.key]
            status = 'pass' if target.holds(value) else 'fail'
            results.append(TargetResult(target.description, row['model'], status,
                                        f'{target.key} = {value:.3f}, required {target.requirement}'))
    return results


def format_targets(results: Sequence[TargetResult]) -> str:
    """One line per result: status, model, what was required and found."""
    return '\n'.join(f'[{r.status.upper():4}] {r.model}: {r.description}: {r.detail}' for r in results)


def failed(results: Sequence[TargetResult]) -> List[TargetResult]:
    """The results that missed their target."""
    return [r for r in results if r.status == 'fail']

