"""TokenLearner Vision Transformer: timm's ``VisionTransformer`` with TokenLearner (and TokenFuser) blocks.

Ryoo et al., "TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?", NeurIPS 2021
(arXiv 2106.11297); official JAX code: google-research/scenic, ``projects/token_learner``.

The blocks keep timm's names (``blocks.{i}``), so a plain timm ViT checkpoint maps 1:1 onto every
shared parameter; the TokenLearner and TokenFuser modules live beside them in ``token_learners`` and
``token_fusers``, keyed by the index of the block they serve. With B batch, P prefix (class/register)
tokens, N patch tokens on an (H, W) grid, S learned tokens and C channels:

- TokenLearner only (``use_tokenfuse=False``): blocks ``0 .. L-1`` see ``[B, P+N, C]``; before block
  ``L = tokenlearner_loc`` the N patch tokens become S learned tokens, so blocks ``L ..`` see ``[B, P+S, C]``.
- TokenLearner + TokenFuser: every block ``i >= L`` runs as ``x = r + TF_i(block_i(TL_i(r)), r)`` on the
  patch tokens (prefix tokens pass through the block beside the learned ones); the sequence stays ``[B, P+N, C]``.

Features (NCHW, ``feature_info``, ``features_only``) come from the ``num_spatial_blocks`` blocks whose output keeps
the patch grid: all with TokenFuser, else blocks ``0 .. L-1``. Learned tokens have no grid; only NLC returns them.
"""
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.models import DefaultCfg, VisionTransformer, build_model_with_cfg, checkpoint
from timm.models._features import feature_take_indices
from torch.jit import Final

from ..layers import TokenFuser, TokenLearner, TokenLearnerV11
from ..weights import pretrained_file_overlay
from .adapt import checkpoint_filter_fn
from .backbone import vit_arguments

__all__ = ['TokenLearnerVisionTransformer', 'create_tl_vit']

# Filled from configs/*.yaml by tl_models.registry, which registers an entrypoint per variant here.
default_cfgs: Dict[str, DefaultCfg] = {}


