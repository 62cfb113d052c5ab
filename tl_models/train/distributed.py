"""Single-process or DDP (``torchrun``) execution: device, rank, and reductions across processes."""
import dataclasses
import os
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ['Distributed']


@dataclasses.dataclass
class Distributed:
    """Where this process runs. Under ``torchrun`` (``WORLD_SIZE`` > 1) a process group is started:
    gloo on CPU, nccl on GPU. Only the main process (rank 0) writes files."""
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
        """Reads torchrun's environment; ``device`` is 'cpu' or 'cuda' (default: cuda if available)."""
        device_type = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        world_size = int(os.environ.get('WORLD_SIZE', '1'))
        if world_size == 1:
            return cls(torch.device(device_type))
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        if device_type == 'cuda':
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend='nccl' if device_type == 'cuda' else 'gloo')
        index = local_rank if device_type == 'cuda' else None
        return cls(torch.device(device_type, index), dist.get_rank(), dist.get_world_size())

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over all processes (``value`` itself when not distributed)."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
