"""Copying in single-image generation: are the samples new, or the training image again?

A single-image GAN can reproduce its training image with small changes (Shaham, Dekel and
Michaeli, "SinGAN", ICCV 2019, discuss it as the effect of the coarsest scale's receptive field;
GPNN's authors, Granot et al., CVPR 2022, show patch-level copying is what such models do at heart).
The set-level memorisation test (:mod:`fewgan.metrics.memorisation`) needs many training images; one
image needs two other measures, both with a stated chance level:

**Layout copying** (:func:`layout_copying`): the fraction of objects detected in the samples whose
centroid lies within ``radius`` px of the centroid of an object of the training image, both in the
training image's pixel frame. For samples that place their objects anywhere, independently of the
training layout, the expected fraction is the share of the image's area that lies within
``radius`` of a training centroid: that area fraction is the **chance level** (computed exactly on
the pixel grid, so edges and overlaps are counted). The same fraction between two independent real
images (where two are given) shows what real data gives.

**Patch copying** (:func:`patch_copying`): square patches of side ``patch`` are compared by
Euclidean distance. The reference is the distribution of distances from real patches to their
nearest *non-overlapping* patch of the same training image (offset by at least ``patch`` px in
one axis): how close the image's own structures come to each other. A sample patch is a **copy**
when its nearest training patch (any position) is closer than the ``quantile`` (5 %) of that
reference distribution. A sample patch behaving like a fresh real patch falls below it with
probability ``quantile``, which is therefore the chance level. Flat patches (standard deviation
below the training image's median patch standard deviation) are left out on both sides: noise-only
background is alike everywhere and says nothing about copying. Patches are drawn at random (seeded)
on the query side and taken at every position on the training side, so a copy from any offset is
found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LAYOUT_RADIUS = 2.0
PATCH_SIZE = 7
PATCH_QUANTILE = 0.05


# --------------------------------------------------------------------------- layout
def near_fraction(points: np.ndarray, reference: np.ndarray, radius: float, shape: tuple[int, int]) -> tuple[float, int]:
    """Fraction of ``points`` ``[m, 2]`` (y, x) inside ``shape`` within ``radius`` of a ``reference`` point."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64).reshape(-1, 2)
    inside = (points[:, 0] >= -0.5) & (points[:, 0] <= shape[0] - 0.5)
    inside &= (points[:, 1] >= -0.5) & (points[:, 1] <= shape[1] - 0.5)
    points = points[inside]
    if points.shape[0] == 0:
        return float("nan"), 0
    reference = np.asarray(reference, np.float64).reshape(-1, 2)
    if reference.shape[0] == 0:
        return 0.0, int(points.shape[0])
    d, _ = cKDTree(reference).query(points, k=1)
    return float(np.mean(d <= radius)), int(points.shape[0])


def chance_fraction(reference: np.ndarray, radius: float, shape: tuple[int, int]) -> float:
    """Share of the pixel centres of an image of ``shape`` within ``radius`` of a ``reference`` point."""
    from scipy.spatial import cKDTree

    reference = np.asarray(reference, np.float64).reshape(-1, 2)
    if reference.shape[0] == 0:
        return 0.0
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    grid = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float64)
    d, _ = cKDTree(reference).query(grid, k=1, distance_upper_bound=radius + 1e-9)
    return float(np.mean(d <= radius))


