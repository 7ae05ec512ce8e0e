"""SinGAN's per-scale networks: the ``g_multivanilla`` generator and ``d_vanilla`` critic.

Both are a plain stack of ``num_blocks - 1`` (3x3 conv, BatchNorm, LeakyReLU 0.2) blocks and
a last 3x3 conv, all without padding. The generator pads its input noise once with zeros
(``num_blocks * (kernel_size // 2)`` px per side, so the output keeps the input size), ends
with Tanh, and adds its output to the upsampled image of the previous scale (residual
learning). The critic's last conv gives one channel: a map of patch scores with an 11 px
receptive field. With 3 image channels and 32 features: 29,763 and 29,185 parameters.

``conv`` chooses the CPU kernels of every convolution when a network is built (``auto``,
``winograd`` or ``direct``: :class:`fewgan.ops.winograd.Conv2d`); a run stores it in its config.

Weights start as N(0, 0.02) for convs (biases 0) and N(1, 0.02) for BatchNorm scales
(shifts 0), as in the public code the seed ran (kligvasser/SinGAN ``generation/models``).

Shaham, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural
Image", ICCV 2019.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fewgan.ops.winograd import Conv2d

METHOD = "singan"                 # the ``method`` of a run folder's config.json
MODEL_FORMAT = "fewgan-singan-1"  # the ``format`` of its model and resume files


class ConvBlock(nn.Sequential):
    """3x3 conv (no padding) -> BatchNorm -> LeakyReLU(0.2); ``conv``: the CPU kernels (:class:`Conv2d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, running_stats: bool = True,
                 conv: str = "auto"):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, padding=0, conv=conv)
        self.norm = nn.BatchNorm2d(out_channels, track_running_stats=running_stats)
        self.act = nn.LeakyReLU(0.2, inplace=True)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _Body(nn.Module):
    def __init__(self, channels: int, features: int, out_channels: int, num_blocks: int, kernel_size: int,
                 running_stats: bool = True, conv: str = "auto"):
        super().__init__()
        if num_blocks < 2:
            raise ValueError("num_blocks must be at least 2")
        blocks = [ConvBlock(channels, features, kernel_size, running_stats, conv)]
        blocks += [ConvBlock(features, features, kernel_size, running_stats, conv) for _ in range(num_blocks - 2)]
        self.features = nn.Sequential(*blocks)
        self.last = Conv2d(features, out_channels, kernel_size, padding=0, conv=conv)
        self.channels = channels
        self.feature_count = features
        self.num_blocks = num_blocks
        self.kernel_size = kernel_size


class Generator(_Body):
    """One scale of ``g_multivanilla``.

    ``forward(z, prev)``: ``z`` and ``prev`` are ``[N, C, H, W]``; ``z`` is the previous
    scale's upsampled image plus amp-scaled noise, ``prev`` that upsampled image. Returns
    ``prev + tanh(body(pad(z)))``, ``[N, C, H, W]`` (not clipped: the residual can leave [-1, 1]).
    """

    def __init__(self, channels: int = 3, features: int = 32, num_blocks: int = 5, kernel_size: int = 3,
                 conv: str = "auto"):
        super().__init__(channels, features, channels, num_blocks, kernel_size, conv=conv)
        self.pad = num_blocks * (kernel_size // 2)
        _init_weights(self)

    def forward(self, z: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        if z.shape != prev.shape or z.shape[1] != self.channels:
            raise ValueError(f"generator expects z and prev of one shape [N, {self.channels}, H, W], "
                             f"got {tuple(z.shape)} and {tuple(prev.shape)}")
        x = F.pad(z, [self.pad] * 4)
        return prev + torch.tanh(self.last(self.features(x)))


class Discriminator(_Body):
    """``d_vanilla``: ``[N, C, H, W]`` -> patch scores ``[N, 1, H - 2p, W - 2p]``, p = num_blocks * (k // 2).

    The input must be at least the receptive field (11 px with the defaults) on each side.
    The critic only ever runs in train mode (batch statistics), so its BatchNorm layers keep
    no running averages: they would never be used, and without them the critic's passes of
    one step (real, fake, gradient penalty) can run concurrently and deterministically.
    """

    def __init__(self, channels: int = 3, features: int = 32, num_blocks: int = 5, kernel_size: int = 3,
                 conv: str = "auto"):
        super().__init__(channels, features, 1, num_blocks, kernel_size, running_stats=False, conv=conv)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.features(x))


def upsample(y: torch.Tensor, size: tuple[int, int], scale_factor: float) -> torch.Tensor:
    """The previous scale's image brought to the next scale, as the public code does it.

    ``y`` ``[N, C, h, w]`` is resized by ``1 / scale_factor`` (MATLAB bicubic, output
    ``ceil(h / scale_factor)``) and cropped to ``size`` at the top-left; when that resize
    is smaller than ``size`` (sampling at another aspect), it is resized to ``size`` directly.
    """
    from fewgan.ops.imresize import imresize, scaled_size

    h, w = int(size[0]), int(size[1])
    uh, uw = scaled_size(y.shape[-2], 1 / scale_factor), scaled_size(y.shape[-1], 1 / scale_factor)
    if uh < h or uw < w:
        return imresize(y, size=(h, w))
    return imresize(y, size=(uh, uw))[..., :h, :w]


def make_noise(shape: tuple[int, ...], broadcast_channels: bool, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise ``[N, C, H, W]``; with ``broadcast_channels`` one channel repeated C times (s0).

    Drawn on the CPU (``generator`` or the global one) and moved to ``device``, so a run's
    random stream does not depend on the device.
    """
    n, c, h, w = shape
    if broadcast_channels:
        noise = torch.randn((n, 1, h, w), generator=generator).repeat(1, c, 1, 1)
    else:
        noise = torch.randn((n, c, h, w), generator=generator)
    return noise.to(device)
