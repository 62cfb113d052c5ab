"""Fine-tuning and evaluation on timm's training blocks, with the digits data as the embedded default (moving digits
for video models)."""
from .config import TrainConfig, TrainConfigError, add_arguments, config_from_args, load_recipe
from .trainer import train

__all__ = ['TrainConfig', 'TrainConfigError', 'add_arguments', 'config_from_args', 'load_recipe', 'train']
