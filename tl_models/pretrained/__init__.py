"""Pretrained weight files: finding, downloading and checking the file of a pretrained model before timm loads it.

Below the models (their factories call :func:`pretrained_file_overlay`) and the hub tools, which use it too.

- :mod:`.weights`: which file of a folder to use; checking a file before it loads (safetensors first,
  pickles only through ``torch.load(weights_only=True)``, hub checksums).
- :mod:`.fetch`: downloads into the huggingface_hub cache, with errors that say what to do.
- :mod:`.overlay`: the pretrained-cfg overlay that hands timm a checked local weight file.
"""
from .fetch import HubDownloadError, HubFileNotFoundError, WeightsUnavailableError, fetch_file, fetch_weight_file
from .overlay import NoPretrainedWeightsError, pretrained_file_overlay
from .weights import WeightFileError, check_weight_file, find_weight_file

__all__ = ['HubDownloadError', 'HubFileNotFoundError', 'NoPretrainedWeightsError', 'WeightFileError',
           'WeightsUnavailableError', 'check_weight_file', 'fetch_file', 'fetch_weight_file', 'find_weight_file',
           'pretrained_file_overlay']
