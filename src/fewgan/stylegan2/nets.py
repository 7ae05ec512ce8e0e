"""StyleGAN2 networks: mapping, synthesis ('skip' generator) and residual discriminator.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
(configuration E/F: weight demodulation, skip generator, residual discriminator, no
progressive growing), with the minibatch standard deviation layer of Karras et al.,
"Progressive Growing of GANs", ICLR 2018. Pure ``nn.Module``s: no I/O, no optimisers;
every hyper-parameter is an argument. Images are ``[N, C, R, R]`` in [-1, 1] (the
generator's output is not clamped; it is trained towards that range).

At the seed configuration (64 px, 1 channel, z 128, w 256, 4 mapping layers, cbase 2048,
cmax 256) the parameter counts are those of NVlabs' StyleGAN2 run with the same options
(``../shared/peers`` ``--match-fewgan``): G 3,145,774 (mapping 230,400, constant 4,096,
toRGB 189,893, synthesis layers 2,721,385), D 3,511,521. Buffers (``w_avg``, constant noise
maps) are not parameters.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from fewgan.ops.equalized import EqualConv2d, EqualLinear, bias_act, modulated_conv2d
from fewgan.ops.fir import make_filter, upsample2d
from fewgan.stylegan2.config import LABEL_HEADS, StyleGAN2Config, channels_at

METHOD = "stylegan2"                                  # the ``method`` of a run folder's config.json
CHECKPOINT_FORMAT = "fewgan-stylegan2-checkpoint-1"   # the resume checkpoint (every piece of state)
WEIGHTS_FORMAT = "fewgan-stylegan2-weights-1"         # one network's weights (the best_* files)


def _log2(resolution: int) -> int:
    r = int(np.log2(resolution))
    if 2 ** r != resolution or resolution < 8:
        raise ValueError(f"resolution {resolution}: must be a power of two >= 8")
    return r


# --------------------------------------------------------------------------- generator
class MappingNetwork(nn.Module):
    """z ``[N, z_dim]`` -> w ``[N, num_ws, w_dim]``: 2nd-moment normalisation, ``layers`` lrelu FC layers.

    Owns ``w_avg`` (a buffer: the running mean of w, updated by :meth:`update_w_avg`) and
    truncation ``w' = w_avg + psi (w - w_avg)`` (Karras et al., "A Style-Based Generator
    Architecture for GANs", CVPR 2019, section 3.3).
    """

    def __init__(self, z_dim: int = 128, w_dim: int = 256, num_ws: int = 10, layers: int = 4,
                 lr_mult: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mult, activation="lrelu") for i in range(layers)
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork: expected z [N, {self.z_dim}], got {tuple(z.shape)}")
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.layers:
            x = layer(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.to(ws.dtype).lerp(ws[:, :cutoff], psi)
        return ws

    @torch.no_grad()
    def update_w_avg(self, w_mean: torch.Tensor) -> None:
        """``w_avg <- w_mean + beta (w_avg - w_mean)``; the trainer passes the batch mean of w
        (all-reduced over processes under DDP, so every rank keeps the same buffer)."""
        self.w_avg.copy_(w_mean.detach().to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional 2x upsampling), noise input with learned strength, bias, lrelu.

    ``x [N, C_in, r/up, r/up], w [N, w_dim] -> [N, C_out, r, r]``. ``noise_mode``:
    'random' (fresh N(0, 1) maps), 'const' (the stored ``noise_const`` buffer), 'none'; or pass
    ``noise`` ``[N, 1, r, r]`` explicitly (the trainer draws it for the global batch under DDP).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", make_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                noise: torch.Tensor | None = None) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight * self.weight_gain, styles, demodulate=True, up=self.up,
                             resample_filter=self.resample_filter)
        if noise is None:
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                noise = self.noise_const.to(x.dtype)
            elif noise_mode != "none":
                raise ValueError(f"noise_mode {noise_mode!r}: use random, const or none")
        if noise is not None:
            x = x + noise * self.noise_strength.to(x.dtype)
        return bias_act(x, self.bias, "lrelu")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation: ``[N, C, r, r] -> [N, img_channels, r, r]``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, "linear")


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const | 2x-up conv) + conv, then toRGB added to the
    FIR-upsampled image of the previous resolution. Uses ``num_conv + 1`` consecutive ws."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int):
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.conv0 = None
        else:
            self.const = None
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.conv0 is None else 2
        self.register_buffer("resample_filter", make_filter(), persistent=False)

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str = "random", noise=None):
        """``ws [N, num_conv + 1, w_dim]``; ``noise``: ``None`` or a list of ``num_conv`` tensors."""
        noise = noise if noise is not None else [None] * self.num_conv
        if self.conv0 is None:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode, noise[0])
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, noise[0])
            x = self.conv1(x, ws[:, 1], noise_mode, noise[1])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, R, R]`` (about [-1, 1]).

    The last ``label_channels`` of ``img_channels`` are a labelled run's label channels; with
    ``label_head='tanh'`` they leave through ``tanh`` (no parameters), so a label at its saturated
    +-1 (the encoding of :func:`fewgan.data.labels.encode_instances`) needs no large toRGB weights.
    Measured at 32 px (bench/README.md, issue 13.5): the linear head alone lets the label channels'
    z-independent mean picture dominate the layout (samples' foregrounds overlap at IoU 0.59 at 8 kimg,
    real crops 0.13); tanh and the image-only critic (:class:`LabelledCritic`) together bring the
    labels' overlap to 0.22-0.33 from 32 kimg on (two seeds; 0.73-0.79 without them). The image
    channels are never squashed.
    """

    def __init__(self, w_dim: int = 256, resolution: int = 64, img_channels: int = 1,
                 cbase: int = 2048, cmax: int = 256, label_channels: int = 0, label_head: str = "linear"):
        super().__init__()
        if label_head not in LABEL_HEADS or not 0 <= label_channels < img_channels:
            raise ValueError(f"SynthesisNetwork: label_head {label_head!r}, label_channels {label_channels} "
                             f"of {img_channels}")
        self.w_dim, self.resolution, self.img_channels = w_dim, resolution, img_channels
        self.label_channels, self.label_head = label_channels, label_head
        self.resolutions = [2 ** i for i in range(2, _log2(resolution) + 1)]
        self.channels = {r: channels_at(r, cbase, cmax) for r in self.resolutions}
        self.blocks = nn.ModuleList()
        for r in self.resolutions:
            cin = 0 if r == 4 else self.channels[r // 2]
            self.blocks.append(SynthesisBlock(cin, self.channels[r], w_dim, r, img_channels))
        # a block's toRGB shares its w with the next block's first conv
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def noise_shapes(self) -> list[tuple[int, int]]:
        """``(resolution, resolution)`` of every noise input, in order."""
        return [(b.resolution, b.resolution) for b in self.blocks for _ in range(b.num_conv)]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", noise=None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"SynthesisNetwork: expected ws [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        x = img = None
        i = j = 0
        for block in self.blocks:
            block_noise = None if noise is None else noise[j:j + block.num_conv]
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1], noise_mode, block_noise)
            i += block.num_conv
            j += block.num_conv
        if self.label_head == "tanh" and self.label_channels:
            c = self.img_channels - self.label_channels
            img = torch.cat([img[:, :c], torch.tanh(img[:, c:])], dim=1)
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: z ``[N, z_dim]`` -> image ``[N, img_channels, R, R]``.

    Seed configuration: ``Generator(z_dim=128, w_dim=256, resolution=64, img_channels=1,
    mapping_layers=4, mapping_lr_mult=0.01, cbase=2048, cmax=256)``.
    """

    def __init__(self, z_dim: int = 128, w_dim: int = 256, resolution: int = 64, img_channels: int = 1,
                 mapping_layers: int = 4, mapping_lr_mult: float = 0.01, cbase: int = 2048, cmax: int = 256,
                 label_channels: int = 0, label_head: str = "linear"):
        super().__init__()
        self.z_dim, self.w_dim, self.resolution, self.img_channels = z_dim, w_dim, resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, cbase, cmax, label_channels, label_head)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_mult)

    def forward(self, z: torch.Tensor, psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "random", noise=None) -> torch.Tensor:
        ws = self.mapping(z, psi=psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise=noise)

    def parameter_groups(self) -> dict[str, int]:
        """Parameter counts by part: mapping, const, torgb, synthesis (the other synthesis layers)."""
        out = {"mapping": 0, "const": 0, "torgb": 0, "synthesis": 0}
        for name, p in self.named_parameters():
            if name.startswith("mapping."):
                out["mapping"] += p.numel()
            elif name.endswith(".const"):
                out["const"] += p.numel()
            elif ".torgb." in name:
                out["torgb"] += p.numel()
            else:
                out["synthesis"] += p.numel()
        return out


# --------------------------------------------------------------------------- discriminator
class MinibatchStdLayer(nn.Module):
    """Append the mean over features and pixels of the std over a group of samples.

    ``[N, C, H, W] -> [N, C + num_channels, H, W]``. Groups are *consecutive* samples
    (``x.view(N / G, G, ...)``), unlike NVlabs' strided groups: when a global batch is split
    into contiguous slices across processes, every rank then forms exactly the groups a single
    process would (the DDP equivalence relies on it). ``G = min(group_size, N)``, reduced to
    the largest divisor of N.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(n // g, g, f, c // f, h, w)
        y = y - y.mean(dim=1, keepdim=True)
        y = (y.square().mean(dim=1) + 1e-8).sqrt()          # [n/g, f, c/f, h, w]
        y = y.mean(dim=[2, 3, 4])                            # [n/g, f]
        y = y.reshape(n // g, 1, f, 1, 1).expand(n // g, g, f, h, w).reshape(n, f, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) + 1x1 downsampling skip, both x sqrt(0.5).

    ``[N, C_in, r, r] -> [N, C_out, r/2, r/2]``; the first block also owns fromRGB.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int, first: bool):
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, activation="lrelu") if first else None
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return y + x


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image ``[N, C, R, R]`` in [-1, 1] -> logits ``[N, 1]``.

    fromRGB to ``channels(R)`` (32 at 64 px), residual blocks down to 4x4 (32->64->128->256->256
    at 64 px), minibatch-stddev, 3x3 conv, FC ``C*16 -> C``, FC ``C -> 1``.
    """

    def __init__(self, resolution: int = 64, img_channels: int = 1, cbase: int = 2048, cmax: int = 256,
                 mbstd_group: int = 4, mbstd_channels: int = 1):
        super().__init__()
        self.resolution, self.img_channels = resolution, img_channels
        resolutions = [2 ** i for i in range(_log2(resolution), 2, -1)]
        self.channels = {r: channels_at(r, cbase, cmax) for r in resolutions + [4]}
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(self.channels[r], self.channels[r], self.channels[r // 2], img_channels, first=(i == 0))
            for i, r in enumerate(resolutions)
        )
        c4 = self.channels[4]
        self.mbstd = MinibatchStdLayer(mbstd_group, mbstd_channels)
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != self.img_channels or img.shape[2] != self.resolution \
                or img.shape[3] != self.resolution:
            raise ValueError(f"Discriminator: expected [N, {self.img_channels}, {self.resolution}, "
                             f"{self.resolution}], got {tuple(img.shape)}")
        x = img
        for block in self.blocks:
            x = block(x)
        x = self.conv(self.mbstd(x))
        x = self.fc(x.flatten(1))
        return self.out(x)


class LabelledCritic(nn.Module):
    """Two critics of a labelled run: ``joint`` on image + label channels, ``image`` on the image alone.

    ``[N, C + L, R, R] -> [N, 2]`` logits (joint, image); the losses average over the columns, so each
    critic is trained on its own logistic loss, and R1 penalises each critic's own gradient
    (:func:`fewgan.stylegan2.losses.r1_penalty`); ADA's overfitting signal (the sign of D on reals)
    averages both critics' logits. The image critic is a :class:`Discriminator` of the
    same architecture with ``C`` input channels. After Li et al., "Semantic Segmentation with Generative
    Models: Semi-Supervised Learning and Strong Out-of-Domain Generalization" (SemanticGAN, CVPR 2021),
    whose generator of image + mask pairs is judged by an image-and-mask critic and an image critic.
    Why here: with the joint critic alone the generator learns the labels' z-independent mean picture
    first and draws every sample on one layout (bench/README.md, issue 13.5); the image critic asks
    for real images' variety whatever the labels, while the joint one keeps labels and image in step.
    """

    def __init__(self, joint: Discriminator, image: Discriminator):
        super().__init__()
        if image.img_channels >= joint.img_channels or image.resolution != joint.resolution:
            raise ValueError("LabelledCritic: the image critic reads the joint critic's first channels")
        self.joint, self.image = joint, image
        self.resolution, self.img_channels = joint.resolution, joint.img_channels

    @property
    def blocks(self) -> nn.ModuleList:
        """The joint critic's blocks (its fromRGB reads the label channels)."""
        return self.joint.blocks

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.joint(img), self.image(img[:, :self.image.img_channels])], dim=1)


def build_networks(cfg: StyleGAN2Config, img_channels: int) -> tuple[Generator, nn.Module]:
    """G and D for a config and a channel count (image + label channels; CPU, fp32, default init).

    A labelled config gets G's label head (``cfg.label_head``) and, with ``cfg.image_critic``, a
    :class:`LabelledCritic`; otherwise D is one :class:`Discriminator`.
    """
    cbase = cfg.channel_base
    L = cfg.label_channels
    G = Generator(z_dim=cfg.z_dim, w_dim=cfg.w_dim, resolution=cfg.resolution, img_channels=img_channels,
                  mapping_layers=cfg.mapping_layers, mapping_lr_mult=cfg.mapping_lr_mult, cbase=cbase, cmax=cfg.cmax,
                  label_channels=L, label_head=cfg.label_head if L else "linear")

    def critic(channels: int) -> Discriminator:
        return Discriminator(resolution=cfg.resolution, img_channels=channels, cbase=cbase, cmax=cfg.cmax,
                             mbstd_group=cfg.mbstd_group)

    D = critic(img_channels)
    if L and cfg.image_critic:
        D = LabelledCritic(D, critic(img_channels - L))
    return G, D
