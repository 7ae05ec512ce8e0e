"""``fewgan demo gpnn --tiny``: synth -> GPNN samples with labels -> evaluation -> a report of the sample folder
that says at which resolution and pixel size the baseline worked."""

from __future__ import annotations

import json
import math
import re

import tifffile

from fewgan.pipeline import GPNN_PRESETS, run_demo


def test_tiny_gpnn_demo_end_to_end(tmp_path):
    lines: list[str] = []
    report = run_demo("gpnn", tiny=True, out=tmp_path, seed=1, quiet=True, say=lines.append)
    folder = report.parent
    p = GPNN_PRESETS["tiny"]
    assert report.name == "report.html" and folder.name == "gpnn_tiny_seed1"
    samples = sorted(q for q in folder.glob("sample_*.tif") if not q.stem.endswith("_masks"))
    assert len(samples) == p.samples and all(q.with_name(q.stem + "_masks.tif").is_file() for q in samples)
    assert tifffile.imread(samples[0]).shape == (p.size, p.size)
    evaluation = json.loads((folder / "eval.json").read_text())
    swd = evaluation["metrics"]["swd"]
    assert math.isfinite(swd["value"]) and math.isfinite(swd["floor"]["value"]) and swd["value"] > 0
    assert "particles" in evaluation["metrics"] and "diversity" in evaluation["metrics"]
    assert (folder / "particles.json").is_file()
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", report.read_text())))
    assert "method gpnn" in page and "status finished" in page
    assert f"own resolution ({p.size} x {p.size} px, pixel size {p.pixel_size:g} um)" in page
    assert any(line.startswith("[4/4] report:") for line in lines)
