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
    """3x3 conv (no padding) -> BatchNorm (``norm``; else none) -> LeakyReLU(0.2); ``conv``: the CPU kernels (:class:`Conv2d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, running_stats: bool = True,
                 conv: str = "auto", norm: bool = True):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, padding=0, conv=conv)
        self.norm = nn.BatchNorm2d(out_channels, track_running_stats=running_stats) if norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2, inplace=True)


STATISTICS = ("module", "own")

SAMPLING_RULES = ("standing", "as-trained", "running", "own")
SAMPLING_RULE = "standing"
"""The BatchNorm statistics of random samples, one rule for every path that draws them
(``fewgan singan sample``, the API, ``fewgan eval`` on a run, the trainer's per-scale grids and
``scales.png``, hence the report): **standing statistics at the last scale**. The frozen coarser
scales use their running averages (eval mode), as every later scale saw them in training; the last
scale run (the finest, or scale k for a per-scale figure) normalises with that scale's *standing
statistics*: the mean over random samples of each sample's own per-channel mean and variance, at
every BatchNorm layer (:meth:`fewgan.singan.pyramid.TrainedScales.standing_statistics`; computed
once per model from a fixed noise stream, stored in ``generator.pt``). "Standing statistics" are
BigGAN's (Brock, Donahue, Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis", ICLR 2019, appendix C.1): BatchNorm statistics averaged over many sampling passes
instead of those of the batch at hand. Every image meets the same fixed statistics, so the same seed
gives the same images whatever the batch, and a tiled sample needs no statistics pass.

Why not each sample's own statistics at the last scale (``'as-trained'``, the rule of issue 17's
first fix, and what the last scale saw in training): normalising a sample by its own variance gives
every sample the same feature energy whatever its content, so a sample with few objects has them
amplified: its background goes black and its objects glare. The critic cannot object, its BatchNorm
on a batch of one removes brightness and contrast (``bench/README.md``, "the critic that cannot see
it"). Measured (issue 17, 12 runs: coins, hubble, brick and synth at max 128, 300 steps, seeds 0-2,
one machine, 16 samples each; ``bench/results/quality_m128_standing``): on the synth seed-0 run 4 of
16 samples had 1.39-1.57x the real image's contrast under ``'as-trained'`` (std 35.8 against 30.0,
p0.5 / p99.5 19 / 207 against 31 / 200, SWD 0.215), under standing statistics 0.82-1.32x (31.9,
24 / 191, SWD 0.133; running averages: 0.66-1.11x, 6 samples under 0.8x, p99.5 173, SWD 0.098). On
the other 11 runs the two rules agree within 0.02 in SWD and 3 grey levels in the percentiles (the
largest gaps on brick, where standing statistics give a little more contrast: SWD 0.005-0.017
higher on its three seeds); over all 12 the mean SWD is 0.110 against 0.114. The running averages of
training are not a substitute: they mix the fixed-noise reconstruction's passes with the fakes of an
earlier generator; against standing statistics they move the 99.5th percentile by up to 18 grey
levels either way (synth seed 0: 18 lower, hubble seed 2: 12 higher) and give a larger SWD on 8 of
the 12 runs.

The fixed-noise reconstruction keeps :data:`RECONSTRUCTION_RULE` (the reconstruction loss ran the
last scale on the real layout with its own statistics: the reconstruction is exactly what training
optimised). The other rules are kept for comparisons (``bench/singan_quality.py``): ``'running'``
(every scale in eval mode: fewgan before issue 17) and ``'own'`` (every scale its own statistics:
what the public kligvasser/SinGAN ``--evaluation`` path does, every scale in train mode on a batch
of one).

Earlier evidence (issue 17; one training run per case, 16 samples, min 16 / max 96 or 64 px, 200
steps per scale, lr 4e-4, seed 0; mean per-sample std and 99.5th percentile in 8-bit grey levels;
SWD by ``fewgan.metrics.swd``; images and commands in ``bench/README.md``):

