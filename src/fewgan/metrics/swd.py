"""Sliced Wasserstein distance between Laplacian-pyramid patches: the metric that needs no network.

Implements the multi-scale statistical similarity of Karras, Aila, Laine and Lehtinen,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018
(Section 5 and Appendix D), written from the paper's description:

1. every image is decomposed into a Laplacian pyramid with a 5x5 binomial filter
   (``[1, 4, 6, 4, 1] / 16`` in each direction); level 0 is the full resolution, each further
   level halves the size, down to 16 px (the last level is the low-pass residual);
2. 128 random 7x7 neighbourhoods per image and level are taken as descriptors of
   ``C * 7 * 7`` numbers (any channel count ``C``);
3. descriptors are normalised per channel (mean and standard deviation per channel);
4. per level, the sliced Wasserstein distance between the real and generated descriptor sets is
   estimated with 4 x 128 random unit directions: both sets are projected on each direction,
   sorted, and the mean absolute difference of the sorted projections (the exact 1-D
   Wasserstein-1 distance between the two empirical distributions) is averaged;
5. the result is reported per level and averaged over levels.

Difference from the reference: the paper's code normalises each descriptor set by its *own*
mean and standard deviation, which makes it blind to a global brightness or contrast change of
the generated images. Here both sets are normalised with the statistics of the **real** set, so
a brightness offset or contrast change shows up in the distance. Values are therefore not
directly comparable to published SWD numbers (which are also multiplied by 1e3); they are
comparable between runs of fewgan.

Inputs are float tensors ``[N, C, H, W]`` in ``[-1, 1]`` (any bit depth once mapped there, as
:func:`fewgan.data.images.read_image` does). The two sets may differ in number of images and
in size (SinGAN samples at another size, a single real image against many samples): the number
of descriptors drawn from each set is the same, ``patches_per_image * max(N_real, N_fake)``,
spread evenly over the images of the set, and the number of levels is set by the smaller image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fewgan.errors import FewganError

PATCH_SIZE = 7
PATCHES_PER_IMAGE = 128
DIRECTIONS = 128
REPEATS = 4
MIN_SIZE = 16

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _check_images(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise FewganError(f"{name}: expected a tensor [N, C, H, W], got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[0] == 0:
        raise FewganError(f"{name}: expected a non-empty tensor [N, C, H, W], got shape {tuple(images.shape)}")
    return images.float()


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Separable 5x5 binomial blur with reflected borders; ``x`` is ``[N, C, H, W]``."""
    c = x.shape[1]
    k = (_BINOMIAL * gain).to(x.device, x.dtype)
    pad_h = min(2, x.shape[2] - 1)
    pad_w = min(2, x.shape[3] - 1)
    if pad_h < 2 or pad_w < 2:
        x = F.pad(x, (2, 2, 2, 2), mode="replicate")
    else:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, k.view(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c)
    return x


