"""Equalized-learning-rate layers and the modulated convolution of StyleGAN2.

Equalized learning rate (Karras et al., "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018, section 4.1): weights are stored as
``N(0, 1) / lr_mul`` and multiplied at run time by ``lr_mul / sqrt(fan_in)``, so that Adam,
whose step size does not depend on the gradient's scale, moves every layer at the same
relative speed; ``lr_mul`` (0.01 for the StyleGAN mapping network) slows a whole layer.

Modulated convolution with weight demodulation (Karras et al., "Analyzing and Improving
the Image Quality of StyleGAN", CVPR 2020, section 2.2, eq. 1-3): each sample's style
``s`` scales the input channels, and the output channel ``o`` is divided by
``sqrt(sum_{i,k} (w_oik s_i)^2 + eps)``, so that an input with unit-variance i.i.d.
entries gives unit-variance outputs. It is computed as "modulate activations, shared
convolution, scale outputs" (mathematically the same as the per-sample weights of the
paper): one ordinary convolution for the whole batch instead of a grouped one, which is
what CPUs and cuDNN do fastest during training.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from fewgan.ops.fir import downsample2d, make_filter, upfirdn2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, act: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1) and apply ``act`` ('linear' or 'lrelu').

    'lrelu' is leaky ReLU with slope 0.2 times ``sqrt(2)`` (He et al. gain, which keeps
    the second moment of a unit-variance input). ``gain`` multiplies the result;
    ``clamp`` clips it to ``[-clamp, clamp]`` (useful in reduced precision).
    """
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).view(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = gain * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"bias_act: unknown activation {act!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate.

    ``[N, in_features] -> [N, out_features]``; ``lr_mul`` scales the effective learning
    rate of weight and bias; ``bias_init`` is the bias's initial *effective* value (1 for
    StyleGAN2's style affines, so styles start around 1).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str = "linear"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain if self.bias is not None else None
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act(x, b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate, optional FIR downsampling by 2.

    ``[N, C_in, H, W] -> [N, C_out, H / down, W / down]`` ('same' padding). With
    ``down=2`` the input is low-pass filtered (``[1, 3, 3, 1]``) and the convolution runs
    with stride 2, as in StyleGAN2's residual discriminator. ``gain`` multiplies the
    activated output (``sqrt(0.5)`` on both branches of a residual block keeps variance).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: int = 1, gain: float = 1.0, filter_taps=(1, 3, 3, 1)):
        super().__init__()
        if down not in (1, 2):
            raise ValueError("EqualConv2d: down must be 1 or 2")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down, self.gain = activation, down, gain
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", make_filter(filter_taps), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        k = self.kernel_size
        if self.down == 2:
            if k == 1:
                x = downsample2d(x, self.resample_filter)
                x = F.conv2d(x, w)
            else:
                # blur so that a stride-2 'valid' convolution gives exactly H / 2
                p = k + self.resample_filter.numel() - 3
                x = upfirdn2d(x, self.resample_filter, padding=(p // 2, p - p // 2, p // 2, p - p // 2))
                x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=k // 2)
        b = self.bias if self.bias is not None else None
        return bias_act(x, b, self.activation, gain=self.gain)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}->{self.out_channels}, k={self.kernel_size}, "
                f"down={self.down}, act={self.activation}")


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Modulated (and demodulated) convolution, 'same' padding, optional FIR upsampling by 2.

    Parameters
    ----------
    x : ``[N, I, H, W]`` input.
    weight : ``[O, I, k, k]`` effective weight (equalized scale already applied).
    styles : ``[N, I]`` per-sample input-channel scales.
    demodulate : divide each output channel by ``sqrt(sum_{i,k} (w_oik s_i)^2 + eps)``.
    up : 1, or 2 for a transposed convolution with stride 2 followed by the FIR filter
        (gain 4), i.e. upsample + convolve at the cost of a convolution at input size.

    Returns ``[N, O, H * up, W * up]``.
    """
    n, i = styles.shape
    o, i2, kh, kw = weight.shape
    if i != i2 or x.shape[1] != i:
        raise ValueError(f"modulated_conv2d: channels differ: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
                         f"styles {tuple(styles.shape)}")
    dcoefs = None
    if demodulate:
        # sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 (sum_k w_oik^2): a [N, I] x [I, O] product
        dcoefs = (styles.square().matmul(weight.square().sum(dim=[2, 3]).t()) + eps).rsqrt()
    x = x * styles.to(x.dtype).view(n, i, 1, 1)
    if up == 1:
        x = F.conv2d(x, weight.to(x.dtype), padding=kh // 2)
    elif up == 2:
        if resample_filter is None:
            resample_filter = make_filter(device=x.device)
        # conv_transpose2d computes a true convolution; flip to keep correlation with `weight`
        wt = weight.to(x.dtype).flip([2, 3]).transpose(0, 1)
        x = F.conv_transpose2d(x, wt, stride=2)
        p = resample_filter.numel() + 1 - kw  # total pad that brings (H-1)*2+k back to 2H
        x = upfirdn2d(x, resample_filter, padding=(p // 2, p - p // 2, p // 2, p - p // 2), gain=4)
    else:
        raise ValueError("modulated_conv2d: up must be 1 or 2")
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).view(n, o, 1, 1)
    return x