========================  =====================  =====================  =====================
rule                      coins crop 96 px       synth micrograph 64    reconstruction PSNR
========================  =====================  =====================  =====================
real std, p99.5           46.2, 217              37.9, 203
running (before)          46.0, 214, SWD 0.103   33.2, 166, SWD 0.098   27.50 / 28.08 dB
own, every scale          44.8, 220, SWD 0.077   28.0, 169, SWD 0.191   21.04 / -- dB
re-estimated on noise     44.7, 218, SWD 0.081   28.4, 173, SWD 0.183
as trained                45.6, 218, SWD 0.087   34.6, 168, SWD 0.088   28.37 / 29.44 dB
peer, its own path                               31.2, 175, SWD 0.134   30.85 dB (eval mode)
========================  =====================  =====================  =====================

"Own at every scale" and statistics re-estimated on noise batches after each scale help one
image and double the other's SWD (coarse level 0.14 -> 0.33): the frozen scales were
trained through their running averages, so changing them at sampling feeds the finer scales
inputs they never saw; only the last scale's statistics are free.
"""

RECONSTRUCTION_RULE = "as-trained"
"""The BatchNorm rule of the fixed-noise reconstruction (training's per-scale reconstructions, the
sampler's and the report's): the last scale with the image's own statistics, the frozen scales on
their running averages, exactly as the reconstruction loss ran it."""


def statistics_at(scale: int, last: int, rule: str = SAMPLING_RULE) -> str:
    """The ``statistics`` argument of :meth:`Generator.forward` for ``scale`` when scales 0..``last`` run.

    ``rule``: one of :data:`SAMPLING_RULES` (``'as-trained'``: ``'own'`` at ``last``, ``'module'``
    below it, the generators in eval mode; ``'standing'``: ``'standing'`` at ``last``, which
    :class:`fewgan.singan.pyramid.TrainedScales` replaces by that scale's standing statistics).
    """
    if rule == "standing":
        return "standing" if scale == last else "module"
    if rule == "as-trained":
        return "own" if scale == last else "module"
    if rule == "running":
        return "module"
    if rule == "own":
        return "own"
    raise ValueError(f"rule must be one of {SAMPLING_RULES}, got {rule!r}")


GRAY_TRAINING_CHANNELS = 3
"""Channels a gray image is trained with (``--channels auto``, no labels): its one channel repeated
three times, as the public kligvasser/SinGAN code the seed ran does (it reads every image as RGB),
so gray networks are the spec's RGB networks (29,763 / 29,185 parameters). Samples and
reconstructions are given back as the mean of the three output channels (:func:`image_part`),
so a gray image gives gray images without the peer's colour cast; ``--channels 1`` trains one
channel (fewgan before issue 17).

Why (issue 17, ``bench/README.md``): trained as one channel, fewgan's samples of a gray image
lost bright objects and gained dark blotches against the public code's. Same image file, 100
steps per scale, 16 samples, **mean of training seeds 0, 1, 2**; mean per-sample std, 0.5th /
99.5th percentile (8-bit grey levels), SWD (coarse level):

==========================  ==============================  ==============================
                            coins fitted to 38 x 48         bright spots 24 px
==========================  ==============================  ==============================
real                        47.2, 24 / 197                  51.9, 19 / 218
one channel (before)        44.0, 9 / 185, 0.133 (0.181)    38.5, 8 / 176, 0.319
three channels (chosen)     45.2, 15 / 193, 0.086 (0.100)   39.4, 10 / 184, 0.237
peer, its own sampling      45.2, 18 / 192, 0.081 (0.088)   38.0, 10 / 180, 0.276
==========================  ==============================  ==============================

Each output channel alone is as good as their mean (coins seed 0: SWD 0.074-0.081 against
0.072), so the gain is in training, not in averaging. The cost: the reconstruction PSNR falls
to the peer's level (coins 29.1 -> 25.3 dB; the peer 25.8 dB on seed 0). Neither program
keeps the spots' full contrast at this budget.
"""


def image_part(y: torch.Tensor, trained_channels: int, image_channels: int) -> torch.Tensor:
    """The image of generator output ``y`` ``[..., C, H, W]`` (image channels first, then labels).

    ``trained_channels``: the image channels the networks were trained with; ``image_channels``:
    the image's own (its :class:`fewgan.data.images.ImageMeta`). Equal: the first
    ``trained_channels``; a gray image trained as :data:`GRAY_TRAINING_CHANNELS`: their mean,
    ``[..., 1, H, W]``.
    """
    x = y[..., :trained_channels, :, :]
    if image_channels == trained_channels:
        return x
    if image_channels == 1:
        return x.mean(-3, keepdim=True)
    raise ValueError(f"an image of {image_channels} channels cannot come from {trained_channels} trained channels")


def _own_statistics(x: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    """BatchNorm of ``x`` ``[N, C, H, W]`` with each image's own per-channel mean and (biased) variance.

    What a train-mode BatchNorm computes on a batch of one image, done for every image of the
    batch independently: the result does not depend on the batch, and the running averages
    are neither used nor updated.
    """
    return F.instance_norm(x, weight=norm.weight, bias=norm.bias, use_input_stats=True, eps=norm.eps)


def _given_statistics(x: torch.Tensor, norm: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """BatchNorm of ``x`` ``[N, C, H, W]`` with given per-image statistics ``mean``, ``var`` ``[N, C]``.

    With the mean and biased variance of each whole image this is :func:`_own_statistics`; tiled
    passes (:meth:`fewgan.singan.pyramid.TrainedScales.tiled`) use it to normalise a tile by the
    statistics of the whole image it belongs to.
    """
    scale = torch.rsqrt(var.to(x.dtype) + norm.eps) * norm.weight
    shift = norm.bias - mean.to(x.dtype) * scale
    return x * scale[..., None, None] + shift[..., None, None]


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
                 running_stats: bool = True, conv: str = "auto", norm: bool = True):
        super().__init__()
        if num_blocks < 2:
            raise ValueError("num_blocks must be at least 2")
        blocks = [ConvBlock(channels, features, kernel_size, running_stats, conv, norm)]
        blocks += [ConvBlock(features, features, kernel_size, running_stats, conv, norm)
                   for _ in range(num_blocks - 2)]
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

    def forward(self, z: torch.Tensor, prev: torch.Tensor, statistics: str = "module") -> torch.Tensor:
        """``statistics``: how BatchNorm normalises (see :data:`STATISTICS`); the default follows the
        module's train/eval mode, ``'own'`` normalises each image by its own statistics; a sequence of
        ``(mean, var)`` pairs ``[N, F]`` (one per BatchNorm layer) normalises by those (the whole image's
        statistics for a tile of it: :meth:`layer_moments`)."""
        if z.shape != prev.shape or z.shape[1] != self.channels:
            raise ValueError(f"generator expects z and prev of one shape [N, {self.channels}, H, W], "
                             f"got {tuple(z.shape)} and {tuple(prev.shape)}")
        x = F.pad(z, [self.pad] * 4)
        if statistics == "module":
            x = self.features(x)
        elif isinstance(statistics, (list, tuple)):
            for block, (mean, var) in zip(self.features, statistics, strict=True):
                x = block.act(_given_statistics(block.conv(x), block.norm, mean, var))
        elif statistics == "own":
            for block in self.features:
                x = block.act(_own_statistics(block.conv(x), block.norm))
        else:
            raise ValueError(f"statistics must be one of {STATISTICS}, got {statistics!r}")
        return prev + torch.tanh(self.last(x))

    def layer_moments(self, z: torch.Tensor, layer: int, statistics, region: tuple[int, int, int, int]):
        """Sums over ``region`` of BatchNorm layer ``layer``'s input, for whole-image statistics from tiles.

        ``z`` ``[N, C, H, W]`` is the generator's input (a tile with its margin); the layers before
        ``layer`` normalise with ``statistics`` (``(mean, var)`` pairs, as :meth:`forward` takes);
        ``region`` ``(y0, y1, x0, x1)`` indexes layer ``layer``'s convolution output (of size
        ``H + 2 * pad - 2 * (layer + 1) * (kernel_size // 2)``). Returns ``(sum, sum of squares)``
        ``[N, F]`` in float64: added over tiles that partition the whole image's map, they give its
        mean and biased variance exactly up to rounding.
        """
        x = F.pad(z, [self.pad] * 4)
        for i, block in enumerate(self.features):
            x = block.conv(x)
            if i == layer:
                y0, y1, x0, x1 = region
                x = x[..., y0:y1, x0:x1].double()
                return x.sum(dim=(-2, -1)), (x * x).sum(dim=(-2, -1))
            mean, var = statistics[i]
            x = block.act(_given_statistics(x, block.norm, mean, var))
        raise ValueError(f"layer must be below {len(self.features)}, got {layer}")


CRITIC_NORMS = ("batch", "none")
"""The critic's normalisation (:attr:`fewgan.singan.config.SinGANConfig.critic_norm`).

``'batch'``: BatchNorm after every inner conv, as ``d_vanilla`` (the public code). Trained on a batch
of one image, each BatchNorm normalises by that image's own statistics, and the first one removes
any change of brightness and contrast: a conv is linear, so ``x -> a x + c`` (``a > 0``) moves every
feature map by a constant and scales it, and the normalisation takes both away. The critic gives
a darker or flatter image the same scores (to 1e-3 of their spread:
``tests/singan/test_nets_losses.py``), so nothing but the reconstruction loss holds the random
samples' intensities, and SinGAN's samples drift in brightness and contrast from scale to scale.
``'none'``: no normalisation (conv, LeakyReLU), He-initialised: the critic WGAN-GP prescribes
(Gulrajani et al., NeurIPS 2017, section 4: no batch normalisation in the critic, since the
penalty is per input), which sees absolute intensities.

Measured (issue 17, ``bench/README.md`` "Where the contrast goes"): ``'none'`` moved the samples'
bright end towards the real one in some single runs and away in others, and lowered the
reconstruction PSNR in 7 of 11 runs by 0.9-3.2 dB; its critic had not met the penalty at the coarsest
scale after 300 steps. So ``'batch'`` stays the default (the seed's training); ``'none'`` is kept
for that comparison.
"""


class Discriminator(_Body):
    """``d_vanilla``: ``[N, C, H, W]`` -> patch scores ``[N, 1, H - 2p, W - 2p]``, p = num_blocks * (k // 2).

    The input must be at least the receptive field (11 px with the defaults) on each side.
    The critic only ever runs in train mode (batch statistics), so its BatchNorm layers keep
    no running averages: they would never be used, and without them the critic's passes of
    one step (real, fake, gradient penalty) can run concurrently and deterministically.
    """

    def __init__(self, channels: int = 3, features: int = 32, num_blocks: int = 5, kernel_size: int = 3,
                 conv: str = "auto", norm: str = "batch"):
        if norm not in CRITIC_NORMS:
            raise ValueError(f"norm must be one of {CRITIC_NORMS}, got {norm!r}")
        super().__init__(channels, features, 1, num_blocks, kernel_size, running_stats=False, conv=conv,
                         norm=norm == "batch")
        self.norm_kind = norm
        if norm == "batch":
            _init_weights(self)
        else:
            # no normalisation: He initialisation for LeakyReLU(0.2), so that the scores and their input
            # gradients start near the penalty's target of 1 (N(0, 0.02) shrinks each layer's output ~3x)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                    nn.init.zeros_(m.bias)

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
