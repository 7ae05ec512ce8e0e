"""ADA (Karras et al. 2020): the p controller, exact pixel blitting, geometric and colour closed forms."""

import math

import numpy as np
import pytest
import torch

from fewgan.augment.ada import ADA, TRANSFORMS, blit, color, geometric
from fewgan.errors import FewganError


def _images(n=4, c=3, h=16, w=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype) * 2 - 1


def _zeros(n, dtype=torch.int64):
    return torch.zeros(n, dtype=dtype)


# ---------------------------------------------------------------- the p controller
def test_p_increases_when_real_logits_are_positive_and_decreases_otherwise():
    ada = ADA(channels=1, p=0.5, adjust_kimg=500)
    for _ in range(4):  # interval 4, batch 16
        ada.accumulate(torch.ones(16, 1) * 3.0)
    assert float(ada.stat_count) == 64 and float(ada.stat_sum) == 64
    rt = ada.update()
    assert rt == 1.0
    assert float(ada.p) == pytest.approx(0.5 + 64 / 500_000, abs=1e-7)
    assert float(ada.stat_count) == 0 and float(ada.stat_sum) == 0  # reset
    # r_t = 0.5 < 0.6 (target): p goes down by the same step.
    for _ in range(4):
        ada.accumulate(torch.tensor([1.0] * 8 + [-1.0] * 8))
    assert ada.update() == 0.0
    assert float(ada.p) == pytest.approx(0.5, abs=1e-7)
    ada.accumulate(torch.tensor([1.0, 1.0, -1.0, 0.0, 1.0]))  # r_t = 2/5 ... below target
    ada.update(num_images=500)  # explicit image count
    assert float(ada.p) == pytest.approx(0.5 - 0.001, abs=1e-7)
    assert ada.update() is None  # nothing accumulated: p unchanged
    assert float(ada.p) == pytest.approx(0.499, abs=1e-7)


def test_p_is_clamped():
    ada = ADA(channels=1, p=0.0, adjust_kimg=0.001, max_p=0.99)  # one image moves p by 1e-3
    ada.accumulate(-torch.ones(100))
    ada.update()
    assert float(ada.p) == 0.0
    ada.accumulate(torch.ones(5000))
    ada.update()
    assert float(ada.p) == pytest.approx(0.99)
    ada.accumulate(torch.zeros(10))  # sign(0) = 0: r_t = 0 < target
    ada.update()
    assert float(ada.p) < 0.99


