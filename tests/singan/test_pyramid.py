"""The scale rule: the seed's table, the two repairs, the bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from fewgan.errors import FewganError
from fewgan.singan.pyramid import build_reals, plan_pyramid


def test_seed_table_250x200():
    p = plan_pyramid(250, 200, 16, 200)
    assert p.sizes == ((16, 13), (21, 17), (26, 21), (34, 27), (44, 35), (56, 45), (72, 58), (93, 75),
                       (120, 96), (155, 124), (200, 160))
    assert [max(s) for s in p.sizes] == [16, 21, 26, 34, 44, 56, 72, 93, 120, 155, 200]
    assert p.num_scales == 10 and p.stop_scale == 10
    assert p.scale_factor == pytest.approx(0.1 ** (1 / 9), rel=1e-12)
    assert p.repaired == ()  # the seed case is untouched by either repair (its s0 is 13 px, kept)


def test_coins_counts_on_resized_image():
    p = plan_pyramid(303, 384, 16, 200)
    assert len(p.sizes) == 10
    assert p.sizes[0] == (17, 21) and p.sizes[-1] == (158, 200)
    assert len(p.repaired) == 1 and "8x10" in p.repaired[0]
    # the same pyramid as the public code gives on the image pre-resized to 158 x 200
    assert plan_pyramid(158, 200, 16, 200).sizes == p.sizes


def test_coins_at_128_matches_peer_run_b():
    p = plan_pyramid(303, 384, 16, 128)
    assert p.sizes == ((16, 21), (21, 26), (26, 33), (32, 41), (41, 51), (51, 65), (64, 81), (81, 102), (101, 128))


def test_large_square_image():
    p = plan_pyramid(1024, 1024, 16, 200)
    assert min(p.sizes[0]) >= 11  # the public rule gives 4 x 4 here
    assert p.sizes[-1] == (200, 200) and p.repaired


@pytest.mark.parametrize("hw", [(265, 212), (212, 265), (293, 250)])
def test_never_exceeds_max_size(hw):
    h, w = hw
    s = 200 / max(hw)
    assert max(math.ceil(h * s), math.ceil(w * s)) == 201  # the quirk: float rounding, then ceil
    p = plan_pyramid(h, w, 16, 200)
    assert max(p.sizes[-1]) == 200
    assert all(min(s) >= 11 for s in p.sizes)
    assert any("capped" in note for note in p.repaired)


def test_bad_sizes():
    with pytest.raises(FewganError, match="smaller than --min-size"):
        plan_pyramid(15, 40, 16, 200)
    with pytest.raises(FewganError, match="larger than --max-size"):
        plan_pyramid(100, 100, 64, 32)


def test_build_reals_sizes_and_identity():
    p = plan_pyramid(40, 30, 16, 200)
    image = torch.rand(3, 40, 30) * 2 - 1
    reals = build_reals(image, p)
    assert [tuple(r.shape[-2:]) for r in reals] == list(p.sizes)
    assert torch.equal(reals[-1][0], image)  # no resize when the image fits max size


def test_prepare_reads_a_page_with_an_explicit_data_range(tmp_path):
    import numpy as np
    import tifffile

    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import prepare

    page1 = np.full((40, 48), 4095, np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([np.zeros_like(page1), page1]), photometric="minisblack")
    cfg = SinGANConfig(max_size=32, data_range=(0.0, 4095.0), page=1)
    tensor, meta, pyramid = prepare(tmp_path / "stack.tif", cfg)
    assert meta.page == 1 and meta.data_range == (0.0, 4095.0)
    assert float(tensor.min()) == 1.0  # 4095 is the top of the 12-bit range, not 1/16 of 65535
    assert max(pyramid.sizes[-1]) == 32
    with pytest.raises(FewganError, match="--page"):
        prepare(tmp_path / "stack.tif", SinGANConfig(max_size=32))


def test_coarse_to_fine_is_the_hand_chain_of_generators():
    """One pass: y <- G_j(y + amp_j noise_j, y), upsampled between scales; start / image inject; to_next."""
    import torch

    from fewgan.singan.nets import Generator, upsample
    from fewgan.singan.pyramid import TrainedScales, fixed_noise, random_noise

    torch.manual_seed(0)
    sizes, sf = [(11, 12), (14, 15), (18, 19)], 0.78
    gens = [Generator(3, 8).eval() for _ in sizes]
    amps = [1.0, 0.3, 0.1]
    noises = [torch.randn(1, 3, h, w) for h, w in sizes]
    scales = TrainedScales(gens, amps, sizes, sf)
    with torch.no_grad():
        y = torch.zeros(1, 3, *sizes[0])
        hand = []
        for j in range(3):
            y = gens[j](y + amps[j] * noises[j], y)
            hand.append(y)
            if j < 2:
                y = upsample(y, sizes[j + 1], sf)
        assert torch.equal(scales.coarse_to_fine(fixed_noise(noises), stop=2), hand[2])
        assert torch.equal(scales.coarse_to_fine(fixed_noise(noises), stop=1), hand[1])
        # to_next: scale 1's output brought to scale 2 is what scale 2 starts from
        prev2 = scales.coarse_to_fine(fixed_noise(noises), stop=1, to_next=True)
        assert prev2.shape[-2:] == sizes[2] and torch.equal(prev2, upsample(hand[1], sizes[2], sf))
        assert torch.equal(scales.coarse_to_fine(fixed_noise(noises), start=2, stop=2, image=prev2), hand[2])
        # nothing to run: the starting image (zeros for scale 0), batch and channels as asked
        assert torch.equal(scales.coarse_to_fine(fixed_noise(noises), stop=-1, batch=2), torch.zeros(2, 3, 11, 12))
        # fresh noise: drawn scale by scale from the generator given, s0's one channel on all three
        a = scales.coarse_to_fine(random_noise(torch.Generator().manual_seed(5)), stop=2, batch=2)
        b = scales.coarse_to_fine(random_noise(torch.Generator().manual_seed(5)), stop=2, batch=2)
        assert torch.equal(a, b) and not torch.equal(a[0], a[1])
        g = torch.Generator().manual_seed(5)
        n0 = torch.randn((2, 1, 11, 12), generator=g).repeat(1, 3, 1, 1)
        y0 = gens[0](n0, torch.zeros(2, 3, 11, 12))
        assert torch.equal(scales.coarse_to_fine(random_noise(torch.Generator().manual_seed(5)), stop=0, batch=2), y0)
