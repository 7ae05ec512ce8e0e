"""Precision, recall, density and coverage: identities, hand computation, half the modes."""

import numpy as np
import pytest

from fewgan.errors import FewganError
from fewgan.metrics.prdc import kth_neighbour_radii, prdc, precision_recall


def test_identical_sets_give_one():
    f = np.random.default_rng(0).normal(size=(100, 8))
    assert prdc(f, f, k=5) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    assert precision_recall(f, f, k=3) == {"precision": 1.0, "recall": 1.0}


def test_radii_exclude_the_point_itself():
    f = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert np.allclose(kth_neighbour_radii(f, 1), [1, 1, 2, 4])
    assert np.allclose(kth_neighbour_radii(f, 2), [3, 2, 3, 6])


def test_hand_computation_on_a_line():
    real = np.array([[0.0], [1.0], [3.0], [7.0]])  # k = 1 radii 1, 1, 2, 4
    fake = np.array([[0.5], [20.0], [8.0]])  # k = 1 radii among fakes: 7.5, 12, 7.5
    r = prdc(real, fake, k=1)
    # fake 0.5 lies in the balls of 0 (r 1) and 1 (r 1); 8 in the ball of 7 (r 4); 20 in none
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["density"] == pytest.approx((2 + 0 + 1) / 3)
    # coverage: nearest fake of 0, 1, 3, 7 is at 0.5, 0.5, 2.5, 1 -> inside radius 1, 1, no (2.5 > 2), 4
    assert r["coverage"] == pytest.approx(3 / 4)
    # recall: real within some fake ball: 0 (0.5 < 7.5), 1, 3, 7 -> all
    assert r["recall"] == 1.0


def test_density_is_strict():
    # equidistant points: the k-th neighbour sits exactly on the radius and must not count
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    r = prdc(real, real.copy(), k=1)
    assert r["density"] == 1.0  # with <= it would be 1.5 here


def test_half_the_modes():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(10, 4)) * 20
    real = np.concatenate([c + rng.normal(size=(50, 4)) for c in centres])
    fake = np.concatenate([c + rng.normal(size=(100, 4)) for c in centres[:5]])
    full = np.concatenate([c + rng.normal(size=(50, 4)) for c in centres])  # the same distribution
    half, same = prdc(real, fake, k=5), prdc(real, full, k=5)
    assert half["coverage"] == pytest.approx(0.5, abs=0.05) and same["coverage"] > 0.9
    # k-NN recall is below 1 even for one distribution at finite N: half the modes give half of it
    assert half["recall"] == pytest.approx(0.5 * same["recall"], abs=0.05)
    assert half["precision"] > 0.9 and half["density"] == pytest.approx(1.0, abs=0.1)
    pr_half, pr_same = precision_recall(real, fake, k=3), precision_recall(real, full, k=3)
    assert pr_half["recall"] == pytest.approx(0.5 * pr_same["recall"], abs=0.05)
    assert pr_half["precision"] > 0.85


def test_bad_input():
    with pytest.raises(FewganError, match="k = 5"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)
    with pytest.raises(FewganError):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
