"""Pretrained tags and their hub repos; prefetching their weights into the huggingface_hub cache."""
import dataclasses
import json
from pathlib import Path
from typing import List, Optional, Union

import timm
from huggingface_hub import try_to_load_from_cache

from ..registry import get_variant, list_plain_variants, list_variants
from ..weights.fetch import fetch_file, fetch_weight_file, split_hub_id
from ..weights.files import weight_file_candidates
from ..weights.overlay import NoPretrainedWeightsError
from .names import check_architecture

__all__ = ['PretrainedTag', 'cached_weight_file', 'list_pretrained_tags', 'prefetch']

PathLike = Union[str, Path]


@dataclasses.dataclass(frozen=True)
class PretrainedTag:
    """One pretrained tag of a registered variant.

    Attributes:
        name: ``<variant>.<tag>``, the name to load.
        hf_hub_id: The hub repo of its weights (``org/name``, optionally ``@revision``), or None for weights
            shipped with the package.
        filename: The weight file named by the tag, if it names one (else model.safetensors / pytorch_model.bin).
        description: The tag's description.
        file: The weight file shipped with the package, if the tag names one (it is used, no download).
    """
    name: str
    hf_hub_id: Optional[str]
    filename: Optional[str]
    description: str
    file: Optional[Path] = None

    @property
    def source(self) -> str:
        """Where the weights come from: the hub repo, or 'tl-models' for weights shipped with the package."""
        return 'tl-models' if self.file else str(self.hf_hub_id)


def _pretrained_tag(variant_name: str, tag: str, fields: dict) -> PretrainedTag:
    file = Path(fields['file']) if 'file' in fields else None
    return PretrainedTag(f'{variant_name}.{tag}', fields.get('hf_hub_id'), fields.get('hf_hub_filename'),
                         fields.get('description', ''), file)


def list_pretrained_tags() -> List[PretrainedTag]:
    """Every pretrained tag of every registered variant (TokenLearner and plain twins), sorted by name."""
    return sorted((_pretrained_tag(name, tag, fields)
                   for name in list_variants() + list_plain_variants()
                   for tag, fields in get_variant(name).tags.items()), key=lambda t: t.name)


def cached_weight_file(
        hf_hub_id: str,
        filename: Optional[str] = None,
        cache_dir: Optional[PathLike] = None,
) -> Optional[Path]:
    """The weight file of a hub repo if the cache holds it (no network), else None."""
    repo_id, revision = split_hub_id(hf_hub_id)
    for name in weight_file_candidates(filename):
        path = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
        if isinstance(path, str):
            return Path(path)
    return None


def _tag_cfg(name: str) -> PretrainedTag:
    """The tag ``name`` loads: its own, or the variant's default (first) tag when ``name`` has none."""
    variant = get_variant(name)  # KeyError naming close variants
    _, tag = timm.models.split_model_name_tag(name)
    tag = tag or next(iter(variant.tags), '')
    if tag not in variant.tags:
        known = ', '.join(f'{variant.name}.{t}' for t in variant.tags) or 'none'
        what = f"no pretrained tag '{tag}'" if tag else 'no pretrained tags'
        raise NoPretrainedWeightsError(f'{variant.name}: {what}; its tags: {known}')
    return _pretrained_tag(variant.name, tag, variant.tags[tag])


def prefetch(name: str, cache_dir: Optional[PathLike] = None) -> List[Path]:
    """Downloads what ``timm.create_model(name, pretrained=True)`` needs into the cache; returns the local files.

    Args:
        name: ``tl_<variant>[.<tag>]`` (no tag: the default tag) or ``hf-hub:ORG/NAME`` (config.json and weights).
        cache_dir: The hub cache (default: huggingface_hub's, ``HF_HUB_CACHE``).

    Raises:
        KeyError: an unknown variant.
        NoPretrainedWeightsError: no such tag.
        UnknownArchitectureError: a hub repo whose config names an unregistered model.
        HubDownloadError, WeightsUnavailableError, WeightFileError: as :func:`fetch_weight_file`.
    """
    source, model_id = timm.models.parse_model_name(name)
    if source == 'local-dir':
        raise ValueError(f'{name}: a local folder; there is nothing to download')
    if source == 'hf-hub':
        config_path = fetch_file(model_id, 'config.json', cache_dir, name)
        config = json.loads(config_path.read_text(encoding='utf-8'))
        check_architecture(config.get('architecture', ''), f'{name} (config.json)')
        filename = config.get('pretrained_cfg', {}).get('hf_hub_filename')
        return [config_path, fetch_weight_file(model_id, filename, cache_dir, name)]
    tag = _tag_cfg(model_id)
    if tag.file:
        return [tag.file]  # shipped with the package: nothing to download
    return [fetch_weight_file(tag.hf_hub_id, tag.filename, cache_dir, tag.name)]
