"""Uploads an exported model folder (:mod:`tl_models.hub.export`) to a Hugging Face hub repo.

The folder is checked first: its three files are there, its config names a registered model, the
model loads from it strictly (``local-dir:``), and its card shows loading from the target repo. A card
written without a repo (``local-dir:PATH/TO/THIS/FOLDER``, as the shipped weights' cards are) is uploaded
showing the target repo instead; the folder itself is not changed. Only those three files are uploaded, in
one commit. Authentication is huggingface_hub's (``hf auth login`` or ``HF_TOKEN``).
"""
import dataclasses
import json
from pathlib import Path
from typing import Any, List, Optional, Union

import timm
from huggingface_hub import CommitOperationAdd, HfApi

from ..version import __version__
from .card import LOCAL_SOURCE
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
    if repo_id:
        card_for_repo(folder, repo_id)
    timm.create_model(f'local-dir:{folder}', pretrained=True)  # raises, naming the file, if the weights do not fit
    return [folder / name for name in EXPORT_FILES]


def card_for_repo(folder: PathLike, repo_id: str) -> str:
    """The model card of ``folder`` as uploaded to ``repo_id``: loading from the repo.

    Raises:
        ExportFolderError: the card shows loading from another repo.
    """
    card = (Path(folder) / CARD_NAME).read_text(encoding='utf-8')
    if f'hf-hub:{repo_id}' in card:
        return card
    if LOCAL_SOURCE in card and 'hf-hub:' not in card:  # exported without a repo: it is this one
        return card.replace(LOCAL_SOURCE, f'hf-hub:{repo_id}')
    raise ExportFolderError(f"{Path(folder) / CARD_NAME}: the model card does not show loading from "
                            f"'hf-hub:{repo_id}'; re-export with --repo-id {repo_id}")


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
    operations = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files if f.name != CARD_NAME]
    operations.append(CommitOperationAdd(path_in_repo=CARD_NAME,
                                         path_or_fileobj=card_for_repo(folder, repo_id).encode('utf-8')))
    commit = api.create_commit(repo_id=repo_id, repo_type='model', operations=operations, revision=revision,
                               commit_message=commit_message)
    return PushResult(files, str(getattr(commit, 'commit_url', commit)))