def _downsample(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero insertion followed by the binomial blur with gain 2 per axis (exact inverse size)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    up = _blur(up, gain=2.0)
    return up[:, :, : size[0], : size[1]]


def num_levels(height: int, width: int, min_size: int = MIN_SIZE) -> int:
    """Number of pyramid levels for an image: halve while the smaller side stays >= ``min_size``.

    A 64 px image has levels 64, 32, 16 (3 levels); an image smaller than ``min_size`` has one.
    """
    side = min(height, width)
    levels = 1
    while math.ceil(side / 2) >= min_size:
        side = math.ceil(side / 2)
        levels += 1
    return levels


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``[N, C, H, W]`` images: ``levels`` tensors, finest first.

    Level ``i < levels - 1`` is ``g_i - up(g_{i+1})`` (band-pass detail, about zero mean); the last
    level is the low-pass Gaussian level ``g_{levels-1}``. Summing the upsampled levels back
    reconstructs the input exactly (tested).
    """
    out = []
    current = images
    for _ in range(levels - 1):
        smaller = _downsample(current)
        out.append(current - _upsample(smaller, current.shape[-2:]))
        current = smaller
    out.append(current)
    return out


def reconstruct_pyramid(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_pyramid` (used by the tests)."""
    current = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        current = level + _upsample(current, level.shape[-2:])
    return current


def _channel_stats(desc: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = desc.view(desc.shape[0], channels, -1)
    return d.mean(dim=(0, 2), keepdim=True), d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)


def _normalise(real: torch.Tensor, fake: torch.Tensor, channels: int,
               normalisation: str = "real") -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise both descriptor sets per channel: with the real set's mean and std (``'real'``), or
    each set with its own (``'each'``, the reference's convention, blind to brightness/contrast)."""
    real_mean, real_std = _channel_stats(real, channels)
    fake_mean, fake_std = (real_mean, real_std) if normalisation == "real" else _channel_stats(fake, channels)
    real = ((real.view(real.shape[0], channels, -1) - real_mean) / real_std).view(real.shape[0], -1)
    fake = ((fake.view(fake.shape[0], channels, -1) - fake_mean) / fake_std).view(fake.shape[0], -1)
    return real, fake


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, *, directions: int = DIRECTIONS,
                       repeats: int = REPEATS, generator: torch.Generator | None = None,
                       chunk: int = 128) -> float:
    """Sliced Wasserstein-1 distance between two point sets ``[M, D]`` and ``[M, D]``.

    ``repeats`` draws of ``directions`` random unit vectors in R^D; for each direction the exact
    1-D Wasserstein-1 distance of the projected sets (mean absolute difference of the sorted
    projections) is taken; the result is the mean over all ``directions * repeats`` directions.
    """
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs sets of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = a.shape[1]
    total = 0.0
    count = 0
    for _ in range(repeats):
        dirs = torch.randn(d, directions, generator=generator).to(a.device, a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        for start in range(0, directions, chunk):
            block = dirs[:, start:start + chunk].T.contiguous()  # [k, D]
            pa, pb = block @ a.T, block @ b.T  # [k, M], sorted along the contiguous axis
            if a.device.type == "cpu":
                # numpy's sort is about 10x faster than torch's on CPU for these sizes
                pa, pb = np.sort(pa.numpy(), axis=1), np.sort(pb.numpy(), axis=1)
                total += float(np.abs(pa - pb).mean(axis=1).sum())
            else:
                pa, pb = torch.sort(pa, dim=1).values, torch.sort(pb, dim=1).values
                total += float((pa - pb).abs().mean(dim=1).sum())
            count += block.shape[0]
    return total / count


def swd_levels(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0,
               patches_per_image: int = PATCHES_PER_IMAGE, patch_size: int = PATCH_SIZE,
               directions: int = DIRECTIONS, repeats: int = REPEATS, min_size: int = MIN_SIZE,
               device: str | torch.device = "cpu", batch_size: int = 256,
               normalisation: str = "real") -> dict[str, Any]:
    """SWD per pyramid level and averaged (Karras et al., ICLR 2018), real-set normalisation.

    Parameters
    ----------
    real, fake : tensors ``[N, C, H, W]`` (or one image ``[C, H, W]``) in ``[-1, 1]``; the channel
        count must agree, sizes and image counts may differ (single-image mode: one real image
        against many samples draws all its patches from that image).
    seed : patch positions and projection directions are drawn from ``torch.Generator`` seeded
        with it, so the same inputs give the same number. Both sets draw their positions from the
        same stream, so two sets of one shape are compared at the same positions (common random
        numbers: less variance, and SWD(x, x) = 0 exactly).
    patches_per_image, patch_size, directions, repeats, min_size : the paper's 128, 7, 128, 4, 16.
    device : where the projections run (``'cpu'``, ``'cuda'``).
    batch_size : images per pyramid batch (bounds memory).
    normalisation : ``'real'`` (default: both sets with the real set's per-channel statistics) or
        ``'each'`` (each set with its own, as the reference code; kept to show what it misses).

    Returns
    -------
    dict with ``swd`` (mean over levels), ``levels`` (list of per-level values, finest first),
    ``level_sizes`` (``[h, w]`` of the smaller set's levels), ``descriptors`` (per set and level),
    and the parameters used.
    """
    real = _check_images(real, "real")
    fake = _check_images(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise FewganError(
            f"SWD: real images have {real.shape[1]} channel(s), generated images {fake.shape[1]}; "
            "load both with the same channel count"
        )
    for name, images in (("real", real), ("fake", fake)):
        if min(images.shape[-2:]) < patch_size:
            raise FewganError(
                f"SWD: {name} images are {images.shape[-2]}x{images.shape[-1]} px, smaller than the "
                f"{patch_size}x{patch_size} patch"
            )
    if normalisation not in ("real", "each"):
        raise FewganError(f"SWD normalisation must be 'real' or 'each', not {normalisation!r}")
    device = torch.device(device)
    smallest_level = max(int(min_size), int(patch_size))  # every level must hold a patch
    levels = min(num_levels(*real.shape[-2:], min_size=smallest_level),
                 num_levels(*fake.shape[-2:], min_size=smallest_level))
    total = patches_per_image * max(real.shape[0], fake.shape[0])

    def descriptors(images: torch.Tensor) -> tuple[list[torch.Tensor], list[list[int]]]:
        # both sets draw positions from the same stream (common random numbers): sets of one
        # shape get the same positions, which lowers the variance and makes SWD(x, x) = 0
        gen = torch.Generator().manual_seed(int(seed))
        # patches are spread evenly: image i gets patches j with j % n == i
        n = images.shape[0]
        per_level: list[list[torch.Tensor]] = [[] for _ in range(levels)]
        sizes: list[list[int]] = []
        # draw positions per batch of images with one generator stream
        for start in range(0, n, batch_size):
            batch = images[start:start + batch_size].to(device)
            pyramid = laplacian_pyramid(batch, levels)
            if not sizes:
                sizes = [list(level.shape[-2:]) for level in pyramid]
            # global patch indices j with j % n in [start, start + len(batch))
            idx = torch.arange(total)
            mine = idx[(idx % n >= start) & (idx % n < start + batch.shape[0])]
            for k, level in enumerate(pyramid):
                local = _draw_patches_for(level, (mine % n) - start, patch_size, gen)
                per_level[k].append(local)
        return [torch.cat(chunks) for chunks in per_level], sizes

    real_desc, real_sizes = descriptors(real)
    fake_desc, fake_sizes = descriptors(fake)
    channels = real.shape[1]
    gen = torch.Generator().manual_seed(int(seed) + 0x5D1)  # directions: a stream of their own
    values = []
    for k in range(levels):
        r, f = _normalise(real_desc[k], fake_desc[k], channels, normalisation)
        values.append(sliced_wasserstein(r, f, directions=directions, repeats=repeats, generator=gen))
    smaller = real_sizes if real_sizes[0][0] * real_sizes[0][1] <= fake_sizes[0][0] * fake_sizes[0][1] else fake_sizes
    return {
        "swd": float(sum(values) / len(values)),
        "levels": [float(v) for v in values],
        "level_sizes": smaller,
        "descriptors": int(total),
        "normalisation": ("real-set statistics per channel, applied to both sets" if normalisation == "real"
                          else "each set by its own statistics per channel (reference convention)"),
        "seed": int(seed),
        "patches_per_image": int(patches_per_image),
        "patch_size": int(patch_size),
        "directions": int(directions),
        "repeats": int(repeats),
    }


def _draw_patches_for(level: torch.Tensor, image_index: torch.Tensor, patch_size: int,
                      gen: torch.Generator) -> torch.Tensor:
    """Patches at random positions from the given images of ``level``: ``[len(image_index), C*p*p]``."""
    n, c, h, w = level.shape
    total = image_index.shape[0]
    ys = torch.randint(0, h - patch_size + 1, (total,), generator=gen)
    xs = torch.randint(0, w - patch_size + 1, (total,), generator=gen)
    offsets = torch.arange(patch_size)
    rows = (ys[:, None] + offsets[None, :]).to(level.device)
    cols = (xs[:, None] + offsets[None, :]).to(level.device)
    index = image_index.to(level.device)
    patches = level[index[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # [T, p, p, C]
    return patches.permute(0, 3, 1, 2).reshape(total, c * patch_size * patch_size)


def swd(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, **options: Any) -> float:
    """Mean over pyramid levels of :func:`swd_levels` (lower is better; 0 for identical patch sets).

    ``real``, ``fake``: ``[N, C, H, W]`` in ``[-1, 1]``. This is the StyleGAN2 trainer's selection
    metric when no Inception weights are present.
    """
    return swd_levels(real, fake, seed=seed, **options)["swd"]


def single_image_crops(image: torch.Tensor, n: int, size: tuple[int, int], *, seed: int = 0) -> torch.Tensor:
    """``n`` random crops of ``size`` (h, w) from one image ``[C, H, W]`` or ``[1, C, H, W]``: ``[n, C, h, w]``.

    Used for the single-image floor (crops of the real image compared with the real image).
    """
    if image.ndim == 4:
        image = image[0]
    _, height, width = image.shape
    h, w = size
    if h > height or w > width:
        raise FewganError(f"crop {h}x{w} is larger than the image {height}x{width}")
    gen = torch.Generator().manual_seed(int(seed))
    ys = torch.randint(0, height - h + 1, (n,), generator=gen).tolist()
    xs = torch.randint(0, width - w + 1, (n,), generator=gen).tolist()
    return torch.stack([image[:, y:y + h, x:x + w] for y, x in zip(ys, xs)])
