"""Memorisation: copies of training images are flagged, fresh samples of the same distribution are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fewgan.errors import FewganError
from fewgan.metrics.memorisation import NEAR_COPY_THRESHOLD, copy_ratios, memorisation, nearest_neighbours


def smooth_fields(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """Random smooth images in [-1, 1]: one distribution, every draw a new image."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, size // 4, size // 4, generator=g)
    return (F.interpolate(coarse, size=size, mode="bicubic", align_corners=False) / 3).clamp(-1, 1)


def test_nearest_neighbours_hand_computation():
    train = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    query = np.array([[1.0, 0.0], [0.0, 5.0]])
    d, i = nearest_neighbours(query, train)
    assert i.tolist() == [0, 2] and np.allclose(d, [1.0, 1.0])
    d, i = nearest_neighbours(train, train, exclude_self=True)
    assert i.tolist() == [1, 0, 0] and np.allclose(d, [3.0, 3.0, 4.0])
    # other pairs excluded by a mask (the patch-copying use), in chunks of one query; all excluded: inf
    mask = torch.tensor([[True, False, False], [False, False, True]])
    d, i = nearest_neighbours(query, train, exclude=lambda a, b, ra, rb: mask[a:b, ra:rb], pairs=3)
    assert i.tolist() == [1, 0] and np.allclose(d, [2.0, 5.0])
    # blocks of references too (pairs below queries x references): the same answers
    d, i = nearest_neighbours(query, train, exclude=lambda a, b, ra, rb: mask[a:b, ra:rb], pairs=1)
    assert i.tolist() == [1, 0] and np.allclose(d, [2.0, 5.0])
    d, i = nearest_neighbours(train, train, exclude_self=True, pairs=2)
    assert i.tolist() == [1, 0, 0] and np.allclose(d, [3.0, 3.0, 4.0])
    d, _ = nearest_neighbours(query, train, exclude=lambda a, b, ra, rb: torch.ones(b - a, rb - ra, dtype=torch.bool))
    assert np.isinf(d).all()
    out = copy_ratios(train, query)
    # ratios: 1 / d_train(0) = 1/3 (a near-copy at 0.5), 1 / d_train(2) = 1/4
    assert np.allclose(out["ratio"], [1 / 3, 1 / 4])
    assert out["near_copy_share"] == 1.0 and out["closest_pairs"][0][:2] == [1, 2]


def test_nearest_neighbours_in_reference_blocks_equal_one_block():
    """Blocks over the references (the 2048 px patch search) give the one-block answer: distances within
    float64 rounding, the same indices, the earliest of tied references, exclusions per block."""
    g = torch.Generator().manual_seed(3)
    ref = torch.randint(0, 4, (500, 6), generator=g).double()  # many exact ties
    query = torch.randint(0, 4, (70, 6), generator=g).double()
    d0, i0 = nearest_neighbours(query, ref, pairs=10**9)
    for pairs in (7, 300, 5000):
        d, i = nearest_neighbours(query, ref, pairs=pairs)
        assert np.allclose(d, d0, atol=1e-12) and (i == i0).all()
    # brute force: the first index of the minimum
    full = torch.cdist(query, ref)
    assert (torch.from_numpy(i0) == full.argmin(dim=1)).all()
    skip = (torch.arange(70)[:, None] % 5) == (torch.arange(500)[None, :] % 5)
    d1, i1 = nearest_neighbours(query, ref, exclude=lambda a, b, ra, rb: skip[a:b, ra:rb], pairs=300)
    masked = full.masked_fill(skip, float("inf"))
    assert np.allclose(d1, masked.min(dim=1).values.numpy(), atol=1e-12) and (i1 == masked.argmin(dim=1).numpy()).all()
    d2, i2 = nearest_neighbours(ref[:40], ref[:40], exclude_self=True, pairs=64)
    self_masked = torch.cdist(ref[:40], ref[:40]).fill_diagonal_(float("inf"))
    assert np.allclose(d2, self_masked.min(dim=1).values.numpy(), atol=1e-12)


def test_copies_are_flagged_and_fresh_samples_are_not():
    train = smooth_fields(60, seed=0)
    g = torch.Generator().manual_seed(1)
    picks = torch.randint(0, 60, (40,), generator=g)
    copies = (train[picks] + 0.02 * torch.randn(40, 1, 32, 32, generator=g)).clamp(-1, 1)
    fresh = smooth_fields(40, seed=2)
    flagged = memorisation(train, copies)
    assert flagged["near_copy_share"] == 1.0
    assert flagged["pixel"]["nearest"] == picks.tolist()  # the pairs point at the copied image
    assert flagged["spaces"] == ["pixel"] and "pixel space only" in flagged["note"]
    clean = memorisation(train, fresh)
    assert clean["near_copy_share"] == 0.0
    assert 0.8 < clean["pixel"]["median_ratio"] < 1.3  # fresh samples sit as far as training neighbours
    assert clean["threshold"] == NEAR_COPY_THRESHOLD


def test_feature_space_is_used_when_features_are_given():
    train = smooth_fields(20, seed=3)
    fake = smooth_fields(10, seed=4)
    rng = np.random.default_rng(0)
    tf = rng.normal(size=(20, 8))
    ff = tf[:10] + 1e-3 * rng.normal(size=(10, 8))  # copies in feature space only
    out = memorisation(train, fake, train_features=tf, generated_features=ff)
    assert out["spaces"] == ["pixel", "feature"]
    assert out["pixel"]["near_copy_share"] == 0.0 and out["feature"]["near_copy_share"] == 1.0
    assert out["near_copy_share"] == 1.0  # the worse of the two spaces


def test_bad_input():
    with pytest.raises(FewganError, match="at least 2 training"):
        memorisation(smooth_fields(1, 0), smooth_fields(3, 1))
    with pytest.raises(FewganError, match="same size|one size"):
        memorisation(smooth_fields(4, 0, size=32), smooth_fields(3, 1, size=16))
