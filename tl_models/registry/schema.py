"""The schema of a variant YAML file, and its parser.

A file holds optional ``defaults`` and a mapping of ``variants``. A variant's ``architecture`` and
``pretrained_cfg`` deep-merge over the defaults; its ``tags``, if given, replace the default tags.
A ``tl_...`` variant is a TokenLearner ViT; a ``vit_...`` variant is timm's plain ``VisionTransformer``
(the twin of TokenLearner variants at a size timm does not define), without TokenLearner keys. A tag
names its weights by ``hf_hub_id`` (a hub repo), ``file`` (a weight file, relative to the YAML file's
folder: weights shipped with the package), or both (the file is used)::

    defaults:
      architecture: {patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12}
      pretrained_cfg: {input_size: [3, 224, 224], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}
    variants:
      tl_vit_base_patch16_224_8at6:
        description: ViT-B/16 with 8 tokens learned before block 6.
        architecture: {num_tokens: 8, tokenlearner_loc: 6}
        tags:
          vit_augreg2_in21k_ft_in1k: {hf_hub_id: timm/vit_base_patch16_224.augreg2_in21k_ft_in1k}

A ``tl_`` variant may instead name a timm ViT architecture as its ``backbone``; the architecture then
comes from timm's own definition of it (:func:`tl_models.models.backbone.vit_arguments`), ``architecture``
needs only the TokenLearner settings (any other key overrides timm's), and the untagged cfg and the tags
come from timm's pretrained cfgs of that architecture (:mod:`.timm_source`), unless the variant gives
``tags``; its ``pretrained_cfg`` overrides timm's fields, untagged and in every tag::

    variants:
      tl_vit_small_patch14_dinov2_8at6:
        description: DINOv2 ViT-S/14; TokenLearner v1.1 learns 8 tokens before block 6.
        backbone: vit_small_patch14_dinov2
        architecture: {num_tokens: 8, tokenlearner_loc: 6}

A video variant (:mod:`tl_models.models.tl_video`) is named ``tl_vivit_...`` (TokenLearner per time step)
or ``vivit_...`` (its plain twin); its ``architecture`` also needs ``num_frames`` (T) and ``tubelet_size`` (t, a
divisor of T), its ``input_size`` is ``[channels, frames, height, width]`` with T frames, and it takes no
``backbone``. Image variants take neither key and a 3-element ``input_size``::

    variants:
      tl_vivit_small_patch16_224_8f_8at6:
        description: ViT-S/16 on 8-frame clips, tubelets of 2 frames; 8 tokens per time step before block 6.
        architecture: {patch_size: 16, embed_dim: 384, depth: 12, num_heads: 6, num_frames: 8, tubelet_size: 2,
                       num_tokens: 8, tokenlearner_loc: 6}
        pretrained_cfg: {input_size: [3, 8, 224, 224], ...}

Every error is a :class:`VariantConfigError` that names the file, the variant and the key.
"""
import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from ..models.backbone import BackboneError, vit_arguments
from .timm_source import backbone_pretrained

__all__ = ['Variant', 'VariantConfigError', 'parse_variant_file']

NAME_PATTERN = re.compile(r'tl_[a-z0-9_]+')
PLAIN_NAME_PATTERN = re.compile(r'vit_[a-z0-9_]+')
VIDEO_PREFIXES = ('tl_vivit_', 'vivit_')  # a video TokenLearner variant, a plain video twin
PLAIN_VIDEO_NAME_PATTERN = re.compile(r'vivit_[a-z0-9_]+')
TAG_PATTERN = re.compile(r'[a-z0-9_]+')


class VariantConfigError(ValueError):
    """A variant YAML file breaks the schema; the message names the file, the variant and the key."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The input of a model: ``num_frames`` T for a video model's clips ``[B, 3, T, H, W]``, None for images;
    ``model`` names the model in messages (:func:`tl_models.data.model_input` gives it for any model)."""
    num_frames: Optional[int] = None
    model: str = 'the model'

    @property
    def is_video(self) -> bool:
        return self.num_frames is not None

    @property
    def kind(self) -> str:
        """'video' or 'image'."""
        return 'video' if self.is_video else 'image'

    @property
    def unit(self) -> str:
        """What one input is called in throughput figures: 'clip' or 'image'."""
        return 'clip' if self.is_video else 'image'


