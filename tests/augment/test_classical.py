"""Classical (seed) augmentation: presets, exact flips and rotations, erasing, jitter bounds, leaks."""

import math

import pytest
import torch

from fewgan.augment.classical import (
    DEFAULT_PARTS,
    PARTS,
    SEED_PARTS,
    ClassicalAugment,
    erase,
    flip,
    jitter,
    rotate90,
    rotate_affine,
)
from fewgan.errors import FewganError


def _images(n=4, c=3, h=16, w=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype) * 2 - 1


def test_presets():
    seed = ClassicalAugment.seed()
    assert seed.parts == SEED_PARTS == tuple(p for p in PARTS if p != "rotate90")
    assert (seed.rotate_degrees, seed.translate, seed.scale, seed.shear_degrees) == (15.0, 0.1, (0.9, 1.1), 5.0)
    assert (seed.brightness, seed.contrast, seed.erase_p, seed.erase_area) == (0.2, 0.2, 0.2, (0.02, 0.1))
    assert seed.interpolation == "nearest" and seed.fill == -1.0 and seed.erase_value == -1.0
    assert ClassicalAugment.default().parts == DEFAULT_PARTS == ("hflip", "vflip")
    assert ClassicalAugment.default(rot90=True).parts == ("hflip", "vflip", "rotate90")
    assert ClassicalAugment.from_spec("seed").parts == SEED_PARTS
    assert ClassicalAugment.from_spec("none") is None and ClassicalAugment.from_spec(None) is None
    assert ClassicalAugment.from_spec("rotate90, hflip").parts == ("hflip", "rotate90")
    assert ClassicalAugment.from_spec("flips").parts == ClassicalAugment.from_spec("default").parts == DEFAULT_PARTS
    assert ClassicalAugment.from_spec("flips,rot90").parts == ClassicalAugment.default(rot90=True).parts
    with pytest.raises(FewganError, match="unknown classical augmentation part"):
        ClassicalAugment.from_spec("hflip,cutout")


def test_leak_list():
    assert ClassicalAugment.seed().leaks == ("rotate", "translate", "scale", "shear", "brightness", "contrast", "erase")
    assert ClassicalAugment.default().leaks == ()
    assert ClassicalAugment.default(rot90=True).leaks == ()
    assert ClassicalAugment.default().leak_warning() is None
    warning = ClassicalAugment(parts=("hflip", "shear", "erase")).leak_warning()
    assert "(shear, erase)" in warning and "\n" not in warning


