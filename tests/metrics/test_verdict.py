"""The verdict: thresholds in one place, plain lines, and the right verdict for copies, new images and noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.data.synthetic import make_micrograph
from fewgan.metrics import verdict
from fewgan.metrics.copying import single_image_copying


def test_fidelity_and_diversity_against_their_floors():
    assert verdict.fidelity(0.30, 0.31).level == "good"
    assert verdict.fidelity(0.70, 0.31).level == "warn"
    assert verdict.fidelity(1.50, 0.31).level == "bad"
    low = verdict.fidelity(0.0885, 0.3138)         # the demo's numbers: far below the floor
    assert low.level == "warn" and "copying" in low.text and "0.0885" in low.text
    assert verdict.fidelity(None, 0.3).level == "unknown"
    assert verdict.diversity(0.9, 1.0).level == "good"
    assert verdict.diversity(0.56, 0.96).level == "warn"
    assert verdict.diversity(0.20, 1.10).level == "bad"


def test_copying_lines_say_the_number_and_the_chance():
    line = verdict.layout_copying({"fraction": 0.23, "chance": 0.02, "objects": 120, "train_objects": 30,
                                   "radius": 2.0})
    assert line.level == "bad"
    assert str(line) == ("[BAD ] copying (layout): copies the training layout: 23 % of objects within 2 px of a "
                         "training object, chance 2 %")
    assert verdict.layout_copying({"fraction": 0.025, "chance": 0.02, "objects": 120, "train_objects": 30}).level == "good"
    few = verdict.layout_copying({"fraction": 0.5, "chance": 0.02, "objects": 6, "train_objects": 3})
    assert few.level == "unknown" and "too few" in few.text and "n = 6" in few.text
    assert verdict.patch_copying({"share": 0.9, "chance": 0.05}).level == "bad"
    assert verdict.patch_copying({"share": 0.06, "chance": 0.05}).level == "good"
    assert verdict.memorisation(0.3, 0.0).level == "bad"
    assert verdict.memorisation(0.02, 0.0).level == "good"


def test_labels_utility_and_small_samples():
    assert verdict.labels(0.93, 1.0).level == "good"
    assert verdict.labels(0.5, 1.0).level == "bad"
    util = {"real": {"f1": 0.80}, "synthetic": {"f1": 0.70}, "both": {"f1": 0.86}}
    line = verdict.utility(util)
    assert line.level == "good" and "real + synthetic F1 0.86" in line.text and "real only 0.80" in line.text
    assert verdict.utility({"real": {"f1": 0.8}, "synthetic": {"f1": 0.5}}).level == "bad"
    assert verdict.utility(None).level == "unknown"
    assert verdict.few_samples(1).level == "unknown" and verdict.few_samples(5) is None
    few = verdict.utility({"real": {"f1": 0.8, "n_ref": 7}, "synthetic": {"f1": 0.9}})
    assert few.level == "unknown" and "n = 7" in few.text
    assert verdict.few_objects(12, 300).level == "unknown" and "12 real" in verdict.few_objects(12, 300).text
    assert verdict.few_objects(20, 300) is None


def test_verdict_lines_from_a_result_take_only_the_metrics_that_ran():
    result = {"real": {"n": 1}, "metrics": {
        "swd": {"value": 0.1, "floor": {"value": 0.3}},
        "diversity": {"value": 0.5, "floor": {"skipped": "no floor"}},
        "memorisation": {"skipped": "needs 2 images"},
        "particles": {"particles": {"real": 40, "fake": 200}},
        "labels": {"generated": {"f1": 0.45}, "real": {"f1": 0.9}},
    }}
    lines = verdict.verdict_lines(result)
    assert [(l.question, l.level) for l in lines] == [
        ("fidelity", "warn"), ("diversity", "unknown"), ("labels", "bad"), ("statistics", "unknown")]
    assert "0.33x" in lines[0].text and "F1 0.45" in lines[2].text and "1 real image" in lines[3].text


def _image(seed, size=96):
    image, _ = make_micrograph(seed=seed, size=(size, size), bit_depth=8, density=14.0, radius=3.5)
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None]


@pytest.mark.slow
def test_copies_new_images_and_noise_get_their_verdicts():
    real = _image(1)
    copies = torch.stack([torch.roll(real, (dy, dx), (1, 2)) for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1))])
    new = torch.stack([_image(s) for s in (2, 3, 4, 5)])
    noise = torch.rand(4, 1, 96, 96) * 2 - 1

    c = single_image_copying(real, copies, other_real=_image(9))
    assert verdict.layout_copying(c["layout"]).level == "bad"
    assert verdict.patch_copying(c["patches"]).level == "bad"
    assert c["layout"]["real_fraction"] < 3 * c["layout"]["chance"] + 0.05

    n = single_image_copying(real, new)
    assert verdict.layout_copying(n["layout"]).level == "good", n["layout"]
    assert verdict.patch_copying(n["patches"]).level == "good", n["patches"]

    z = single_image_copying(real, noise)
    assert verdict.patch_copying(z["patches"]).level == "good"
    assert verdict.layout_copying(z["layout"]).level != "bad"
