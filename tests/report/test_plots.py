"""Plots from metrics.jsonl records: written, valid PNGs, skipped when their data are missing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fewgan import run
from fewgan.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_side=100):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side
        # not a blank canvas: something was drawn
        assert np.asarray(im.convert("L")).std() > 5


def test_singan_plots_are_valid_pngs(tmp_path, fake):
    records = fake.singan_records(scales=5)
    written = plots.write_run_plots(tmp_path, records, method="singan")
    assert list(written) == ["singan_losses", "singan_amp", "singan_fidelity"]
    for path in written.values():
        assert path.parent == tmp_path / "plots"
        assert_png(path)
    assert not list((tmp_path / "plots").glob(".*tmp"))  # atomic writes leave no temporary files


def test_stylegan2_plots_are_valid_pngs(tmp_path, fake):
    written = plots.write_run_plots(tmp_path, fake.stylegan2_records(), method="stylegan2")
    assert list(written) == ["stylegan2_losses", "stylegan2_regularisers", "stylegan2_ada", "stylegan2_metric"]
    for path in written.values():
        assert_png(path)


def test_nothing_to_draw_writes_nothing_and_removes_stale_plots(tmp_path):
    (tmp_path / "plots").mkdir()
    stale = tmp_path / "plots" / "singan_losses.png"
    stale.write_bytes(b"old")
    assert plots.write_run_plots(tmp_path, [], method="singan") == {}
    assert not stale.exists()
    assert plots.plot_stylegan2_metric([{"kimg": 1.0, "loss_G": 1.0}], tmp_path / "m.png") is None
    assert plots.plot_particle_histograms({"diameter": ([], [])}, tmp_path / "p.png") is None


def test_killed_singan_run_still_plots_losses_and_amp(tmp_path, fake):
    # killed during s2: no scale_end record for s2, and a NaN loss at the end
    records = [r for r in fake.singan_records(scales=3) if not (r.get("event") == "scale_end" and r["scale"] == 2)]
    records[-1] = dict(records[-1], D=float("nan"))
    ends = plots.singan_scale_ends(records)
    assert [e["scale"] for e in ends] == [0, 1]
    written = plots.write_run_plots(tmp_path, records, method="singan")
    assert set(written) == {"singan_losses", "singan_amp", "singan_fidelity"}
    # no scale end at all: amp comes from the step records, fidelity has nothing to draw
    steps_only = [r for r in records if "event" not in r]
    written = plots.write_run_plots(tmp_path, steps_only, method="singan")
    assert set(written) == {"singan_losses", "singan_amp"}


def test_record_grouping(fake):
    records = fake.singan_records(scales=2, steps=20, every=10)
    # a resume re-logs s1's end: the last record wins
    records.append({"event": "scale_end", "scale": 1, "size": [24, 30], "amp": 0.5, "psnr": 30.0})
    by_scale = plots.singan_steps(records)
    assert sorted(by_scale) == [0, 1] and [r["step"] for r in by_scale[0]] == [0, 10, 20]
    assert plots.singan_scale_ends(records)[-1]["psnr"] == 30.0
    sg = fake.stylegan2_records(epochs=3)
    assert len(plots.stylegan2_steps(sg)) == 9 and len(plots.stylegan2_evals(sg)) == 3


def test_record_keys_documented(fake):
    # the keys the report reads are the ones of the common metrics.jsonl convention
    step = fake.singan_records(scales=1)[0]
    assert tuple(step) == run.SINGAN_STEP_KEYS
    sg = fake.stylegan2_records(epochs=1)
    assert tuple(sg[0]) == run.STYLEGAN2_STEP_KEYS
    assert tuple(sg[-1]) == run.STYLEGAN2_EVAL_KEYS


def test_particle_histograms(tmp_path):
    rng = np.random.default_rng(0)
    path = plots.plot_particle_histograms(
        {"diameter": (rng.normal(8, 1, 200), rng.normal(9, 1, 150)), "count": ([10, 12, 11], [9, 14])},
        tmp_path / "plots" / "particles.png", units={"diameter": "nm"})
    assert_png(path)


def test_smooth_is_a_running_mean():
    y = np.arange(10, dtype=float)
    s = plots._smooth(y, 3)
    assert s[1:-1] == pytest.approx(y[1:-1])  # a line is its own running mean
    assert s[0] == pytest.approx(0.5) and s[-1] == pytest.approx(8.5)  # edges average what exists
    assert json.dumps(list(s))  # plain floats


def test_a_plot_that_cannot_be_written_keeps_the_earlier_file(tmp_path, monkeypatch):
    """A full disk while redrawing: the report keeps the plot of the last report instead of deleting it."""
    import errno

    from fewgan.report import plots

    out = tmp_path / plots.PLOTS_DIR
    out.mkdir()
    old = out / "singan_losses.png"
    old.write_bytes(b"old plot")

    def full(records, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "plot_singan_losses", full)
    records = [{"scale": 0, "step": t, "D": 1.0, "G": 2.0} for t in range(3)]
    with pytest.warns(RuntimeWarning, match="No space left"):
        written = plots.write_run_plots(tmp_path, records=records, method="singan")
    assert old.read_bytes() == b"old plot" and written["singan_losses"] == old
