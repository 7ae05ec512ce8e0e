"""Downstream utility: a fixed seeded U-Net trained on labelled data, tested on held-out real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.data.synthetic import instance_labels, make_micrograph
from fewgan.errors import FewganError
from fewgan.metrics.utility import UNet, UtilityConfig, train_segmenter, utility


def pair(seed, size=64):
    image, truth = make_micrograph(seed=seed, size=(size, size), bit_depth=8, density=12.0, radius=4.0)
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None], instance_labels(truth).astype(np.int64)


def test_parameter_count_of_the_stated_architecture():
    # per level two 3x3 convs without bias + BatchNorm (2 per feature), then a 1x1 head with bias
    def level(cin, cout):
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout
    expected = level(1, 16) + level(16, 32) + level(32, 64) + level(96, 32) + level(48, 16) + 16 * 2 + 2
    assert expected == 118_322
    assert sum(p.numel() for p in UNet(1, 16).parameters()) == expected


def test_real_labels_teach_the_segmenter_and_junk_labels_do_not():
    real, test = [pair(1)], [pair(10), pair(11)]
    junk = [(torch.rand(1, 64, 64) * 2 - 1, lab) for _, lab in (pair(2), pair(3))]   # labels unrelated to images
    config = UtilityConfig(steps=40, batch=4, crop=32)
    result = utility(real, junk, test, config, sources=("real", "synthetic"))
    assert result["real"]["n_ref"] == sum(int(lab.max()) for _, lab in test) >= 8
    assert result["real"]["f1"] > 0.8 and result["real"]["mean_matched_iou"] > 0.6
    assert result["synthetic"]["f1"] < 0.3
    assert result["parameters"] == 118_322 and result["config"]["steps"] == 40


def test_training_is_repeatable_from_its_seed():
    config = UtilityConfig(steps=3, batch=2, crop=32, seed=5)
    a = train_segmenter([[pair(1)]], config, channels=1)
    b = train_segmenter([[pair(1)]], config, channels=1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(FewganError, match="no held-out"):
        utility([pair(1)], [pair(2)], [])
    with pytest.raises(FewganError, match="labels of shape"):
        utility([(torch.zeros(1, 32, 32), np.zeros((16, 16), int))], [pair(2)], [pair(3)], sources=("real",))
    with pytest.raises(FewganError, match="crop"):
        UtilityConfig(crop=30)
