"""The model card (``README.md``) of an exported model folder."""
import dataclasses
import json
from typing import Any, Dict, List, Optional

import yaml

from .names import IMPORT_NOTE

__all__ = ['Provenance', 'model_card']

CITATION = """@article{ryoo2021tokenlearner,
  title={TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?},
  author={Ryoo, Michael S. and Piergiovanni, AJ and Arnab, Anurag and Dehghani, Mostafa and Angelova, Anelia},
  journal={arXiv preprint arXiv:2106.11297},
  year={2021}
}"""


@dataclasses.dataclass
class Provenance:
    """What exported weights are, for the model card.

    Attributes:
        summary: What the weights are, in a sentence or two (trained how, or an initialisation for fine-tuning).
        dataset: The dataset they were trained on, if any.
        metrics: Evaluation results, name -> value.
        training: Other facts about the training run (epoch, checkpoint file, EMA), name -> value.
        started_from: The weights training started from (a tag, a weight file, a random initialisation), if known.
    """
    summary: str
    dataset: Optional[str] = None
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    training: Dict[str, Any] = dataclasses.field(default_factory=dict)
    started_from: Optional[str] = None


def _front_matter(license_id: str, dataset: Optional[str]) -> str:
    meta: Dict[str, Any] = {
        'tags': ['image-classification', 'timm', 'tl_models', 'tokenlearner'],
        'library_name': 'timm',
        'pipeline_tag': 'image-classification',
        'license': license_id,
    }
    if dataset:
        meta['datasets'] = [dataset]
    return f'---\n{yaml.safe_dump(meta, sort_keys=False)}---\n'


# The card's loading code for a folder exported without a hub repo; tl-push puts the repo in its place.
LOCAL_SOURCE = 'local-dir:PATH/TO/THIS/FOLDER'


def _usage(repo_id: Optional[str]) -> str:
    name = f'hf-hub:{repo_id}' if repo_id else LOCAL_SOURCE
    return f"""## How to load

{IMPORT_NOTE}

```python
import timm
import torch

import tl_models  # registers the tl_ architectures with timm (an installed tl-models also does on `import timm`)

model = timm.create_model('{name}', pretrained=True).eval()
data_config = timm.data.resolve_model_data_config(model)
transform = timm.data.create_transform(**data_config, is_training=False)
with torch.no_grad():
    logits = model(transform(image).unsqueeze(0))  # image: a PIL image
```

A local copy of this repo (config.json, model.safetensors) loads with
`timm.create_model('local-dir:PATH', pretrained=True)`; the weights are safetensors, no code runs on load.
"""


def _variant(config: Dict[str, Any]) -> str:
    """The variant's own name (a ``config.json`` of a variant of another YAML file names the generic architecture)."""
    return config.get('tl_models', {}).get('variant', config['architecture'])


def _rebuilt_as(config: Dict[str, Any]) -> str:
    if _variant(config) == config['architecture']:
        return ''
    return (f"; `config.json` names `{config['architecture']}`, which rebuilds it from the recorded arguments in any "
            'Python with tl-models installed, without the YAML file that defines the variant')


def _started_from(config: Dict[str, Any]) -> List[str]:
    """The weights training started from (``tl_models.started_from``: a tag, a weight file, a random
    initialisation), where the export knew it."""
    started_from = config.get('tl_models', {}).get('started_from')
    return [f'- **Started from:** {started_from}'] if started_from else []


def _details(config: Dict[str, Any], num_params: int) -> List[str]:
    cfg = config['pretrained_cfg']
    args = config.get('model_args', {})
    if 'num_tokens' in args:
        fuser = ' (TokenLearner + TokenFuser around every later block)' if args.get('use_tokenfuse') else ''
        architecture = (f"a timm Vision Transformer whose TokenLearner learns {args['num_tokens']} tokens before "
                        f"block {args.get('tokenlearner_loc', '?')}{fuser}")
    else:
        architecture = 'a plain timm model without TokenLearner'
    rows = [
        f"- **Architecture:** `{_variant(config)}`: {architecture}" + _rebuilt_as(config),
        f"- **Classes:** {config['num_classes']}",
        *_started_from(config),
        f'- **Parameters:** {num_params / 1e6:.2f} M',
        f"- **Input:** {' x '.join(map(str, cfg['input_size']))}, mean {list(cfg['mean'])}, std {list(cfg['std'])}, "
        f"{cfg.get('interpolation', 'bicubic')} resize, crop_pct {cfg.get('crop_pct')}",
        f"- **Model arguments:** `{json.dumps(args, sort_keys=True)}`",
        '- **Paper:** Ryoo et al., "TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?", '
        'NeurIPS 2021, arXiv:2106.11297',
    ]
    return rows


def _metrics(provenance: Provenance) -> str:
    if not provenance.metrics:
        return '## Metrics\n\nNo evaluation metrics were recorded for these weights.\n'
    rows = '\n'.join(f'| {k} | {v:.4g} |' if isinstance(v, float) else f'| {k} | {v} |'
                     for k, v in provenance.metrics.items())
    on = f' on {provenance.dataset}' if provenance.dataset else ''
    return f'## Metrics\n\nMeasured by the training run{on}:\n\n| metric | value |\n|---|---|\n{rows}\n'


def model_card(
        config: Dict[str, Any],
        provenance: Provenance,
        num_params: int,
        repo_id: Optional[str] = None,
) -> str:
    """The ``README.md`` of an exported folder: what it is, how to load it, metrics, license.

    Args:
        config: The folder's ``config.json`` content (timm's layout).
        provenance: What the weights are.
        num_params: The model's number of parameters.
        repo_id: The hub repo the folder is for (``org/name``); without it, the card shows ``local-dir:`` loading.
    """
    license_id = config['pretrained_cfg'].get('license') or 'other'
    title = repo_id or _variant(config)
    sections = [
        _front_matter(license_id, provenance.dataset),
        f'# Model card for {title}\n',
        f'{provenance.summary}\n',
        '## Model details\n\n' + '\n'.join(_details(config, num_params)) + '\n',
        _usage(repo_id),
        _metrics(provenance),
    ]
    if provenance.training:
        facts = dict(provenance.training, **({'dataset': provenance.dataset} if provenance.dataset else {}))
        sections.append('## Training\n\n' + '\n'.join(f'- **{k}:** {v}' for k, v in facts.items()) + '\n')
    sections += [
        f'## License\n\n{license_id}. Weights that started from another checkpoint also carry its terms.\n',
        f'## Citation\n\n```bibtex\n{CITATION}\n```\n',
    ]
    return '\n'.join(sections)