def _train_d_and_adapt(memorise: bool, p0: float, in_loop: bool) -> list[tuple[float, float, float]]:
    """Train a small D on 8 fixed reals (or fresh reals) against fresh fakes from the same
    distribution; ADA watches D's real logits. Returns (p before, r_t, p after) per update."""
    torch.manual_seed(0)
    real = _images(n=8, c=1, h=8, w=8, seed=1)
    d = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.LeakyReLU(0.2), torch.nn.Linear(64, 1)
    )
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    ada = ADA(channels=1, p=p0, adjust_kimg=1.0)  # one update of 32 images moves p by 0.032
    history = []
    for step in range(160):
        fake = torch.rand(8, 1, 8, 8) * 2 - 1
        batch = real if memorise else torch.rand(8, 1, 8, 8) * 2 - 1
        aug = ada if in_loop else (lambda t: t)
        real_logits = d(aug(batch))
        loss = torch.nn.functional.softplus(-real_logits).mean()
        loss = loss + torch.nn.functional.softplus(d(aug(fake))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ada.accumulate(real_logits)
        if step % 4 == 3:
            before = float(ada.p)
            rt = ada.update()
            history.append((before, rt, float(ada.p)))
    return history


def test_p_moves_up_on_a_discriminator_that_overfits():
    # D can tell the reals from fakes of the same distribution only by memorising them.
    history = _train_d_and_adapt(memorise=True, p0=0.0, in_loop=False)
    assert history[-1][1] == 1.0  # every real logit positive
    assert history[-1][2] >= 0.5
    for before, rt, after in history:  # each step has the sign of r_t - 0.6
        assert (after - before) * (rt - 0.6) >= 0
        assert abs(after - before) <= 0.032 + 1e-6


def test_p_moves_down_on_a_discriminator_that_does_not_overfit():
    history = _train_d_and_adapt(memorise=False, p0=0.5, in_loop=False)
    assert history[-1][2] <= 0.2
    assert sum(rt for _, rt, _ in history) / len(history) < 0.6


def test_p_feedback_loop_rises_from_zero_and_stays_in_range():
    # With ADA in the loop the controller finds an equilibrium where r_t hovers around 0.6.
    history = _train_d_and_adapt(memorise=True, p0=0.0, in_loop=True)
    assert max(after for _, _, after in history) > 0
    assert all(0.0 <= after < 1.0 for _, _, after in history)
    for before, rt, after in history:
        assert (after - before) * (rt - 0.6) >= 0


def test_state_dict_round_trip_restores_p_and_statistics():
    ada = ADA(channels=3, p=0.25)
    ada.accumulate(torch.tensor([1.0, -1.0, 2.0]))
    state = ada.state_dict()
    assert set(state) == {"p", "stat_sum", "stat_count"}
    other = ADA(channels=3)
    other.load_state_dict(state)
    assert float(other.p) == 0.25 and float(other.stat_sum) == 1 and float(other.stat_count) == 3
    x = _images()
    assert torch.equal(ada(x, torch.Generator().manual_seed(4)), other(x, torch.Generator().manual_seed(4)))
    assert other.update() == pytest.approx(1 / 3) and ada.update() == pytest.approx(1 / 3)
    assert torch.equal(ada.p, other.p)


# ---------------------------------------------------------------- augmentation
@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_identity_and_shapes_dtypes_kept(channels):
    x = _images(c=channels, dtype=torch.float64)
    ada = ADA(channels=channels, p=0.0)
    assert ada(x) is x
    ada.p.fill_(0.7)
    y = ada(x)
    assert y.shape == x.shape and y.dtype == torch.float64
    # p = 0 through the explicit path: every parameter is the identity, the output exact.
    params = ada.sample_params(x, p=0.0)
    assert torch.equal(ada.apply(x, params), x)


def test_p_one_flips_and_rotates_as_stated():
    ada = ADA(channels=3, p=1.0, disable=[t for t in TRANSFORMS if t not in ("xflip", "rotate90")])
    x = _images(n=64, h=8, w=8)
    params = ada.sample_params(x, torch.Generator().manual_seed(0))
    assert set(params["rotate90"].tolist()) == {0, 1, 2, 3} and set(params["xflip"].tolist()) == {0, 1}
    y = ada.apply(x, params)
    for i in range(64):
        expect = x[i].flip(2) if params["xflip"][i] else x[i]
        expect = torch.rot90(expect, int(params["rotate90"][i]), (1, 2))
        assert torch.equal(y[i], expect)
    for name in ("shift_x", "shift_y", "brightness"):
        assert torch.all(params[name] == 0)


def test_probability_per_transform_is_p():
    ada = ADA(channels=3, p=0.3)
    params = ada.sample_params(torch.zeros(4000, 3, 8, 8), torch.Generator().manual_seed(0))
    # A continuous parameter differs from its identity exactly when the transform was applied.
    assert (params["brightness"] != 0).float().mean() == pytest.approx(0.3, abs=0.03)
    assert (params["scale"] != 1).float().mean() == pytest.approx(0.3, abs=0.03)
    p_rot = 1 - math.sqrt(0.7)
    assert (params["rotate_pre"] != 0).float().mean() == pytest.approx(p_rot, abs=0.03)
    some_rotation = (params["rotate_pre"] != 0) | (params["rotate_post"] != 0)
    assert some_rotation.float().mean() == pytest.approx(0.3, abs=0.03)
    # The flip is *enabled* with probability p and then flips half the time.
    assert (params["xflip"] != 0).float().mean() == pytest.approx(0.15, abs=0.03)


def test_integer_translation_uses_reflect_padding():
    x = _images(n=3, c=1, h=8, w=8)
    ty, tx = torch.tensor([2, -3, 0]), torch.tensor([-1, 1, 3])
    y = blit(x, _zeros(3), _zeros(3), ty, tx)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)), mode="reflect")
    for k in range(3):
        r0, c0 = 4 - int(ty[k]), 4 - int(tx[k])
        assert np.array_equal(y[k].numpy(), padded[k, :, r0:r0 + 8, c0:c0 + 8])


def test_rotate90_needs_square_images():
    x = _images(n=2, h=8, w=6)
    with pytest.raises(FewganError, match="square"):
        blit(x, _zeros(2), torch.tensor([1, 0]), _zeros(2), _zeros(2))
    assert torch.equal(blit(x, _zeros(2), torch.tensor([2, 0]), _zeros(2), _zeros(2))[0], torch.rot90(x[0], 2, (1, 2)))


def _geo(x, **kw):
    n = x.shape[0]
    args = dict(scale=torch.ones(n), rotate_pre=torch.zeros(n), aniso=torch.ones(n),
                rotate_post=torch.zeros(n), xfrac_y=torch.zeros(n), xfrac_x=torch.zeros(n))
    args.update(kw)
    return geometric(x, supersample=kw.pop("supersample", 1), **{k: v for k, v in args.items() if k != "supersample"})


