"""Sampling (sizes, aspect, seeds vs batch, injection) and the CLI's one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fewgan.cli import main
from fewgan.errors import FewganError
from fewgan.singan.sample import SinGANModel, parse_scale, parse_size, sample_to_folder

from .conftest import blobs, write_png


def test_same_images_whatever_the_batch(tiny_run):
    model = SinGANModel.load(tiny_run)
    a = model.sample(5, seed=7, batch=2)
    b = model.sample(5, seed=7, batch=5)
    c = model.sample(3, seed=7, batch=1)
    assert a.shape == (5, 24, 22, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a[:3], c)
    assert not np.array_equal(a[0], a[1])                      # images differ from each other
    assert not np.array_equal(a, model.sample(5, seed=8))      # and between seeds


def test_other_sizes_and_aspects(tiny_run):
    model = SinGANModel.load(tiny_run)
    assert model.sample(2, scale="1x2").shape == (2, 24, 44, 3)
    assert model.sample(1, scale=1.5).shape == (1, 36, 33, 3)
    assert model.sample(1, size="30x50").shape == (1, 30, 50, 3)
    t = model.sample_tensor(2, seed=0, scale="2x1")
    assert t.shape == (2, 3, 48, 22) and t.min() >= -1 and t.max() <= 1
    with pytest.raises(FewganError):
        model.sample(1, size="30x50", scale=2)


def test_start_scale_injects_the_real_image(tiny_run):
    model = SinGANModel.load(tiny_run)
    n = model.num_scales
    real = model.reals[-1].clamp(-1, 1)
    close = model.sample_tensor(4, seed=0, start_scale=n - 1)
    free = model.sample_tensor(4, seed=0)
    assert close.shape == free.shape
    # injecting at the finest scale keeps the samples nearer the real image than free samples
    assert ((close - real) ** 2).mean() < ((free - real) ** 2).mean()
    with pytest.raises(FewganError, match="out of range"):
        model.sample(1, start_scale=n)


def test_reconstruction_matches_training_output(tiny_run):
    from PIL import Image

    model = SinGANModel.load(tiny_run)
    recon = model.reconstruct()
    with Image.open(Path(tiny_run) / "samples" / f"s{model.num_scales - 1}_recon.png") as im:
        saved = np.asarray(im)
    assert recon.shape == saved.shape
    assert np.abs(recon.astype(int) - saved.astype(int)).max() <= 1


def test_sample_to_folder_and_cli(tiny_run, tmp_path, capsys):
    out = sample_to_folder(tiny_run, tmp_path / "a", n=3, batch=2, seed=1, reconstruct=True)
    assert sorted(p.name for p in out.iterdir()) == ["reconstruction.png", "sample_00000.png", "sample_00001.png",
                                                     "sample_00002.png"]
    rc = main(["singan", "sample", str(tiny_run), "--n", "3", "--batch", "3", "--seed", "1",
               "--out", str(tmp_path / "b")])
    assert rc == 0
    for name in ("sample_00000.png", "sample_00002.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rc = main(["singan", "sample", str(tiny_run), "--n", "1", "--scale", "1x2", "--out", str(tmp_path / "c")])
    assert rc == 0


def test_parsers():
    assert parse_scale("1x2") == (1.0, 2.0) and parse_scale(1.5) == (1.5, 1.5) and parse_scale(None) is None
    assert parse_size("30x50") == (30, 50) and parse_size("64") == (64, 64)
    for bad in ("abc", "0", "-1x2"):
        with pytest.raises(FewganError):
            parse_scale(bad)
    with pytest.raises(FewganError):
        parse_size("3.5x2")


def _one_line_error(capsys, argv) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("fewgan: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_bad_inputs(tiny_run, tmp_path, capsys):
    small = write_png(tmp_path / "small.png", blobs(12, 14, 3))
    assert "smaller than --min-size" in _one_line_error(capsys, ["singan", "train", small, "--results", str(tmp_path)])
    img = write_png(tmp_path / "ok.png", blobs(40, 40, 3))
    assert "larger than --max-size" in _one_line_error(
        capsys, ["singan", "train", img, "--min-size", "64", "--max-size", "32", "--results", str(tmp_path)])
    assert "not found" in _one_line_error(capsys, ["singan", "train", str(tmp_path / "missing.png")])
    other = tmp_path / "other_run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"method": "stylegan2", "config": {}}))
    assert "not a singan run" in _one_line_error(capsys, ["singan", "sample", str(other)])
    assert "not a fewgan run folder" in _one_line_error(capsys, ["singan", "sample", str(tmp_path)])
    assert "out of range" in _one_line_error(capsys, ["singan", "sample", str(tiny_run), "--start-scale", "9",
                                                      "--out", str(tmp_path / "x")])
    assert "--scale" in _one_line_error(capsys, ["singan", "sample", str(tiny_run), "--scale", "big",
                                                 "--out", str(tmp_path / "x")])
    assert "cannot change" in _one_line_error(capsys, ["singan", "train", "--resume", str(tiny_run), "--steps", "3"])
    assert "no image given" in _one_line_error(capsys, ["singan", "train"])


def test_dry_run_prints_config_and_pyramid(tmp_path, capsys):
    img = write_png(tmp_path / "ok.png", blobs(250, 200, 3))
    assert main(["singan", "train", img, "--dry-run", "--steps", "7", "--results", str(tmp_path / "r")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["steps"] == 7
    assert [max(s) for s in payload["pyramid"]["sizes"]][-3:] == [120, 155, 200]
    assert not (tmp_path / "r").exists()


def test_api_load_dispatch(tiny_run):
    import fewgan

    model = fewgan.load(tiny_run)
    assert isinstance(model, SinGANModel)
    assert model.sample(2, seed=0).shape == (2, 24, 22, 3)
