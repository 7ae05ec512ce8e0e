"""``fewgan demo --tiny`` end to end, and metrics.jsonl of a real (tiny) SinGAN run."""

from __future__ import annotations

import html
import json
import os
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
    if os.environ.get("PYTHONPATH"):  # the tree under test, when it is put first on the path
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
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
    _check_labels_and_export(run, tmp_path, proc.stdout)
    # the report: every section, every plot embedded as a data: URI
    page = _Images()
    text = report.read_text(encoding="utf-8")
    page.feed(text)
    assert page.sections == ["verdict", "summary", "results", "evaluation", "labels", "figures", "samples", "timings",
                             "config", "environment", "log"]
    assert page.srcs and all(s.startswith("data:image/") for s in page.srcs)
    _check_report_labels_and_verdict(text, evaluation)
    plots = {p.stem for p in (run / "plots").glob("*.png")}
    assert plots == {"singan_losses", "singan_amp", "singan_fidelity", "particles"}
    assert seconds < 120, f"tiny demo took {seconds:.0f} s"


def _check_labels_and_export(run, tmp_path, stdout: str) -> None:
    """The tiny demo trained with the synth micrograph's labels and wrote one export that reads back."""
    import numpy as np
    import tifffile
    from pycocotools.coco import COCO

    from fewgan.data.labels import read_labels
    from fewgan.pipeline import DEMO_SAMPLES_DIR

    config = json.loads((run / "config.json").read_text())
    assert config["config"]["labels"] == "beside"
    truth = next((tmp_path / "demo_data").rglob("micrograph_masks.tif"))
    assert config["labels"]["source"] == str(truth.resolve())
    # the run's training labels: at 32 px nothing is resized, so they are the synth labels exactly
    trained = tifffile.imread(run / "training_masks.tif")
    assert trained.dtype == np.uint16
    np.testing.assert_array_equal(trained, read_labels(truth))
    samples = run / DEMO_SAMPLES_DIR
    assert f"export for detectors in {samples}" in stdout
    images = sorted(samples.glob("sample_*[0-9].png"))
    assert len(images) == 4
    counts = []
    for image in images:  # Cellpose: uint16 instance images beside every sample
        masks = tifffile.imread(image.with_name(image.stem + "_masks.tif"))
        assert masks.dtype == np.uint16 and masks.shape == (32, 32)
        counts.append(len(np.unique(masks[masks > 0])))
    coco = COCO(str(samples / "coco.json"))  # pycocotools reads it; one annotation per instance
    assert sorted(img["file_name"] for img in coco.dataset["images"]) == [p.name for p in images]
    assert len(coco.getAnnIds()) == sum(counts)
    dataset = (samples / "yolo" / "dataset.yaml").read_text().splitlines()
    assert "train: images" in dataset and "  0: particle" in dataset
    boxes = [(samples / "yolo" / "labels" / f"{p.stem}.txt").read_text().splitlines() for p in images]
    assert [len(b) for b in boxes] == counts  # one box line per instance
    assert all(len(line.split()) == 5 and line.split()[0] == "0" for b in boxes for line in b)


def _check_report_labels_and_verdict(text: str, evaluation: dict) -> None:
    """The report's labels section shows outlined real and generated images with counts; the verdict is on top."""
    labels = text[text.index('<section id="labels">'):text.index('<section id="figures">')]
    assert "Real images and their labels" in labels and "Generated images and their labels" in labels
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", labels)
    assert any(c.startswith("training image micrograph.png") for c in captions)
    assert sum(c.startswith("samples_demo/sample_") for c in captions) == 4
    assert all(re.search(r"; \d+ instances?$|: \d+ instances?$", c) for c in captions), captions
    verdict = text[text.index('<section id="verdict">'):text.index('<section id="summary">')]
    if "verdict" in evaluation:  # the evaluation's verdict lines, each shown
        assert evaluation["verdict"] and all(html.escape(line["text"]) in verdict for line in evaluation["verdict"])
    else:
        assert "holds no verdict" in verdict
    assert "_masks.tif" not in text[text.index('<section id="samples">'):text.index('<section id="timings">')]


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
    from fewgan.report.html import SECTIONS

    assert page.sections == list(SECTIONS) and all(s.startswith("data:image/") for s in page.srcs)
    evaluation = json.loads((run / "eval.json").read_text())
    assert {"swd", "particles", "memorisation"} <= set(evaluation["metrics"])
    # trained with the synth folder's labels; the samples carry theirs, exported for detectors
    assert json.loads((run / "config.json").read_text())["config"]["labels"] == "beside"
    samples = sorted((run / "samples_demo").glob("*.png"))
    masks = sorted((run / "samples_demo").glob("*_masks.tif"))
    assert len(samples) == len(masks) == 16
    assert len(json.loads((run / "samples_demo" / "coco.json").read_text())["images"]) == 16
    assert (run / "samples_demo" / "yolo" / "dataset.yaml").is_file()
    text = report.read_text(encoding="utf-8")
    labels = text[text.index('<section id="labels">'):text.index('<section id="figures">')]
    assert "Real images and their labels" in labels and "Generated images and their labels" in labels
    steps = [r for r in read_metrics(run) if "event" not in r]
    assert steps and all({"kimg", "epoch", "step", "loss_G", "loss_D", "r1", "pl", "ada_p", "lr", "seconds"} <= set(r)
                         for r in steps)
