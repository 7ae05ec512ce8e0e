"""FIR resampling, equalized-lr layers and modulated convolution: closed forms and identities."""

import math

import torch
import torch.nn.functional as F

from fewgan.ops.equalized import EqualConv2d, EqualLinear, bias_act, modulated_conv2d
from fewgan.ops.fir import downsample2d, make_filter, upfirdn2d, upsample2d


def test_filter_sums_to_one_and_constant_images_stay_constant():
    f = make_filter()
    assert torch.allclose(f, torch.tensor([1, 3, 3, 1.0]) / 8)
    x = torch.full((2, 3, 8, 8), 0.7)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # interior pixels (away from the zero padding) keep the constant exactly
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7), atol=1e-6)


def test_upfirdn2d_matches_dense_2d_convolution():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 6)
    f = make_filter()
    y = upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4)
    # reference: explicit zero insertion, padding and one 2-D convolution with the outer product
    z = torch.zeros(1, 2, 12, 12)
    z[..., ::2, ::2] = x
    z = F.pad(z, [2, 1, 2, 1])
    k = (torch.outer(f, f) * 4).flip([0, 1]).expand(2, 1, 4, 4)
    ref = F.conv2d(z, k, groups=2)
    assert torch.allclose(y, ref, atol=1e-6)


def test_equalized_linear_runtime_scale_and_lr_mult():
    lin = EqualLinear(64, 8, bias_init=1.0, lr_mul=0.01)
    # stored weights are N(0, 1) / lr_mul; the effective weight is N(0, 1 / fan_in)
    assert abs(lin.weight.std().item() * 0.01 - 1.0) < 0.15
    x = torch.randn(4, 64)
    expected = x @ (lin.weight * 0.01 / 8).t() + lin.bias * 0.01
    assert torch.allclose(lin(x), expected, atol=1e-5)
    assert torch.allclose(lin.bias * lin.bias_gain, torch.ones(8))  # bias_init is the effective value


def test_equalized_conv_keeps_unit_second_moment():
    torch.manual_seed(0)
    conv = EqualConv2d(256, 256, 3, bias=False)
    x = torch.randn(4, 256, 16, 16)
    y = conv(x)[..., 1:-1, 1:-1]
    assert abs(y.square().mean().item() - 1.0) < 0.05


def test_bias_act_lrelu_gain():
    x = torch.tensor([[-1.0, 2.0]])
    y = bias_act(x, torch.tensor([0.0, 1.0]), "lrelu")
    assert torch.allclose(y, torch.tensor([[-0.2, 3.0]]) * math.sqrt(2))


def _whitened(n, channels, side):
    """Inputs whose channels have exactly zero mean and identity covariance over the pixels."""
    out = []
    for k in range(n):
        a = torch.randn(side * side, channels, dtype=torch.float64)
        a = a - a.mean(dim=0)
        q, _ = torch.linalg.qr(a)  # orthonormal columns, still orthogonal to the ones vector
        out.append((q.t() * math.sqrt(side * side)).reshape(channels, side, side))
    return torch.stack(out)


def test_demodulated_output_has_unit_variance_per_output_channel():
    torch.manual_seed(0)
    n, i, o = 3, 64, 16
    w = (torch.randn(o, i, 1, 1) * torch.rand(o, 1, 1, 1) * 5).double()  # very different channel scales
    styles = (torch.rand(n, i) * 3 + 0.1).double()
    x = _whitened(n, i, 16)
    y = modulated_conv2d(x, w, styles, demodulate=True)
    var = y.var(dim=[2, 3], unbiased=False)  # per sample and output channel
    assert torch.allclose(var, torch.ones_like(var), atol=1e-6)
    # without demodulation it is sum_i (w_oi s_i)^2, the closed form
    y2 = modulated_conv2d(x, w, styles, demodulate=False)
    expected = (w[None, :, :, 0, 0] * styles[:, None, :]).square().sum(-1)
    assert torch.allclose(y2.var(dim=[2, 3], unbiased=False), expected, rtol=1e-6)
    # statistically too for i.i.d. unit-variance inputs with a 3x3 kernel
    w3 = torch.randn(o, i, 3, 3)
    y3 = modulated_conv2d(torch.randn(n, i, 48, 48), w3, torch.rand(n, i) + 0.5)[..., 1:-1, 1:-1]
    assert abs(y3.var().item() - 1.0) < 0.05


def test_modulated_conv_equals_per_sample_weights():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 7, 7)
    w = torch.randn(4, 5, 3, 3)
    s = torch.rand(2, 5) + 0.5
    y = modulated_conv2d(x, w, s, demodulate=True)
    for k in range(2):
        wk = w * s[k].view(1, 5, 1, 1)
        wk = wk / wk.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(y[k:k + 1], F.conv2d(x[k:k + 1], wk, padding=1), atol=1e-5)


def test_upsampling_modulated_conv_matches_upsample_then_conv_in_the_interior():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8)
    w = torch.randn(4, 3, 3, 3)
    s = torch.ones(2, 3)
    f = make_filter()
    fast = modulated_conv2d(x, w, s, demodulate=False, up=2, resample_filter=f)
    slow = F.conv2d(upsample2d(x, f), w, padding=1)
    assert fast.shape == slow.shape == (2, 4, 16, 16)
    assert torch.allclose(fast[..., 3:-3, 3:-3], slow[..., 3:-3, 3:-3], atol=1e-5)


def test_downsampling_conv_matches_blur_then_strided_conv():
    torch.manual_seed(3)
    conv = EqualConv2d(3, 5, 3, bias=False, down=2)
    x = torch.randn(2, 3, 16, 16)
    y = conv(x)
    assert y.shape == (2, 5, 8, 8)
    blurred = upfirdn2d(x, make_filter(), padding=2)
    ref = F.conv2d(blurred, conv.weight * conv.weight_gain, stride=2)
    assert torch.allclose(y, ref, atol=1e-6)
