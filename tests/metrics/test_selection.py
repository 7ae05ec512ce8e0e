"""The selection metric the API hands the StyleGAN2 trainer: FID with Inception weights, else SWD."""

from __future__ import annotations

import pytest
import torch

from fewgan.metrics.selection import selection_metric


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 16, 16, generator=g) * 2 - 1


def test_selection_metric_fid_when_weights_exist_else_swd(monkeypatch, images):
    from fewgan.metrics import features as feat

    real = images.repeat(4, 1, 1, 1)

    def missing(*a, **k):
        raise feat.WeightsMissing("no Inception weights in /nowhere: put them there")

    monkeypatch.setattr(feat, "find_weights", missing)
    name, fn, why = selection_metric(real, "auto")
    assert name == "swd" and "not installed" in why
    assert fn(real) == pytest.approx(0.0, abs=1e-6)  # identical sets
    with pytest.raises(feat.WeightsMissing):
        selection_metric(real, "fid")
    # with weights: FID of the features the extractor returns (a stand-in extractor here)
    monkeypatch.setattr(feat, "find_weights", lambda *a, **k: "/weights.pth")
    calls = []

    def fake_extract(x, *, window, batch_size, device, weights, progress):
        calls.append((x.shape[0], window, batch_size, weights))
        return x.flatten(2).mean(2).repeat(1, 3).double().numpy() + np.arange(3)[None].repeat(x.shape[1], 1)

    import numpy as np

    monkeypatch.setattr(feat, "extract_features", fake_extract)
    name, fn, why = selection_metric(real, "auto", feature_batch=50, dtype="uint16")
    assert name == "fid" and calls[0][2] == 50 and calls[0][3] == "/weights.pth"
    assert fn(real) == pytest.approx(0.0, abs=1e-4)
    assert fn(real + 0.5) > 0.2  # a mean shift of 0.5 in every feature: FID >= 3 * 0.25
