"""The one private timm function tl_models imports, pinned: these fail on a timm whose version of it differs."""
from timm.models._features import feature_take_indices


def test_feature_take_indices_counts_as_timms_vits_do():
    assert feature_take_indices(12, None) == (list(range(12)), 11)
    assert feature_take_indices(12, 3) == ([9, 10, 11], 11)
    assert feature_take_indices(12, [2, -1]) == ([2, 11], 11)
