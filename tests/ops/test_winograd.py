"""The NNPACK Winograd 3x3 convolution: same values and gradients (to second order) as the direct one."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from fewgan.ops import winograd

pytestmark = pytest.mark.skipif(not winograd.available(),
                                reason="this PyTorch build has no NNPACK (the direct kernels are used instead)")


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def _smooth_penalty(conv, x, w1, w2):
    """A two-layer critic with a smooth nonlinearity and its WGAN-GP-style penalty (no kinks: exact comparison)."""
    x = x.clone().requires_grad_(True)
    s = conv(torch.tanh(conv(x, w1)), w2)
    (g,) = torch.autograd.grad(s.sum(), x, create_graph=True)
    return ((g.norm(2, dim=1) - 1) ** 2).mean() + s.mean()


def test_forward_matches_direct_and_is_deterministic():
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 64, 20, 18), torch.randn(32, 64, 3, 3) * 0.05, torch.randn(32)
    with winograd.mode("winograd"):
        assert winograd.use_winograd(x, w)
        y1 = winograd.conv3x3(x, w, b)
        y2 = winograd.conv3x3(x, w, b)
    ref = F.conv2d(x.double(), w.double(), b.double())
    assert y1.shape == (2, 32, 18, 16)
    assert _rel(y1, ref) < 5e-5
    assert torch.equal(y1, y2)
    # an image's result does not depend on the batch it is computed in
    with winograd.mode("winograd"):
        assert torch.equal(winograd.conv3x3(x[1:], w, b), y1[1:])


def test_gradients_to_second_order_match_direct():
    torch.manual_seed(1)
    x = torch.randn(1, 8, 16, 14)
    w1 = (torch.randn(16, 8, 3, 3) * 0.2).requires_grad_(True)
    w2 = (torch.randn(4, 16, 3, 3) * 0.2).requires_grad_(True)
    grads = {}
    for m in ("direct", "winograd"):
        with winograd.mode(m):
            loss = _smooth_penalty(winograd.conv3x3, x, w1, w2)
            grads[m] = torch.autograd.grad(loss, (w1, w2))
    ref = [g.double() for g in grads["direct"]]
    for got, want in zip(grads["winograd"], ref):
        assert _rel(got, want) < 1e-4


def test_conv2d_module_is_a_drop_in_for_nn_conv2d():
    torch.manual_seed(2)
    plain = torch.nn.Conv2d(64, 64, 3)
    fast = winograd.Conv2d(64, 64, 3, conv="winograd")  # the kernel choice is the layer's, from its constructor
    fast.load_state_dict(plain.state_dict())
    assert set(fast.state_dict()) == {"weight", "bias"} and fast.kernels == "winograd"
    x = torch.randn(1, 64, 12, 12, requires_grad=True)
    assert winograd.use_winograd(x, fast.weight, fast.kernels) == winograd.available()
    with winograd.mode("direct"):  # the thread's default of the functional conv3x3 does not reach a layer
        y = fast(x)
        y.square().mean().backward()
    gx, gw, gb = x.grad.clone(), fast.weight.grad, fast.bias.grad
    x.grad = None
    plain(x).square().mean().backward()
    assert _rel(gx, x.grad) < 1e-4 and _rel(gw, plain.weight.grad) < 1e-4 and _rel(gb, plain.bias.grad) < 1e-4
    # padded or strided convolutions are left to PyTorch
    padded = winograd.Conv2d(64, 64, 3, padding=1, conv="winograd")
    assert padded(torch.randn(1, 64, 8, 8)).shape == (1, 64, 8, 8)


def test_weight_gradient_skipped_when_only_the_input_gradient_is_asked(monkeypatch):
    calls = []
    real = torch.ops.aten.convolution_backward

    class Spy:
        def __call__(self, *args):
            calls.append(args[-1])
            return real(*args)

    monkeypatch.setattr(torch.ops.aten, "convolution_backward", Spy())
    x = torch.randn(1, 64, 10, 10, requires_grad=True)
    w = torch.randn(64, 64, 3, 3, requires_grad=True)
    with winograd.mode("winograd"):
        y = winograd.conv3x3(x, w)
        torch.autograd.grad(y.sum(), x)
        assert calls == []  # input gradient only: no weight-gradient kernel ran
        y = winograd.conv3x3(x, w)
        y.sum().backward()
    assert len(calls) == 1 and w.grad is not None


def test_auto_rule_and_modes():
    wide_big = (torch.randn(1, 128, 60, 60), torch.randn(128, 128, 3, 3))
    wide_small = (torch.randn(1, 128, 20, 20), torch.randn(128, 128, 3, 3))
    narrow = (torch.randn(1, 3, 200, 200), torch.randn(32, 3, 3, 3))
    with winograd.mode("auto"):
        assert winograd.use_winograd(*wide_big) == winograd._avx2_class_cpu()
        assert not winograd.use_winograd(*wide_small)
        assert not winograd.use_winograd(*narrow)
        assert not winograd.use_winograd(wide_big[0].double(), wide_big[1].double())
    with winograd.mode("direct"):
        assert not winograd.use_winograd(*wide_big)
    with winograd.mode("winograd"):
        assert winograd.use_winograd(*narrow)
    with pytest.raises(ValueError):
        with winograd.mode("fast"):
            pass


def test_mode_is_per_thread():
    seen = {}
    with winograd.mode("direct"):
        t = threading.Thread(target=lambda: seen.setdefault("other", winograd.get_mode()))
        t.start()
        t.join()
        seen["here"] = winograd.get_mode()
    assert seen == {"other": "auto", "here": "direct"}
