"""bench/label_collapse.py: the diagnostics it patches in do what bench/README.md says, and an arm's record.

What could fail: the smooth encoding could move the decoded foreground (then its arm would train on other
labels); the second critic could see the label channels (then it is not an image-only critic); the tanh could
touch the image channels; a run without labels could be measured with label fields, or a continuation could
drop the arm's earlier points. The patches change fewgan modules for the process, so every test here registers
the originals with ``monkeypatch`` first and they come back afterwards.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def _script():
    spec = importlib.util.spec_from_file_location("bench_label_collapse", BENCH / "label_collapse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _disks():
    labels = np.zeros((32, 32), np.int32)
    yy, xx = np.mgrid[:32, :32]
    for i, (cy, cx, r) in enumerate([(8, 8, 4), (20, 22, 5), (25, 6, 3)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    labels[15:18, 10:14] = 4  # a small rectangle
    return labels


def test_smooth_encoding_keeps_the_decoded_foreground_and_is_not_binary(monkeypatch):
    import fewgan.data.labels as L

    monkeypatch.setattr(L, "encode_instances", L.encode_instances)
    original = L.encode_instances(_disks())
    _script().patch_smooth(1.5)
    smooth = L.encode_instances(_disks())
    assert L.encode_instances is not original
    np.testing.assert_array_equal(smooth[0] > 0, _disks() > 0)
    np.testing.assert_array_equal(smooth[1], original[1])  # the distance channel is untouched
    assert set(np.unique(original[0])) == {-1.0, 1.0}
    assert (np.abs(smooth[0]) < 0.9).sum() > 40  # graded along every boundary, not +-1
    np.testing.assert_array_equal(L.decode_instances(smooth) > 0, L.decode_instances(original) > 0)


def test_two_critics_give_one_logit_each_and_the_second_sees_only_the_image(monkeypatch):
    from fewgan.stylegan2 import train as t
    from fewgan.stylegan2.config import StyleGAN2Config

    monkeypatch.setattr(t, "build_networks", t.build_networks)
    _script().patch_two_critics()
    cfg = StyleGAN2Config(resolution=8, labels="beside", cbase=64, cmax=16)
    torch.manual_seed(0)
    _, D = t.build_networks(cfg, 1 + cfg.label_channels)
    x = torch.randn(4, 3, 8, 8)
    y = x.clone()
    y[:, 1:] = torch.randn(4, 2, 8, 8)  # other label channels, same image
    a, b = D(x), D(y)
    assert a.shape == (4, 2)
    torch.testing.assert_close(a[:, 1], b[:, 1])       # the image critic ignores the labels
    assert not torch.allclose(a[:, 0], b[:, 0])        # the joint critic sees them


def test_squash_bounds_the_label_channels_only(monkeypatch):
    from fewgan.stylegan2 import nets as n

    monkeypatch.setattr(n.SynthesisNetwork, "forward", n.SynthesisNetwork.forward)
    torch.manual_seed(0)
    G = n.Generator(z_dim=8, w_dim=8, resolution=8, img_channels=3, mapping_layers=1, cbase=64, cmax=16)
    with torch.no_grad():
        for b in G.synthesis.blocks:
            b.torgb.bias[1:] += 0.5  # label outputs outside [-1, 1] before the squash
        z = torch.randn(4, 8)
        before = G(z, noise_mode="const")
        _script().patch_squash()
        after = G(z, noise_mode="const")
    torch.testing.assert_close(after[:, :1], before[:, :1])
    torch.testing.assert_close(after[:, 1:], torch.tanh(before[:, 1:]))
    assert before[:, 1:].abs().max() > 1.0 and after[:, 1:].abs().max() < before[:, 1:].abs().max()


@pytest.mark.slow
def test_an_arm_with_and_without_labels_and_a_continuation(tmp_path):
    out = tmp_path / "collapse.json"

    def run(*args):
        cmd = [sys.executable, str(BENCH / "label_collapse.py"), *args, "--work", str(tmp_path), "--json", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)

    run("nolab", "0.016", "labels=none", "cbase=64", "cmax=16")
    run("lab", "0.016", "cbase=64", "cmax=16", "batch=8")
    runs = sorted((tmp_path / "lab").iterdir())
    run("lab", "0.032", "cbase=64", "cmax=16", "batch=8", "--resume", str(runs[0]))
    record = json.loads(out.read_text())
    assert record["nolab"]["real_img_iou"] == record["lab"]["real_img_iou"]
    assert 0.0 < record["nolab"]["real_img_iou"] < 0.5   # real crops: different layouts
    (point,) = record["nolab"]["points"]
    assert "lab_iou" not in point["G"] and "f1" not in point["G"]
    assert [p["kimg"] for p in record["lab"]["points"]] == [0.016, 0.032]
    assert {"img_iou", "lab_iou", "f1", "n_det"} <= set(record["lab"]["points"][1]["G_ema"])
