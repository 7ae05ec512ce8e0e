"""3x3 convolutions through NNPACK's Winograd kernels on the CPU, differentiable twice.

A 3x3 convolution computed with Winograd's minimal filtering algorithm needs about half the
multiplications of the direct method. PyTorch ships NNPACK's Winograd kernels in its CPU
builds but routes a convolution to them only for batches of 16 or more, and only for the
forward pass. SinGAN trains at batch size 1 and spends most of its time in 128-feature 3x3
convolutions, their input gradients and the double backward of the gradient penalty, so this
module sends those through NNPACK itself:

* forward: ``y = conv(x, w) + b`` (NNPACK, one image at a time, so that an image's result
  does not depend on the batch it is in);
* input gradient: ``conv(pad(gy, 2), flip(w)^T)``, again a valid 3x3 convolution and so again
  this function (differentiable, which is what the double backward of WGAN-GP needs);
* weight and bias gradients: PyTorch's own kernels (``aten.convolution_backward``, also
  differentiable); the weight gradient is skipped when the autograd pass at hand does not
  need it (the penalty's inner ``autograd.grad`` with respect to the input).

The result equals the direct convolution up to float32 rounding (relative RMS error about
3e-6 against float64, 6e-7 for the direct kernel) and is deterministic. Which convolutions
go this way is a fixed rule (:func:`use_winograd`), not a timing race, so that a run and its
resumption compute the same bits.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016 (Winograd
convolution); Dukhan, NNPACK (github.com/Maratyszcza/NNPACK).
"""

from __future__ import annotations

import contextlib
import functools
import threading

import torch
import torch.nn.functional as F
from torch import nn

#: ``auto``: Winograd where :func:`use_winograd`'s measured rule says it is faster; ``winograd``:
#: every CPU 3x3 convolution NNPACK can take; ``direct``: PyTorch's own kernels only.
MODES = ("auto", "winograd", "direct")

_state = threading.local()
_default_mode = "auto"


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether this PyTorch build has NNPACK and it initialises on this CPU (it must, before first use)."""
    try:
        return bool(torch.backends.nnpack.is_available())
    except Exception:  # pragma: no cover - builds without the binding
        return False


@functools.lru_cache(maxsize=1)
def _avx2_class_cpu() -> bool:
    # NNPACK's x86 kernels are AVX2; on AVX-512 CPUs oneDNN's direct kernels are about twice as
    # fast as on AVX2 ones, so the speed rule below (measured on AVX2) is not assumed there
    try:
        return torch.backends.cpu.get_cpu_capability() == "AVX2"
    except Exception:  # pragma: no cover
        return False


def set_mode(mode: str) -> None:
    """Process-wide default (``auto``, ``winograd`` or ``direct``) of the functional :func:`conv3x3`;
    :func:`mode` overrides it per thread. Networks do not read it: a :class:`Conv2d` is given its
    kernels when it is built."""
    global _default_mode
    if mode not in MODES:
        raise ValueError(f"conv mode must be one of {', '.join(MODES)}, got {mode!r}")
    _default_mode = mode


def get_mode() -> str:
    return getattr(_state, "mode", None) or _default_mode


@contextlib.contextmanager
def mode(value: str):
    """Use ``value`` for the convolutions run in this thread inside the block."""
    if value not in MODES:
        raise ValueError(f"conv mode must be one of {', '.join(MODES)}, got {value!r}")
    before = getattr(_state, "mode", None)
    _state.mode = value
    try:
        yield
    finally:
        _state.mode = before


def _fast_enough(c_in: int, c_out: int, out_pixels: int) -> bool:
    """The ``auto`` rule, from ``bench/conv_kernels.py`` on a 2-core AVX2 EPYC (torch 2.13, 2 threads).

    NNPACK / direct time of one valid 3x3 convolution (``bench/results/conv_kernels.json``):
    128 -> 128 features 1.16 at 0.9k output pixels, 0.85 at 1.5k, 0.76 at 2.5k, 0.54-0.66 from
    4k up; 64 -> 64 features 0.96-1.13 up to 2.5k, 0.90 at 4.2k, 0.83-0.94 from 7k up; 32 features
    or a few input or output channels (the first and last layers): 1.25-4.6, never faster.
    """
    narrow = min(c_in, c_out)
    if narrow >= 128:
        return out_pixels >= 2400
    if narrow >= 64:
        return out_pixels >= 6400
    return False


def _check(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"conv mode must be one of {', '.join(MODES)}, got {value!r}")
    return value


def use_winograd(x: torch.Tensor, weight: torch.Tensor, mode: str | None = None) -> bool:
    """Whether a stride-1, unpadded, ungrouped 3x3 convolution of ``x`` by ``weight`` goes to NNPACK
    under ``mode`` (default: this thread's :func:`get_mode`)."""
    m = get_mode() if mode is None else mode
    if m == "direct" or x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if x.dim() != 4 or x.shape[0] == 0 or tuple(weight.shape[-2:]) != (3, 3) or not available():
        return False
    if m == "winograd":
        return True
    h, w = x.shape[-2] - 2, x.shape[-1] - 2
    return _avx2_class_cpu() and _fast_enough(weight.shape[1], weight.shape[0], h * w)


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
            mode: str | None = None) -> torch.Tensor:
    """Valid (unpadded, stride 1) 3x3 convolution ``[N, Ci, H, W] -> [N, Co, H - 2, W - 2]`` with the
    kernels ``mode`` chooses (default: this thread's :func:`get_mode`)."""
    m = get_mode() if mode is None else mode
    if use_winograd(x, weight, m):
        return _WinogradConv3x3.apply(x, weight, bias, m)
    return F.conv2d(x, weight, bias)


def _needed(t: torch.Tensor) -> bool:
    """Inside a backward pass: whether the gradient for ``t`` is wanted by this pass."""
    if not t.requires_grad:
        return False
    try:
        node = torch.autograd.graph.get_gradient_edge(t).node
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch: compute it
        return True


class _WinogradConv3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, mode):
        x = x.contiguous()
        w = weight.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.mode = mode  # the backward picks its kernels under the forward's mode
        try:
            if x.shape[0] == 1:
                return torch._nnpack_spatial_convolution(x, w, bias, [0, 0])
            return torch.cat([torch._nnpack_spatial_convolution(x[i:i + 1], w, bias, [0, 0])
                              for i in range(x.shape[0])])
        except RuntimeError:  # NNPACK refused this input (e.g. out of workspace): the direct kernel
            return F.conv2d(x, w, bias)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # full convolution of the output gradient with the flipped, transposed kernel
            gx = conv3x3(F.pad(gy, [2, 2, 2, 2]), weight.flip(2, 3).transpose(0, 1), mode=ctx.mode)
        if ctx.needs_input_grad[1] and _needed(weight):
            gw = torch.ops.aten.convolution_backward(
                gy, x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [False, True, False])[1]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) whose valid 3x3 convolutions may use :func:`conv3x3`.

    ``conv`` (``auto``, ``winograd`` or ``direct``, see :data:`MODES`) is the CPU kernel choice of
    this layer, fixed when the network is built (a SinGAN run stores it in its config).
    """

    def __init__(self, *args, conv: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.kernels = _check(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.kernel_size == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding == (0, 0) and use_winograd(x, self.weight, self.kernels)):
            return _WinogradConv3x3.apply(x, self.weight, self.bias, self.kernels)
        return super().forward(x)
