"""The training configuration: defaults (the embedded digits run), YAML recipes, command-line overrides.

Precedence, lowest first: the defaults below, a recipe file (``--config configs/train/....yaml``),
then flags given on the command line. The resolved configuration is saved with every run.
"""
import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

__all__ = ['TrainConfig', 'TrainConfigError', 'add_arguments', 'config_from_args', 'load_recipe']


class TrainConfigError(ValueError):
    """A bad training configuration, reported before any training starts."""


def _field(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=dict(help=help))
    return dataclasses.field(default=default, metadata=dict(help=help))


@dataclasses.dataclass
class TrainConfig:
    """Everything a run needs. The defaults are the embedded default run: a small TokenLearner ViT on
    scikit-learn's digits (no download), which reaches >= 95% held-out top-1 in a few minutes on 2 CPU cores."""
    # model
    model: str = _field('tl_vit_pico_patch4_16_8at2', 'model name: a registered tl_ variant[.tag], hf-hub:ORG/REPO '
                        'or local-dir:PATH')
    pretrained: bool = _field(False, "start from the model's pretrained weights (its tag, hf-hub: or local-dir:)")
    num_classes: Optional[int] = _field(None, "classifier size; default: the dataset's number of classes")
    drop_path: float = _field(0.1, 'stochastic depth rate')
    freeze_backbone: bool = _field(False, 'train only the TokenLearner/TokenFuser modules and the head')
    grad_checkpointing: bool = _field(False, 'recompute blocks in backward to save memory')
    compile: bool = _field(False, 'torch.compile the model')
    # data
    data_dir: Optional[str] = _field(None, "image folder with train/ and validation/ sub-folders (timm's layout)")
    dataset: str = _field('', "'digits' (scikit-learn, embedded), 'folder' (needs --data-dir) or a timm dataset "
                          "name such as torch/cifar10 (its backend must be installed); default: digits without "
                          "--data-dir, else folder")
    train_split: str = _field('train', 'training split (sub-folder or dataset split)')
    val_split: str = _field('validation', 'held-out split (sub-folder or dataset split)')
    img_size: Optional[int] = _field(None, "input size; default: the model's")
    workers: int = _field(0, 'data loader worker processes')
    scale: List[float] = _field([0.85, 1.0], 'random-resized-crop area range')  # noqa: RUF009 (a field())
    ratio: List[float] = _field([0.9, 1.1], 'random-resized-crop aspect-ratio range')  # noqa: RUF009
    hflip: float = _field(0.0, 'horizontal flip probability (0 for digits: a flipped digit is another shape)')
    color_jitter: float = _field(0.0, 'colour jitter strength')
    aa: Optional[str] = _field(None, "timm auto-augment policy, e.g. 'rand-m9-mstd0.5'")
    reprob: float = _field(0.0, 'random erasing probability')
    # optimisation
    epochs: int = _field(60, 'number of epochs')
    batch_size: int = _field(64, 'batch size per process')
    opt: str = _field('adamw', "timm optimizer name")
    lr: float = _field(2e-3, 'peak learning rate')
    min_lr: float = _field(1e-5, 'final learning rate of the cosine schedule')
    warmup_epochs: int = _field(3, 'linear warm-up epochs')
    weight_decay: float = _field(0.05, 'decoupled weight decay (not on norms, biases, embeddings)')
    layer_decay: Optional[float] = _field(None, 'layer-wise learning-rate decay, e.g. 0.75')
    clip_grad: Optional[float] = _field(None, 'clip the gradient norm to this value')
    smoothing: float = _field(0.1, 'label smoothing')
    mixup: float = _field(0.0, 'mixup alpha (0 = off)')
    cutmix: float = _field(0.0, 'cutmix alpha (0 = off)')
    model_ema: bool = _field(False, 'keep an exponential moving average of the weights (ModelEmaV3)')
    model_ema_decay: float = _field(0.998, 'EMA decay per step')
    amp: bool = _field(False, 'bfloat16 autocast')
    seed: int = _field(0, 'random seed (each epoch reseeds from it, so resumed runs repeat exactly)')
    # run
    output: Optional[str] = _field(None, 'run folder for checkpoints, metrics and the exported model')
    resume: Optional[str] = _field(None, 'continue the run in this folder from its last checkpoint')
    stop_after_epoch: Optional[int] = _field(None, 'end this session after this epoch; --resume continues')
    device: Optional[str] = _field(None, "'cpu' or 'cuda'; default: cuda if available")


def _fields() -> Dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _kind(name: str) -> Tuple[type, bool]:
    """The value type of a field (``list`` for ranges) and whether it may be null."""
    annotation = _fields()[name].type
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Union:
        return args[0], True
    return typing.get_origin(annotation) or annotation, False


def _check_value(name: str, value: Any, source: str) -> Any:
    """Validates one value against its field's type; returns it normalised (ints to floats, pairs to lists)."""
    kind, optional = _kind(name)
    if value is None:
        if optional:
            return None
        raise TrainConfigError(f"{source}: '{name}' must not be null")
    if kind is list:
        if not (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise TrainConfigError(f"{source}: '{name}' expects two numbers [min, max], got {value!r}")
        return [float(v) for v in value]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TrainConfigError(f"{source}: '{name}' expects {kind.__name__}, got {value!r}")
    return value


def load_recipe(path: Path) -> Dict[str, Any]:
    """Reads a training recipe YAML (a mapping of TrainConfig fields) and validates its keys and types."""
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except OSError as e:
        raise TrainConfigError(f'{path}: cannot read the recipe: {e.strerror or e}') from e
    except yaml.YAMLError as e:
        raise TrainConfigError(f'{path}: not valid YAML: {e}') from e
    if not isinstance(recipe, dict):
        raise TrainConfigError(f'{path}: expected a mapping of training options, got {type(recipe).__name__}')
    unknown = [k for k in recipe if k not in _fields()]
    if unknown:
        raise TrainConfigError(f"{path}: unknown option(s) {', '.join(map(repr, unknown))}; "
                               f"expected TrainConfig fields: {', '.join(_fields())}")
    return {k: _check_value(k, v, str(path)) for k, v in recipe.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--config`` and one flag per TrainConfig field (``--batch-size``, ``--model-ema/--no-model-ema``...)."""
    parser.add_argument('--config', type=Path, default=None,
                        help='training recipe YAML (e.g. configs/train/finetune_folder.yaml); flags override it')
    defaults = TrainConfig()
    for name, field in _fields().items():
        flag = '--' + name.replace('_', '-')
        help_text = f"{field.metadata['help']} (default: {getattr(defaults, name)})"
        kind, _ = _kind(name)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif kind is list:
            parser.add_argument(flag, type=float, nargs=2, metavar=('MIN', 'MAX'), default=argparse.SUPPRESS,
                                help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the ``--config`` recipe, then the flags that were given."""
    values: Dict[str, Any] = {}
    if getattr(args, 'config', None) is not None:
        values.update(load_recipe(args.config))
    values.update({k: _check_value(k, v, 'command line') for k, v in vars(args).items() if k in _fields()})
    return TrainConfig(**values)