@dataclasses.dataclass(frozen=True)
class Variant:
    """One validated model variant.

    Attributes:
        name: The timm model name (``tl_...``, or ``vit_...`` for a plain ViT; ``tl_vivit_...`` and
            ``vivit_...`` for video models).
        path: The YAML file that defines it.
        description: One line for docs and ``--list``.
        architecture: ``TokenLearnerVisionTransformer`` (plain: ``VisionTransformer``; video:
            ``TokenLearnerVideoTransformer``) keyword arguments.
        pretrained_cfg: timm pretrained-cfg fields of the untagged model (input size, mean/std, crop, license, ...).
        tags: Pretrained tag -> pretrained-cfg fields overriding ``pretrained_cfg`` (``hf_hub_id`` and/or
            ``file``, made absolute, for the weights).
        backbone: The timm ViT architecture the variant is built on (``architecture`` overrides it), or None.
    """
    name: str
    path: Path
    description: str
    architecture: Dict[str, Any]
    pretrained_cfg: Dict[str, Any]
    tags: Dict[str, Dict[str, Any]]
    backbone: Optional[str] = None

    @property
    def is_tokenlearner(self) -> bool:
        """A TokenLearner ViT (``tl_...``), not a plain twin (``vit_...``, ``vivit_...``)."""
        return self.name.startswith('tl_')

    @property
    def input(self) -> 'InputSpec':
        """What the model takes: clips of ``architecture.num_frames`` frames if its architecture gives them, else
        images."""
        return InputSpec(self.architecture.get('num_frames'), self.name)

    @property
    def is_video(self) -> bool:
        """A video model on clips ``[B, 3, T, H, W]``."""
        return self.input.is_video

    @property
    def model_args(self) -> Dict[str, Any]:
        """The arguments that create the model: ``architecture``, with ``backbone`` if it names one."""
        return dict(self.architecture, backbone=self.backbone) if self.backbone else dict(self.architecture)

    @property
    def settings(self) -> Dict[str, Any]:
        """Every architecture setting the variant fixes: timm's arguments of its backbone, ``architecture`` on top.

        What code that needs the model's size (``embed_dim``, ``depth``, ...) reads; timm's defaults fill the rest.
        """
        return dict(vit_arguments(self.backbone), **self.architecture) if self.backbone else dict(self.architecture)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


def _list_of(check: Callable[[Any], bool], length: int = 0) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v) and (not length or len(v) == length)


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


_INT = ('an integer', _is_int)
_NUMBER = ('a number', _is_number)
_BOOL = ('true or false', lambda v: isinstance(v, bool))
_STR = ('a string', lambda v: isinstance(v, str))
_SIZE = ('a list [channels, height, width] of integers', _list_of(_is_int, 3))
_CLIP_SIZE = ('a list [channels, frames, height, width] of integers', _list_of(_is_int, 4))
_NUMBERS = ('a list of numbers', _list_of(_is_number))
_POOL = ("one of '', 'avg', 'avgmax', 'max', 'token', 'map'", _one_of('', 'avg', 'avgmax', 'max', 'token', 'map'))

ARCHITECTURE_KEYS: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    'patch_size': _INT,
    'embed_dim': _INT,
    'depth': _INT,
    'num_heads': _INT,
    'mlp_ratio': _NUMBER,
    'qkv_bias': _BOOL,
    'qk_norm': _BOOL,
    'init_values': ('a number or null', _or_null(_is_number)),
    'class_token': _BOOL,
    'reg_tokens': _INT,
    'no_embed_class': _BOOL,
    'pre_norm': _BOOL,
    'final_norm': _BOOL,
    'fc_norm': ('true, false or null', _or_null(lambda v: isinstance(v, bool))),
    'global_pool': _POOL,
    'dynamic_img_size': _BOOL,
    'drop_rate': _NUMBER,
    'pos_drop_rate': _NUMBER,
    'proj_drop_rate': _NUMBER,
    'attn_drop_rate': _NUMBER,
    'drop_path_rate': _NUMBER,
    'weight_init': ("one of '', 'jax', 'jax_nlhb', 'moco'", _one_of('', 'jax', 'jax_nlhb', 'moco')),
    'num_tokens': _INT,
    'tokenlearner_loc': _INT,
    'use_v11': _BOOL,
    'use_tokenfuse': _BOOL,
    'tokenlearner_drop_rate': _NUMBER,
    'tokenlearner_init': ("one of 'official', 'vit'", _one_of('official', 'vit')),
    'num_frames': _INT,
    'tubelet_size': _INT,
}
REQUIRED_PLAIN_KEYS = ('patch_size', 'embed_dim', 'depth', 'num_heads')
REQUIRED_BACKBONE_KEYS = ('num_tokens', 'tokenlearner_loc')
REQUIRED_ARCHITECTURE_KEYS = (*REQUIRED_PLAIN_KEYS, *REQUIRED_BACKBONE_KEYS)
VIDEO_KEYS = ('num_frames', 'tubelet_size')
TOKENLEARNER_KEYS = ('num_tokens', 'tokenlearner_loc', 'use_v11', 'use_tokenfuse', 'tokenlearner_drop_rate',
                     'tokenlearner_init')

