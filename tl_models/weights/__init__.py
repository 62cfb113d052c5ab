"""Weights in: finding, downloading and checking the file of a pretrained model before timm loads it, and training
checkpoints.

Below the models (their factories call :func:`pretrained_file_overlay`) and the hub tools (:mod:`tl_models.hub`:
weights out), which use it too.

- :mod:`.files`: which file of a folder to use; checking a file before it loads (safetensors first,
  pickles only through ``torch.load(weights_only=True)``, hub checksums).
- :mod:`.fetch`: downloads into the huggingface_hub cache, with errors that say what to do.
- :mod:`.overlay`: the pretrained-cfg overlay that hands timm a checked local weight file.
- :mod:`.checkpoint`: training checkpoints as safetensors (no pickle), written atomically.
"""
from .checkpoint import CheckpointError, TrainingCheckpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from .fetch import HubDownloadError, HubFileNotFoundError, WeightsUnavailableError, fetch_file, fetch_weight_file
from .files import WeightFileError, check_weight_file, find_weight_file
from .overlay import NoPretrainedWeightsError, pretrained_file_overlay

__all__ = ['CheckpointError', 'HubDownloadError', 'HubFileNotFoundError', 'NoPretrainedWeightsError',
           'TrainingCheckpoint', 'WeightFileError', 'WeightsUnavailableError', 'check_weight_file', 'fetch_file',
           'fetch_weight_file', 'find_weight_file', 'load_checkpoint', 'model_from_checkpoint',
           'pretrained_file_overlay', 'save_checkpoint']
