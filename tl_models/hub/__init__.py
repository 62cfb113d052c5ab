"""Pretrained weights on the Hugging Face hub: safe loading, export, prefetch and upload.

- :mod:`.weights`: which file of a folder to use; checking a file before it loads (safetensors first,
  pickles only through ``torch.load(weights_only=True)``, hub checksums).
- :mod:`.fetch`: downloads into the huggingface_hub cache, with errors that say what to do.
- :mod:`.pretrained`: used by ``create_tl_vit`` to hand timm a checked local weight file.
- :mod:`.export` and :mod:`.card`: hub-ready folders (config.json, model.safetensors, README.md).
- :mod:`.prefetch`: the pretrained tags and their repos; filling the cache ahead of time.
- :mod:`.push`: uploading an exported folder.
"""
from huggingface_hub.errors import HfHubHTTPError

from ..models.adapt import CheckpointMismatchError
from ..registry import VariantConfigError
from ..train.checkpoint import CheckpointError
from .card import Provenance, model_card
from .export import (
    ExportError,
    checkpoint_provenance,
    export_checkpoint,
    export_model,
    export_source,
    find_run_checkpoint,
    tag_entry,
)
from .fetch import HubDownloadError, HubFileNotFoundError, WeightsUnavailableError, fetch_file, fetch_weight_file
from .names import IMPORT_NOTE, UnknownArchitectureError, check_architecture
from .prefetch import PretrainedTag, cached_weight_file, list_pretrained_tags, prefetch
from .pretrained import NoPretrainedWeightsError, pretrained_file_overlay
from .push import ExportFolderError, PushResult, check_export_folder, push_folder
from .weights import WeightFileError, check_weight_file, find_weight_file

# What the scripts report as one line, without a traceback: bad input, or files that are missing,
# unavailable, damaged or do not fit. KeyError: an unknown variant; ValueError: a malformed model name.
CLI_ERRORS = (CheckpointError, CheckpointMismatchError, ExportError, ExportFolderError, FileExistsError,
              HfHubHTTPError, HubDownloadError, NoPretrainedWeightsError, UnknownArchitectureError,
              VariantConfigError, WeightFileError, KeyError, ValueError)

__all__ = [
    'CLI_ERRORS', 'IMPORT_NOTE', 'ExportError', 'ExportFolderError', 'HubDownloadError', 'HubFileNotFoundError',
    'NoPretrainedWeightsError', 'PretrainedTag', 'Provenance', 'PushResult', 'UnknownArchitectureError',
    'WeightFileError', 'WeightsUnavailableError', 'cached_weight_file', 'check_architecture', 'check_export_folder',
    'check_weight_file', 'checkpoint_provenance', 'export_checkpoint', 'export_model', 'export_source', 'fetch_file',
    'fetch_weight_file', 'find_run_checkpoint', 'find_weight_file', 'list_pretrained_tags', 'model_card', 'prefetch',
    'pretrained_file_overlay', 'push_folder', 'tag_entry'
]
