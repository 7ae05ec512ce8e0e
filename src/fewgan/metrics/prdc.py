"""Precision, recall, density and coverage of generated features (pure functions over arrays).

* Improved precision and recall: Kynkaanniemi, Karras, Laine, Lehtinen and Aila, "Improved
  Precision and Recall Metric for Assessing Generative Models", NeurIPS 2019
  (arXiv:1904.06991), k = 3. Each set's manifold is the union of balls around its points with
  radius the distance to the point's k-th nearest neighbour (the point itself excluded);
  precision is the share of fakes inside the real manifold, recall the share of reals inside the
  fake manifold; "inside" is ``distance <= radius`` as in the authors' code.
* Density and coverage: Naeem, Oh, Uh, Choi and Yoo, "Reliable Fidelity and Diversity Metrics
  for Generative Models", ICML 2020 (arXiv:2002.09797), k = 5, with the conventions of the
  authors' ``prdc`` code: strict ``<``, so that identical sets give density 1 (with ``<=`` they
  would give (k + 1) / k = 1.2). :func:`prdc` also returns that code's precision and recall
  (at its k, strict ``<``).

Distances are Euclidean, computed exactly in float64 in row blocks.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from fewgan.errors import FewganError

__all__ = ["PRECISION", "RECALL", "DENSITY", "COVERAGE", "kth_neighbour_radii", "precision_recall", "prdc"]

#: Result names.
PRECISION = "precision"
RECALL = "recall"
DENSITY = "density"
COVERAGE = "coverage"

_BLOCK = 2048


def _as_features(f, name: str) -> np.ndarray:
    a = np.asarray(f, dtype=np.float64)
    if a.ndim != 2:
        raise FewganError(f"{name} features must be [N, D], got shape {a.shape}")
    return a


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((a.shape[0], b.shape[0]))
    for s in range(0, a.shape[0], _BLOCK):
        out[s:s + _BLOCK] = cdist(a[s:s + _BLOCK], b)
    return out


def kth_neighbour_radii(features, k: int) -> np.ndarray:
    """``[N]`` distance of each row to its k-th nearest other row (the row itself excluded)."""
    f = _as_features(features, "the")
    if not 1 <= k < f.shape[0]:
        raise FewganError(f"k = {k} nearest neighbours need more than k images; got {f.shape[0]}: "
                          f"use more images or a smaller k")
    d = _pairwise(f, f)
    # index 0 of each sorted row is the point itself (distance 0), so the k-th neighbour is at k
    return np.partition(d, k, axis=1)[:, k]


def _check(real, fake, k):
    real = _as_features(real, "real")
    fake = _as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise FewganError(f"real and fake features differ in dimension: {real.shape[1]} and {fake.shape[1]}")
    if k < 1 or min(real.shape[0], fake.shape[0]) <= k:
        raise FewganError(f"precision/recall with k = {k} need more than {k} real and fake images; "
                          f"got {real.shape[0]} and {fake.shape[0]}")
    return real, fake


def precision_recall(real, fake, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` ``[M, D]`` against ``real`` ``[N, D]``.

    Returns ``{"precision": p, "recall": r}``, each in [0, 1]; identical sets give (1, 1).
    """
    real, fake = _check(real, fake, k)
    real_r = kth_neighbour_radii(real, k)
    fake_r = kth_neighbour_radii(fake, k)
    d = _pairwise(real, fake)  # [N, M]
    precision = (d <= real_r[:, None]).any(axis=0).mean()
    recall = (d <= fake_r[None, :]).any(axis=1).mean()
    return {PRECISION: float(precision), RECALL: float(recall)}


def prdc(real_features, fake_features, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with k nearest neighbours.

    Parameters
    ----------
    real_features : ``[N, D]``; fake_features : ``[M, D]``; k : neighbourhood size (5).

    Returns
    -------
    ``{"precision", "recall", "density", "coverage"}``: precision, recall and coverage in
    [0, 1]; density >= 0, about 1 when fakes are distributed like reals. Identical sets give
    (1, 1, 1, 1).
    """
    real, fake = _check(real_features, fake_features, k)
    real_r = kth_neighbour_radii(real, k)
    fake_r = kth_neighbour_radii(fake, k)
    d = _pairwise(real, fake)  # [N, M]
    inside = d < real_r[:, None]
    return {
        PRECISION: float(inside.any(axis=0).mean()),
        RECALL: float((d < fake_r[None, :]).any(axis=1).mean()),
        DENSITY: float(inside.sum(axis=0).mean() / k),
        COVERAGE: float((d.min(axis=1) < real_r).mean()),
    }
