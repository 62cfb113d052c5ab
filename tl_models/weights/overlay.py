"""Finds, downloads and checks the weight file of a pretrained TokenLearner model before timm loads it.

timm's ``load_pretrained`` reads whatever file it is given, and its errors do not name the file. So
:func:`create_tl_vit` first resolves the source timm would use (same order: a ``hf-hub:``/``local-dir:``
name, then an explicit state dict or file, then the tag's ``hf_hub_id``), brings the file into the local
cache, checks it (:func:`check_weight_file`), and hands timm exactly that file.
"""
from pathlib import Path
from typing import Any, Dict, Optional

from timm.models import get_arch_pretrained_cfgs, list_pretrained, resolve_pretrained_cfg

from .fetch import fetch_weight_file
from .files import WeightFileError, check_weight_file, find_weight_file

__all__ = ['NoPretrainedWeightsError', 'pretrained_file_overlay']


class NoPretrainedWeightsError(RuntimeError):
    """``pretrained=True`` for a model name that has no weights; the message lists the tags that do."""


def pretrained_file_overlay(
        variant: str,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: Optional[Dict[str, Any]] = None,
        cache_dir: Any = None,
) -> Optional[Dict[str, Any]]:
    """The ``pretrained_cfg_overlay`` that makes timm load a checked local weight file.

    Args:
        variant: The registered model name (no tag).
        pretrained_cfg: What ``timm.create_model`` passes on: a tag, a cfg dict (``hf-hub:``/``local-dir:``) or None.
        pretrained_cfg_overlay: The caller's overlay, kept.
        cache_dir: The hub cache (default: huggingface_hub's).

    Returns:
        The overlay with ``file`` set to the checked weight file (and ``source`` cleared, so that timm reads
        that file); the caller's overlay unchanged when there is no file to check (an in-memory state dict,
        or a URL, which timm fetches with ``torch.load(weights_only=True)``).

    Raises:
        NoPretrainedWeightsError: the cfg names no weights.
        HubDownloadError, WeightsUnavailableError, WeightFileError: see :mod:`tl_models.pretrained.fetch` and
            :mod:`tl_models.pretrained.weights`.
    """
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg, pretrained_cfg_overlay).to_dict()
    overlay = dict(pretrained_cfg_overlay or {}, source='')
    name = f"{variant}.{cfg['tag']}" if cfg.get('tag') else variant
    registered = get_arch_pretrained_cfgs(variant).get(name)
    if cfg.get('hf_hub_id') and cfg['hf_hub_id'] != getattr(registered, 'hf_hub_id', None):
        name = f"hf-hub:{cfg['hf_hub_id']}"  # not the tag's repo: name the repo in hints
    source = cfg.get('source') or ''
    if source == 'hf-hub':
        path = fetch_weight_file(cfg['hf_hub_id'], cfg.get('hf_hub_filename'), cache_dir, name)
    elif source == 'local-dir':
        path = check_weight_file(find_weight_file(cfg['file']))
    elif cfg.get('state_dict') is not None:
        return pretrained_cfg_overlay
    elif cfg.get('file'):
        shipped = registered is not None and cfg['file'] == getattr(registered, 'file', None)
        if shipped and not Path(cfg['file']).is_file():  # a tag's own file, missing here
            raise WeightFileError(
                f"{name}: its weights ({cfg['file']}) are not in this installation: they ship with a source checkout "
                'of tl_models (too large for the wheel). Clone the repository and install it editable from there '
                '(pip install -e .), or load '
                "the file from wherever you have it: pretrained_cfg_overlay=dict(file='PATH/model.safetensors')")
        path = check_weight_file(cfg['file'])
        overlay['hf_hub_id'] = None  # the weights are this file, not the tag's hub repo
    elif cfg.get('hf_hub_id'):
        path = fetch_weight_file(cfg['hf_hub_id'], cfg.get('hf_hub_filename'), cache_dir, name)
    elif cfg.get('url'):
        return pretrained_cfg_overlay
    else:
        tags = list_pretrained(f'{variant}.*')
        hint = (f"load one of its pretrained tags ({', '.join(tags)}) with timm.create_model(NAME, pretrained=True)"
                if tags else 'it has no pretrained tags: use pretrained=False, or add a tag to its YAML entry')
        raise NoPretrainedWeightsError(f'{name} has no pretrained weights; {hint}')
    overlay['file'] = str(path)
    return overlay