with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript; timm's ViTs still support it, so do we
    warnings.filterwarnings('ignore', message='`torch.jit.interface` is deprecated', category=FutureWarning)

    @torch.jit.interface
    class _LearnerInterface(nn.Module):
        """What TorchScript needs to call a TokenLearner picked from ``token_learners`` by key."""

        def forward(self, x: torch.Tensor, grid_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
            pass

    @torch.jit.interface
    class _FuserInterface(nn.Module):
        """What TorchScript needs to call a TokenFuser picked from ``token_fusers`` by key."""

        def forward(self, tokens: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
            pass


class TokenLearnerVisionTransformer(VisionTransformer):
    """Vision Transformer whose later blocks work on S learned tokens instead of the N patch tokens.

    Takes every ``VisionTransformer`` argument (img_size, patch_size, depth, embed_dim, class_token,
    global_pool, drop_path_rate, ...) and the official TokenLearner settings below.
    """
    num_tokens: Final[int]
    tokenlearner_loc: Final[int]
    use_tokenfuse: Final[bool]

    def __init__(
            self,
            num_tokens: int = 8,
            tokenlearner_loc: Optional[int] = None,
            use_v11: bool = True,
            use_tokenfuse: bool = False,
            tokenlearner_drop_rate: float = 0.,
            tokenlearner_init: str = 'official',
            depth: int = 12,
            embed_dim: int = 768,
            patch_drop_rate: float = 0.,
            weight_init: str = '',
            **kwargs: Any,
    ) -> None:
        """
        Args:
            num_tokens: S, the number of tokens TokenLearner learns (8 or 16 in the paper).
            tokenlearner_loc: L, the block before which TokenLearner runs, counting from 0 (default: depth // 2).
            use_v11: TokenLearner v1.1 (MLP scores, softmax over space) rather than v1 (convolutions, sigmoid).
            use_tokenfuse: TokenLearner + TokenFuser around every block from L on, keeping all N tokens.
            tokenlearner_drop_rate: Dropout inside TokenLearner v1.1 and TokenFuser.
            tokenlearner_init: Initialisation of the TokenLearner/TokenFuser layers: 'official' (the official
                code's, distinct token maps from the start) or 'vit' (timm's ViT initialisation, which earlier
                tl_models versions applied to them: almost uniform, almost identical maps at the start).
            depth: Number of transformer blocks.
            embed_dim: C, the transformer width.
            patch_drop_rate: timm's patch dropout; needs v1.1 (v1's convolutions need the full grid).
            weight_init: timm's weight init mode ('', 'jax', 'jax_nlhb', 'moco', 'skip').
            **kwargs: Any other ``VisionTransformer`` argument.
        """
        tokenlearner_loc = depth // 2 if tokenlearner_loc is None else tokenlearner_loc
        if not 0 <= tokenlearner_loc < depth:
            raise ValueError(f'tokenlearner_loc must be a block index in 0..{depth - 1}, got {tokenlearner_loc}')
        if num_tokens < 1:
            raise ValueError(f'num_tokens must be at least 1, got {num_tokens}')
        if patch_drop_rate > 0 and not use_v11:
            raise ValueError('patch_drop_rate > 0 needs use_v11=True: TokenLearner v1 convolves the full patch grid')
        super().__init__(
            depth=depth, embed_dim=embed_dim, patch_drop_rate=patch_drop_rate, weight_init='skip', **kwargs)
        self.num_tokens = num_tokens
        self.tokenlearner_loc = tokenlearner_loc
        self.use_tokenfuse = use_tokenfuse

        def learner() -> nn.Module:
            if use_v11:
                return TokenLearnerV11(num_tokens, embed_dim, dropout_rate=tokenlearner_drop_rate,
                                       weight_init=tokenlearner_init)
            return TokenLearner(num_tokens, embed_dim, weight_init=tokenlearner_init)

        learner_blocks = range(tokenlearner_loc, depth) if use_tokenfuse else [tokenlearner_loc]
        self.token_learners = nn.ModuleDict({str(i): learner() for i in learner_blocks})
        self.token_fusers = nn.ModuleDict({
            str(i): TokenFuser(num_tokens, embed_dim, dropout_rate=tokenlearner_drop_rate,
                               weight_init=tokenlearner_init)
            for i in (learner_blocks if use_tokenfuse else [])
        })
        self.feature_info = self.feature_info[:self.num_spatial_blocks]  # learned tokens have no grid

        self.weight_init_mode = 'reset' if weight_init == 'skip' else weight_init
        if weight_init != 'skip':
            self.init_weights(needs_reset=False)

    @property
    def num_spatial_blocks(self) -> int:
        """Blocks ``0 .. num_spatial_blocks - 1`` output the patch grid: all with TokenFuser, else those before L."""
        return len(self.blocks) if self.use_tokenfuse else min(self.tokenlearner_loc, len(self.blocks))

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Union[str, List]]:
        """Parameter groups for layer-wise LR decay: each TokenLearner/TokenFuser joins the block it serves."""
        return dict(
            stem=r'^cls_token|reg_token|pos_embed|patch_embed|norm_pre',
            blocks=[(r'^blocks\.(\d+)', None), (r'^token_(?:learners|fusers)\.(\d+)', None), (r'^norm', (99999,))],
        )

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Images ``[B, 3, H_img, W_img]`` -> tokens ``[B, P+N, C]`` and their patch grid ``(H, W)``."""
        x = self.patch_embed(x)
        if self.dynamic_img_size:
            grid = (x.shape[1], x.shape[2])  # patch_embed returns [B, H, W, C]
        else:
            grid = (self.patch_embed.grid_size[0], self.patch_embed.grid_size[1])
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        x = self.norm_pre(x)
        return x, grid

    def _apply_learner(self, block_index: int, patches: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``[B, N, C]`` -> learned tokens ``[B, S, C]`` by the TokenLearner of block ``block_index``.

        Subclasses that group tokens differently (per frame in the video model) override this.
        """
        return self._run_learner(block_index, patches, grid)

    def _run_learner(self, block_index: int, patches: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """The TokenLearner of block ``block_index`` on ``[B', N, C]`` -> ``[B', S, C]`` (TorchScript has no
        ``super()``: subclasses call this)."""
        if torch.jit.is_scripting():
            learner: _LearnerInterface = self.token_learners[str(block_index)]
            return learner.forward(patches, grid)  # [B, S, C]
        return self.token_learners[str(block_index)](patches, grid)  # [B, S, C]

    def _apply_fuser(self, block_index: int, learned: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """Learned tokens ``[B, S, C]`` and the patch tokens ``[B, N, C]`` they came from -> ``[B, N, C]`` by the
        TokenFuser of block ``block_index`` (without the residual)."""
        return self._run_fuser(block_index, learned, patches)

    def _run_fuser(self, block_index: int, learned: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """The TokenFuser of block ``block_index`` on ``[B', S, C]`` and ``[B', N, C]`` -> ``[B', N, C]`` (TorchScript
        has no ``super()``: subclasses call this)."""
        if torch.jit.is_scripting():
            fuser: _FuserInterface = self.token_fusers[str(block_index)]
            return fuser.forward(learned, patches)  # [B, N, C]
        return self.token_fusers[str(block_index)](learned, patches)  # [B, N, C]

    def _learn_tokens(self, block_index: int, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """``[B, P+N, C]`` -> ``[B, P+S, C]`` with the TokenLearner of block ``block_index``; prefix tokens kept."""
        patches = x[:, self.num_prefix_tokens:]  # [B, N, C]
        learned = self._apply_learner(block_index, patches, grid)  # [B, S, C]
        if self.num_prefix_tokens == 0:
            return learned
        return torch.cat([x[:, :self.num_prefix_tokens], learned], dim=1)

    def _fuse_tokens(self, block_index: int, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Block output ``[B, P+S, C]`` -> ``[B, P+N, C]``: the patch tokens of ``residual`` plus the fused tokens."""
        learned = x[:, self.num_prefix_tokens:]  # [B, S, C]
        patches = residual[:, self.num_prefix_tokens:]  # [B, N, C]
        fused = self._apply_fuser(block_index, learned, patches)  # [B, N, C]
        fused += patches  # the residual, in place: the fuser's output is a fresh tensor no backward needs
        if self.num_prefix_tokens == 0:
            return fused
        return torch.cat([x[:, :self.num_prefix_tokens], fused], dim=1)

    def _forward_blocks(
            self,
            x: torch.Tensor,
            grid: Tuple[int, int],
            take_indices: List[int],
            last_index: int,
            first_index: int = 0,
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Runs blocks ``first_index .. last_index`` on ``[B, P+N, C]`` (the tokens entering block ``first_index``,
        which must come before the TokenLearner or have TokenFuser); returns the output and those of
        ``take_indices``."""
        intermediates: List[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            if first_index <= i <= last_index:
                residual = x
                learns = i == self.tokenlearner_loc or (self.use_tokenfuse and i > self.tokenlearner_loc)
                if learns:
                    x = self._learn_tokens(i, x, grid)  # [B, P+S, C]
                if self.grad_checkpointing and not torch.jit.is_scripting():
                    x = checkpoint(blk, x)
                else:
                    x = blk(x)
                if learns and self.use_tokenfuse:
                    x = self._fuse_tokens(i, x, residual)  # [B, P+N, C]
                if i in take_indices:
                    intermediates.append(x)
        return x, intermediates

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H_img, W_img]`` -> normalised tokens ``[B, P+S, C]`` (``[B, P+N, C]`` with TokenFuser)."""
        x, grid = self._embed(x)
        x, _ = self._forward_blocks(x, grid, [], len(self.blocks) - 1)
        return self.norm(x)

    def forward_features_from(self, x: torch.Tensor, block_index: int) -> torch.Tensor:
        """The tokens entering block ``block_index``, ``[B, P+N, C]`` (the output of block ``block_index - 1``), ->
        normalised tokens, as :meth:`forward_features` continues from there; for training on cached outputs of
        frozen early blocks. ``block_index`` may not come after the TokenLearner of a model without TokenFuser:
        its input there holds learned tokens, not the patch grid."""
        if not 0 <= block_index <= self.num_spatial_blocks:
            raise ValueError(f'block_index must be in 0..{self.num_spatial_blocks} (blocks taking the patch grid), '
                             f'got {block_index}')
        grid = (self.patch_embed.grid_size[0], self.patch_embed.grid_size[1])
        x, _ = self._forward_blocks(x, grid, [], len(self.blocks) - 1, first_index=block_index)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H_img, W_img]`` -> logits ``[B, num_classes]``."""
        return self.forward_head(self.forward_features(x))

    def _take_indices(
            self,
            indices: Optional[Union[int, List[int]]],
            output_fmt: str,
    ) -> Tuple[List[int], int]:
        """Block indices to return and the last of them, as timm's ``feature_take_indices``.

        For 'NLC' every block counts. For 'NCHW' only the spatial blocks (``num_spatial_blocks``) do: None takes
        them all, an int n the last n of them; a list names blocks and may not name one that outputs learned tokens.
        """
        if output_fmt == 'NLC':
            return feature_take_indices(len(self.blocks), indices)
        num_spatial = self.num_spatial_blocks
        if num_spatial == 0:
            raise ValueError(
                f'no block outputs the patch grid (tokenlearner_loc={self.tokenlearner_loc}, no TokenFuser), so '
                "there are no NCHW features; use output_fmt='NLC' for the learned tokens")
        if indices is None or isinstance(indices, int):
            return feature_take_indices(num_spatial, indices)
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        learned = [i for i in take_indices if i >= num_spatial]
        if learned:
            raise ValueError(
                f'blocks {learned} output {self.num_tokens} learned tokens with no spatial layout: NCHW takes blocks '
                f"0..{num_spatial - 1}; use output_fmt='NLC' for the learned tokens")
        return take_indices, max_index

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            return_prefix_tokens: bool = False,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
            output_dict: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]], Dict[str, Any]]:
        """Forward that also returns the outputs of the blocks in ``indices``, as timm's ViTs do.

        'NCHW' returns spatial blocks only (``num_spatial_blocks``, those in ``feature_info``) as ``[B, C, H, W]``;
        'NLC' returns any block, as ``[B, N, C]`` or, after the TokenLearner of a model without TokenFuser, the
        S learned tokens ``[B, S, C]``. Prefix tokens are split off as in timm.

        Args:
            x: Images ``[B, 3, H_img, W_img]``.
            indices: NCHW: the last n spatial blocks if an int, all spatial blocks if None. NLC: the last n blocks
                if an int, all blocks if None. Else the listed block indices.
            return_prefix_tokens: Return (spatial, prefix) pairs.
            norm: Apply the final norm to every intermediate.
            stop_early: Stop after the last requested block.
            output_fmt: 'NCHW' or 'NLC'.
            intermediates_only: Return only the intermediates.
            output_dict: Return a dict with 'image_intermediates', optionally 'image_intermediates_prefix'
                and 'image_features'.

        Raises:
            ValueError: NCHW asked of a block after the TokenLearner of a model without TokenFuser.
        """
        if output_fmt not in ('NCHW', 'NLC'):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take_indices, max_index = self._take_indices(indices, output_fmt)
        last_index = max_index if stop_early else len(self.blocks) - 1

        batch_size, input_size = x.shape[0], (x.shape[-2], x.shape[-1])
        x, grid = self._embed(x)
        x, intermediates = self._forward_blocks(x, grid, take_indices, last_index)
        if norm:
            intermediates = [self.norm(y) for y in intermediates]

        prefix_tokens = [y[:, :self.num_prefix_tokens] for y in intermediates]
        intermediates = [y[:, self.num_prefix_tokens:] for y in intermediates]  # [B, N, C] or [B, S, C]
        if output_fmt == 'NCHW':
            intermediates = [self._spatial_map(y, batch_size, input_size) for y in intermediates]

        if output_dict:
            result: Dict[str, Any] = {'image_intermediates': intermediates}
            if self.num_prefix_tokens and return_prefix_tokens:
                result['image_intermediates_prefix'] = prefix_tokens
            if not intermediates_only:
                result['image_features'] = self.norm(x)
            return result
        if not torch.jit.is_scripting() and return_prefix_tokens and self.num_prefix_tokens:
            intermediates = list(zip(intermediates, prefix_tokens))
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def _spatial_map(self, tokens: torch.Tensor, batch_size: int, input_size: Tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``[B, N, C]`` of images of ``input_size`` -> their map ``[B, C, H, W]``."""
        H, W = self.patch_embed.dynamic_feat_size(input_size)
        return tokens.reshape(batch_size, H, W, -1).permute(0, 3, 1, 2).contiguous()

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drops what NCHW ``indices`` do not need: later blocks with their TokenLearner/TokenFuser, norm and head.

        ``indices`` count as in ``forward_intermediates`` with NCHW; the norm and head go as in timm's ViT.
        Returns the kept block indices.
        """
        take_indices, _ = self._take_indices(indices, 'NCHW')
        super().prune_intermediate_layers(take_indices, prune_norm=prune_norm, prune_head=prune_head)
        for modules in (self.token_learners, self.token_fusers):
            for key in [k for k in modules if int(k) >= len(self.blocks)]:
                del modules[key]
        return take_indices


def _default_out_indices(
        depth: int = 12,
        tokenlearner_loc: Optional[int] = None,
        use_tokenfuse: bool = False,
        **_: Any,
) -> int:
    """The ``out_indices`` of ``features_only``: timm's ViT default, the last 3 blocks, over the spatial blocks.

    Takes the model arguments, with the model's defaults; counts ``num_spatial_blocks`` before the model exists.
    """
    tokenlearner_loc = depth // 2 if tokenlearner_loc is None else tokenlearner_loc
    return min(3, depth if use_tokenfuse else tokenlearner_loc)


def create_tl_vit(
        variant: str,
        pretrained: bool = False,
        backbone: Optional[str] = None,
        **kwargs: Any,
) -> TokenLearnerVisionTransformer:
    """Builds a registered variant through timm's ``build_model_with_cfg`` (pretrained weights, features_only).

    ``backbone``: a timm ViT architecture (e.g. ``vit_small_patch14_dinov2``) whose arguments the model takes
    (:func:`.backbone.vit_arguments`); ``kwargs`` override them. With ``pretrained``, the weight file is
    downloaded and checked first, so that errors name it (:func:`tl_models.pretrained.pretrained_file_overlay`).

    ``features_only=True`` returns NCHW features of spatial blocks only (``num_spatial_blocks``); ``out_indices``
    counts as ``forward_intermediates`` does for NCHW and defaults to the last 3 spatial blocks, as timm's ViTs
    do over their blocks. With TokenLearner before block 1 or 2 and no TokenFuser (the CIFAR nano, micro and pico
    variants) only 1 or 2 blocks keep the grid, and the default gives those 1 or 2 feature levels; before block 0
    there is none, and ``features_only`` raises a ``ValueError``.
    """
    if backbone is not None:
        kwargs = dict(vit_arguments(backbone), **kwargs)
    out_indices = kwargs.pop('out_indices') if 'out_indices' in kwargs else _default_out_indices(**kwargs)
    if pretrained:
        kwargs['pretrained_cfg_overlay'] = pretrained_file_overlay(
            variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay'), kwargs.get('cache_dir'))
    return build_model_with_cfg(
        TokenLearnerVisionTransformer,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls='getter'),
        **kwargs,
    )
