"""Frechet Inception Distance from features (pure functions over arrays).

Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017 (arXiv:1706.08500). The numerics
follow the reference implementations (TTUR, pytorch-fid): float64 statistics, the matrix square
root by :func:`scipy.linalg.sqrtm`; when the product of the covariances is singular (the square
root is not finite), ``eps`` is added to both diagonals and the root taken again; an imaginary
part that numerical error leaves on the diagonal is dropped if it is below ``1e-3`` and
otherwise is an error. FID is biased upwards on small sets (Chong and Forsyth, "Effectively
Unbiased FID and Inception Score and where to find them", CVPR 2020): a warning is issued when
either set has fewer than 2048 feature vectors; on a few hundred images trust KID more.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from fewgan.errors import FewganError

__all__ = ["FID", "MIN_RECOMMENDED_N", "SmallSampleWarning", "feature_statistics", "frechet_distance",
           "fid_from_features"]

#: Result name of the metric.
FID = "fid"
#: Below this many feature vectors FID is noticeably biased (the feature dimension of pool3).
MIN_RECOMMENDED_N = 2048


class SmallSampleWarning(UserWarning):
    """A metric computed on fewer samples than it needs to be unbiased."""


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, N - 1) of ``[N, D]`` features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise FewganError(f"features must be [N, D], got shape {f.shape}")
    if f.shape[0] < 2:
        raise FewganError(f"FID needs at least 2 images per set, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, in float64.

    Parameters
    ----------
    mu1, mu2 : ``[D]`` means; sigma1, sigma2 : ``[D, D]`` covariances.
    eps : added to both diagonals if the product is singular (as the reference tools do).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise FewganError(f"FID statistics do not match: means {mu1.shape} and {mu2.shape}, "
                          f"covariances {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if imag > 1e-3:
            raise FewganError(f"FID: the matrix square root has an imaginary component {imag:.3g}; the feature "
                              f"sets are too small or degenerate for FID: use more images (or KID)")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(value)


def fid_from_features(features1, features2, eps: float = 1e-6) -> float:
    """FID between two ``[N, D]`` feature sets (e.g. from :func:`fewgan.metrics.features.extract_features`).

    Warns (:class:`SmallSampleWarning`) when either set has fewer than 2048 rows.
    """
    mu1, s1 = feature_statistics(features1)
    mu2, s2 = feature_statistics(features2)
    n = min(np.shape(features1)[0], np.shape(features2)[0])
    if n < MIN_RECOMMENDED_N:
        warnings.warn(f"FID on {n} < {MIN_RECOMMENDED_N} images is biased upwards and noisy; compare it only "
                      f"at equal N and trust KID more", SmallSampleWarning, stacklevel=2)
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)
