"""Synthetic micrographs: determinism and ground truth measured back from the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import filters, measure

from fewgan.data.images import read_image
from fewgan.data.synthetic import make_micrograph, synth
from fewgan.errors import FewganError


def test_same_seed_same_image_other_seed_other_image():
    a, ta = make_micrograph(seed=3, size=96)
    b, tb = make_micrograph(seed=3, size=96)
    c, _ = make_micrograph(seed=4, size=96)
    assert np.array_equal(a, b) and ta == tb
    assert not np.array_equal(a, c)


def test_ground_truth_measured_back_from_noise_free_image():
    image, truth = make_micrograph(seed=0, size=256, noise=False, gradient=0.0)
    mask = image > filters.threshold_otsu(image)
    regions = measure.regionprops(measure.label(mask))
    assert len(regions) == truth["count"] > 10
    true_r = np.array([p["radius"] for p in truth["particles"]])
    measured_r = np.array([np.sqrt(r.area / np.pi) for r in regions])
    assert abs(np.median(measured_r) - np.median(true_r)) < 0.5
    # every true centre lies inside a detected region, within half a pixel of its centroid
    centroids = np.array([r.centroid for r in regions])  # (row, col)
    for p in truth["particles"]:
        d = np.hypot(centroids[:, 0] - p["y"], centroids[:, 1] - p["x"])
        assert d.min() < 0.5


def test_size_distribution_spacing_and_bit_depths():
    _, truth = make_micrograph(seed=1, size=512, radius=5.0, radius_sigma=0.3, min_spacing=4.0)
    radii = np.array([p["radius"] for p in truth["particles"]])
    assert np.median(radii) == pytest.approx(5.0, rel=0.15)
    assert np.log(radii).std() == pytest.approx(0.3, rel=0.35)
    pts = truth["particles"]
    for i, p in enumerate(pts):
        for q in pts[i + 1:]:
            assert np.hypot(p["x"] - q["x"], p["y"] - q["y"]) >= p["radius"] + q["radius"] + 4.0 - 1e-6
    img8, _ = make_micrograph(seed=1, size=64, bit_depth=8)
    img16, _ = make_micrograph(seed=1, size=64, bit_depth=16)
    assert img8.dtype == np.uint8 and img16.dtype == np.uint16
    rgb, _ = make_micrograph(seed=1, size=64, channels=3)
    assert rgb.shape == (64, 64, 3) and not np.array_equal(rgb[..., 0], rgb[..., 2])


def test_noise_levels_are_as_stated():
    # flat field (no particles, no gradient): std = gain * sqrt(background + read_noise^2)
    img, truth = make_micrograph(seed=2, size=256, density=0.0, gradient=0.0)
    gain = truth["params"]["gain"]
    expected = gain * np.sqrt(truth["params"]["background"] + truth["params"]["read_noise"] ** 2)
    assert img.astype(float).std() == pytest.approx(expected, rel=0.05)


def test_synth_writes_images_and_ground_truth(tmp_path):
    path = synth(tmp_path / "m", size=64, seed=0)
    truth = json.loads(path.with_suffix(".json").read_text())
    _, meta = read_image(path)
    assert meta.bit_depth == 16 and meta.channels == 1 and truth["count"] == len(truth["particles"])
    folder = synth(tmp_path / "f", mode="folder", n=3, bit_depth=8, seed=0)
    pngs = sorted(folder.glob("particles_*.png"))
    assert len(pngs) == 3 and all(p.with_suffix(".json").exists() for p in pngs)
    assert read_image(pngs[0])[1].bit_depth == 8
    with pytest.raises(FewganError):
        synth(tmp_path / "x", mode="bogus")


def test_synth_writes_exact_instance_labels_beside_every_image(tmp_path):
    from fewgan.data.folder import list_images
    from fewgan.data.labels import labels_beside, read_labels
    from fewgan.data.synthetic import instance_labels

    folder = synth(tmp_path / "set", mode="folder", n=3, size=48, seed=4)
    images = list_images(folder)
    assert [p.name for p in images] == ["particles_0000.png", "particles_0001.png", "particles_0002.png"]
    for path in images:
        truth = json.loads(path.with_suffix(".json").read_text())
        mask_file = labels_beside(path)
        assert mask_file is not None and mask_file.name == path.stem + "_masks.tif"
        labels = read_labels(mask_file, shape=(48, 48))
        assert labels.max() == truth["count"]
        image = read_image(path)[0][0].numpy()
        if truth["count"]:
            assert image[labels > 0].mean() > image[labels == 0].mean() + 0.1   # bright particles, aligned
        for i, rec in enumerate(truth["particles"], start=1):
            ys, xs = np.nonzero(instance_labels(truth) == i)
            assert abs(xs.mean() - rec["x"]) < 0.5 and abs(ys.mean() - rec["y"]) < 0.5
            assert abs(xs.size - np.pi * rec["radius"] ** 2) < 2 * np.pi * rec["radius"] + 2


def test_overlapping_particles_split_by_relative_distance():
    from fewgan.data.synthetic import instance_labels

    truth = {"params": {"size": [20, 30]}, "particles": [
        {"x": 10.0, "y": 10.0, "radius": 5.0}, {"x": 17.0, "y": 10.0, "radius": 5.0}]}
    labels = instance_labels(truth)
    assert labels[10, 12] == 1 and labels[10, 15] == 2      # nearer centre wins in the overlap
    assert labels[10, 13] == 1 and labels[10, 14] == 2
    assert labels[0, 0] == 0 and labels.dtype == np.uint16
