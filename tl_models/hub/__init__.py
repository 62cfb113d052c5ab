"""Pretrained weights on the Hugging Face hub: safe loading, export, prefetch and upload.

- :mod:`tl_models.pretrained` (re-exported here): finding, downloading and checking weight files, used by the
  model factories too.
- :mod:`.export` and :mod:`.card`: hub-ready folders (config.json, model.safetensors, README.md).
- :mod:`.prefetch`: the pretrained tags and their repos; filling the cache ahead of time.
- :mod:`.push`: uploading an exported folder.
"""
from huggingface_hub.errors import HfHubHTTPError

from ..checkpoint import CheckpointError
from ..models.adapt import CheckpointMismatchError
from ..pretrained import (
    HubDownloadError,
    HubFileNotFoundError,
    NoPretrainedWeightsError,
    WeightFileError,
    WeightsUnavailableError,
    check_weight_file,
    fetch_file,
    fetch_weight_file,
    find_weight_file,
    pretrained_file_overlay,
)
from ..registry import VariantConfigError
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
from .names import IMPORT_NOTE, UnknownArchitectureError, check_architecture
from .prefetch import PretrainedTag, cached_weight_file, list_pretrained_tags, prefetch
from .push import ExportFolderError, PushResult, check_export_folder, push_folder

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
