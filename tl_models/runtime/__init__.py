"""Where and how a run executes: device and DDP processes, per-epoch seeding, progress bars."""
from .distributed import Distributed, default_device, seed_epoch
from .progress import EpochProgress

__all__ = ['Distributed', 'EpochProgress', 'default_device', 'seed_epoch']
