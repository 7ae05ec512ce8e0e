"""bench/label_collapse.py: the diagnostics it patches in do what bench/README.md says, and an arm's record.

What could fail: the smooth encoding could move the decoded foreground (then its arm would train on other
labels); an arm could start from today's label levers instead of the fourth attempt's linear head and single
critic, or ``twod`` / ``squash`` could fail to switch them on; a run without labels could be measured with
label fields, or a continuation could drop the arm's earlier points. The patches change fewgan modules for
the process, so every test here registers the originals with ``monkeypatch`` first and they come back
afterwards. (The levers themselves are tested in tests/stylegan2/.)
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def _disks():
    labels = np.zeros((32, 32), np.int32)
    yy, xx = np.mgrid[:32, :32]
    for i, (cy, cx, r) in enumerate([(8, 8, 4), (20, 22, 5), (25, 6, 3)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    labels[15:18, 10:14] = 4  # a small rectangle
    return labels


def test_smooth_encoding_keeps_the_decoded_foreground_and_is_not_binary(monkeypatch, bench_script):
    import fewgan.data.labels as L

    monkeypatch.setattr(L, "encode_instances", L.encode_instances)
    original = L.encode_instances(_disks())
    bench_script("label_collapse").patch_smooth(1.5)
    smooth = L.encode_instances(_disks())
    assert L.encode_instances is not original
    np.testing.assert_array_equal(smooth[0] > 0, _disks() > 0)
    np.testing.assert_array_equal(smooth[1], original[1])  # the distance channel is untouched
    assert set(np.unique(original[0])) == {-1.0, 1.0}
    assert (np.abs(smooth[0]) < 0.9).sum() > 40  # graded along every boundary, not +-1
    np.testing.assert_array_equal(L.decode_instances(smooth) > 0, L.decode_instances(original) > 0)


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
    run("levers", "0.016", "cbase=64", "cmax=16", "batch=8", "twod=1", "squash=1")
    record = json.loads(out.read_text())

    def stored(arm):
        (folder,) = (tmp_path / arm).iterdir()
        config = json.loads((folder / "config.json").read_text())["config"]
        return config["label_head"], config["image_critic"]

    assert stored("lab") == ("linear", False) and stored("levers") == ("tanh", True)
    assert record["nolab"]["real_img_iou"] == record["lab"]["real_img_iou"]
    assert 0.0 < record["nolab"]["real_img_iou"] < 0.5   # real crops: different layouts
    (point,) = record["nolab"]["points"]
    assert "lab_iou" not in point["G"] and "f1" not in point["G"]
    assert [p["kimg"] for p in record["lab"]["points"]] == [0.016, 0.032]
    assert {"img_iou", "lab_iou", "f1", "n_det"} <= set(record["lab"]["points"][1]["G_ema"])
