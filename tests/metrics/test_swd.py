"""SWD on Laplacian-pyramid patches: pyramid identities, the 1-D closed form, and monotone growth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fewgan.errors import FewganError
from fewgan.metrics.swd import (
    laplacian_pyramid,
    num_levels,
    reconstruct_pyramid,
    single_image_crops,
    sliced_wasserstein,
    swd,
    swd_levels,
)


def blobs(n: int, seed: int, size: int = 32, channels: int = 1) -> torch.Tensor:
    """Gaussian blobs on a dark background plus noise: a particle-like distribution in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = torch.full((n, channels, size, size), -0.8)
    for i in range(n):
        for _ in range(4):
            cy, cx = (torch.rand(2, generator=g) * size).tolist()
            r = 1.5 + 2.5 * float(torch.rand(1, generator=g))
            blob = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
            out[i] += 1.2 * blob
    out += 0.05 * torch.randn(out.shape, generator=g)
    return out.clamp(-1, 1)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return x
    r = int(3 * sigma + 1)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)


@pytest.fixture(scope="module")
def sets():
    return blobs(48, seed=1), blobs(48, seed=2)


def test_levels_halve_down_to_16_px():
    assert num_levels(64, 64) == 3  # 64, 32, 16
    assert num_levels(256, 200) == 4  # 200, 100, 50, 25
    assert num_levels(16, 16) == 1
    assert num_levels(12, 40) == 1
    pyr = laplacian_pyramid(torch.zeros(2, 3, 64, 48), 3)
    assert [tuple(p.shape[-2:]) for p in pyr] == [(64, 48), (32, 24), (16, 12)]


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (1, 3, 37, 50)])
def test_pyramid_reconstructs_exactly(shape):
    x = torch.rand(shape) * 2 - 1
    levels = num_levels(*shape[-2:])
    pyr = laplacian_pyramid(x, levels)
    assert torch.allclose(reconstruct_pyramid(pyr), x, atol=1e-5)
    # band-pass levels of a constant image are 0 (the binomial filter sums to 1)
    flat = laplacian_pyramid(torch.full(shape, 0.3), levels)
    for band in flat[:-1]:
        assert band.abs().max() < 1e-5
    assert torch.allclose(flat[-1], torch.full_like(flat[-1], 0.3), atol=1e-5)


def test_sliced_wasserstein_1d_closed_form():
    # in one dimension every unit direction is +-1: SWD = W1 = mean |sorted a - sorted b|
    a = torch.tensor([[0.0], [1.0], [2.0], [5.0]])
    b = torch.tensor([[1.0], [1.5], [3.0], [2.0]])
    expected = np.mean(np.abs(np.sort(a[:, 0].numpy()) - np.sort(b[:, 0].numpy())))  # (1+0.5+0+2)/4
    assert expected == pytest.approx(0.875)
    got = sliced_wasserstein(a, b, directions=8, repeats=2, generator=torch.Generator().manual_seed(0))
    assert got == pytest.approx(0.875, rel=1e-6)
    # a pure translation by t along any direction u projects to |t . u|: mean over unit directions
    pts = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    shifted = pts + torch.tensor([3.0, 0.0])
    got = sliced_wasserstein(pts, shifted, directions=128, repeats=4, generator=torch.Generator().manual_seed(2))
    assert got == pytest.approx(3.0 * 2 / np.pi, rel=0.05)  # E|cos theta| = 2/pi


def test_identical_sets_give_zero_and_seed_is_deterministic(sets):
    real, _ = sets
    assert swd(real, real, seed=3) == pytest.approx(0.0, abs=1e-9)
    a = swd_levels(real, sets[1], seed=5)
    b = swd_levels(real, sets[1], seed=5)
    assert a == b
    assert len(a["levels"]) == 2 and a["level_sizes"] == [[32, 32], [16, 16]]
    assert a["swd"] == pytest.approx(np.mean(a["levels"]))


def test_same_distribution_is_small_and_shifts_grow_monotonically(sets):
    real, other = sets
    base = swd(real, other)
    # blur strength
    blurred = [swd(real, blur(other, s)) for s in (0.6, 1.2, 2.0)]
    assert base < blurred[0] < blurred[1] < blurred[2]
    assert base < 0.25 * blurred[-1]
    # noise level
    g = torch.Generator().manual_seed(9)
    noise = torch.randn(other.shape, generator=g)
    noisy = [swd(real, (other + s * noise).clamp(-1, 1)) for s in (0.1, 0.2, 0.4)]
    assert base < noisy[0] < noisy[1] < noisy[2]
    # brightness offset: invisible to the reference's per-set normalisation, seen here
    bright = [swd(real, (other + d).clamp(-1, 1)) for d in (0.05, 0.1, 0.2)]
    assert base < bright[0] < bright[1] < bright[2]
    assert base < 0.5 * bright[-1]


def test_any_channel_count_and_unequal_counts_and_sizes():
    real = blobs(10, seed=1, size=32, channels=3)
    fake = blobs(7, seed=2, size=48, channels=3)
    out = swd_levels(real, fake)
    assert out["descriptors"] == 128 * 10
    assert np.isfinite(out["swd"]) and out["swd"] > 0
    with pytest.raises(FewganError, match="channel"):
        swd(real, blobs(4, seed=3, size=32, channels=1))
    with pytest.raises(FewganError, match="smaller than"):
        swd(torch.zeros(2, 1, 5, 5), torch.zeros(2, 1, 5, 5))


def test_single_image_mode_crops_of_the_image_are_closer_than_a_blurred_image():
    image = blobs(1, seed=4, size=96)
    crops = single_image_crops(image, 16, (64, 64), seed=1)
    assert crops.shape == (16, 1, 64, 64)
    near = swd(image, crops)
    far = swd(image, blur(crops, 1.5))
    assert near < 0.5 * far


def test_the_references_own_set_normalisation_cannot_see_a_contrast_change(sets):
    real, other = sets
    # a contrast change about the mean: each level's descriptors scale by 0.6, which per-set
    # normalisation undoes exactly; real-set normalisation sees it
    mean = other.mean()
    flat = mean + 0.6 * (other - mean)
    base_each = swd(real, other, normalisation="each")
    assert swd(real, flat, normalisation="each") == pytest.approx(base_each, rel=1e-3)
    assert swd(real, flat) > 2 * swd(real, other)
    with pytest.raises(FewganError, match="normalisation"):
        swd(real, other, normalisation="own")
