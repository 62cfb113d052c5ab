"""TokenLearner video transformer: a ViViT-style ViT on clips, with TokenLearner (and TokenFuser) per time step.

Ryoo et al., "TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?", NeurIPS 2021 (arXiv 2106.11297),
section 4 and the official video models (google-research/scenic, ``projects/token_learner``); the backbone is the
ViViT paper's model 1 (Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021, arXiv 2103.15691): tubelet
embedding and one transformer over all space-time tokens.

With B batch, T frames, tubelets of t frames, T' = T / t time steps, an (H, W) patch grid of N = H * W patches,
P prefix (class/register) tokens, S learned tokens and C channels:

- ``patch_embed`` (:class:`TubeletEmbed`): clips ``[B, 3, T, H_img, W_img]`` -> ``[B, T'*N, C]``, frame-major
  (all N patches of time step 0, then those of step 1, ...); ``pos_embed`` ``[1, (P +) T'*N, C]`` is one joint
  space-time embedding.
- blocks ``0 .. L-1`` see ``[B, P+T'*N, C]``. Before block ``L = tokenlearner_loc`` the TokenLearner runs on each
  time step's N patch tokens (``[B, T'*N, C]`` -> ``[B*T', N, C]`` -> ``[B*T', S, C]`` -> ``[B, T'*S, C]``), so blocks
  ``L ..`` see ``[B, P+T'*S, C]``. With TokenFuser (``use_tokenfuse``) every block from L on runs as in the image
  model, folded per time step in the same way, and the sequence keeps its T'*N patch tokens.
- ``tokenlearner_loc=None`` builds the plain video twin: the same model without TokenLearner, with the same
  parameter names but for ``token_learners`` / ``token_fusers``.

The folds are reshapes (no loop over frames or tokens). Every parameter name is timm's ``VisionTransformer``'s
(``patch_embed.proj``, ``pos_embed``, ``blocks.{i}``, ``norm``, ``fc_norm``, ``head``) or the image
TokenLearner ViT's, so an image checkpoint maps 1:1 after inflation (:func:`.adapt_video.video_checkpoint_filter_fn`).
Features keep timm's contract: ``forward_intermediates`` gives 'NLC' block outputs (``[B, T'*N, C]``, or
``[B, T'*S, C]`` of learned tokens) and 'NCHW' maps ``[B, C, T', H, W]`` of the blocks whose output keeps the patch
grid (those before the TokenLearner, all of them with TokenFuser or in the plain twin; ``feature_info`` lists them
and ``features_only`` returns them); asking a map of learned tokens raises, as for images.
"""
from functools import partial
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import to_2tuple
from timm.models import DefaultCfg, build_model_with_cfg, resolve_pretrained_cfg
from torch.jit import Final

from ..weights import pretrained_file_overlay
from .adapt_video import video_checkpoint_filter_fn
from .tl_vit import TokenLearnerVisionTransformer

__all__ = ['TokenLearnerVideoTransformer', 'TubeletEmbed', 'create_tl_video', 'video_checkpoint_filter_fn']

# Filled from configs/*.yaml by tl_models.registry, which registers an entrypoint per video variant here.
default_cfgs: Dict[str, DefaultCfg] = {}

def check_clip_shape(x: torch.Tensor, expected: List[int]) -> None:
    """Raises ValueError unless ``x`` is a batch of clips ``[B, *expected]`` (``expected``: C, T, H, W). A leaf for
    torch.fx (its branch reads the shape) that TorchScript compiles as it is."""
    if x.dim() != 5 or list(x.shape[1:]) != expected:
        got = '(' + ', '.join([str(s) for s in x.shape]) + ')'
        raise ValueError(f'expected clips [B, {expected[0]}, {expected[1]}, {expected[2]}, {expected[3]}], got {got}'
                         '; a video model takes clips (timm\'s image scripts feed images: evaluate and benchmark '
                         'video models with tl-validate and tl-benchmark)')


torch.fx.wrap('check_clip_shape')


