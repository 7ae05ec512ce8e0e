"""Particle statistics: the numbers a microscopist compares between real and generated images.

Every image is segmented with a classical, stated pipeline (parameters in :class:`ParticleConfig`):

1. luminance (mean over channels) of the ``[-1, 1]`` image, Gaussian pre-smoothing with
   ``smooth_sigma`` px (suppresses shot and read noise);
2. a global threshold: Otsu's method (Otsu, IEEE Trans. SMC 9(1), 1979) on the pooled smoothed
   pixels of the **real** set, applied unchanged to the generated images (a per-image threshold
   would adapt to, and hide, a brightness shift of the generator), or a fixed value; particles are
   bright on a dark background (``polarity='bright'``), dark on bright, or ``'auto'`` (the phase
   that covers less area is the particles);
3. touching particles split by a marker-controlled watershed on the Euclidean distance transform
   (Beucher and Lantuejoul 1979; Vincent and Soille, IEEE TPAMI 13(6), 1991): markers are the
   distance-transform maxima at least ``min_distance`` px apart whose height exceeds the
   surrounding saddle by ``h`` px (h-maxima), so one round particle gets one marker;
4. regions smaller than ``min_area`` px are dropped.

Measured per particle: equivalent diameter ``sqrt(4 A / pi)``, mean intensity (in the images'
data units where their data range is known, else in [-1, 1]), circularity ``4 pi A / P^2``
(perimeter ``P`` by the Crofton formula with 4 directions, scikit-image's ``perimeter_crofton``,
whose estimate is nearly unbiased for round shapes; digitised disks of radius 4, 6, 10, 20 px
read 0.89, 0.92, 0.94, 0.97, and the smoother outlines of blurred, thresholded disks read
about 1.0 to 1.06: values are not clipped, so that the two sets' distributions stay comparable), nearest-neighbour spacing (centroid to nearest other
centroid in the same image); per image: the count and the density; per set: the pair correlation
function g(r) with the translation edge correction (Ohser and Stoyan, Biometrical J. 23, 1981),
pooled over images (g = 1 for complete spatial randomness, 0 inside a hard-core distance).

Real and generated distributions are compared with the 1-D Wasserstein-1 distance and the
two-sample Kolmogorov-Smirnov statistic (``scipy.stats``). Lengths are in physical units when a
pixel size is given (``ImageMeta.pixel_size`` / ``pixel_unit``), else in px.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from scipy import ndimage, stats
from scipy.spatial import cKDTree

from fewgan.config import Config
from fewgan.errors import FewganError

POLARITIES = ("bright", "dark", "auto")
# The distributions compared, with their kind of unit: 'length', 'intensity', 'count', 'none'.
QUANTITIES = {
    "count": "count",
    "density": "density",
    "diameter": "length",
    "intensity": "intensity",
    "circularity": "none",
    "spacing": "length",
}


@dataclasses.dataclass(frozen=True)
class ParticleConfig(Config):
    """How particles are detected and g(r) is binned (lengths in px).

    threshold : 'otsu' (Otsu on the pooled real set, applied to both sets) or a number in the
        [-1, 1] units of the images.
    polarity : 'bright' particles on a dark background, 'dark' on a bright one, or 'auto'.
    smooth_sigma : Gaussian pre-smoothing in px (0 = none).
    min_area : smallest particle kept, in px.
    watershed : split touching particles (distance-transform watershed).
    min_distance : smallest distance in px between two watershed markers.
    h : how much (in px of the distance transform) a marker must rise above its saddle.
    gr_bins, gr_max : number of g(r) bins and its largest r in px (default: a quarter of the
        smaller image side).
    """

    threshold: str = "otsu"
    polarity: str = "bright"
    smooth_sigma: float = 1.0
    min_area: int = 4
    watershed: bool = True
    min_distance: int = 3
    h: float = 0.7
    gr_bins: int = 20
    gr_max: float | None = None

    def __post_init__(self):
        if self.polarity not in POLARITIES:
            raise FewganError(f"particle polarity must be one of {', '.join(POLARITIES)}, not {self.polarity!r}")
        if self.threshold != "otsu":
            try:
                float(self.threshold)
            except (TypeError, ValueError):
                raise FewganError(
                    f"particle threshold must be 'otsu' or a number in [-1, 1], not {self.threshold!r}"
                ) from None
        if self.smooth_sigma < 0 or self.min_area < 1 or self.min_distance < 1 or self.gr_bins < 1:
            raise FewganError("particle options: smooth_sigma >= 0, min_area >= 1, min_distance >= 1, gr_bins >= 1")


# --------------------------------------------------------------------------- detection
def _luminance(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` / ``[C, H, W]`` / ``[H, W]`` -> ``[N, H, W]`` float64 (mean over channels)."""
    x = images.detach().cpu().double().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float64)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise FewganError(f"particles: expected images [N, C, H, W], got shape {x.shape}")
    return x.mean(axis=1)


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma, mode="reflect") if sigma > 0 else image


