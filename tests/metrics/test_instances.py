"""Instance matching: IoU by hand, Hungarian pairing, and label consistency on exact synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.data.synthetic import instance_labels, make_micrograph
from fewgan.metrics.instances import iou_matrix, label_consistency, match_instances


def test_iou_matrix_by_hand():
    ref = np.zeros((6, 8), int)
    ref[0:2, 0:2] = 1          # 4 px
    ref[3:6, 4:8] = 2          # 12 px
    pred = np.zeros((6, 8), int)
    pred[0:2, 0:3] = 1         # 6 px, 4 shared with ref 1 -> 4 / 6
    pred[3:6, 6:8] = 2         # 6 px inside ref 2 -> 6 / 12
    iou = iou_matrix(pred, ref)
    assert iou.shape == (2, 2)
    assert iou[0, 0] == pytest.approx(4 / 6) and iou[1, 1] == pytest.approx(0.5)
    assert iou[0, 1] == 0 and iou[1, 0] == 0


def test_scores_identity_missing_and_misplaced():
    ref = np.zeros((20, 40), int)
    for i, x in enumerate((2, 12, 22, 32), start=1):
        ref[5:12, x:x + 6] = i
    same = match_instances(ref.copy(), ref)
    assert same["f1"] == 1 and same["mean_matched_iou"] == 1 and same["relative_count_error"] == 0
    missing = np.where(ref == 4, 0, ref)
    m = match_instances(missing, ref)
    assert (m["tp"], m["fp"], m["fn"]) == (3, 0, 1) and m["f1"] == pytest.approx(6 / 7)
    assert m["relative_count_error"] == pytest.approx(-0.25)
    shifted = np.roll(ref, 4, axis=1)                 # each box overlaps its own by 2/10 px < 0.5
    s = match_instances(shifted, ref)
    assert s["tp"] == 0 and s["f1"] == 0


def test_label_consistency_is_high_for_exact_labels_and_low_for_wrong_ones():
    image, truth = make_micrograph(seed=3, size=(128, 128), bit_depth=8, density=8.0)
    labels = instance_labels(truth).astype(np.int64)
    x = torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None, None]
    good = label_consistency(x, [labels])
    assert good["n_ref"] == truth["count"] > 5
    assert good["f1"] > 0.9 and good["mean_matched_iou"] > 0.6
    wrong = label_consistency(x, [np.roll(labels, 9, axis=0)])
    assert wrong["f1"] < 0.3
    with pytest.raises(ValueError, match="1 images but 2"):
        label_consistency(x, [labels, labels])
