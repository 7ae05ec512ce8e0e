"""KID: a direct computation on a small set, identities, seeding, subsets."""

import itertools

import numpy as np
import pytest

from fewgan.errors import FewganError
from fewgan.metrics.kid import KID, kid_from_features, mmd2_unbiased, polynomial_kernel


def _direct_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.3
    expected = _direct_mmd2(x, y)
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # one subset of all rows: the subset is a permutation, which the statistic ignores
    mean, std = kid_from_features(x, y, subsets=1, subset_size=1000)
    assert mean == pytest.approx(expected, rel=1e-12) and std == 0.0
    assert KID == "kid"


def test_polynomial_kernel_defaults():
    x = np.array([[1.0, 2.0]])
    y = np.array([[3.0, 4.0]])
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx((11 / 2 + 1) ** 3)


def test_identical_and_shifted_sets():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 16))
    b = rng.normal(size=(200, 16))
    same, same_std = kid_from_features(a, b, subsets=20, subset_size=100)
    shifted, _ = kid_from_features(a, b + 0.5, subsets=20, subset_size=100)
    assert abs(same) < 2 * same_std  # unbiased: zero within its spread for one distribution
    assert shifted > 20 * same_std
    # the same rows on both sides are not independent samples: the unbiased estimate is then
    # 2 (S / m - T) / (m (m - 1)) with S the sum and T the trace of the kernel matrix, not 0
    c, _ = kid_from_features(a, a, subsets=3, subset_size=200)
    k = polynomial_kernel(a, a)
    m = len(a)
    assert c == pytest.approx(2 * (k.sum() / m - np.trace(k)) / (m * (m - 1)), rel=1e-9)


def test_seeded_subsets():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4)) + 0.2
    r1 = kid_from_features(a, b, subsets=10, subset_size=20, seed=3)
    r2 = kid_from_features(a, b, subsets=10, subset_size=20, seed=3)
    r3 = kid_from_features(a, b, subsets=10, subset_size=20, seed=4)
    assert r1 == r2 and r1 != r3 and r1[1] > 0
    # subset size is min(subset_size, N): 5 images work with the default 1000
    assert np.isfinite(kid_from_features(a[:5], b[:7])[0])


def test_full_kernel_path_equals_per_subset_kernels(monkeypatch):
    from fewgan.metrics import kid

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 0.1
    fast = kid_from_features(a, b, subsets=7, subset_size=12, seed=1)
    monkeypatch.setattr(kid, "_FULL_KERNEL_MAX", 0)
    slow = kid_from_features(a, b, subsets=7, subset_size=12, seed=1)
    assert fast == pytest.approx(slow, rel=1e-10, abs=1e-12)


def test_bad_input():
    with pytest.raises(FewganError):
        kid_from_features(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(FewganError):
        kid_from_features(np.zeros((4, 3)), np.zeros((4, 2)))
