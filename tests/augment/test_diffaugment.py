"""DiffAugment (Zhao et al. 2020): closed forms, replay, gradients, value ranges."""

import pytest
import torch

from fewgan.augment.diffaugment import (
    DiffAugment,
    brightness,
    contrast,
    cutout,
    parse_policy,
    saturation,
    translate,
)
from fewgan.errors import FewganError


def _images(n=4, c=3, h=16, w=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, h, w, generator=g, dtype=dtype) * 2 - 1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_kept(channels, dtype):
    x = _images(c=channels, h=16, w=12, dtype=dtype)
    y = DiffAugment()(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device


def test_policy_parsing_and_identity():
    assert parse_policy("cutout, color") == ("color", "cutout")  # paper order
    assert parse_policy(None) == parse_policy("none") == ()
    with pytest.raises(FewganError, match="unknown DiffAugment policy 'colour'"):
        parse_policy("colour,translation")
    x = _images()
    assert DiffAugment(None)(x) is x
    assert not DiffAugment("none").enabled


def test_replay_is_deterministic():
    aug = DiffAugment()
    x = _images()
    p1 = aug.sample_params(x, torch.Generator().manual_seed(3))
    p2 = aug.sample_params(x, torch.Generator().manual_seed(3))
    assert p1.keys() == p2.keys()
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    assert torch.equal(aug.apply(x, p1), aug.apply(x, p2))
    assert torch.equal(aug(x, torch.Generator().manual_seed(3)), aug.apply(x, p1))


def test_parameter_ranges():
    aug = DiffAugment()
    x = torch.zeros(2000, 1, 16, 16)
    p = aug.sample_params(x, torch.Generator().manual_seed(0))
    assert -0.5 <= p["brightness"].min() and p["brightness"].max() <= 0.5
    assert 0 <= p["saturation"].min() and p["saturation"].max() <= 2
    assert 0.5 <= p["contrast"].min() and p["contrast"].max() <= 1.5
    # Translation: S = int(16 / 8 + 0.5) = 2, every value in -2..2 drawn.
    assert set(p["shift_y"].tolist()) == set(p["shift_x"].tolist()) == {-2, -1, 0, 1, 2}
    # Cutout side 8 (even): top from -4 to 16 - 4 = 12, so the centre covers 0..16 symmetrically.
    assert p["cutout_top"].min() == -4 and p["cutout_top"].max() == 12
    x_odd = torch.zeros(2000, 1, 10, 10)  # side int(5.5) = 5 (odd): top from -2 to 10 - 2 - 1 = 7
    p = aug.sample_params(x_odd, torch.Generator().manual_seed(0))
    assert p["cutout_left"].min() == -2 and p["cutout_left"].max() == 7


def test_color_closed_forms():
    x = _images(n=2, c=3)
    b = torch.tensor([0.3, -0.2])
    assert torch.allclose(brightness(x, b), x + b.view(2, 1, 1, 1))
    y = saturation(x, torch.tensor([0.0, 2.0]))
    m = x.mean(dim=1, keepdim=True)
    assert torch.allclose(y[0], m[0].expand(3, -1, -1), atol=1e-6)  # s = 0: grey
    assert torch.allclose(y[1], 2 * x[1] - m[1], atol=1e-6)
    y = contrast(x, torch.tensor([0.5, 1.5]))
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    dev_x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    dev_y = y - y.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(dev_y, dev_x * torch.tensor([0.5, 1.5]).view(2, 1, 1, 1), atol=1e-6)


def test_saturation_does_nothing_on_one_channel():
    x = _images(c=1)
    assert torch.equal(saturation(x, torch.tensor([0.0, 2.0, 0.3, 1.7])), x)
    aug = DiffAugment("color")
    p = aug.sample_params(x, torch.Generator().manual_seed(0))
    # Colour on grey = contrast(brightness(x)) exactly.
    expect = contrast(brightness(x, p["brightness"]), p["contrast"])
    assert torch.equal(aug.apply(x, p), expect)


def test_translation_moves_a_delta_with_zero_fill():
    h, w = 12, 10
    x = torch.zeros(3, 1, h, w)
    x[:, 0, 5, 4] = 1.0
    ty, tx = torch.tensor([2, -3, 0]), torch.tensor([-1, 2, 7])
    y = translate(x, ty, tx)
    assert y[0, 0, 7, 3] == 1 and y[0].sum() == 1
    assert y[1, 0, 2, 6] == 1 and y[1].sum() == 1
    assert y[2].sum() == 0  # moved out of the image (column 11 >= 10)
    # A constant image shows the zero fill: exactly the uncovered strip becomes 0.
    ones = torch.ones(3, 1, h, w)
    z = translate(ones, ty, tx)
    for k in range(3):
        kept = max(h - abs(int(ty[k])), 0) * max(w - abs(int(tx[k])), 0)
        assert int(z[k].sum()) == kept
    with_sampled = DiffAugment("translation")
    p = with_sampled.sample_params(x, torch.Generator().manual_seed(1))
    assert torch.equal(with_sampled.apply(x, p), translate(x, p["shift_y"], p["shift_x"]))


def test_cutout_zeros_the_stated_area():
    h = w = 16
    aug = DiffAugment("cutout")
    x = torch.ones(500, 3, h, w)
    p = aug.sample_params(x, torch.Generator().manual_seed(2))
    y = aug.apply(x, p)
    k = aug.cutout_size(h, w)[0]
    assert k == 8
    zeroed = (y == 0).all(dim=1).sum(dim=(1, 2))
    top, left = p["cutout_top"], p["cutout_left"]
    overlap_r = (torch.minimum(top + k, torch.tensor(h)) - top.clamp(min=0)).clamp(min=0)
    overlap_c = (torch.minimum(left + k, torch.tensor(w)) - left.clamp(min=0)).clamp(min=0)
    assert torch.equal(zeroed, overlap_r * overlap_c)
    inside = (top >= 0) & (top + k <= h) & (left >= 0) & (left + k <= w)
    assert inside.sum() > 50
    assert torch.all(zeroed[inside] == h * w // 4)  # exactly ratio^2 = 1/4 when inside
    assert zeroed.min() >= 4 * 4  # at worst a quarter of the square (centre at a corner)
    assert torch.equal(cutout(torch.ones(1, 1, 4, 4), torch.tensor([1]), torch.tensor([2]), 2, 2)[0, 0],
                       torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]))