def test_geometric_closed_forms():
    x = _images(n=2, c=3, h=8, w=6)
    n = 2
    assert _geo(x) is x  # all identity
    # Rotation by pi on a non-square image = both flips (pixel-unit composition).
    y = _geo(x, rotate_pre=torch.full((n,), math.pi))
    assert torch.allclose(y, x.flip(2).flip(3), atol=1e-5)
    # +pi/2 in y-down pixel coordinates turns the image clockwise on screen: rot90(., -1).
    sq = _images(n=2, c=1, h=6, w=6)
    assert torch.allclose(_geo(sq, rotate_post=torch.full((n,), math.pi / 2)), torch.rot90(sq, -1, (2, 3)), atol=1e-5)
    # A whole-pixel fractional translation: grid_sample's reflection mirrors about the border.
    y = _geo(x, xfrac_x=torch.tensor([2 / 6, -1 / 6]), xfrac_y=torch.tensor([0.0, 1 / 8]))
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="symmetric")
    assert np.allclose(y[0].numpy(), padded[0, :, 2:10, 0:6], atol=1e-5)
    assert np.allclose(y[1].numpy(), padded[1, :, 1:9, 3:9], atol=1e-5)
    # Only some images warped: the others pass through bit-exactly.
    y = _geo(x, scale=torch.tensor([1.3, 1.0]), supersample=2)
    assert torch.equal(y[1], x[1]) and not torch.allclose(y[0], x[0])


def test_geometric_has_no_fill_a_constant_stays_constant():
    x = torch.full((16, 1, 8, 8), 0.37)
    ada = ADA(channels=1, p=1.0, disable=("brightness", "contrast"))
    y = ada(x, torch.Generator().manual_seed(0))
    assert torch.allclose(y, x, atol=1e-6)


def test_color_closed_forms():
    n = 3
    grey = torch.full((n, 3, 4, 4), 0.4)  # on the grey axis
    one = torch.ones(n)
    zero = torch.zeros(n)
    # Luma flip negates grey; hue and saturation leave grey alone.
    assert torch.allclose(color(grey, zero, one, torch.ones(n, dtype=torch.int64), zero, one), -grey, atol=1e-6)
    assert torch.allclose(color(grey, zero, one, _zeros(n), torch.tensor([0.5, 2.0, -3.0]), torch.tensor([0.1, 3.0, 7.0])), grey, atol=1e-6)
    x = _images(n=n)
    # Hue rotation keeps the channel mean and the distance from grey.
    y = color(x, zero, one, _zeros(n), torch.tensor([0.5, 2.0, -3.0]), one)
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-6)
    assert torch.allclose((y - y.mean(1, keepdim=True)).norm(dim=1), (x - x.mean(1, keepdim=True)).norm(dim=1), atol=1e-5)
    # Saturation 0 makes every pixel grey (its channel mean).
    y = color(x, zero, one, _zeros(n), zero, zero)
    assert torch.allclose(y, x.mean(1, keepdim=True).expand_as(x), atol=1e-6)
    # Brightness then contrast: c (x + b), same on one and three channels.
    b, c = torch.tensor([0.1, -0.3, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    expect = c.view(n, 1, 1, 1) * (x + b.view(n, 1, 1, 1))
    assert torch.allclose(color(x, b, c, _zeros(n), zero, one), expect, atol=1e-6)
    assert torch.allclose(color(x[:, :1], b, c), expect[:, :1], atol=1e-6)


def test_one_channel_has_no_rgb_only_transforms():
    ada = ADA(channels=1, p=1.0)
    assert not {"lumaflip", "hue", "saturation"} & set(ada.enabled_transforms)
    params = ada.sample_params(torch.zeros(4, 1, 8, 8))
    assert "saturation" not in params
    with pytest.raises(ValueError):
        ada.apply(torch.zeros(4, 3, 8, 8), params)
    with pytest.raises(FewganError):
        ADA(channels=2)
    with pytest.raises(FewganError, match="unknown ADA"):
        ADA(channels=1, disable=("cutout",))


def test_differentiable_with_replayed_params():
    ada = ADA(channels=3, p=0.8)
    x = _images(n=2, c=3, h=6, w=6, dtype=torch.float64).requires_grad_(True)
    params = ada.sample_params(x, torch.Generator().manual_seed(2))
    # This draw exercises blit, geometric warp and colour matrix on both images.
    assert torch.all(params["scale"] != 1) and torch.all(params["hue"] != 0)
    assert torch.all(params["rotate90"] != 0)
    assert torch.autograd.gradcheck(lambda t: ada.apply(t, params), (x,), eps=1e-6, atol=1e-6)
    (grad,) = torch.autograd.grad(ada.apply(x, params).square().sum(), x)
    assert grad.abs().sum() > 0


def test_replay_is_deterministic_and_stream_independent_of_options():
    x = _images(n=8)
    a, b = ADA(channels=3, p=0.6), ADA(channels=3, p=0.6, disable=("hue", "rotate"))
    pa = a.sample_params(x, torch.Generator().manual_seed(7))
    pb = b.sample_params(x, torch.Generator().manual_seed(7))
    assert torch.equal(pa["brightness"], pb["brightness"])  # same draws, fewer transforms
    assert torch.all(pb["hue"] == 0) and torch.all(pb["rotate_pre"] == 0)
    assert torch.equal(a(x, torch.Generator().manual_seed(7)), a.apply(x, pa))
