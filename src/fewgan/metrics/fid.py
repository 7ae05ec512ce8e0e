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
           "trace_sqrt_product", "fid_from_features"]

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


def trace_sqrt_product(features1, features2) -> float:
    """``tr((S1 S2)^(1/2))`` exactly from the features, without a D x D matrix square root.

    With ``A`` and ``B`` the centred features divided by sqrt(N - 1) (so ``S1 = A^T A``,
    ``S2 = B^T B``), the non-zero eigenvalues of ``S1 S2`` are those of
    ``(A B^T)(A B^T)^T``, so the trace of the square root is the sum of the singular values
    (nuclear norm) of the ``[N1, N2]`` matrix ``A B^T``. Exact for any N; fast when N is below
    the feature dimension (500 x 2048: about a second, where ``sqrtm`` of the singular
    2048 x 2048 product takes a minute on 2 cores).
    """
    a = np.asarray(features1, dtype=np.float64)
    b = np.asarray(features2, dtype=np.float64)
    a = (a - a.mean(axis=0)) / np.sqrt(a.shape[0] - 1)
    b = (b - b.mean(axis=0)) / np.sqrt(b.shape[0] - 1)
    return float(np.linalg.svd(a @ b.T, compute_uv=False).sum())


def fid_from_features(features1, features2, eps: float = 1e-6, method: str = "sqrtm") -> float:
    """FID between two ``[N, D]`` feature sets (e.g. from :func:`fewgan.metrics.features.extract_features`).

    ``method="sqrtm"`` (default) is the reference computation (:func:`frechet_distance`);
    ``method="svd"`` computes the same number through :func:`trace_sqrt_product` (agrees to
    about 1e-7 relative; much faster when N < D, e.g. for FID during training).
    Warns (:class:`SmallSampleWarning`) when either set has fewer than 2048 rows.
    """
    if method not in ("sqrtm", "svd"):
        raise FewganError(f"FID method {method!r} is not 'sqrtm' or 'svd'")
    mu1, s1 = feature_statistics(features1)
    mu2, s2 = feature_statistics(features2)
    if mu1.shape != mu2.shape:
        raise FewganError(f"FID features differ in dimension: {mu1.size} and {mu2.size}")
    n = min(np.shape(features1)[0], np.shape(features2)[0])
    if n < MIN_RECOMMENDED_N:
        warnings.warn(f"FID on {n} < {MIN_RECOMMENDED_N} images is biased upwards and noisy; compare it only "
                      f"at equal N and trust KID more", SmallSampleWarning, stacklevel=2)
    if method == "svd":
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(features1, features2))
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)
