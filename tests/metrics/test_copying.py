"""Copying measures for one training image: layout (vs chance) and patches (vs the image's own spread)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.data.synthetic import make_micrograph
from fewgan.metrics.copying import chance_fraction, layout_copying, patch_copying


def test_chance_fraction_by_hand():
    # pixel centres within 2 px of the centre of an 11 x 11 image: 13 of 121
    assert chance_fraction(np.array([[5.0, 5.0]]), 2.0, (11, 11)) == pytest.approx(13 / 121)
    # a corner point sees only its quarter: (0,0),(0,1),(0,2),(1,0),(1,1),(2,0) = 6
    assert chance_fraction(np.array([[0.0, 0.0]]), 2.0, (11, 11)) == pytest.approx(6 / 121)


def test_layout_copies_score_far_above_chance_and_fresh_layouts_near_it():
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 96, size=(30, 2))
    copied = [train + rng.normal(0, 0.5, train.shape) for _ in range(4)]
    c = layout_copying(train, (96, 96), copied)
    assert c["fraction"] > 0.95 and c["chance"] < 0.2 and c["ratio"] > 5
    fresh = [rng.uniform(0, 95, size=(30, 2)) for _ in range(60)]
    f = layout_copying(train, (96, 96), fresh, other_real_points=rng.uniform(0, 96, size=(30, 2)))
    assert abs(f["fraction"] - f["chance"]) < 0.04 and f["objects"] == 1800
    assert 0 <= f["real_fraction"] <= 0.4


def _micrograph(seed):
    image, _ = make_micrograph(seed=seed, size=(64, 64), bit_depth=8, density=12.0, radius=3.0)
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None]


def test_patch_copying_flags_crops_of_the_training_image_and_not_new_images():
    train = _micrograph(1)
    crops = torch.stack([train[:, dy:dy + 48, dx:dx + 48] for dy, dx in ((3, 5), (7, 2), (11, 14))])
    copy = patch_copying(train, crops, queries=600)
    assert copy["share"] > 0.8 and copy["chance"] == 0.05
    new = patch_copying(train, torch.stack([_micrograph(s) for s in (2, 3, 4)]), queries=600)
    assert new["share"] < 0.2
    noise = patch_copying(train, torch.rand(2, 1, 64, 64) * 2 - 1, queries=600)
    assert noise["share"] < 0.02
    assert copy["threshold"] == new["threshold"] == noise["threshold"]   # one reference per image


def test_overlap_mask_is_the_box_rule_in_any_block():
    """The scattered exclusion mask of patch copying equals |dy| < patch and |dx| < patch against every
    patch of the image, for any block of queries and references (borders included)."""
    from fewgan.metrics.copying import _patches, overlap_mask

    image = torch.zeros(1, 23, 19)
    patch = 4
    _, corners = _patches(image, patch)
    pick = torch.tensor([0, 5, 15, len(corners) - 1, 100, 200])
    xy = corners[pick]
    dense = ((xy[:, None, 0] - corners[None, :, 0]).abs() < patch) & ((xy[:, None, 1] - corners[None, :, 1]).abs() < patch)
    exclude = overlap_mask(xy, image.shape[-2:], patch)
    assert torch.equal(exclude(0, 6, 0, len(corners)), dense)
    assert torch.equal(exclude(1, 4, 37, 151), dense[1:4, 37:151])
    assert int(dense[0].sum()) == patch * patch and int(dense[4].sum()) == (2 * patch - 1) ** 2  # corner, interior
