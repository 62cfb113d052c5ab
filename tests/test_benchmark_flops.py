"""The GMAC counter against timm's published figures and the paper, and fused against unfused attention."""
import pytest
import timm
import torch

import tl_models  # noqa: F401  (registers the variants)
from tl_models.benchmark import count_gmacs, count_params_m

# timm's results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv (columns infer_gmacs, param_count).
TIMM_PUBLISHED = {
    'vit_tiny_patch16_224': (1.26, 5.72),
    'vit_small_patch16_224': (4.61, 22.05),
    'vit_base_patch16_224': (17.58, 86.57),
}


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    """Builds ``name`` on the meta device: the count runs on shapes only, in milliseconds."""
    with torch.device('meta'):
        return timm.create_model(name, **kwargs)


@pytest.mark.parametrize('name', sorted(TIMM_PUBLISHED))
def test_gmacs_and_params_match_timm_published_figures(name):
    gmacs, params_m = TIMM_PUBLISHED[name]
    model = meta_model(name)
    counted = count_gmacs(model, (3, 224, 224))
    assert counted == pytest.approx(gmacs, rel=0.01)
    assert round(counted, 1) == round(gmacs, 1)  # what timm's tables show at one decimal: 1.3, 4.6, 17.6
    assert count_params_m(model) == pytest.approx(params_m, abs=0.01)


def test_fused_cpu_attention_counts_as_the_unfused_matmuls():
    fused = timm.create_model('vit_tiny_patch16_224', depth=2, img_size=64)
    unfused = timm.create_model('vit_tiny_patch16_224', depth=2, img_size=64)
    for module in unfused.modules():
        if hasattr(module, 'fused_attn'):
            module.fused_attn = False
    assert any(getattr(m, 'fused_attn', False) for m in fused.modules())
    size = (3, 64, 64)
    assert count_gmacs(fused, size) == pytest.approx(count_gmacs(unfused, size), rel=1e-12)
    assert count_gmacs(fused, size) == pytest.approx(
        count_gmacs(meta_model('vit_tiny_patch16_224', depth=2, img_size=64), size), rel=1e-12)


def test_fused_attention_adds_exactly_its_two_matmuls():
    """q @ k^T and scores @ v add 2 * N^2 * C MACs per block (N tokens, C channels)."""
    model = timm.create_model('vit_tiny_patch16_224', depth=1, img_size=64)
    attention = model.blocks[0].attn
    assert attention.fused_attn
    with_attention = count_gmacs(model, (3, 64, 64))
    # The same two linear layers without the attention in between.
    attention.forward = lambda x, **kwargs: attention.proj(attention.qkv(x)[..., :192])
    tokens = 1 + 16  # class token + a 4 x 4 grid
    assert (with_attention - count_gmacs(model, (3, 64, 64))) * 1e9 == pytest.approx(2 * tokens ** 2 * 192)


def test_tokenlearner_b16_384_matches_the_paper():
    """The paper: TokenLearner B/16 at 384 with 8 tokens at the middle, 28.7 GFLOPs, against 55.6 for ViT-B/16."""
    tl = count_gmacs(meta_model('tl_vit_base_patch16_384_8at6'), (3, 384, 384))
    vit = count_gmacs(meta_model('vit_base_patch16_384'), (3, 384, 384))
    assert tl == pytest.approx(28.7, rel=0.05)
    assert vit == pytest.approx(55.6, rel=0.05)


def test_count_keeps_the_training_mode():
    model = timm.create_model('tl_vit_tiny_patch16_224_8at6', depth=2, tokenlearner_loc=1, img_size=32).train()
    assert count_gmacs(model, (3, 32, 32)) > 0
    assert model.training