def layout_copying(
    train_points: np.ndarray,
    train_shape: tuple[int, int],
    sample_points: Sequence[np.ndarray],
    radius: float = LAYOUT_RADIUS,
    other_real_points: np.ndarray | None = None,
) -> dict[str, Any]:
    """Layout copying of samples against one training image (module docstring).

    Parameters
    ----------
    train_points : ``[n, 2]`` (y, x) object centroids of the training image, px.
    train_shape : its ``(H, W)``.
    sample_points : per sample, ``[m, 2]`` centroids in the same pixel frame.
    radius : px; a sample object within this distance of a training object is "in place".
    other_real_points : centroids of an independent real image of the same size, if there is one.

    Returns
    -------
    dict with ``fraction`` (pooled over samples), ``chance``, ``ratio`` (fraction / chance),
    ``objects`` (counted), ``radius`` and, with ``other_real_points``, ``real_fraction``.
    """
    hits, total = 0.0, 0
    for pts in sample_points:
        frac, n = near_fraction(pts, train_points, radius, train_shape)
        if n:
            hits += frac * n
            total += n
    chance = chance_fraction(train_points, radius, train_shape)
    fraction = hits / total if total else float("nan")
    out = {"fraction": fraction, "chance": chance, "objects": total, "radius": float(radius),
           "train_objects": int(np.asarray(train_points).reshape(-1, 2).shape[0]),
           "ratio": fraction / chance if chance > 0 and total else float("nan")}
    if other_real_points is not None:
        out["real_fraction"], out["real_objects"] = near_fraction(other_real_points, train_points, radius, train_shape)
    return out


