"""Downloads from the Hugging Face hub into its cache, with errors that say what is missing and what to do.

``huggingface_hub`` does the transfer: it downloads to a temporary file, checks the size against the
hub's, and only then moves the file into the cache, so a partial download is never found there. Its
settings (``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``) apply.
"""
from pathlib import Path
from typing import Optional, Tuple, Union

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .files import check_weight_file, weight_file_candidates

__all__ = ['HubDownloadError', 'HubFileNotFoundError', 'WeightsUnavailableError', 'fetch_file', 'fetch_weight_file',
           'split_hub_id']

PathLike = Union[str, Path]


class HubDownloadError(OSError):
    """A hub download failed (no such repo or file, or a broken transfer); the message names repo and file."""


class HubFileNotFoundError(HubDownloadError):
    """The repo exists but has no such file."""


class WeightsUnavailableError(HubDownloadError):
    """Files are not in the cache and the hub cannot be reached (offline); the message says how to get them."""


def split_hub_id(hf_hub_id: str) -> Tuple[str, Optional[str]]:
    """``'org/repo@revision'`` -> ``('org/repo', 'revision')``; no ``@`` -> revision None (the main branch)."""
    repo_id, _, revision = hf_hub_id.partition('@')
    return repo_id, revision or None


def _cache_dir(cache_dir: Optional[PathLike]) -> Path:
    return Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)


def _unreachable(hf_hub_id: str, names: str, cache_dir: Optional[PathLike], model_name: Optional[str]) -> str:
    why = ('offline mode is on (HF_HUB_OFFLINE)' if constants.HF_HUB_OFFLINE
           else f'the hub at {constants.ENDPOINT} cannot be reached')
    prefetch = (model_name or f'hf-hub:{hf_hub_id}') + (f' --cache-dir {cache_dir}' if cache_dir else '')
    return (
        f'hf-hub:{hf_hub_id}: {names} not in the cache ({_cache_dir(cache_dir)}) and {why}. To get it: '
        f'with network access, run `tl-download {prefetch}` (or load once online) to fill the '
        f'cache; or, with the files at hand, load them from a folder: '
        f"timm.create_model('local-dir:PATH', pretrained=True) for a folder with config.json and "
        f"model.safetensors, or pretrained_cfg_overlay=dict(file='PATH/model.safetensors') for a tagged model.")


def fetch_file(
        hf_hub_id: str,
        filename: str,
        cache_dir: Optional[PathLike] = None,
        model_name: Optional[str] = None,
) -> Path:
    """Downloads one file of a hub repo into the cache (or finds it there); returns its local path.

    Args:
        hf_hub_id: ``org/repo``, optionally ``@revision``.
        filename: The file in the repo.
        cache_dir: The hub cache (default: huggingface_hub's, ``HF_HUB_CACHE``).
        model_name: The name the user loads (for the hint of an offline error).

    Raises:
        HubFileNotFoundError: the repo has no such file.
        HubDownloadError: no such repo or revision, or the transfer failed (nothing is cached then).
        WeightsUnavailableError: not cached and the hub cannot be reached.
    """
    repo_id, revision = split_hub_id(hf_hub_id)
    where = f'hf-hub:{hf_hub_id}'
    try:
        path = hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, library_name='tl_models')
    except LocalEntryNotFoundError as e:
        raise WeightsUnavailableError(_unreachable(hf_hub_id, filename, cache_dir, model_name)) from e
    except GatedRepoError as e:
        raise HubDownloadError(f'{where}: a gated repo; accept its terms on the hub, then log in '
                               f'(`hf auth login`)') from e
    except RepositoryNotFoundError as e:
        raise HubDownloadError(f'{where}: no such repo on {constants.ENDPOINT} (or it is private: log in '
                               f'with `hf auth login`)') from e
    except RevisionNotFoundError as e:
        raise HubDownloadError(f'{where}: no revision {revision!r} in {repo_id}') from e
    except EntryNotFoundError as e:
        raise HubFileNotFoundError(f'{where}: the repo has no file {filename}') from e
    except (HfHubHTTPError, OSError) as e:
        raise HubDownloadError(f'{where}: downloading {filename} failed; nothing was cached, try again: {e}') from e
    return Path(path)


def fetch_weight_file(
        hf_hub_id: str,
        filename: Optional[str] = None,
        cache_dir: Optional[PathLike] = None,
        model_name: Optional[str] = None,
) -> Path:
    """Downloads (or finds in the cache) the weight file of a hub repo, checked; returns its local path.

    ``model.safetensors`` is tried before ``pytorch_model.bin`` (for ``filename``, its safetensors
    alternative before it); the first the repo has is used, then checked with :func:`check_weight_file`.

    Raises:
        HubDownloadError: no such repo, none of the files, or a failed transfer.
        WeightsUnavailableError: none of the files is cached and the hub cannot be reached.
        WeightFileError: the file is truncated, corrupt or unsafe.
    """
    candidates = weight_file_candidates(filename)
    offline = False
    for name in candidates:
        try:
            return check_weight_file(fetch_file(hf_hub_id, name, cache_dir, model_name))
        except WeightsUnavailableError:
            offline = True  # another candidate may still be cached
        except HubFileNotFoundError:
            continue
    names = ' or '.join(candidates)
    if offline:
        raise WeightsUnavailableError(_unreachable(hf_hub_id, names, cache_dir, model_name))
    raise HubDownloadError(f'hf-hub:{hf_hub_id}: the repo has no weight file ({names})')
