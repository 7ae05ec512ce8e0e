"""Networks (parameter counts, shapes), losses (closed forms) and one training step by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from fewgan.singan import losses
from fewgan.singan.config import SinGANConfig
from fewgan.model import count_parameters
from fewgan.singan.nets import Discriminator, Generator, upsample
from fewgan.singan.pyramid import plan_pyramid
from fewgan.singan.train import SinGANTrainer


def _expected_params(channels: int, out: int, f: int = 32) -> int:
    first = channels * f * 9 + f + 2 * f          # conv + BatchNorm scale/shift
    middle = 3 * (f * f * 9 + f + 2 * f)
    last = f * out * 9 + out
    return first + middle + last


def test_parameter_counts_rgb_and_gray():
    assert count_parameters(Generator(3)) == _expected_params(3, 3) == 29_763
    assert count_parameters(Discriminator(3)) == _expected_params(3, 1) == 29_185
    assert count_parameters(Generator(1)) == _expected_params(1, 1) == 28_609
    assert count_parameters(Discriminator(1)) == _expected_params(1, 1) == 28_609


def test_shapes_and_residual():
    g, d = Generator(3, 32), Discriminator(3, 32)
    z = torch.randn(2, 3, 13, 16)
    prev = torch.randn(2, 3, 13, 16)
    out = g(z, prev)
    assert out.shape == z.shape
    assert ((out - prev).abs() <= 1).all()  # tanh residual
    assert d(z).shape == (2, 1, 3, 6)  # 5 unpadded 3x3 convs: -10 px per side pair


def test_feature_schedule():
    cfg = SinGANConfig()
    assert [cfg.features_at(k) for k in range(12)] == [32] * 4 + [64] * 4 + [128] * 4


def test_gradient_penalty_closed_form():
    # a linear critic D(x) = sum_c w_c x_c has gradient w at every pixel: GP = (||w|| - 1)^2
    conv = torch.nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0, 2.0]).view(1, 3, 1, 1))
    real, fake = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    gp = losses.gradient_penalty(conv, real, fake, torch.rand(2, 1, 1, 1))
    assert gp.item() == pytest.approx((3.0 - 1.0) ** 2)


def test_lr_schedule():
    cfg = SinGANConfig(steps=2000)
    assert cfg.lr_at(0) == cfg.lr_at(2000) == 4e-4  # StepLR(2000) never fires within 0..2000
    cfg = SinGANConfig(steps=100, lr_decay_fraction=0.8)
    assert cfg.lr_at(80) == 4e-4 and cfg.lr_at(81) == pytest.approx(4e-5)


def _tiny_trainer(features_every: int = 4, critic_norm: str = "batch") -> SinGANTrainer:
    torch.manual_seed(123)
    image = torch.rand(3, 12, 12) * 2 - 1
    cfg = SinGANConfig(min_size=11, max_size=12, steps=3, features_every=features_every, seed=5,
                       critic_norm=critic_norm)
    pyramid = plan_pyramid(12, 12, cfg.min_size, cfg.max_size)
    meta = {"format": "png", "dtype": "uint8", "bit_depth": 8, "channels": 3, "data_range": [0.0, 255.0]}
    trainer = SinGANTrainer(cfg, pyramid, meta, None, torch.device("cpu"))
    trainer.start(image)
    return trainer


def test_the_public_critic_is_blind_to_brightness_and_contrast_the_unnormalised_one_is_not():
    """Issue 17's cause (fewgan.singan.nets.CRITIC_NORMS): on a batch of one, every BatchNorm of
    ``d_vanilla`` normalises by the image's own statistics, and the first one removes any affine change
    of the input's intensities (a conv is linear), so the critic gives a darker, flatter image the same
    scores. Without normalisation (``critic_norm='none'``) it scores the change."""
    torch.manual_seed(0)
    fake = torch.rand(1, 3, 20, 16) * 2 - 1
    for norm, blind in (("batch", True), ("none", False)):
        d = Discriminator(3, 32, norm=norm).train()
        spread = d(fake).std()
        for a, c in [(0.5, 0.0), (0.5, -0.4), (1.5, 0.2)]:
            change = (d(a * fake + c) - d(fake)).abs()               # contrast a, brightness c
            if blind:
                assert change.max() < 0.01 * spread, (norm, a, c)
            else:
                assert change.mean() > 0.3 * spread, (norm, a, c)


def test_the_unnormalised_critic_is_he_initialised_and_has_no_batchnorm():
    torch.manual_seed(0)
    d = Discriminator(3, 32, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert count_parameters(d) == 29_185 - 4 * 2 * 32                 # d_vanilla less its BatchNorm scales/shifts
    w = d.features[1].conv.weight                                       # fan-in 32 x 3 x 3
    assert w.std().item() == pytest.approx((2 / 1.04 / 288) ** 0.5, rel=0.05)
    with pytest.raises(ValueError):
        Discriminator(3, 32, norm="layer")


@pytest.mark.parametrize("critic_norm", ["batch", "none"])
def test_one_step_equals_hand_computation(critic_norm):
    tr = _tiny_trainer(critic_norm=critic_norm)
    tr._begin_scale(0)
    st = tr.state
    g0, d0 = copy.deepcopy(st.generators[0]), copy.deepcopy(st.discriminator)
    assert d0.norm_kind == critic_norm
    rng = torch.get_rng_state()
    out = tr.train_step()

    torch.set_rng_state(rng)
    real = st.reals[0]
    h, w = real.shape[-2:]
    noise = torch.randn(1, 1, h, w).repeat(1, 3, 1, 1)          # s0: one channel on all channels
    zeros = torch.zeros_like(real)
    fake = g0(zeros + 1.0 * noise, zeros)                        # amp(s0) = 1
    d_r = -d0(real).mean()
    d_f = d0(fake.detach()).mean()
    alpha = torch.rand(1, 1, 1, 1)
    x = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(d0(x).sum(), x, create_graph=True)
    d_gp = ((grad.pow(2).sum(dim=1).sqrt() - 1) ** 2).mean()     # norm over channels per pixel
    d_total = d_r + d_f + 0.1 * d_gp
    for key, value in {"D_r": d_r, "D_f": d_f, "D_gp": d_gp, "D": d_total}.items():
        assert out[key].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-6), key

    # first Adam step: p - lr * g / (|g| + eps)
    grads = torch.autograd.grad(d_total, list(d0.parameters()))
    for p_hand, g, p_trained in zip(d0.parameters(), grads, st.discriminator.parameters()):
        expected = p_hand - 4e-4 * g / (g.abs() + 1e-8)
        # conv biases before BatchNorm have a zero true gradient (rounding noise, which the
        # sign-like first Adam step amplifies): compare where the gradient is well above noise
        clear = g.abs() > 1e-5
        assert clear.any() or p_hand.dim() == 1
        assert torch.allclose(p_trained[clear], expected[clear], atol=1e-7)
        assert ((p_trained - p_hand).abs() <= 4e-4 + 1e-6).all()

    # generator: 10 * MSE(fixed-noise reconstruction) + (-mean D_new(fake))
    recon = g0(zeros + 1.0 * st.fixed_noises[0], zeros)
    g_recon = ((recon - real) ** 2).mean()
    d_new = copy.deepcopy(st.discriminator)
    g_adv = -d_new(fake).mean()
    assert out["G_recon"].item() == pytest.approx(g_recon.item(), rel=1e-5)
    assert out["G_adv"].item() == pytest.approx(g_adv.item(), rel=1e-5, abs=1e-6)
    assert out["G"].item() == pytest.approx((10 * g_recon + g_adv).item(), rel=1e-5, abs=1e-6)


def test_amp_rule_and_carried_weights():
    tr = _tiny_trainer()
    tr._begin_scale(0)
    for t in range(3):
        tr.state.step = t
        tr.train_step()
    st = tr.state
    g0 = copy.deepcopy(st.generators[0]).train()  # the amp uses train mode (batch statistics)
    d_before = st.discriminator
    zeros = torch.zeros_like(st.reals[0])
    with torch.no_grad():
        recon = g0(zeros + 1.0 * st.fixed_noises[0], zeros)
        up = upsample(recon, tuple(st.reals[1].shape[-2:]), tr.pyramid.scale_factor)
    expected = 0.1 * torch.sqrt(F.mse_loss(up, st.reals[1])).item()
    tr._begin_scale(1)
    assert st.amps[1] == pytest.approx(expected, rel=1e-6)
    # same feature count: the generator starts from s0's weights, the critic is carried over
    assert st.discriminator is d_before
    for a, b in zip(st.generators[1].state_dict().values(), st.generators[0].state_dict().values()):
        assert torch.equal(a, b)
    assert not st.generators[0].training and not any(p.requires_grad for p in st.generators[0].parameters())


def test_new_networks_where_features_change():
    tr = _tiny_trainer(features_every=1)
    tr._begin_scale(0)
    d0 = tr.state.discriminator
    tr._begin_scale(1)
    assert tr.state.discriminator is not d0
    assert tr.state.generators[1].feature_count == 64 and tr.state.discriminator.feature_count == 64
