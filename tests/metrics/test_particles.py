"""Particle statistics: validated on synthetic micrographs with ground truth; g(r), units, comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fewgan.data.images import ImageMeta
from fewgan.data.synthetic import SynthParams, make_micrograph
from fewgan.errors import FewganError
from fewgan.metrics.particles import (
    ParticleConfig,
    compare_distributions,
    find_threshold,
    format_table,
    measure_set,
    pair_correlation,
    particle_statistics,
)


def _unit(image: np.ndarray, bit_depth: int = 16) -> torch.Tensor:
    """Synthetic uint image ``[H, W]`` -> ``[1, 1, H, W]`` in [-1, 1] with the dtype's range."""
    top = 65535.0 if bit_depth == 16 else 255.0
    return torch.from_numpy(image.astype(np.float64) / top * 2 - 1).float()[None, None]


def _synthetic_set(n: int, seed: int = 0, **params):
    images, truths = [], []
    for i in range(n):
        image, truth = make_micrograph(seed=seed + i, **params)
        images.append(_unit(image, params.get("bit_depth", 16)))
        truths.append(truth)
    return torch.cat(images), truths


@pytest.mark.parametrize("seed", [0, 1])
def test_detection_matches_ground_truth_at_the_generators_defaults(seed):
    # SynthParams defaults: 512 x 512, 16-bit, 2.5 particles / 10^4 px^2, median radius 6 px
    # (log-normal sigma 0.2), edges at least 3 px apart, Gaussian PSF sigma 1.0 px, 150 e-
    # background, 800 e- peak (+-25 %), Poisson shot noise, read noise 4 e-, 30 % illumination gradient.
    defaults = SynthParams()
    assert (defaults.psf_sigma, defaults.read_noise, defaults.shot_noise, defaults.radius) == (1.0, 4.0, True, 6.0)
    image, truth = make_micrograph(seed=seed)
    found = measure_set(_unit(image))
    true_count = truth["count"]
    assert abs(found["count"][0] - true_count) <= 0.05 * true_count
    true_median_diameter = float(np.median([2 * p["radius"] for p in truth["particles"]]))
    assert abs(float(np.median(found["diameter"])) - true_median_diameter) <= 1.0
    # the detected centres are the true centres (x = column, y = row)
    true_xy = np.array([[p["y"], p["x"]] for p in truth["particles"]])
    from scipy.spatial import cKDTree

    d, _ = cKDTree(true_xy).query(found["points"][0])
    assert np.median(d) < 0.5


def test_detection_on_the_folder_mode_defaults_and_dark_particles():
    # the synth command's folder defaults: 64 px, 8 particles / 10^4 px^2, radius 4, spacing 2
    images, truths = _synthetic_set(20, seed=100, size=64, density=8.0, radius=4.0, min_spacing=2.0)
    found = measure_set(images)
    true_counts = np.array([t["count"] for t in truths])
    assert abs(found["count"].sum() - true_counts.sum()) <= 0.05 * true_counts.sum()
    true_d = np.median([2 * p["radius"] for t in truths for p in t["particles"]])
    assert abs(np.median(found["diameter"]) - true_d) <= 1.0
    dark, dark_truths = _synthetic_set(2, seed=5, size=256, polarity="dark")
    for polarity in ("dark", "auto"):
        got = measure_set(dark, ParticleConfig(polarity=polarity))
        assert got["threshold"]["polarity"] == "dark"
        assert got["count"].sum() == pytest.approx(sum(t["count"] for t in dark_truths), rel=0.05)


def test_pair_correlation_is_one_for_random_points_and_zero_inside_a_hard_core():
    rng = np.random.default_rng(0)
    shapes = [(100, 150)] * 40
    points = [rng.uniform((0, 0), shape, size=(60, 2)) for shape in shapes]
    g = pair_correlation(points, shapes, r_max=25.0, bins=5)
    assert np.allclose(g["g"], 1.0, atol=0.08)
    # a lattice with spacing 10 px: no pairs closer than 10
    yy, xx = np.mgrid[5:100:10, 5:150:10]
    lattice = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(float)
    g = pair_correlation([lattice], [(100, 150)], r_max=12.0, bins=6)
    assert np.all(g["g"][g["r"] < 9.0] == 0)
    assert g["g"][-1] > 1.0  # the first neighbour shell at exactly 10 px


def test_identical_sets_compare_as_zero_and_bigger_particles_shift_the_diameter():
    real, _ = _synthetic_set(2, seed=10, size=192)
    same = particle_statistics(real, real)
    for row in same["table"]:
        assert row["wasserstein"] == pytest.approx(0.0, abs=1e-12)
        assert row["ks"] == pytest.approx(0.0, abs=1e-12)
    assert same["g_r"]["mean_abs_diff"] == pytest.approx(0.0, abs=1e-12)
    bigger, _ = _synthetic_set(2, seed=10, size=192, radius=8.0)
    out = particle_statistics(real, bigger)
    diameter = next(r for r in out["table"] if r["quantity"] == "diameter")
    # median radius 6 -> 8 px: the diameter distribution moves by about 4 px
    assert 2.5 < diameter["fake"]["median"] - diameter["real"]["median"] < 5.5
    assert diameter["wasserstein"] > 2.5 and diameter["ks"] > 0.4  # log-normal radii overlap
    text = format_table(out)
    assert "diameter" in text and "g(r)" in text


