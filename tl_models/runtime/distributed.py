"""Where a run executes: the device, and single-process or DDP (``torchrun``) execution with reductions.

The process group is set up by timm's ``init_distributed_device`` (gloo on CPU, nccl on GPU, from torchrun's or
SLURM's environment), as timm's own ``train.py`` does.
"""
import dataclasses
import types
from typing import Optional

import torch
import torch.distributed as dist
from timm.utils import init_distributed_device, random_seed

__all__ = ['Distributed', 'default_device', 'seed_epoch']

# numpy takes seeds below 2**32; timm's random_seed adds the rank, so values stay below this bound.
_SEED_BOUND = 2 ** 32 - 2 ** 16


def default_device() -> str:
    """'cuda' where torch sees a GPU, else 'cpu': every command's default ``--device``."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    """Seeds torch, numpy and random for epoch ``epoch`` of process ``rank`` (timm's ``random_seed``), so that a run
    resumed after any epoch repeats the uninterrupted one."""
    random_seed((seed * 1_000_003 + epoch * 7_919) % _SEED_BOUND, rank)


@dataclasses.dataclass
class Distributed:
    """Where this process runs. Under ``torchrun`` (``WORLD_SIZE`` > 1) a process group is started. Only the main
    process (rank 0) writes files."""
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: Optional[str] = None) -> 'Distributed':
        """Reads torchrun's environment; ``device`` is 'cpu' or 'cuda' (default: :func:`default_device`)."""
        args = types.SimpleNamespace(device=device or default_device())
        resolved = init_distributed_device(args)
        return cls(resolved, args.rank, args.world_size)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over all processes (``value`` itself when not distributed)."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
