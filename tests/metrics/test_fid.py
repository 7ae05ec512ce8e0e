"""FID from features: identities, the closed form between Gaussians, singular and complex cases."""

import numpy as np
import pytest
from scipy import linalg

from fewgan.errors import FewganError
from fewgan.metrics import fid as fid_mod
from fewgan.metrics.fid import FID, SmallSampleWarning, feature_statistics, fid_from_features, frechet_distance


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d) * 0.1


def _closed_form(mu1, s1, mu2, s2):
    """tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) + |mu1 - mu2|^2, by symmetric eigen-decompositions."""
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    w2 = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(w2)))


def test_identical_features_give_zero():
    f = np.random.default_rng(0).normal(size=(300, 16))
    with pytest.warns(SmallSampleWarning):
        assert abs(fid_from_features(f, f)) < 1e-8
    assert FID == "fid"


def test_frechet_distance_equals_the_closed_form():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _spd(rng, d), _spd(rng, d)  # they do not commute
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=1e-9)
    # 1-D by hand: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal by hand
    assert frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.ones(2), np.diag([4.0, 16.0])) == pytest.approx(
        2.0 + (1 - 2) ** 2 + (2 - 4) ** 2)


def test_fid_of_samples_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(2)
    d = 3
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.25])
    s1, s2 = _spd(rng, d), _spd(rng, d)
    a = rng.multivariate_normal(mu1, s1, size=40_000)
    b = rng.multivariate_normal(mu2, s2, size=40_000)
    assert fid_from_features(a, b) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=0.03)


def test_statistics_are_float64_and_unbiased():
    f = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]], dtype=np.float32)
    mu, cov = feature_statistics(f)
    assert mu.dtype == np.float64 and np.allclose(mu, [2.0, 4.0])
    assert cov[0, 0] == pytest.approx(4.0)  # sum of squares 8 over N - 1 = 2


def test_singular_covariances_stay_finite():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(10, 64))  # N < D: rank-deficient covariances, singular product
    b = rng.normal(size=(10, 64)) + 0.5
    with pytest.warns(SmallSampleWarning):
        v = fid_from_features(a, b)
        same = fid_from_features(a, a)
    assert np.isfinite(v) and v > 0
    assert abs(same) < 1e-2


def test_a_large_imaginary_part_is_an_error(monkeypatch):
    sqrtm = linalg.sqrtm
    monkeypatch.setattr(fid_mod.linalg, "sqrtm", lambda m: sqrtm(m) + 0.5j * np.eye(len(m)))
    with pytest.raises(FewganError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))
    monkeypatch.setattr(fid_mod.linalg, "sqrtm", lambda m: sqrtm(m) + 1e-6j * np.eye(len(m)))
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)) == pytest.approx(0.0, abs=1e-9)


def test_svd_method_equals_sqrtm():
    rng = np.random.default_rng(4)
    for n, d in ((40, 64), (200, 8)):  # N < D (singular product) and N > D
        a = rng.random((n, d))
        b = rng.random((n + 7, d)) * 1.3 + 0.1
        with pytest.warns(SmallSampleWarning):
            ref = fid_from_features(a, b)
            fast = fid_from_features(a, b, method="svd")
        assert fast == pytest.approx(ref, rel=1e-6)
    with pytest.raises(FewganError, match="method"):
        fid_from_features(a, b, method="eig")


def test_bad_input():
    with pytest.raises(FewganError):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(FewganError):
        fid_from_features(np.zeros((5, 4)), np.zeros((5, 3)))
