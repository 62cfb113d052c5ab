"""Distillation from a trained model: the teacher, the student's start from its weights, and the loss.

The teacher is any model ``timm.create_model`` builds with weights (a timm name with a tag, ``hf-hub:``,
``local-dir:`` or a run folder). It is frozen, kept in eval mode and run without gradients, on every
process; only the student trains. The loss mixes three terms::

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T))      # soft distillation on the logits
         + (1 - alpha) * label_loss(s, labels)                     # the recipe's cross-entropy (not read at alpha 1)
         + beta * mean((f_s - f_t)^2)                              # optional: pooled pre-logits features

with ``alpha`` = ``distill_alpha``, ``T`` = ``distill_temperature`` and ``beta`` = ``distill_feature_weight``
(Hinton et al., 2015; DeiT's soft distillation is alpha 0.5, T 1). At alpha 1 the labels are not used, so
an unlabelled image folder is enough. At alpha 0 with no feature loss the teacher only gives the student
its starting weights and is not run.
"""
import logging
import time
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import check_model_name, model_data_config, model_input
from ..models.adapt import CheckpointMismatchError, checkpoint_filter_fn
from ..models.adapt_video import video_checkpoint_filter_fn
from ..registry import twin_name
from .config import TrainConfig, TrainConfigError

__all__ = ['DistillationLoss', 'StudentStart', 'StudentWithFeatures', 'describe_distillation',
           'init_student_from_teacher', 'load_teacher', 'teacher_source']

_logger = logging.getLogger(__name__)
_WEIGHT_SOURCES = ('hf_hub_id', 'url', 'file', 'state_dict')

Outputs = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


def teacher_source(name: str) -> str:
    """The ``timm.create_model`` name of ``--distill-from``: a run folder (holding ``model/``) or an exported
    folder (holding ``config.json``) becomes ``local-dir:``; anything else is passed on as it is."""
    path = Path(name)
    if path.is_dir():
        folder = path / 'model' if (path / 'model' / 'config.json').is_file() else path
        if not (folder / 'config.json').is_file():
            raise TrainConfigError(f'--distill-from {name}: a folder must be a run folder (with model/) or an '
                                   f'exported model folder (with config.json); neither is there')
        return f'local-dir:{folder}'
    return name


def load_teacher(config: TrainConfig, device: torch.device) -> nn.Module:
    """The frozen teacher of ``config.distill_from`` in eval mode on ``device``.

    Raises:
        TrainConfigError: an unknown name, a model without pretrained weights, or weights that cannot be read.
    """
    name = teacher_source(config.distill_from)
    try:
        check_model_name(name)
    except TrainConfigError as e:
        raise TrainConfigError(f'--distill-from: {e}') from e
    try:
        teacher = timm.create_model(name, pretrained=True)
    except Exception as e:  # any failure to build or read the teacher stops the run before training
        raise TrainConfigError(f'--distill-from {config.distill_from}: the teacher could not be loaded: '
                               f'{type(e).__name__}: {e}') from e
    if not any(teacher.pretrained_cfg.get(k) for k in _WEIGHT_SOURCES):
        raise TrainConfigError(f'--distill-from {config.distill_from}: the model has no pretrained weights (a '
                               'teacher must be trained); name a tag with weights, hf-hub:, local-dir: or a run folder')
    teacher.requires_grad_(False)
    return teacher.eval().to(device)


class StudentStart(NamedTuple):
    """What a student starts from: whether it holds the teacher's weights, and a sentence saying what it does."""
    from_teacher: bool
    message: str


def init_student_from_teacher(student: nn.Module, teacher: nn.Module) -> StudentStart:
    """Loads the teacher's weights into the student where they fit, through the TokenLearner models' backbone
    transfer (:func:`~tl_models.models.adapt.checkpoint_filter_fn`, for a video student
    :func:`~tl_models.models.adapt_video.video_checkpoint_filter_fn`; the classifier too, the class counts being
    equal). Returns what the student starts from; the student is untouched if they do not fit.
    """
    state = teacher.state_dict()
    filter_fn = video_checkpoint_filter_fn if model_input(student).is_video else checkpoint_filter_fn
    try:
        if hasattr(student, 'token_learners'):
            state = filter_fn(state, student, checkpoint_classes=teacher.num_classes, source='the teacher')
        reason = _misfit(state, student.state_dict())
    except CheckpointMismatchError as e:
        reason = str(e).strip().splitlines()[0]
    if reason:
        return StudentStart(False, f"the student keeps its own initialisation: the teacher's weights do not fit it "
                                   f"({reason})")
    student.load_state_dict(state)
    fresh = sorted({k.split('.')[0] for k in student.state_dict() if k not in teacher.state_dict()})
    new = f" (new: {', '.join(fresh)})" if fresh else ''
    return StudentStart(True, f"the student starts from the teacher's weights{new}{_twin_note(student, teacher)}")


def _twin_note(student: nn.Module, teacher: nn.Module) -> str:
    """'; the teacher is its plain twin' when the registry says so (:func:`tl_models.registry.twin_name`)."""
    try:
        twin = twin_name(student.pretrained_cfg['architecture'])
    except (KeyError, ValueError):  # not a registered TokenLearner variant, or one without a twin
        return ''
    return f'; the teacher is its plain twin, {twin}' if teacher.pretrained_cfg.get('architecture') == twin else ''



def _misfit(state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]) -> str:
    """Why ``state`` cannot load into a model with state ``own`` ('' if it can): checked before loading, since
    ``load_state_dict`` copies the tensors that fit before it complains about the others."""
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        return f'{len(missing)} tensor(s) missing, {len(unexpected)} unexpected, e.g. {(missing + unexpected)[0]}'
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
                  for k, v in own.items() if state[k].shape != v.shape]
    return f"shapes differ: {', '.join(mismatched[:3])}" if mismatched else ''


