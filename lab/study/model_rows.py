"""One row of a study's report: a run name of a group over its seeds, with its cost and speed."""
import dataclasses
import statistics
from typing import Dict, List, Optional, Sequence

from tl_models.data import model_input

__all__ = ['ModelRow', 'sample_noun', 'speed_unit']


@dataclasses.dataclass
class ModelRow:
    """One run name of a group over its seeds.

    Attributes:
        kind: 'twin' (the group's plain twin), 'plain' (another plain ViT) or 'tokenlearner'.
        top1: Held-out top-1 of each finished seed, in seed order (percent).
        speed: Images (clips, for a video model) per second per workload (see :mod:`.speed`), if measured.
        token_similarity: Mean pairwise cosine similarity of the token maps, averaged over seeds and over the
            model's TokenLearner modules (None without TokenLearner).
    """
    group: str
    run: str
    model: str
    kind: str
    seeds: List[int]
    top1: List[float]
    gmacs: float
    params_m: float
    speed: Dict[str, float] = dataclasses.field(default_factory=dict)
    token_similarity: Optional[float] = None
    twin_gmacs: Optional[float] = None
    twin_speed: Dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.top1) if self.top1 else float('nan')

    @property
    def std(self) -> Optional[float]:
        """Sample standard deviation over seeds (None for one seed)."""
        return statistics.stdev(self.top1) if len(self.top1) > 1 else None

    @property
    def gmacs_ratio(self) -> Optional[float]:
        return self.gmacs / self.twin_gmacs if self.twin_gmacs else None

    def speedup(self, workload: str) -> Optional[float]:
        """This model's samples/s over its twin's for ``workload`` (None if either was not measured)."""
        if workload in self.speed and self.twin_speed.get(workload):
            return self.speed[workload] / self.twin_speed[workload]
        return None


def sample_noun(rows: Sequence[ModelRow]) -> str:
    """'clip' for a study of video models, else 'image' (a study's models all take clips or all take images)."""
    return 'clip' if any(model_input(row.model).is_video for row in rows) else 'image'


def speed_unit(rows: Sequence[ModelRow]) -> str:
    """What the study's speed is counted in: 'clips/s' for video models, else 'img/s'."""
    return 'clips/s' if sample_noun(rows) == 'clip' else 'img/s'
