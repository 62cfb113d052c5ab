"""Weights out, to the Hugging Face hub: export, model cards, upload, the pretrained tags and prefetching them.

- :mod:`tl_models.weights` (re-exported here): finding, downloading and checking weight files, used by the
  model factories too.
- :mod:`.export` and :mod:`.card`: hub-ready folders (config.json, model.safetensors, README.md).
- :mod:`.tags`: the pretrained tags and their repos; filling the cache ahead of time.
- :mod:`.push`: uploading an exported folder.
- :mod:`.convert_dinov2`: a DINOv2 backbone exported to ONNX -> a timm model folder.
"""
from huggingface_hub.errors import HfHubHTTPError

from ..models.adapt import CheckpointMismatchError
from ..registry import VariantConfigError
from ..weights import (
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
from ..weights.checkpoint import CheckpointError
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
from .push import ExportFolderError, PushResult, check_export_folder, push_folder
from .tags import PretrainedTag, cached_weight_file, list_pretrained_tags, prefetch

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
