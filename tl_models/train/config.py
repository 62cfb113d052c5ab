"""The training configuration: defaults (the embedded digits run), YAML recipes, command-line overrides.

:class:`TrainConfig` extends the data configuration (:class:`tl_models.data.DataConfig`) with the model, the
optimisation and the run. Precedence, lowest first: the defaults below, a recipe file (``--config
configs/train/....yaml``), then flags given on the command line. The resolved configuration is saved with every run.
"""
import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import yaml

from ..data.config import ConfigError, DataConfig
from ..data.config import config_field as _field

__all__ = ['TrainConfig', 'TrainConfigError', 'add_arguments', 'check_options', 'config_from_args', 'load_recipe']


TrainConfigError = ConfigError  # a bad data or training configuration, reported before any training starts

SELECT_CHOICES = ('best', 'last')



@dataclasses.dataclass
class TrainConfig(DataConfig):
    """Everything a run needs. The defaults are the embedded default run: a small TokenLearner ViT on
    scikit-learn's digits (no download), which reaches >= 95% held-out top-1 in a few minutes on 2 CPU cores."""
    # model
    model: str = _field('tl_vit_pico_patch4_16_8at2', 'model name: a registered tl_ variant[.tag], hf-hub:ORG/REPO '
                        'or local-dir:PATH')
    pretrained: bool = _field(False, "start from the model's pretrained weights (its tag, hf-hub: or local-dir:)")
    num_classes: Optional[int] = _field(None, "classifier size; default: the dataset's number of classes")
    model_kwargs: Dict[str, Any] = _field(  # noqa: RUF009 (a field())
        {}, 'more timm.create_model arguments (KEY=VALUE on the command line), e.g. tokenlearner_init=vit')
    drop_path: float = _field(0.1, 'stochastic depth rate')
    freeze_backbone: bool = _field(False, 'train only the TokenLearner/TokenFuser modules and the head')
    freeze_blocks: int = _field(0, 'keep the stem and the first K blocks as loaded (no gradients, eval mode); '
                                'image ViTs')
    cache_frozen: bool = _field(False, "compute the frozen blocks' outputs once per image (and flipped image, with "
                                '--hflip) and train from them; needs --freeze-blocks, --scale 1 1, --ratio 1 1')
    grad_checkpointing: bool = _field(False, 'recompute blocks in backward to save memory')
    compile: bool = _field(False, 'torch.compile the model')
    # optimisation
    epochs: int = _field(60, 'number of epochs')
    opt: str = _field('adamw', "timm optimizer name")
    lr: float = _field(2e-3, 'peak learning rate')
    min_lr: float = _field(1e-5, 'final learning rate of the cosine schedule')
    warmup_epochs: int = _field(3, 'linear warm-up epochs')
    weight_decay: float = _field(0.05, 'decoupled weight decay (not on norms, biases, embeddings)')
    layer_decay: Optional[float] = _field(None, 'layer-wise learning-rate decay, e.g. 0.75')
    tokenlearner_lr_scale: float = _field(1.0, "the TokenLearner and TokenFuser layers' learning rate as a multiple "
                                          "of the rest of the model's")
    clip_grad: Optional[float] = _field(None, 'clip the gradient norm to this value')
    smoothing: float = _field(0.1, 'label smoothing')
    mixup: float = _field(0.0, 'mixup alpha (0 = off)')
    cutmix: float = _field(0.0, 'cutmix alpha (0 = off)')
    model_ema: bool = _field(False, 'keep an exponential moving average of the weights (ModelEmaV3)')
    model_ema_decay: float = _field(0.998, 'EMA decay per step')
    amp: bool = _field(False, 'bfloat16 autocast')
    eval_every: int = _field(1, 'evaluate on the held-out split every this many epochs (and after the last)')
    select: str = _field('best', "the epoch whose weights become model/: 'best' (highest held-out top-1; the "
                         "held-out split is then validation data) or 'last' (the end of the schedule, for a "
                         "held-out split that is the test set)")
    threads: Optional[int] = _field(None, 'CPU threads for torch (default: torch\'s own choice)')
    # distillation (tl_models.train.distill)
    distill_from: Optional[str] = _field(None, 'teacher to distil from: a model name with weights (tag), hf-hub:, '
                                         'local-dir: or a run folder; the student starts from its weights where '
                                         'they fit')
    distill_alpha: float = _field(0.5, "weight of the soft distillation loss, the rest on the labels' loss (1: "
                                  'labels not needed; 0: the teacher only initialises the student)')
    distill_temperature: float = _field(1.0, 'softmax temperature of the soft distillation loss')
    distill_feature_weight: float = _field(0.0, "weight of the MSE between the student's and the teacher's pooled "
                                           'pre-logits features (0 = off; needs the same width)')
    distill_init: bool = _field(True, "start the student from the teacher's weights where they fit")
    # run
    output: Optional[str] = _field(None, 'run folder for checkpoints, metrics and the exported model')
    resume: Optional[str] = _field(None, 'continue the run in this folder from its last checkpoint')
    stop_after_epoch: Optional[int] = _field(None, 'end this session after this epoch; --resume continues')
    device: Optional[str] = _field(None, "'cpu' or 'cuda'; default: cuda if available")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select not in SELECT_CHOICES:
            raise TrainConfigError(f"'select' expects one of {', '.join(SELECT_CHOICES)}, got {self.select!r}")
        if self.eval_every < 1:
            raise TrainConfigError(f"'eval_every' expects a positive number of epochs, got {self.eval_every}")
        if not 0 <= self.distill_alpha <= 1:
            raise TrainConfigError(f"'distill_alpha' expects a weight in [0, 1], got {self.distill_alpha}")
        if self.distill_temperature <= 0:
            raise TrainConfigError(f"'distill_temperature' expects a positive number, got {self.distill_temperature}")
        if self.distill_feature_weight < 0:
            raise TrainConfigError(
                f"'distill_feature_weight' expects a weight >= 0, got {self.distill_feature_weight}")
        if self.tokenlearner_lr_scale <= 0:
            raise TrainConfigError(
                f"'tokenlearner_lr_scale' expects a positive multiple, got {self.tokenlearner_lr_scale}")
        if self.freeze_blocks < 0:
            raise TrainConfigError(f"'freeze_blocks' expects a number of blocks >= 0, got {self.freeze_blocks}")
        if self.threads is not None and self.threads < 1:
            raise TrainConfigError(f"'threads' expects a positive number, got {self.threads}")


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
    if kind is dict:
        if not (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
            raise TrainConfigError(f"{source}: '{name}' expects a mapping of argument names to values, got {value!r}")
        return dict(value)
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
    return check_options(recipe, str(path))


def check_options(options: Dict[str, Any], source: str) -> Dict[str, Any]:
    """Validates a mapping of TrainConfig fields (names and types); returns the values normalised.

    Raises:
        TrainConfigError: an unknown option or a value of the wrong type; the message starts with ``source``.
    """
    unknown = [k for k in options if k not in _fields()]
    if unknown:
        raise TrainConfigError(f"{source}: unknown option(s) {', '.join(map(repr, unknown))}; "
                               f"expected TrainConfig fields: {', '.join(_fields())}")
    return {k: _check_value(k, v, source) for k, v in options.items()}


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
        elif kind is dict:
            parser.add_argument(flag, type=_key_value, nargs='+', metavar='KEY=VALUE', default=argparse.SUPPRESS,
                                help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text)


def _key_value(text: str) -> Tuple[str, Any]:
    """``KEY=VALUE`` from the command line; the value is read as YAML (numbers, true/false, lists)."""
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    return key, yaml.safe_load(value)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the ``--config`` recipe, then the flags that were given."""
    values: Dict[str, Any] = {}
    if getattr(args, 'config', None) is not None:
        values.update(load_recipe(args.config))
    given = {k: dict(v) if k == 'model_kwargs' else v for k, v in vars(args).items() if k in _fields()}
    values.update({k: _check_value(k, v, 'command line') for k, v in given.items()})
    return TrainConfig(**values)
