"""Progress of an epoch: a tqdm bar on a terminal, nothing per batch otherwise (the trainer logs a line per epoch)."""
import sys
from typing import Optional

__all__ = ['EpochProgress']


class EpochProgress:
    """A transient bar over ``total`` batches, shown only when stderr is a terminal and ``enabled``."""

    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=description, leave=False, dynamic_ncols=True, unit='batch')

    def update(self, loss: Optional[float] = None) -> None:
        if self.bar is not None:
            if loss is not None:
                self.bar.set_postfix(loss=f'{loss:.4f}', refresh=False)
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