PRETRAINED_KEYS: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    'hf_hub_id': _STR,
    'hf_hub_filename': _STR,
    'file': _STR,
    'input_size': _SIZE,
    'test_input_size': _SIZE,
    'fixed_input_size': _BOOL,
    'interpolation': ("one of 'bicubic', 'bilinear', 'nearest'", _one_of('bicubic', 'bilinear', 'nearest')),
    'crop_pct': ('a number in (0, 1]', lambda v: _is_number(v) and 0 < v <= 1),
    'test_crop_pct': ('a number in (0, 1]', lambda v: _is_number(v) and 0 < v <= 1),
    'crop_mode': ("one of 'center', 'squash', 'border'", _one_of('center', 'squash', 'border')),
    'mean': _NUMBERS,
    'std': _NUMBERS,
    'num_classes': _INT,
    'license': _STR,
    'description': _STR,
    'origin_url': _STR,
    'paper_name': _STR,
    'paper_ids': _STR,
    'notes': _STR,
}
VIDEO_PRETRAINED_KEYS = dict(PRETRAINED_KEYS, input_size=_CLIP_SIZE, test_input_size=_CLIP_SIZE)
REQUIRED_PRETRAINED_KEYS = ('input_size', 'mean', 'std', 'crop_pct', 'license')
VARIANT_KEYS = ('description', 'backbone', 'architecture', 'pretrained_cfg', 'tags')
FILE_KEYS = ('defaults', 'variants')


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate key {key!r} (a name may be defined only once)', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _merge_variant(defaults: Dict[str, Any], spec: Dict[str, Any]) -> Dict[str, Any]:
    """``defaults`` overridden by ``spec``: mappings other than ``tags`` merge key by key."""
    merged = copy.deepcopy(defaults)
    for key, value in spec.items():
        if key != 'tags' and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _Checker:
    """Raises :class:`VariantConfigError` with the file and variant in every message."""

    def __init__(self, path: Path, variant: str = ''):
        self.where = f'{path}' + (f": variant '{variant}'" if variant else '')

    def fail(self, key: str, problem: str) -> None:
        raise VariantConfigError(f"{self.where}: key '{key}': {problem}")

    def mapping(self, value: Any, key: str) -> Dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f'expected a mapping, got {type(value).__name__} {value!r}')
        return value

    def known_keys(self, value: Dict[str, Any], prefix: str, allowed) -> None:
        for key in value:
            if key not in allowed:
                self.fail(f'{prefix}{key}', f"unknown key; expected one of: {', '.join(allowed)}")

    def typed(self, value: Dict[str, Any], prefix: str, schema, required=()) -> None:
        self.known_keys(value, prefix, list(schema))
        for key in required:
            if key not in value:
                self.fail(f'{prefix}{key}', 'missing required key')
        for key, item in value.items():
            expected, check = schema[key]
            if not check(item):
                self.fail(f'{prefix}{key}', f'expected {expected}, got {item!r}')


def _parse_backbone(check: '_Checker', spec: Dict[str, Any], plain: bool) -> Optional[Dict[str, Any]]:
    """timm's arguments of the variant's ``backbone`` (None if it names none), after checking the name."""
    if 'backbone' not in spec:
        return None
    backbone = spec['backbone']
    if plain:
        check.fail('backbone', 'a plain vit_ variant is timm\'s model itself: use timm\'s name (e.g. '
                               f'{backbone}) directly, or name the variant tl_... to make it a TokenLearner ViT')
    if not isinstance(backbone, str) or '.' in backbone:
        check.fail('backbone', 'expected the name of a timm ViT architecture without a pretrained tag (e.g. '
                               f'vit_small_patch14_dinov2; its tags become the variant\'s), got {backbone!r}')
    try:
        return vit_arguments(backbone)
    except BackboneError as e:
        check.fail('backbone', str(e))