def _oriented(image: np.ndarray, polarity: str) -> np.ndarray:
    return -image if polarity == "dark" else image


def find_threshold(images: torch.Tensor | np.ndarray, config: ParticleConfig | None = None) -> dict[str, Any]:
    """The threshold (and resolved polarity) to use for a set: ``{'threshold': t, 'polarity': p}``.

    ``t`` is in the oriented [-1, 1] units (particles are above it after orientation). With
    ``threshold='otsu'`` it is Otsu's threshold of the pooled smoothed luminance of ``images``.
    """
    from skimage.filters import threshold_otsu

    config = config or ParticleConfig()
    lum = _luminance(images)
    smooth = np.stack([_smooth(im, config.smooth_sigma) for im in lum])
    polarity = config.polarity
    if config.threshold == "otsu":
        t = float(threshold_otsu(smooth.ravel()))
    else:
        t = float(config.threshold)
    if polarity == "auto":
        polarity = "bright" if float((smooth > t).mean()) <= 0.5 else "dark"
    if polarity == "dark":
        t = -t
    return {"threshold": t, "polarity": polarity}


def segment(image: np.ndarray, threshold: float, config: ParticleConfig) -> np.ndarray:
    """Label image ``[H, W]`` (0 background, 1..n particles) of one oriented, unsmoothed image."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    smooth = _smooth(image, config.smooth_sigma)
    mask = smooth > threshold
    labels, n = ndimage.label(mask)
    if n == 0:
        return labels
    if config.watershed:
        distance = ndimage.distance_transform_edt(mask)
        peaks = h_maxima(distance, config.h) if config.h > 0 else (distance == ndimage.maximum_filter(distance, 3))
        peaks &= mask
        markers, n_markers = ndimage.label(peaks)
        if n_markers and config.min_distance > 1:
            markers = _merge_close_markers(markers, n_markers, distance, config.min_distance)
        labels = watershed(-distance, markers, mask=mask)
        # a connected component without a marker (too flat) keeps its own label
        unlabelled = mask & (labels == 0)
        if unlabelled.any():
            extra, n_extra = ndimage.label(unlabelled)
            labels[unlabelled] = extra[unlabelled] + labels.max()
    # drop small regions
    sizes = np.bincount(labels.ravel())
    small = sizes < config.min_area
    small[0] = False
    if small.any():
        labels[small[labels]] = 0
    # compact labels to 1..n
    uniq = np.unique(labels)
    lut = np.zeros(labels.max() + 1, dtype=np.int64)
    lut[uniq] = np.arange(len(uniq))
    return lut[labels]


def _merge_close_markers(markers: np.ndarray, n: int, distance: np.ndarray, min_distance: float) -> np.ndarray:
    """Keep, of markers closer than ``min_distance``, the one on the higher distance value."""
    index = np.arange(1, n + 1)
    centres = np.array(ndimage.center_of_mass(np.ones_like(distance), markers, index))
    heights = np.array(ndimage.maximum(distance, markers, index))
    order = np.argsort(-heights, kind="stable")
    tree = cKDTree(centres)
    keep = np.ones(n, dtype=bool)
    for i in order:
        if not keep[i]:
            continue
        for j in tree.query_ball_point(centres[i], r=min_distance - 1e-9):
            if j != i and keep[j] and heights[j] <= heights[i]:
                keep[j] = False
    lut = np.zeros(n + 1, dtype=np.int64)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[markers]


def measure_image(image: np.ndarray, threshold: float, config: ParticleConfig,
                  polarity: str = "bright") -> dict[str, np.ndarray]:
    """Particles of one ``[H, W]`` luminance image in [-1, 1] (not oriented).

    Returns arrays (lengths in px, intensity in [-1, 1]): ``centroid`` ``[n, 2]`` (y, x),
    ``diameter``, ``area``, ``intensity``, ``circularity``, ``spacing`` (nan for a lone
    particle), and ``labels`` ``[H, W]``.
    """
    from skimage.measure import perimeter_crofton

    labels = segment(_oriented(image, polarity), threshold, config)
    n = int(labels.max())
    if n == 0:
        empty = np.zeros(0)
        return {"centroid": np.zeros((0, 2)), "diameter": empty, "area": empty, "intensity": empty,
                "circularity": empty, "spacing": empty, "labels": labels}
    index = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    centroid = np.array(ndimage.center_of_mass(np.ones_like(image), labels, index)).reshape(n, 2)
    intensity = np.asarray(ndimage.mean(image, labels, index), dtype=np.float64)
    objects = ndimage.find_objects(labels)
    perim = np.empty(n)
    for k, sl in enumerate(objects):
        crop = np.pad(labels[sl] == k + 1, 1)
        perim[k] = perimeter_crofton(crop, directions=4)
    with np.errstate(divide="ignore", invalid="ignore"):
        circularity = np.where(perim > 0, 4.0 * math.pi * area / perim**2, 1.0)
    spacing = np.full(n, np.nan)
    if n >= 2:
        d, _ = cKDTree(centroid).query(centroid, k=2)
        spacing = d[:, 1]
    return {"centroid": centroid, "diameter": np.sqrt(4.0 * area / math.pi), "area": area,
            "intensity": intensity, "circularity": circularity, "spacing": spacing, "labels": labels}


def pair_correlation(points: list[np.ndarray], shapes: list[tuple[int, int]], r_max: float,
                     bins: int) -> dict[str, np.ndarray]:
    """Pair correlation g(r) pooled over images, translation edge correction.

    ``points``: per image ``[n_i, 2]`` (y, x) in px; ``shapes``: per image (H, W). For each image
    ``|W|^2 sum_{i != j, r_ij in bin} 1 / ((W - |dx|)(H - |dy|))`` is summed, divided by the pooled
    ``sum n_i (n_i - 1)`` and by the ring area ``pi (r2^2 - r1^2)``; g = 1 under complete spatial
    randomness. Returns ``{'r': bin centres, 'g': values, 'pairs': pair counts per bin}``.
    """
    edges = np.linspace(0.0, r_max, bins + 1)
    numerator = np.zeros(bins)
    pairs = np.zeros(bins, dtype=np.int64)
    norm = 0.0
    for pts, (h, w) in zip(points, shapes):
        n = len(pts)
        if n < 2:
            continue
        norm += n * (n - 1)
        tree = cKDTree(pts)
        close = tree.query_pairs(r_max, output_type="ndarray")
        if len(close) == 0:
            continue
        delta = np.abs(pts[close[:, 0]] - pts[close[:, 1]])
        r = np.hypot(delta[:, 0], delta[:, 1])
        overlap = (h - delta[:, 0]) * (w - delta[:, 1])
        # E[sum_{i != j} 1(r_ij in ring) / |W cap W_(xi - xj)|] = n (n - 1) ring / |W|^2 for CSR
        weight = np.where(overlap > 0, float(h * w) ** 2 / np.maximum(overlap, 1e-12), 0.0)
        which = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, bins - 1)
        ok = r < r_max
        # each unordered pair counts twice (i, j) and (j, i)
        numerator += 2.0 * np.bincount(which[ok], weights=weight[ok], minlength=bins)
        pairs += 2 * np.bincount(which[ok], minlength=bins)
    ring = math.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    g = numerator / (norm * ring) if norm > 0 else np.full(bins, np.nan)
    return {"r": 0.5 * (edges[1:] + edges[:-1]), "g": g, "pairs": pairs}


def measure_set(images: torch.Tensor | np.ndarray, config: ParticleConfig | None = None, *,
                threshold: dict[str, Any] | None = None, keep_labels: bool = False) -> dict[str, Any]:
    """Detect and measure particles in every image of ``[N, C, H, W]`` in [-1, 1].

    ``threshold``: from :func:`find_threshold` (default: computed on these images). Returns
    per-particle arrays pooled over images (px, [-1, 1]), ``count`` per image, ``density`` per
    image (particles per px^2), ``points`` and ``shapes`` per image, and the threshold used.
    """
    config = config or ParticleConfig()
    lum = _luminance(images)
    threshold = threshold or find_threshold(lum[:, None], config)
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("diameter", "intensity", "circularity", "spacing")}
    counts, densities, points, shapes, labels = [], [], [], [], []
    for image in lum:
        m = measure_image(image, threshold["threshold"], config, threshold["polarity"])
        for k in pooled:
            pooled[k].append(m[k])
        counts.append(len(m["diameter"]))
        densities.append(len(m["diameter"]) / float(image.size))
        points.append(m["centroid"])
        shapes.append(image.shape)
        if keep_labels:
            labels.append(m["labels"])
    out: dict[str, Any] = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pooled.items()}
    out["spacing"] = out["spacing"][np.isfinite(out["spacing"])]
    out.update(count=np.asarray(counts, dtype=np.float64), density=np.asarray(densities), points=points,
               shapes=shapes, threshold=threshold)
    if keep_labels:
        out["labels"] = labels
    return out


# --------------------------------------------------------------------------- comparison
def _units(meta: Any) -> dict[str, Any]:
    """Scale factors from px / [-1, 1] to physical / data units."""
    pixel_size = getattr(meta, "pixel_size", None) if meta is not None else None
    pixel_unit = getattr(meta, "pixel_unit", None) if meta is not None else None
    data_range = getattr(meta, "data_range", None) if meta is not None else None
    length, length_unit = (float(pixel_size), str(pixel_unit or "unit")) if pixel_size else (1.0, "px")
    if data_range is not None:
        lo, hi = float(data_range[0]), float(data_range[1])
        intensity = (lambda v, lo=lo, hi=hi: (np.asarray(v) + 1.0) * (hi - lo) / 2.0 + lo)
        intensity_unit = "data units"
    else:
        intensity = (lambda v: np.asarray(v))
        intensity_unit = "[-1, 1]"
    return {"length": length, "length_unit": length_unit, "intensity": intensity, "intensity_unit": intensity_unit}


def _in_units(stats_set: dict[str, Any], quantity: str, units: dict[str, Any]) -> np.ndarray:
    values = np.asarray(stats_set[quantity], dtype=np.float64)
    kind = QUANTITIES[quantity]
    if kind == "length":
        return values * units["length"]
    if kind == "density":
        return values / units["length"] ** 2
    if kind == "intensity":
        return units["intensity"](values)
    return values


def _summary(values: np.ndarray) -> dict[str, Any]:
    if len(values) == 0:
        return {"n": 0, "mean": None, "median": None, "std": None}
    return {"n": int(len(values)), "mean": float(np.mean(values)), "median": float(np.median(values)),
            "std": float(np.std(values))}


def compare_distributions(real: np.ndarray, fake: np.ndarray) -> dict[str, Any]:
    """1-D Wasserstein-1 distance and two-sample KS statistic (and p-value) of two samples."""
    if len(real) == 0 or len(fake) == 0:
        return {"wasserstein": None, "ks": None, "ks_pvalue": None}
    ks = stats.ks_2samp(real, fake)
    return {"wasserstein": float(stats.wasserstein_distance(real, fake)), "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue)}


def particle_statistics(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, *,
                        config: ParticleConfig | None = None, meta: Any = None,
                        **options: Any) -> dict[str, Any]:
    """Compare particle statistics of real and generated images.

    Parameters
    ----------
    real, fake : ``[N, C, H, W]`` tensors or arrays in [-1, 1] (sizes may differ between sets).
    config : detection parameters (:class:`ParticleConfig`); ``options`` override its fields.
    meta : the real images' :class:`fewgan.data.images.ImageMeta` (or anything with
        ``pixel_size``, ``pixel_unit``, ``data_range``): lengths in physical units, intensities
        in data units. Generated images are taken to share it.

    Returns
    -------
    dict with ``table`` (one row per quantity: real / fake summaries, ``wasserstein``, ``ks``,
    ``ks_pvalue``, ``unit``), ``g_r`` (``r``, ``real``, ``fake`` curves and their mean absolute
    difference over bins with pairs), ``threshold``, ``config`` and ``units``.
    """
    config = (config or ParticleConfig()).replace(**options) if options else (config or ParticleConfig())
    threshold = find_threshold(real, config)
    real_set = measure_set(real, config, threshold=threshold)
    fake_set = measure_set(fake, config, threshold=threshold)
    units = _units(meta)
    unit_of = {"length": units["length_unit"], "intensity": units["intensity_unit"], "count": "per image",
               "density": f"per {units['length_unit']}^2", "none": ""}
    table = []
    for quantity, kind in QUANTITIES.items():
        r = _in_units(real_set, quantity, units)
        f = _in_units(fake_set, quantity, units)
        row = {"quantity": quantity, "unit": unit_of[kind], "real": _summary(r), "fake": _summary(f)}
        row.update(compare_distributions(r, f))
        table.append(row)
    smallest = min(min(s) for s in real_set["shapes"] + fake_set["shapes"])
    r_max = float(config.gr_max) if config.gr_max else smallest / 4.0
    g_real = pair_correlation(real_set["points"], real_set["shapes"], r_max, config.gr_bins)
    g_fake = pair_correlation(fake_set["points"], fake_set["shapes"], r_max, config.gr_bins)
    both = (g_real["pairs"] > 0) & (g_fake["pairs"] > 0)
    diff = float(np.mean(np.abs(g_real["g"][both] - g_fake["g"][both]))) if both.any() else None
    return {
        "table": table,
        "g_r": {"r": (g_real["r"] * units["length"]).tolist(), "unit": units["length_unit"],
                "real": _finite_list(g_real["g"]), "fake": _finite_list(g_fake["g"]),
                "mean_abs_diff": diff},
        "threshold": threshold,
        "config": config.to_dict(),
        "units": {"length": units["length_unit"], "intensity": units["intensity_unit"],
                  "pixel_size": units["length"] if units["length_unit"] != "px" else None},
        "particles": {"real": int(real_set["count"].sum()), "fake": int(fake_set["count"].sum())},
    }


def _finite_list(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of :func:`particle_statistics` for the terminal."""

    def num(v):
        return "-" if v is None else f"{v:.4g}"

    lines = [f"{'quantity':<12} {'unit':<14} {'real median':>12} {'fake median':>12} {'W1':>10} {'KS':>7}"]
    for row in result["table"]:
        lines.append(f"{row['quantity']:<12} {row['unit']:<14} {num(row['real']['median']):>12} "
                     f"{num(row['fake']['median']):>12} {num(row['wasserstein']):>10} {num(row['ks']):>7}")
    g = result["g_r"]
    lines.append(f"g(r) mean |real - fake| over {len(g['r'])} bins to r = {g['r'][-1]:.3g} {g['unit']}: "
                 f"{num(g['mean_abs_diff'])}")
    return "\n".join(lines)