class TubeletEmbed(nn.Module):
    """Tubelet embedding: clips ``[B, C_in, T, H_img, W_img]`` -> tokens ``[B, T'*N, C]``, frame-major.

    One ``Conv3d`` with kernel and stride ``(t, p, p)`` (ViViT's tubelet embedding): each token sees t frames of
    a p x p patch. T' = T / t time steps, an (H, W) = (H_img / p, W_img / p) grid, N = H * W patches per step.
    Takes the arguments timm's ``VisionTransformer`` gives its ``embed_layer``, plus ``num_frames`` and
    ``tubelet_size``.
    """
    num_frames: Final[int]
    tubelet_size: Final[int]
    temporal_size: Final[int]

    def __init__(
            self,
            img_size: Union[int, Tuple[int, int]] = 224,
            patch_size: Union[int, Tuple[int, int]] = 16,
            in_chans: int = 3,
            embed_dim: int = 768,
            num_frames: int = 8,
            tubelet_size: int = 2,
            bias: bool = True,
            norm_layer: Optional[Any] = None,
            dynamic_img_pad: bool = False,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        """
        Args:
            img_size: (H_img, W_img) of every frame, or one int for square frames.
            patch_size: p, the spatial patch size (square patches, as timm's ViTs).
            in_chans: C_in, the channels of every frame.
            embed_dim: C, the token width.
            num_frames: T, the frames of a clip.
            tubelet_size: t, the frames a token covers; T must be a multiple of it.
            bias: A bias in the projection.
            norm_layer: A norm on the tokens (timm's ``embed_norm_layer``), or None.
            dynamic_img_pad: timm's padding of frames to a patch multiple; not supported (raises if True).
            device, dtype: Where and in what type to create the parameters.
        """
        super().__init__()
        img_size, patch = to_2tuple(img_size), to_2tuple(patch_size)
        if patch[0] != patch[1]:
            raise ValueError(f'expected a square patch_size, got {patch}')
        if dynamic_img_pad:
            raise ValueError('video models take clips of a fixed size: dynamic_img_pad is not supported')
        if num_frames < 1 or tubelet_size < 1 or num_frames % tubelet_size:
            raise ValueError(f'expected num_frames a positive multiple of tubelet_size, got num_frames={num_frames}, '
                             f'tubelet_size={tubelet_size}')
        if img_size[0] % patch[0] or img_size[1] % patch[1]:
            raise ValueError(f'expected img_size a multiple of patch_size {patch[0]}, got {img_size}')
        self.img_size = img_size
        self.patch_size = patch
        self.in_chans = in_chans
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.temporal_size = num_frames // tubelet_size  # T'
        self.grid_size = (img_size[0] // patch[0], img_size[1] // patch[1])  # (H, W)
        self.num_patches = self.temporal_size * self.grid_size[0] * self.grid_size[1]  # T'*N
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=(tubelet_size, *patch), stride=(tubelet_size, *patch),
                              bias=bias, device=device, dtype=dtype)
        self.norm = norm_layer(embed_dim, device=device, dtype=dtype) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``[B, C_in, T, H_img, W_img]`` -> tokens ``[B, T'*N, C]``.

        Raises:
            ValueError: a tensor of another rank, channel count, frame count or frame size.
        """
        check_clip_shape(x, [self.in_chans, self.num_frames, self.img_size[0], self.img_size[1]])
        x = self.proj(x)  # [B, C, T', H, W]
        x = x.flatten(2).transpose(1, 2)  # [B, T'*H*W, C], frame-major
        return self.norm(x)


class TokenLearnerVideoTransformer(TokenLearnerVisionTransformer):
    """Video transformer on clips ``[B, 3, T, H_img, W_img]`` whose later blocks work on S learned tokens per
    time step (see the module docstring); ``tokenlearner_loc=None`` gives the plain video twin.

    Takes every ``VisionTransformer`` argument (img_size, patch_size, depth, embed_dim, class_token, global_pool,
    drop_path_rate, ...) but ``embed_layer``, ``dynamic_img_size`` and ``patch_drop_rate``, every TokenLearner
    setting of :class:`.TokenLearnerVisionTransformer`, and the clip's ``num_frames`` and ``tubelet_size``.

    ``forward_features``: clips ``[B, 3, T, H_img, W_img]`` -> normalised tokens ``[B, P+T'*S, C]`` (``[B, P+T'*N, C]``
    with TokenFuser or without TokenLearner); ``forward_head`` pools them into logits ``[B, num_classes]``.
    """
    num_frames: Final[int]
    tubelet_size: Final[int]

    def __init__(
            self,
            num_frames: int = 8,
            tubelet_size: int = 2,
            num_tokens: int = 8,
            tokenlearner_loc: Optional[int] = None,
            use_tokenfuse: bool = False,
            depth: int = 12,
            patch_drop_rate: float = 0.,
            dynamic_img_size: bool = False,
            **kwargs: Any,
    ) -> None:
        """
        Args:
            num_frames: T, the frames of a clip.
            tubelet_size: t, the frames a token covers (T' = T / t time steps).
            num_tokens: S, the tokens TokenLearner learns per time step.
            tokenlearner_loc: L, the block before which TokenLearner runs, counting from 0; None for no
                TokenLearner (the plain video twin; unlike the image model, where None means depth // 2).
            use_tokenfuse: TokenLearner + TokenFuser around every block from L on, keeping all T'*N tokens.
            depth: Number of transformer blocks.
            patch_drop_rate: timm's patch dropout; not supported (it would break the per-frame fold).
            dynamic_img_size: timm's any-size input; not supported (the joint position embedding is fixed).
            **kwargs: Any other argument of :class:`.TokenLearnerVisionTransformer` (``use_v11``,
                ``tokenlearner_drop_rate``, ``tokenlearner_init``) or of ``VisionTransformer``.
        """
        if patch_drop_rate > 0:
            raise ValueError(f'video models do not support patch_drop_rate > 0 (got {patch_drop_rate}): dropping '
                             'patches would break the per-frame fold, which needs every frame\'s N patch tokens')
        if dynamic_img_size:
            raise ValueError('video models take clips of a fixed size: dynamic_img_size is not supported')
        if 'embed_layer' in kwargs:
            raise ValueError('video models embed tubelets (TubeletEmbed): embed_layer cannot be set')
        plain = tokenlearner_loc is None
        if plain and use_tokenfuse:
            raise ValueError('use_tokenfuse=True needs a TokenLearner: give tokenlearner_loc, got None')
        super().__init__(
            num_tokens=num_tokens,
            tokenlearner_loc=0 if plain else tokenlearner_loc,
            use_tokenfuse=use_tokenfuse,
            depth=depth,
            embed_layer=partial(TubeletEmbed, num_frames=num_frames, tubelet_size=tubelet_size),
            **kwargs,
        )
        if plain:  # built by the image model, dropped: the twin's other tensors start as the TokenLearner model's
            self.token_learners = nn.ModuleDict()
            self.token_fusers = nn.ModuleDict()
            self.tokenlearner_loc = depth  # no block learns tokens
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        patch = self.patch_embed.patch_size[0]
        self.feature_info = [dict(module=f'blocks.{i}', num_chs=self.embed_dim, reduction=patch)
                             for i in range(self.num_spatial_blocks)]  # the blocks whose output keeps the grid

    @property
    def has_tokenlearner(self) -> bool:
        """Whether a block learns tokens (False for the plain video twin)."""
        return len(self.token_learners) > 0

    def _apply_learner(self, block_index: int, patches: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``[B, T'*N, C]`` -> learned tokens ``[B, T'*S, C]``: the TokenLearner runs on each time
        step's N tokens."""
        B, _, C = patches.shape
        steps = self.patch_embed.temporal_size
        frames = patches.reshape(B * steps, -1, C)  # [B*T', N, C]
        learned = self._run_learner(block_index, frames, grid)  # [B*T', S, C]
        return learned.reshape(B, -1, C)  # [B, T'*S, C]

    def _apply_fuser(self, block_index: int, learned: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """Learned tokens ``[B, T'*S, C]`` and patch tokens ``[B, T'*N, C]`` -> ``[B, T'*N, C]``: the TokenFuser
        maps each time step's S tokens back onto its N patches (without the residual)."""
        B, _, C = patches.shape
        steps = self.patch_embed.temporal_size
        fused = self._run_fuser(
            block_index,
            learned.reshape(B * steps, -1, C),  # [B*T', S, C]
            patches.reshape(B * steps, -1, C),  # [B*T', N, C]
        )  # [B*T', N, C]
        return fused.reshape(B, -1, C)  # [B, T'*N, C]

    def _spatial_map(self, tokens: torch.Tensor, batch_size: int, input_size: Tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``[B, T'*N, C]`` (frame-major) -> their map ``[B, C, T', H, W]``: a video model's NCHW
        intermediates and features keep the time axis between the channels and the patch grid."""
        H, W = self.patch_embed.grid_size
        steps = self.patch_embed.temporal_size
        return tokens.reshape(batch_size, steps, H, W, -1).permute(0, 4, 1, 2, 3).contiguous()


def create_tl_video(variant: str, pretrained: bool = False, **kwargs: Any) -> TokenLearnerVideoTransformer:
    """Builds a registered video variant through timm's ``build_model_with_cfg``.

    Pretrained weights (an image ViT or TokenLearner ViT, inflated; or a video checkpoint) load through
    :func:`.adapt_video.video_checkpoint_filter_fn`; with ``pretrained``, the weight file is found and checked
    first, so that errors name it (:func:`tl_models.pretrained.pretrained_file_overlay`).

    The pretrained cfg's ``input_size`` is ``(3, T, H_img, W_img)``. timm's builder reads ``input_size`` as
    ``(C, H, W)``, so it gets the cfg with ``(C, H_img, W_img)`` (and ``num_frames`` from T unless given) and the
    built model gets the video cfg back. An exported model's cfg comes as ``(C, H_img, W_img)`` from timm's hub
    loader, with ``num_frames`` among the exported arguments, which then give T.

    ``features_only=True`` returns the maps ``[B, C, T', H, W]`` of the last 3 blocks that keep the patch grid (fewer
    where fewer do; ``out_indices`` counts as ``forward_intermediates`` does for NCHW).
    """
    loc, fuse = kwargs.get('tokenlearner_loc'), kwargs.get('use_tokenfuse', False)
    spatial = kwargs.get('depth', 12) if loc is None or fuse else loc
    out_indices = kwargs.pop('out_indices') if 'out_indices' in kwargs else min(3, spatial)
    overlay = kwargs.pop('pretrained_cfg_overlay', None)
    if pretrained:
        overlay = pretrained_file_overlay(variant, kwargs.get('pretrained_cfg'), overlay, kwargs.get('cache_dir'))
    video_cfg = resolve_pretrained_cfg(variant, kwargs.pop('pretrained_cfg', None), overlay).to_dict()
    input_size = tuple(video_cfg['input_size'])
    if len(input_size) == 3 and 'num_frames' in kwargs:
        # timm's hub loader (local-dir:, hf-hub:) rebuilds input_size as (C, H, W) from the exported img_size
        input_size = (input_size[0], kwargs['num_frames'], *input_size[1:])
    if len(input_size) != 4:
        raise ValueError(f'{variant}: expected a video pretrained cfg input_size (3, T, H, W), got {input_size}')
    kwargs.setdefault('num_frames', input_size[1])
    model = build_model_with_cfg(
        TokenLearnerVideoTransformer,
        variant,
        pretrained,
        pretrained_cfg=dict(video_cfg, input_size=(input_size[0], *input_size[2:])),
        pretrained_filter_fn=video_checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls='getter'),
        **kwargs,
    )
    video = model.model if kwargs.get('features_only') else model  # a features_only model wraps it
    embed = video.patch_embed
    # the one description of a video input: (C, T, H_img, W_img), the clips the built model takes
    video.pretrained_cfg = video.default_cfg = dict(
        video.pretrained_cfg, input_size=(embed.in_chans, video.num_frames, *embed.img_size))
    return model
