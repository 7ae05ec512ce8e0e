"""``fewgan demo --tiny`` end to end, and metrics.jsonl of a real (tiny) SinGAN run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

from fewgan.run import SINGAN_SCALE_END_KEYS, SINGAN_STEP_KEYS
from fewgan.run import read_metrics

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.srcs.append(attrs.get("src", ""))


def test_tiny_singan_demo_end_to_end(tmp_path):
    """The README's first command in tiny mode, as a user runs it (a subprocess, output to a pipe)."""
    env = {"FEWGAN_DEMO_TINY": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fewgan", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    report = tmp_path / lines[-1].strip()  # the report's path is printed last
    if not report.is_file():
        from pathlib import Path

        report = Path(lines[-1].strip())
    assert report.name == "report.html" and report.is_file()
    run = report.parent
    # not a terminal: plain progress lines, no bar control characters anywhere
    assert not CONTROL.search(proc.stdout) and not CONTROL.search(proc.stderr)
    assert re.search(r"singan: \d+/\d+ steps \(100%\)", proc.stderr)
    assert "[4/5] evaluating" in proc.stdout and "[5/5] report" in proc.stdout
    # every logged step has every field of the convention; every scale end too
    records = read_metrics(run)
    steps = [r for r in records if "event" not in r]
    ends = [r for r in records if r.get("event") == "scale_end"]
    n_scales = len(json.loads((run / "config.json").read_text())["pyramid"]["sizes"])
    assert len(ends) == n_scales >= 2
    steps_per_scale = 12 + 1  # tiny preset: steps 0..12, logged every 4 and at the last step
    assert len(steps) == n_scales * len(range(0, steps_per_scale, 4)) + n_scales * (12 % 4 != 0)
    for r in steps:
        assert set(SINGAN_STEP_KEYS) <= set(r), r
        assert all(isinstance(r[k], (int, float)) for k in SINGAN_STEP_KEYS)
    for r in ends:
        assert set(SINGAN_SCALE_END_KEYS) <= set(r), r
    # TensorBoard: the same loss scalars per scale, and images (written because tensorboard is installed)
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    tags = events.Tags()
    assert {f"s{k}/{key}" for k in range(n_scales) for key in ("D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv")} \
        <= set(tags["scalars"])
    assert len(events.Scalars("s0/D")) == len([r for r in steps if r["scale"] == 0])
    assert events.Scalars("s0/D")[-1].value == pytest.approx([r for r in steps if r["scale"] == 0][-1]["D"], rel=1e-6)
    assert tags["images"]
    # samples at the original size and at 1.5 x the field of view; evaluation; particle values
    from PIL import Image

    with Image.open(next((run / "samples_demo").glob("sample_*.png"))) as a, \
            Image.open(next((run / "samples_demo_x1.5").glob("sample_*.png"))) as b:
        assert b.size == (48, 48) and a.size == (32, 32)
    evaluation = json.loads((run / "eval.json").read_text())
    assert {"swd", "particles", "diversity"} <= set(evaluation["metrics"])
    assert (run / "particles.json").is_file()
    # the report: every section, every plot embedded as a data: URI
    page = _Images()
    page.feed(report.read_text(encoding="utf-8"))
    assert page.sections == ["summary", "results", "evaluation", "figures", "samples", "timings", "config",
                             "environment", "log"]
    assert page.srcs and all(s.startswith("data:image/") for s in page.srcs)
    plots = {p.stem for p in (run / "plots").glob("*.png")}
    assert plots == {"singan_losses", "singan_amp", "singan_fidelity", "particles"}
    assert seconds < 120, f"tiny demo took {seconds:.0f} s"


def test_demo_rejects_unknown_kind_and_bad_out(tmp_path):
    from fewgan.cli import main
    from fewgan.errors import FewganError
    from fewgan.pipeline import run_demo

    with pytest.raises(FewganError, match="unknown demo"):
        run_demo("vae", tiny=True, out=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FewganError, match="not a folder"):
        run_demo("singan", tiny=True, out=tmp_path / "file")
    with pytest.raises(FewganError, match="--threads 0"):
        run_demo("singan", tiny=True, out=tmp_path, threads=0)
    assert main(["demo", "vae"]) == 2


def test_tiny_from_env(monkeypatch):
    from fewgan.pipeline import tiny_from_env

    monkeypatch.setenv("FEWGAN_DEMO_TINY", "1")
    assert tiny_from_env()
    monkeypatch.setenv("FEWGAN_DEMO_TINY", "0")
    assert not tiny_from_env()
    monkeypatch.delenv("FEWGAN_DEMO_TINY")
    assert not tiny_from_env()


@pytest.mark.slow
def test_tiny_stylegan2_demo_end_to_end(tmp_path, capsys):
    """``fewgan demo stylegan2 --tiny`` in process: report with StyleGAN2 plots, evaluation, samples."""
    from fewgan.cli import main

    assert main(["demo", "stylegan2", "--tiny", "--quiet", "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    from pathlib import Path

    report = Path(out[-1])
    assert report.name == "report.html" and report.is_file()
    run = report.parent
    plots = {p.stem for p in (run / "plots").glob("*.png")}
    assert {"stylegan2_losses", "stylegan2_regularisers", "stylegan2_ada", "stylegan2_metric", "particles"} <= plots
    page = _Images()
    page.feed(report.read_text(encoding="utf-8"))
    assert len(page.sections) == 9 and all(s.startswith("data:image/") for s in page.srcs)
    evaluation = json.loads((run / "eval.json").read_text())
    assert {"swd", "particles", "memorisation"} <= set(evaluation["metrics"])
    steps = [r for r in read_metrics(run) if "event" not in r]
    assert steps and all({"kimg", "epoch", "step", "loss_G", "loss_D", "r1", "pl", "ada_p", "lr", "seconds"} <= set(r)
                         for r in steps)