@pytest.mark.parametrize("channels", [1, 3])
def test_seed_preset_keeps_shape_dtype_and_range(channels):
    x = _images(n=32, c=channels, dtype=torch.float64)
    y = ClassicalAugment.seed()(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float64
    assert y.min() >= -1 and y.max() <= 1
    assert not torch.equal(y, x)


def test_default_preset_only_flips():
    x = _images(n=64)
    aug = ClassicalAugment.default()
    params = aug.sample_params(x, torch.Generator().manual_seed(1))
    y = aug.apply(x, params)
    for i in range(64):
        expect = x[i]
        if params["hflip"][i]:
            expect = expect.flip(2)
        if params["vflip"][i]:
            expect = expect.flip(1)
        assert torch.equal(y[i], expect)
    assert 16 < int(params["hflip"].sum()) < 48 and 16 < int(params["vflip"].sum()) < 48
    for name, identity in (("angle", 0), ("shift_x", 0), ("scale", 1), ("shear", 0), ("brightness", 1), ("erase", 0)):
        assert torch.all(params[name] == identity)


def test_flip_and_rotate90_exact():
    x = _images(n=2, c=1, h=4, w=4)
    y = flip(x, torch.tensor([True, False]), torch.tensor([True, True]))
    assert torch.equal(y[0], x[0].flip(1).flip(2)) and torch.equal(y[1], x[1].flip(1))
    y = rotate90(x, torch.tensor([1, 3]))
    assert torch.equal(y[0], torch.rot90(x[0], 1, (1, 2))) and torch.equal(y[1], torch.rot90(x[1], 3, (1, 2)))
    assert y[0, 0, 0, 0] == x[0, 0, 0, 3]  # counter-clockwise: top-right goes to top-left
    with pytest.raises(FewganError, match="square"):
        rotate90(_images(n=1, h=4, w=6), torch.tensor([1]))


def test_translation_is_an_integer_shift_with_fill():
    x = _images(n=1, c=1, h=8, w=8)
    y = rotate_affine(x, torch.zeros(1), torch.tensor([2]), torch.tensor([-1]), torch.ones(1), torch.zeros(1),
                      fill=-1.0, mode="nearest")
    expect = torch.full_like(x, -1.0)
    expect[..., 0:7, 2:8] = x[..., 1:8, 0:6]
    assert torch.equal(y, expect)


def test_rotation_fills_corners_and_keeps_the_centre():
    x = torch.full((1, 1, 32, 32), 0.5)
    angle = torch.tensor([15.0])
    y = rotate_affine(x, angle, torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                      torch.ones(1), torch.zeros(1), fill=-1.0, mode="nearest")
    assert set(y.unique().tolist()) == {-1.0, 0.5}
    assert torch.all(y[..., 8:24, 8:24] == 0.5)
    assert y[0, 0, 0, 0] == -1 and y[0, 0, 0, 31] == -1 and y[0, 0, 31, 0] == -1 and y[0, 0, 31, 31] == -1
    # A unit square turned by t about its centre uncovers four corner triangles with legs
    # d / cos t and d / sin t, d = (cos t + sin t - 1) / 2: area 4 d^2 / sin 2t (0.101 at 15
    # degrees), up to the pixelisation of the border.
    t = math.radians(15.0)
    d = (math.cos(t) + math.sin(t) - 1) / 2
    expected = 4 * d**2 / math.sin(2 * t)
    filled = float((y == -1).float().mean())
    assert filled == pytest.approx(expected, abs=0.01)


def test_rotate_then_affine_fill_matches_two_steps():
    x = torch.full((1, 1, 32, 32), 0.5)
    zero_i = torch.zeros(1, dtype=torch.long)
    kw = dict(fill=-1.0, mode="nearest")
    one_step = rotate_affine(x, torch.tensor([12.0]), torch.tensor([3]), torch.tensor([-2]), torch.tensor([0.92]),
                             torch.tensor([4.0]), **kw)
    mid = rotate_affine(x, torch.tensor([12.0]), zero_i, zero_i, torch.ones(1), torch.zeros(1), **kw)
    two_step = rotate_affine(mid, torch.zeros(1), torch.tensor([3]), torch.tensor([-2]), torch.tensor([0.92]),
                             torch.tensor([4.0]), **kw)
    # Same filled region, up to pixels on its border (nearest rounding happens once, not twice).
    differ = int((one_step != two_step).sum())
    assert int((two_step == -1).sum()) > 100
    assert differ <= 32


def test_jitter_closed_forms_and_bounds():
    x = torch.full((2, 1, 4, 4), 0.0)  # u = 0.5
    x[:, :, 0, 0] = 0.8  # u = 0.9
    b = torch.tensor([1.2, 0.8])
    y = jitter(x, b, torch.ones(2), torch.tensor([True, True]))
    u = (x + 1) / 2
    assert torch.allclose(y, (u * b.view(2, 1, 1, 1)).clamp(0, 1) * 2 - 1)
    assert y[0, 0, 0, 0] == 1.0  # 0.9 * 1.2 clipped to 1
    # Contrast keeps the mean grey level when nothing clips, and scales deviations by c.
    x = _images(n=2, c=3) * 0.3
    c = torch.tensor([0.8, 1.2])
    y = jitter(x, torch.ones(2), c, torch.tensor([False, False]))
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    grey = lambda t: (((t + 1) / 2) * luma).sum(1).mean(dim=(1, 2))  # noqa: E731
    assert torch.allclose(grey(y), grey(x), atol=1e-6)
    # Random jitter on extreme images stays inside [-1, 1].
    x = _images(n=256).sign()
    aug = ClassicalAugment(parts=("brightness", "contrast"))
    y = aug(x, torch.Generator().manual_seed(0))
    assert y.min() >= -1 and y.max() <= 1
    params = aug.sample_params(x, torch.Generator().manual_seed(0))
    assert params["brightness"].min() >= 0.8 and params["brightness"].max() <= 1.2
    assert 100 < int(params["brightness_first"].sum()) < 156


def test_erasing_area_and_probability():
    h = w = 64
    x = torch.full((400, 3, h, w), 0.5)
    aug = ClassicalAugment(parts=("erase",), erase_p=1.0)
    params = aug.sample_params(x, torch.Generator().manual_seed(0))
    y = aug.apply(x, params)
    assert bool(params["erase"].all())
    erased = (y == -1).all(dim=1).sum(dim=(1, 2))
    assert torch.equal(erased, params["erase_h"] * params["erase_w"])
    frac = erased.float() / (h * w)
    # Area U(0.02, 0.1) of the image; rounding the sides to pixels moves it by at most
    # 0.5 (sqrt(A r) + sqrt(A / r)) + 0.25 pixels: bounds [0.0174, 0.106] at 64 x 64.
    assert frac.min() >= 0.0174 and frac.max() <= 0.106
    assert float(frac.mean()) == pytest.approx(0.06, abs=0.005)
    aspect = params["erase_h"].float() / params["erase_w"].float()
    assert aspect.min() >= 0.2 and aspect.max() <= 4.5  # log-uniform in (0.3, 3.3), rounded
    assert erase(x[:1], torch.tensor([1]), torch.tensor([2]), torch.tensor([3]), torch.tensor([4]))[0, 0, 1:4, 2:6].eq(-1).all()
    # The seed's probability 0.2.
    seed = ClassicalAugment.seed()
    params = seed.sample_params(torch.zeros(2000, 1, 32, 32), torch.Generator().manual_seed(1))
    assert float(params["erase"].float().mean()) == pytest.approx(0.2, abs=0.03)


def test_replay_is_deterministic():
    aug = ClassicalAugment.seed()
    x = _images(n=8)
    a = aug.sample_params(x, torch.Generator().manual_seed(5))
    b = aug.sample_params(x, torch.Generator().manual_seed(5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(aug(x, torch.Generator().manual_seed(5)), aug.apply(x, a))
    # The stream does not depend on which parts are on.
    c = ClassicalAugment.default().sample_params(x, torch.Generator().manual_seed(5))
    assert torch.equal(a["hflip"], c["hflip"]) and torch.equal(a["brightness_first"], c["brightness_first"])


def test_bad_options():
    with pytest.raises(FewganError):
        ClassicalAugment(interpolation="bicubic")
    with pytest.raises(FewganError):
        ClassicalAugment(erase_area=(0.2, 0.1))
    with pytest.raises(FewganError):
        ClassicalAugment(scale=(0.0, 1.0))