class StudentWithFeatures(nn.Module):
    """The student returning its logits and its pooled pre-logits features, for the feature loss.

    Wraps the model before DDP and ``torch.compile``, so both see one forward. Outputs ``([B, classes],
    [B, D])``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        return self.model.forward_head(features), self.model.forward_head(features, pre_logits=True)


def _input_transform(student: nn.Module, teacher: nn.Module) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """(scale, shift), each ``[3]``, per channel turning the student's normalised inputs into the teacher's, or
    None if the two normalise alike. Different input sizes are an error: both models see the same images."""
    own, other = model_data_config(student), model_data_config(teacher)
    if tuple(own['input_size']) != tuple(other['input_size']):
        raise TrainConfigError(
            f"--distill-from: the teacher takes {tuple(other['input_size'])} inputs, the student "
            f"{tuple(own['input_size'])}; distillation feeds both the same images, so they must match")
    if tuple(own['mean']) == tuple(other['mean']) and tuple(own['std']) == tuple(other['std']):
        return None
    mean, std = torch.tensor(own['mean']), torch.tensor(own['std'])
    t_mean, t_std = torch.tensor(other['mean']), torch.tensor(other['std'])
    return std / t_std, (mean - t_mean) / t_std


class DistillationLoss(nn.Module):
    """The loss of a distillation run (see the module docstring); it runs the teacher on the same (possibly
    mixed) images as the student and keeps count of the teacher's time.

    Args:
        teacher: The frozen teacher (eval mode, no gradients).
        student: The student (for its feature width and input normalisation).
        label_loss: The recipe's loss on the labels, ``(logits [B, C], targets) -> scalar``.
        alpha: Weight of the soft distillation term; ``1 - alpha`` goes to the labels.
        temperature: Softmax temperature of the soft term.
        feature_weight: Weight of the feature term (0: off; the student must then return logits only).
    """

    def __init__(
            self,
            teacher: nn.Module,
            student: nn.Module,
            label_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
            alpha: float,
            temperature: float,
            feature_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if teacher.num_classes != student.num_classes:
            raise TrainConfigError(
                f'--distill-from: the teacher predicts {teacher.num_classes} classes, the student '
                f'{student.num_classes}; they must match (set --num-classes or pick another teacher)')
        if feature_weight > 0 and teacher.num_features != student.num_features:
            raise TrainConfigError(
                f'--distill-feature-weight compares pooled features, which need the same width: the teacher has '
                f'{teacher.num_features}, the student {student.num_features}; set --distill-feature-weight 0')
        self.teacher = teacher
        self.label_loss = label_loss
        self.alpha = alpha
        self.temperature = temperature
        self.feature_weight = feature_weight
        self.input_transform = _input_transform(student, teacher)
        self.teacher_seconds = 0.0

    @property
    def runs_teacher(self) -> bool:
        """False when the teacher only initialised the student (alpha 0 and no feature loss)."""
        return self.alpha > 0 or self.feature_weight > 0

    @torch.no_grad()
    def teacher_outputs(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher logits ``[B, C]`` and pooled pre-logits features ``[B, D]`` for ``inputs`` ``[B, 3, H, W]``
        (clips: ``[B, 3, T, H, W]``)."""
        start = time.perf_counter()
        if self.input_transform is not None:
            per_channel = (1, -1) + (1,) * (inputs.ndim - 2)  # [1, 3, 1, 1] (clips: [1, 3, 1, 1, 1])
            scale, shift = (t.to(inputs.device, inputs.dtype).view(per_channel) for t in self.input_transform)
            inputs = inputs * scale + shift
        features = self.teacher.forward_features(inputs)
        logits, pooled = self.teacher.forward_head(features), self.teacher.forward_head(features, pre_logits=True)
        if inputs.device.type == 'cuda':
            torch.cuda.synchronize(inputs.device)
        self.teacher_seconds += time.perf_counter() - start
        return logits, pooled

    def pop_teacher_seconds(self) -> float:
        """Seconds spent in the teacher since the last call."""
        seconds, self.teacher_seconds = self.teacher_seconds, 0.0
        return seconds

    def forward(self, outputs: Outputs, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of the student's ``outputs`` (logits ``[B, C]``, or (logits, features ``[B, D]``) with the
        feature loss) on ``inputs`` ``[B, 3, H, W]`` (clips: ``[B, 3, T, H, W]``) with ``targets`` (class indices
        or mixed soft labels)."""
        logits, features = outputs if isinstance(outputs, tuple) else (outputs, None)
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.alpha < 1:
            loss = loss + (1 - self.alpha) * self.label_loss(logits, targets)
        if not self.runs_teacher:
            return loss
        teacher_logits, teacher_features = self.teacher_outputs(inputs)
        if self.alpha > 0:
            t = self.temperature
            soft = F.kl_div(F.log_softmax(logits.float() / t, dim=-1),
                            F.log_softmax(teacher_logits.float() / t, dim=-1), reduction='batchmean', log_target=True)
            loss = loss + self.alpha * t * t * soft
        if self.feature_weight > 0:
            loss = loss + self.feature_weight * F.mse_loss(features.float(), teacher_features.float())
        return loss


def describe_distillation(config: TrainConfig) -> Dict[str, Union[str, float]]:
    """The distillation settings of a run, for its summary and model card."""
    return dict(teacher=config.distill_from, distill_alpha=config.distill_alpha,
                distill_temperature=config.distill_temperature, distill_feature_weight=config.distill_feature_weight)
