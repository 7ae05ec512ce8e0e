"""Memorisation: does the generator copy its training images?

A GAN trained on tens or hundreds of images can reproduce some of them almost exactly
(Webster, Rabin, Simon and Jurie, "Detecting Overfitting of Deep Generative Networks via Latent
Recovery", CVPR 2019; Meehan, Chaudhuri and Dasgupta, "A Non-Parametric Test to Detect
Data-Copying in Generative Models", AISTATS 2020). The test here is the nearest-neighbour
distance ratio:

* for every generated image ``g`` its nearest training image ``t(g)`` and the distance
  ``d(g) = ||g - t(g)||`` (Euclidean, in pixel space and, where Inception features exist, in
  feature space);
* for every training image ``t`` the distance ``d_train(t)`` to its nearest *other* training image
  (leave-one-out);
* the ratio ``rho(g) = d(g) / d_train(t(g))``.

A fresh sample from the training distribution lies, in distribution, as far from its nearest
training image as a training image lies from its nearest neighbour, so ``rho`` is about 1 (in
high dimension nearest-neighbour distances concentrate, and ``rho`` rarely leaves 0.7-1.3).
A copy of ``t`` plus small changes has ``rho`` near 0. A generated image is a **near-copy** when
``rho < 0.5`` (the default ``threshold``): it is more than twice as close to a training image as
any training image is to its own nearest neighbour, which fresh samples practically never are,
while copies with visible noise or small shifts still fall below it. The share of near-copies,
the ratios and the index pairs (generated, training) are returned so that a report can show the
closest pairs side by side. The floor (two halves of the real set, see
:func:`fewgan.metrics.evaluate.evaluate`) shows the ratio distribution of fresh real images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fewgan.errors import FewganError

NEAR_COPY_THRESHOLD = 0.5
_EPS = 1e-12


def _flatten(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim < 2 or t.shape[0] == 0:
        raise FewganError(f"memorisation: {name} needs at least one item, got shape {tuple(t.shape)}")
    return t.reshape(t.shape[0], -1).double()


def nearest_neighbours(query: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray, *,
                       exclude_self: bool = False, exclude=None,
                       pairs: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean nearest neighbour in ``reference [N, ...]`` of every row of ``query [M, ...]``.

    With ``exclude_self`` (query is reference) the point itself is skipped (leave-one-out);
    ``exclude(start, stop, r_start, r_stop)`` -> bool ``[stop - start, r_stop - r_start]`` skips any
    other pairs of those queries and references (e.g. overlapping patches). Exact, in float64,
    ``|q|^2 - 2 q.r + |r|^2`` in blocks of at most ``pairs`` distances: all references at once when
    they are few; against millions of references (every patch of a 2048 px image) blocks of up to
    1024 queries x ``pairs / 1024`` references, so that each block is a matrix product rather than a
    pass over the whole reference set for a handful of queries (memory-bound: minutes at 2048 px).
    The first of equal nearest distances wins, as in one block. Returns ``(distance [M], index [M])``;
    a row with every pair excluded gets inf.
    The one nearest-neighbour primitive of the evaluation (memorisation here, patch copying in
    :mod:`fewgan.metrics.copying`); GPNN's search (:mod:`fewgan.gpnn`) is its own, float32 and weighted.
    """
    q = _flatten(query, "query")
    r = _flatten(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise FewganError(
            f"memorisation: generated items have {q.shape[1]} values, training items {r.shape[1]}; "
            "they must have the same size and channel count"
        )
    if exclude_self and r.shape[0] < 2:
        raise FewganError("memorisation: needs at least 2 training images (the nearest-neighbour distance among them)")
    r_sq = (r * r).sum(dim=1)
    n_ref = r.shape[0]
    dist = np.empty(q.shape[0])
    index = np.empty(q.shape[0], dtype=np.int64)
    if n_ref * min(q.shape[0], 1024) <= pairs:  # few references: every one in each block of queries
        q_chunk, r_chunk = max(1, pairs // max(1, n_ref)), max(1, n_ref)
    else:
        q_chunk = min(q.shape[0], 1024)
        r_chunk = max(1, pairs // q_chunk)
    for start in range(0, q.shape[0], q_chunk):
        block = q[start:start + q_chunk]
        stop = start + block.shape[0]
        b_sq = (block * block).sum(dim=1, keepdim=True)
        best_d = torch.full((block.shape[0],), float("inf"), dtype=torch.float64)
        best_i = torch.zeros(block.shape[0], dtype=torch.int64)
        for r_start in range(0, n_ref, r_chunk):
            r_stop = min(n_ref, r_start + r_chunk)
            d2 = b_sq + r_sq[None, r_start:r_stop] - 2.0 * block @ r[r_start:r_stop].T
            if exclude_self:
                rows = torch.arange(block.shape[0])
                cols = rows + start - r_start
                inside = (cols >= 0) & (cols < r_stop - r_start)
                d2[rows[inside], cols[inside]] = float("inf")
            if exclude is not None:
                d2.masked_fill_(exclude(start, stop, r_start, r_stop), float("inf"))
            here = d2.min(dim=1)
            better = here.values < best_d  # strictly: an earlier block keeps its tie
            best_d = torch.where(better, here.values, best_d)
            best_i = torch.where(better, here.indices + r_start, best_i)
        dist[start:stop] = best_d.clamp_min(0.0).sqrt().numpy()
        index[start:stop] = best_i.numpy()
    return dist, index


def copy_ratios(train: torch.Tensor | np.ndarray, generated: torch.Tensor | np.ndarray, *,
                threshold: float = NEAR_COPY_THRESHOLD, top: int = 16) -> dict[str, Any]:
    """Nearest-neighbour distance ratios of ``generated`` against ``train`` in one space.

    Parameters
    ----------
    train : ``[N, ...]`` training items (images ``[N, C, H, W]`` in [-1, 1], or features ``[N, D]``).
    generated : ``[M, ...]`` of the same per-item shape.
    threshold : ratio below which a generated item counts as a near-copy.
    top : how many of the closest (lowest-ratio) pairs to list.

    Returns
    -------
    dict with per generated item ``nearest`` (training index), ``distance``, ``ratio``; the
    training ``train_nn_distance`` (leave-one-out); ``near_copy_share`` (fraction with ratio <
    threshold), ``near_copies`` (generated indices), ``closest_pairs`` (list of
    ``[generated, training, ratio]``, lowest ratio first), ``median_ratio`` and
    ``train_duplicates`` (training images at distance 0 from another one).
    """
    train_dist, _ = nearest_neighbours(train, train, exclude_self=True)
    dist, nearest = nearest_neighbours(generated, train)
    denominator = train_dist[nearest]
    ratio = dist / np.maximum(denominator, _EPS)
    near = np.flatnonzero(ratio < threshold)
    order = np.argsort(ratio, kind="stable")[:top]
    return {
        "threshold": float(threshold),
        "near_copy_share": float(len(near) / len(ratio)),
        "near_copies": near.tolist(),
        "median_ratio": float(np.median(ratio)),
        "min_ratio": float(np.min(ratio)),
        "closest_pairs": [[int(i), int(nearest[i]), float(ratio[i])] for i in order],
        "nearest": nearest.tolist(),
        "distance": dist.tolist(),
        "ratio": ratio.tolist(),
        "train_nn_distance": train_dist.tolist(),
        "train_duplicates": int(np.sum(train_dist <= _EPS)),
        "n_train": int(len(train_dist)),
        "n_generated": int(len(ratio)),
    }


def memorisation(train: torch.Tensor | np.ndarray, generated: torch.Tensor | np.ndarray, *,
                 train_features: np.ndarray | None = None, generated_features: np.ndarray | None = None,
                 threshold: float = NEAR_COPY_THRESHOLD, top: int = 16) -> dict[str, Any]:
    """Near-copy test in pixel space and, where features are given, in feature space.

    Parameters
    ----------
    train, generated : images ``[N, C, H, W]`` and ``[M, C, H, W]`` in [-1, 1] of one size.
    train_features, generated_features : optional ``[N, D]`` / ``[M, D]`` features (Inception
        pool features from :mod:`fewgan.metrics.features`); without them the result says the
        test is pixel-only.
    threshold : near-copy ratio threshold (default 0.5, justified in the module docstring).

    Returns ``{'pixel': copy_ratios(...), 'feature': copy_ratios(...) or None, 'spaces': [...],
    'near_copy_share': max over the spaces, 'note': ...}``.
    """
    if isinstance(train, torch.Tensor) and isinstance(generated, torch.Tensor) and train.shape[1:] != generated.shape[1:]:
        raise FewganError(
            f"memorisation: generated images are {tuple(generated.shape[1:])} (C, H, W) but training images "
            f"{tuple(train.shape[1:])}; compare images of one size"
        )
    out: dict[str, Any] = {"pixel": copy_ratios(train, generated, threshold=threshold, top=top)}
    if train_features is not None and generated_features is not None:
        out["feature"] = copy_ratios(train_features, generated_features, threshold=threshold, top=top)
        out["spaces"] = ["pixel", "feature"]
        out["note"] = "pixel space and Inception feature space"
    else:
        out["feature"] = None
        out["spaces"] = ["pixel"]
        out["note"] = "pixel space only (no Inception weights: feature-space test skipped)"
    out["threshold"] = float(threshold)
    out["near_copy_share"] = max(out[s]["near_copy_share"] for s in out["spaces"])
    return out
