"""Instance matching: how well one set of object masks agrees with another.

The object-level scores of instance segmentation (as in Caicedo et al., "Evaluation of Deep
Learning Strategies for Nucleus Segmentation in Fluorescence Images", Cytometry A 95(9), 2019,
doi:10.1002/cyto.a.23863): every predicted object is paired with at most one reference object by
the Hungarian algorithm on their intersection over union (Kuhn, Naval Research Logistics Quarterly
2, 1955; ``scipy.optimize.linear_sum_assignment``); a pair counts as a true positive when its IoU is
at least ``iou_threshold`` (0.5, where a one-to-one matching is guaranteed anyway). Reported:
precision, recall and F1 over objects, the mean IoU of the matched pairs, and the relative count
error ``(n_pred - n_ref) / n_ref``.

:func:`label_consistency` applies it to images and their labels: fewgan's independent particle
analysis (:mod:`fewgan.metrics.particles`) detects objects in each image, and the detections are
matched to the image's labels. On real data with hand or exact labels this gives the reference; on
generated images with generated labels it says whether the labels describe the generated image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

F1 = "f1"
MEAN_IOU = "mean_matched_iou"


def iou_matrix(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """IoU of every pair ``[n_pred, n_ref]`` of two label images ``[H, W]`` (0 background, 1..n)."""
    pred = np.asarray(pred, np.int64)
    ref = np.asarray(ref, np.int64)
    if pred.shape != ref.shape:
        raise ValueError(f"label images differ in shape: {pred.shape} vs {ref.shape}")
    n_pred, n_ref = int(pred.max(initial=0)), int(ref.max(initial=0))
    joint = np.bincount((pred * (n_ref + 1) + ref).ravel(), minlength=(n_pred + 1) * (n_ref + 1))
    joint = joint.reshape(n_pred + 1, n_ref + 1).astype(np.float64)
    area_pred, area_ref = joint.sum(axis=1), joint.sum(axis=0)
    inter = joint[1:, 1:]
    union = area_pred[1:, None] + area_ref[None, 1:] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_counts(pred: np.ndarray, ref: np.ndarray, iou_threshold: float = 0.5) -> dict[str, Any]:
    """Hungarian matching of two label images; returns ``tp``, ``fp``, ``fn`` and the matched IoUs."""
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(pred, ref)
    n_pred, n_ref = iou.shape
    ious = np.zeros(0)
    if n_pred and n_ref:
        rows, cols = linear_sum_assignment(-iou)
        ious = iou[rows, cols]
        ious = ious[ious >= iou_threshold]
    tp = int(ious.size)
    return {"tp": tp, "fp": n_pred - tp, "fn": n_ref - tp, "n_pred": n_pred, "n_ref": n_ref, "ious": ious}


def scores(counts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pooled object scores from :func:`match_counts` of several images."""
    tp = sum(c["tp"] for c in counts)
    fp = sum(c["fp"] for c in counts)
    fn = sum(c["fn"] for c in counts)
    n_pred = sum(c["n_pred"] for c in counts)
    n_ref = sum(c["n_ref"] for c in counts)
    ious = np.concatenate([c["ious"] for c in counts]) if counts else np.zeros(0)
    precision = tp / (tp + fp) if tp + fp else (1.0 if n_ref == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0
    return {"precision": precision, "recall": recall, F1: f1,
            MEAN_IOU: float(ious.mean()) if ious.size else float("nan"),
            "relative_count_error": (n_pred - n_ref) / n_ref if n_ref else float("nan"),
            "tp": tp, "fp": fp, "fn": fn, "n_pred": n_pred, "n_ref": n_ref, "images": len(counts)}


def match_instances(pred: np.ndarray, ref: np.ndarray, iou_threshold: float = 0.5) -> dict[str, Any]:
    """Object scores of one predicted label image against a reference one (see the module docstring)."""
    return scores([match_counts(pred, ref, iou_threshold)])


def label_consistency(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[np.ndarray],
    config: Any = None,
    threshold: dict[str, Any] | None = None,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """How well labels agree with their images: particle detection on the images vs the labels.

    Parameters
    ----------
    images : ``[N, C, H, W]`` in [-1, 1].
    labels : N instance label images ``[H, W]`` (0 background, 1..n).
    config : :class:`fewgan.metrics.particles.ParticleConfig` of the detection.
    threshold : from :func:`fewgan.metrics.particles.find_threshold`; pass the real set's so that
        real and generated images are detected with the same rule (default: from these images).

    Returns
    -------
    dict : pooled scores (:func:`scores`) with ``f1`` and ``mean_matched_iou``, plus the
    threshold used.
    """
    from fewgan.metrics.particles import ParticleConfig, measure_set

    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} label images")
    config = config or ParticleConfig()
    detected = measure_set(images, config, threshold=threshold, keep_labels=True)
    counts = [match_counts(found, np.asarray(lab), iou_threshold) for found, lab in zip(detected["labels"], labels)]
    out = scores(counts)
    out["threshold"] = detected["threshold"]
    out["iou_threshold"] = iou_threshold
    return out