def _parse_pretrained(
        check: '_Checker',
        path: Path,
        spec: Dict[str, Any],
        backbone: Optional[str],
        video: bool = False,
) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The checked untagged cfg and tags; a backbone's come from timm, the variant's ``pretrained_cfg`` on top.

    A ``video`` variant's sizes are ``[channels, frames, height, width]``.
    """
    schema = VIDEO_PRETRAINED_KEYS if video else PRETRAINED_KEYS
    own_cfg = spec['pretrained_cfg']
    check.typed(own_cfg, 'pretrained_cfg.', schema)
    for key in ('hf_hub_id', 'file'):
        if key in own_cfg:
            check.fail(f'pretrained_cfg.{key}', f'weights belong to a pretrained tag: move {key} under tags.<tag>')
    if backbone is None:
        pretrained_cfg, tags = own_cfg, spec.get('tags', {})
    else:
        timm_cfg, timm_tags = backbone_pretrained(backbone)
        pretrained_cfg = dict(timm_cfg, **own_cfg)
        tags = spec['tags'] if 'tags' in spec else {tag: dict(fields, **own_cfg) for tag, fields in timm_tags.items()}
    check.typed(pretrained_cfg, 'pretrained_cfg.', schema, REQUIRED_PRETRAINED_KEYS)

    tags = check.mapping(tags or {}, 'tags')
    for tag, tag_cfg in tags.items():
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            check.fail(f'tags.{tag}', "tag names must match '[a-z0-9_]+'")
        check.typed(check.mapping(tag_cfg, f'tags.{tag}'), f'tags.{tag}.', schema)
        if 'hf_hub_id' not in tag_cfg and 'file' not in tag_cfg:
            check.fail(f'tags.{tag}', 'a tag needs its weights: hf_hub_id (a hub repo) or file (a weight file)')
        if 'file' in tag_cfg:
            tag_cfg['file'] = str((path.parent / tag_cfg['file']).resolve())
    return pretrained_cfg, tags


def _parse_variant(path: Path, name: Any, spec: Any, defaults: Dict[str, Any]) -> Variant:
    check = _Checker(path, str(name))
    if not isinstance(name, str) or not any(
            pattern.fullmatch(name) for pattern in (NAME_PATTERN, PLAIN_NAME_PATTERN, PLAIN_VIDEO_NAME_PATTERN)):
        check.fail('variants', "variant names must match 'tl_[a-z0-9_]+' (a TokenLearner ViT) or "
                               "'vit_[a-z0-9_]+' (a plain ViT twin); on video 'tl_vivit_[a-z0-9_]+' and "
                               f"'vivit_[a-z0-9_]+' (its plain twin), got {name!r}")
    plain = not name.startswith('tl_')
    video = name.startswith(VIDEO_PREFIXES)
    spec = _merge_variant(defaults, check.mapping(spec, 'variants.' + name))
    check.known_keys(spec, '', VARIANT_KEYS)
    if 'backbone' in spec:
        spec.setdefault('pretrained_cfg', {})  # timm's cfg of the backbone
    for key in ('architecture', 'pretrained_cfg'):
        check.mapping(spec.get(key, None), key)
    description = spec.get('description', '')
    if not isinstance(description, str) or not description:
        check.fail('description', f'expected a non-empty string, got {description!r}')

    if video and 'backbone' in spec:
        check.fail('backbone', 'video variants give their architecture in full (a timm backbone is an image '
                               'model): remove backbone')
    backbone_args = _parse_backbone(check, spec, plain)
    architecture = spec['architecture']
    if backbone_args is None:
        check.typed(architecture, 'architecture.', ARCHITECTURE_KEYS,
                    REQUIRED_PLAIN_KEYS if plain else REQUIRED_ARCHITECTURE_KEYS)
        settings = architecture
    else:
        check.typed(architecture, 'architecture.', ARCHITECTURE_KEYS, REQUIRED_BACKBONE_KEYS)
        settings = dict(backbone_args, **architecture)
        for key in REQUIRED_PLAIN_KEYS:
            if key not in settings:
                check.fail(f'architecture.{key}', f"timm's {spec['backbone']} does not set it: give it here")
    for key in REQUIRED_PLAIN_KEYS:
        if settings[key] < 1:
            check.fail(f'architecture.{key}', f'expected a positive integer, got {settings[key]}')
    if plain:
        for key in TOKENLEARNER_KEYS:
            if key in architecture:
                check.fail(f'architecture.{key}', f"a plain {name.split('_')[0]}_ variant has no TokenLearner; "
                                                  f"name it tl_{'vivit_' if video else ''}... to make it a "
                                                  'TokenLearner model')
    else:
        _check_tokenlearner(check, settings)
    if video:
        _check_video(check, settings)
    else:
        for key in VIDEO_KEYS:
            if key in settings:
                check.fail(f'architecture.{key}', "only video variants (named tl_vivit_... or vivit_...) take "
                                                  f"{', '.join(VIDEO_KEYS)}")

    pretrained_cfg, tags = _parse_pretrained(check, path, spec, spec.get('backbone'), video)
    if video:
        for prefix, cfg in (('pretrained_cfg', pretrained_cfg), *((f'tags.{t}', c) for t, c in tags.items())):
            for key in ('input_size', 'test_input_size'):
                if key in cfg and cfg[key][1] != settings['num_frames']:
                    check.fail(f'{prefix}.{key}', f"expected [channels, {settings['num_frames']}, height, width] "
                                                  f"(num_frames {settings['num_frames']}), got {cfg[key]}")
    return Variant(name, path, description, architecture, pretrained_cfg, tags, spec.get('backbone'))


def _check_tokenlearner(check: '_Checker', architecture: Dict[str, Any]) -> None:
    """The TokenLearner settings of a ``tl_`` variant (its resolved ``settings``): at least one token, placed
    before an existing block."""
    if architecture['num_tokens'] < 1:
        check.fail('architecture.num_tokens', f"expected at least 1 learned token, got {architecture['num_tokens']}")
    depth, loc = architecture['depth'], architecture['tokenlearner_loc']
    if not 0 <= loc < depth:
        check.fail('architecture.tokenlearner_loc',
                   f'expected a block index in 0..{depth - 1} (depth {depth}), got {loc}')


def _check_video(check: '_Checker', architecture: Dict[str, Any]) -> None:
    """The clip settings of a video variant: ``num_frames`` T and ``tubelet_size`` t given, t divides T; a fixed
    input size."""
    for key in VIDEO_KEYS:
        if key not in architecture:
            check.fail(f'architecture.{key}', 'missing required key (video variants need num_frames and tubelet_size)')
        if architecture[key] < 1:
            check.fail(f'architecture.{key}', f'expected a positive integer, got {architecture[key]}')
    frames, tubelet = architecture['num_frames'], architecture['tubelet_size']
    if frames % tubelet:
        check.fail('architecture.num_frames', f'expected a multiple of tubelet_size {tubelet}, got {frames}')
    if architecture.get('dynamic_img_size'):
        check.fail('architecture.dynamic_img_size', 'video variants take clips of a fixed size: expected false')


def parse_variant_file(path: Path) -> List[Variant]:
    """Reads and validates one variant YAML file.

    Raises:
        VariantConfigError: unreadable or broken YAML, or a variant that breaks the schema.
    """
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding='utf-8'), Loader=_UniqueKeyLoader)
    except OSError as e:
        raise VariantConfigError(f'{path}: cannot read the variant file: {e.strerror or e}') from e
    except yaml.YAMLError as e:
        raise VariantConfigError(f'{path}: not valid YAML: {e}') from e
    check = _Checker(path)
    check.known_keys(check.mapping(document, '<file>'), '', FILE_KEYS)
    defaults = check.mapping(document.get('defaults', {}) or {}, 'defaults')
    check.known_keys(defaults, 'defaults.', VARIANT_KEYS)
    variants = check.mapping(document.get('variants', None), 'variants')
    if not variants:
        check.fail('variants', 'expected at least one variant')
    return [_parse_variant(path, name, spec, defaults) for name, spec in variants.items()]