def test_differentiable_and_gradient_matches_replay():
    aug = DiffAugment()
    x = _images(n=2, c=3, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    params = aug.sample_params(x, torch.Generator().manual_seed(5))
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, params), (x,), eps=1e-6, atol=1e-7)
    weights = _images(n=2, c=3, h=8, w=8, seed=9, dtype=torch.float64)
    (grad,) = torch.autograd.grad((weights * aug.apply(x, params)).sum(), x)
    assert grad.abs().sum() > 0
    # The op is affine in x for fixed params, so a finite difference along any direction d
    # replayed with the same params equals <grad, d> up to rounding.
    d = _images(n=2, c=3, h=8, w=8, seed=11, dtype=torch.float64)
    with torch.no_grad():
        diff = (weights * (aug.apply(x + d, params) - aug.apply(x, params))).sum()
    assert torch.allclose(diff, (grad * d).sum(), rtol=1e-9, atol=1e-9)


def test_value_ranges_as_documented():
    # Worst cases: brightness of a constant +-1 image reaches +-1.5.
    ones = torch.ones(2, 1, 4, 4) * torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
    assert torch.equal(brightness(ones, torch.tensor([0.5, -0.5])).amax(dim=(1, 2, 3)).abs(),
                       torch.tensor([1.5, 1.5]))
    aug = DiffAugment()
    for channels, bound in ((1, 3.0), (3, 9.0)):
        x = _images(n=256, c=channels, h=8, w=8, seed=channels).sign()  # extreme pixels
        for seed in range(3):
            y = aug(x, torch.Generator().manual_seed(seed))
            assert y.abs().max() <= bound
    # Translation and cutout alone keep the input range (plus the 0 they write).
    x = _images(n=64)
    y = DiffAugment("translation,cutout")(x)
    assert y.min() >= min(x.min(), 0) and y.max() <= max(x.max(), 0)


def test_constructor_rejects_bad_ratios():
    with pytest.raises(FewganError):
        DiffAugment(translation_ratio=1.5)
    with pytest.raises(FewganError):
        DiffAugment(cutout_ratio=-0.1)