# --------------------------------------------------------------------------- patches
def _patches(image: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``size`` x ``size`` patches of ``[C, H, W]`` as ``[P, C*size*size]`` and their (y, x) corners."""
    c, h, w = image.shape
    cols = F.unfold(image[None].double(), size)[0].T  # [P, C*size*size]
    ys, xs = torch.meshgrid(torch.arange(h - size + 1), torch.arange(w - size + 1), indexing="ij")
    return cols, torch.stack([ys.reshape(-1), xs.reshape(-1)], 1)


def overlap_mask(xy: torch.Tensor, shape: tuple[int, int], patch: int):
    """``exclude(lo, hi, r_lo, r_hi)`` of :func:`fewgan.metrics.memorisation.nearest_neighbours`: True
    where patch ``r`` (of :func:`_patches` of an image of ``shape``, raster order) overlaps query patch
    ``lo + i`` whose corner is ``xy[lo + i]`` (``|dy| < patch`` and ``|dx| < patch``). Each query
    overlaps at most ``(2 patch - 1)^2`` patches, so the mask is scattered from their indices rather
    than compared against every patch (4.2 M at 2048 px)."""
    width = shape[1] - patch + 1
    height = shape[0] - patch + 1
    d = torch.arange(-(patch - 1), patch)
    ys = xy[:, 0, None, None] + d[None, :, None]
    xs = xy[:, 1, None, None] + d[None, None, :]
    valid = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    index = torch.where(valid, ys * width + xs, -1).reshape(xy.shape[0], -1)

    def exclude(lo: int, hi: int, r_lo: int, r_hi: int) -> torch.Tensor:
        sel = index[lo:hi]
        inside = (sel >= r_lo) & (sel < r_hi)
        rows = torch.arange(hi - lo)[:, None].expand_as(sel)[inside]
        mask = torch.zeros(hi - lo, r_hi - r_lo, dtype=torch.bool)
        mask[rows, sel[inside] - r_lo] = True
        return mask

    return exclude


def _nearest(query: torch.Tensor, reference: torch.Tensor, exclude=None) -> torch.Tensor:
    """Distance from each query row to its nearest reference row, skipping the ``exclude`` pairs
    (:func:`fewgan.metrics.memorisation.nearest_neighbours`, float64)."""
    from fewgan.metrics.memorisation import nearest_neighbours

    return torch.from_numpy(nearest_neighbours(query, reference, exclude=exclude)[0])


def patch_copying(
    train: torch.Tensor,
    samples: torch.Tensor,
    patch: int = PATCH_SIZE,
    quantile: float = PATCH_QUANTILE,
    queries: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Patch copying of samples ``[N, C, h, w]`` against one training image ``[C, H, W]`` (module docstring).

    Returns ``share`` (fraction of informative sample patches closer to the training image than its
    own ``quantile`` nearest-patch distance), ``chance`` (= ``quantile``), ``ratio``, ``threshold``
    (that distance, in [-1, 1] units), ``patch``, and the numbers of patches compared.
    """
    train = torch.as_tensor(train).detach().cpu()
    samples = torch.as_tensor(samples).detach().cpu()
    if train.ndim != 3 or samples.ndim != 4 or samples.shape[1] != train.shape[0]:
        raise ValueError(f"expected train [C, H, W] and samples [N, C, h, w] with equal C, got "
                         f"{tuple(train.shape)} and {tuple(samples.shape)}")
    if min(train.shape[1:]) < 2 * patch or min(samples.shape[2:]) < patch:
        raise ValueError(f"images too small for {patch} px patches")
    ref, corners = _patches(train, patch)
    ref_std = ref.std(1)
    floor = float(ref_std.median())
    gen = torch.Generator().manual_seed(seed)

    informative = torch.nonzero(ref_std > floor).view(-1)
    pick = informative[torch.randperm(informative.numel(), generator=gen)[:queries]]
    real_q, real_xy = ref[pick], corners[pick]

    real_d = _nearest(real_q, ref, overlap_mask(real_xy, train.shape[-2:], patch))
    threshold = float(torch.quantile(real_d, quantile))

    # informative patches of each sample, at most ``queries`` of each (so that 50 large samples never
    # hold all their patches at once), then ``queries`` of them all, at random
    kept = []
    for s in samples:
        rows = _patches(s, patch)[0]
        rows = rows[rows.std(1) > floor]
        kept.append(rows[torch.randperm(rows.shape[0], generator=gen)[:queries]])
    sample_rows = torch.cat(kept)
    sample_rows = sample_rows[torch.randperm(sample_rows.shape[0], generator=gen)[:queries]]
    if sample_rows.shape[0] == 0:
        return {"share": float("nan"), "chance": quantile, "ratio": float("nan"), "threshold": threshold,
                "patch": patch, "sample_patches": 0, "real_patches": int(real_q.shape[0])}
    sample_d = _nearest(sample_rows, ref)
    share = float((sample_d < threshold).double().mean())
    return {"share": share, "chance": float(quantile), "ratio": share / quantile, "threshold": threshold,
            "patch": patch, "sample_patches": int(sample_rows.shape[0]), "real_patches": int(real_q.shape[0]),
            "median_sample_distance": float(sample_d.median()), "median_real_distance": float(real_d.median())}


def single_image_copying(
    real: torch.Tensor,
    samples: torch.Tensor,
    other_real: torch.Tensor | None = None,
    particle_config: Any = None,
    radius: float = LAYOUT_RADIUS,
    seed: int = 0,
) -> dict[str, Any]:
    """Layout and patch copying of samples ``[N, C, h, w]`` against one training image ``[C, H, W]``.

    Objects are detected by :mod:`fewgan.metrics.particles` with the threshold of the real image
    (one rule for every image). ``other_real``: an independent real image ``[C, H, W]`` for the
    layout measure's real-vs-real value, and the patch measure's (``patches["real_share"]``: the share
    of its patches closer to the training image than the training image's own patches are to each
    other). Returns ``{"layout": ..., "patches": ...}``.
    """
    from fewgan.metrics.particles import ParticleConfig, find_threshold, measure_set

    config = particle_config or ParticleConfig()
    real = torch.as_tensor(real).detach().cpu()
    samples = torch.as_tensor(samples).detach().cpu()
    threshold = find_threshold(real[None], config)
    train = measure_set(real[None], config, threshold=threshold)
    found = [measure_set(s[None], config, threshold=threshold)["points"][0] for s in samples]
    other = None
    if other_real is not None:
        other = measure_set(torch.as_tensor(other_real)[None], config, threshold=threshold)["points"][0]
    patches = patch_copying(real, samples, seed=seed)
    if other_real is not None:
        patches["real_share"] = patch_copying(real, torch.as_tensor(other_real)[None], seed=seed)["share"]
    return {"layout": layout_copying(train["points"][0], tuple(real.shape[1:]), found, radius, other),
            "patches": patches}
