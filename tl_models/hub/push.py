"""Uploads an exported model folder (:mod:`tl_models.hub.export`) to a Hugging Face hub repo.

The folder is checked first: its three files are there, its config names a registered model, the
model loads from it strictly (``local-dir:``), and its card shows loading from the target repo. Only
those three files are uploaded. Authentication is huggingface_hub's (``hf auth login`` or ``HF_TOKEN``).
"""
import dataclasses
import json
from pathlib import Path
from typing import Any, List, Optional, Union

import timm
from huggingface_hub import HfApi

from ..version import __version__
from .export import CARD_NAME, CONFIG_NAME, EXPORT_FILES
from .names import check_architecture

__all__ = ['ExportFolderError', 'PushResult', 'check_export_folder', 'push_folder']

PathLike = Union[str, Path]


class ExportFolderError(ValueError):
    """A folder is not a complete, loadable export for the repo; the message names the folder and the problem."""


def check_export_folder(folder: PathLike, repo_id: Optional[str] = None) -> List[Path]:
    """Checks an exported folder before upload; returns the files to upload.

    Args:
        folder: The folder written by ``tl-export``.
        repo_id: The target repo; if given, the model card must show loading from it.

    Raises:
        ExportFolderError: a file is missing, the card is for another repo.
        UnknownArchitectureError: the config names an unregistered model.
        CheckpointMismatchError, WeightFileError: the weights do not load into the model of the config.
    """
    folder = Path(folder)
    missing = [name for name in EXPORT_FILES if not (folder / name).is_file()]
    if missing:
        raise ExportFolderError(f"{folder}: not an exported model folder; missing {', '.join(missing)} "
                                f'(write one with tl-export)')
    config = json.loads((folder / CONFIG_NAME).read_text(encoding='utf-8'))
    check_architecture(config.get('architecture', ''), str(folder / CONFIG_NAME))
    if repo_id and f'hf-hub:{repo_id}' not in (folder / CARD_NAME).read_text(encoding='utf-8'):
        raise ExportFolderError(f"{folder / CARD_NAME}: the model card does not show loading from 'hf-hub:{repo_id}'; "
                                f're-export with --repo-id {repo_id}')
    timm.create_model(f'local-dir:{folder}', pretrained=True)  # raises, naming the file, if the weights do not fit
    return [folder / name for name in EXPORT_FILES]


@dataclasses.dataclass
class PushResult:
    """What :func:`push_folder` uploaded (or would upload, for a dry run)."""
    files: List[Path]
    commit_url: Optional[str]


def push_folder(
        folder: PathLike,
        repo_id: str,
        private: bool = False,
        revision: Optional[str] = None,
        commit_message: str = 'Upload TokenLearner model',
        dry_run: bool = False,
        api: Optional[Any] = None,
) -> PushResult:
    """Checks ``folder`` and uploads its files to the model repo ``repo_id`` (created if needed).

    Args:
        folder: An exported model folder.
        repo_id: ``org/name`` on the hub.
        private: Create the repo private (an existing repo keeps its visibility).
        revision: The branch to commit to (default: main).
        commit_message: The commit message.
        dry_run: Check only; upload nothing (``commit_url`` is None).
        api: The ``HfApi`` to use (default: a new one).

    Raises:
        as :func:`check_export_folder`, and huggingface_hub's errors of the upload.
    """
    files = check_export_folder(folder, repo_id)
    if dry_run:
        return PushResult(files, None)
    api = api or HfApi(library_name='tl_models', library_version=__version__)
    api.create_repo(repo_id, repo_type='model', private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, repo_type='model', folder_path=str(folder), revision=revision,
                               commit_message=commit_message, allow_patterns=[f.name for f in files])
    return PushResult(files, str(getattr(commit, 'commit_url', commit)))