def test_threshold_of_the_real_set_is_applied_to_the_fakes():
    real, _ = _synthetic_set(1, seed=20, size=128)
    t_real = find_threshold(real)
    darker = real - 0.05
    out = particle_statistics(real, darker)
    assert out["threshold"] == t_real
    intensity = next(r for r in out["table"] if r["quantity"] == "intensity")
    assert intensity["wasserstein"] > 0
    # fixed threshold in [-1, 1] units and its validation
    fixed = measure_set(real, ParticleConfig(threshold="-0.8"))
    assert fixed["threshold"]["threshold"] == pytest.approx(-0.8)
    with pytest.raises(FewganError, match="threshold"):
        ParticleConfig(threshold="bright")
    with pytest.raises(FewganError, match="polarity"):
        ParticleConfig(polarity="up")


def test_lengths_in_physical_units_and_intensities_in_data_units():
    real, _ = _synthetic_set(1, seed=30, size=128)
    fake, _ = _synthetic_set(1, seed=31, size=128)
    px = particle_statistics(real, fake)
    meta = ImageMeta(dtype="uint16", bit_depth=16, data_range=(0.0, 65535.0), pixel_size=2.5, pixel_unit="nm")
    nm = particle_statistics(real, fake, meta=meta)
    rows_px = {r["quantity"]: r for r in px["table"]}
    rows_nm = {r["quantity"]: r for r in nm["table"]}
    for q in ("diameter", "spacing"):
        assert rows_nm[q]["unit"] == "nm" and rows_px[q]["unit"] == "px"
        assert rows_nm[q]["wasserstein"] == pytest.approx(2.5 * rows_px[q]["wasserstein"])
        assert rows_nm[q]["real"]["median"] == pytest.approx(2.5 * rows_px[q]["real"]["median"])
    assert rows_nm["density"]["real"]["mean"] == pytest.approx(rows_px["density"]["real"]["mean"] / 6.25)
    assert rows_nm["intensity"]["wasserstein"] == pytest.approx(65535 / 2 * rows_px["intensity"]["wasserstein"])
    assert rows_nm["circularity"]["wasserstein"] == pytest.approx(rows_px["circularity"]["wasserstein"])
    assert nm["g_r"]["r"][0] == pytest.approx(2.5 * px["g_r"]["r"][0])


def test_circularity_separates_disks_from_elongated_particles():
    yy, xx = np.mgrid[0:64, 0:64]
    disk = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 36).astype(float)
    ellipse = (((yy - 45) / 3.0) ** 2 + ((xx - 40) / 12.0) ** 2 <= 1).astype(float)
    image = torch.from_numpy(disk + ellipse).float()[None, None] * 1.6 - 0.8
    found = measure_set(image, ParticleConfig(smooth_sigma=0, watershed=False))
    order = np.argsort(found["points"][0][:, 0])  # disk first (row 20), ellipse (row 45)
    circ = found["circularity"][order]
    assert circ[0] > 0.85 and circ[1] < 0.7
    d = found["diameter"][order]
    assert d[0] == pytest.approx(2 * math.sqrt(disk.sum() / math.pi))


def test_compare_distributions_matches_scipy_and_handles_empty_sets():
    from scipy import stats

    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])
    out = compare_distributions(a, b)
    assert out["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b))
    assert out["ks"] == pytest.approx(stats.ks_2samp(a, b).statistic)
    assert compare_distributions(a, np.zeros(0)) == {"wasserstein": None, "ks": None, "ks_pvalue": None}
    # no particle at all in the fakes: counts still compare, the rest is empty
    real, _ = _synthetic_set(1, seed=40, size=96)
    out = particle_statistics(real, torch.full_like(real, -1.0))
    rows = {r["quantity"]: r for r in out["table"]}
    assert rows["count"]["fake"]["median"] == 0 and rows["count"]["ks"] == 1.0
    assert rows["diameter"]["wasserstein"] is None


def test_watershed_splits_touching_and_overlapping_particles():
    images, truths = _synthetic_set(3, seed=0, size=256, density=4.0, min_spacing=-2.0)  # overlap by 2 px
    true = sum(t["count"] for t in truths)
    split = measure_set(images)["count"].sum()
    merged = measure_set(images, ParticleConfig(watershed=False))["count"].sum()
    assert abs(split - true) <= 0.05 * true
    assert merged < split  # without the watershed, touching pairs count as one
