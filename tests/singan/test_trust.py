"""SinGAN at the edges: pixel sizes after a downscale, a diverging step, what the first lines say."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from fewgan.errors import FewganError
from fewgan.run import load_checkpoint, read_metrics
from fewgan.singan import train as train_mod
from fewgan.singan.sample import sample_to_folder
from fewgan.singan.train import prepare, train
from fewgan.singan.config import SinGANConfig

from .conftest import TINY, blobs


def _tiff(path, size=64, um=0.25):
    data = (blobs(size, size, 1, seed=2)[..., 0] * 257).astype(np.uint16)
    tifffile.imwrite(path, data, resolution=(1 / um, 1 / um), imagej=True, metadata={"unit": "um"})
    return path


def _png_phys(path, size=64, um=0.25):
    Image.fromarray(blobs(size, size, 1, seed=2)[..., 0].astype(np.uint8)).save(path, dpi=(25400 / um, 25400 / um))
    return path


def test_samples_carry_the_pixel_size_of_the_trained_scale_tiff(tmp_path):
    image = _tiff(tmp_path / "a.tif")
    run = train(image, results=tmp_path / "runs", quiet=True, **{**TINY, "steps": 2, "max_size": 32})
    log = (run / "log.txt").read_text()
    assert ("note: the image is resized from 64x64 to 32x32 px (--max-size 32); pixel size 0.25 -> 0.5 um, "
            "features 2x smaller in pixels; to keep the native size use --native") in log
    assert "resolution: the model works at 32x32 px, pixel size 0.5 um\n" in log
    out = sample_to_folder(run, tmp_path / "s", n=1)
    data, meta = tifffile.imread(out / "sample_00000.tif"), None
    from fewgan.data.images import read_array

    data, meta = read_array(out / "sample_00000.tif")
    assert data.shape[:2] == (32, 32) and meta.pixel_size == pytest.approx(0.5) and meta.pixel_unit == "um"
    # a larger field of view keeps the pixel size (more pixels, same pixels)
    _, big = read_array(sample_to_folder(run, tmp_path / "b", n=1, scale=2) / "sample_00000.tif")
    assert big.height == 64 and big.pixel_size == pytest.approx(0.5)


def test_png_phys_pixel_size_is_scaled_by_the_downscale_factor(tmp_path):
    image = _png_phys(tmp_path / "a.png")
    cfg = SinGANConfig.from_dict({**TINY, "max_size": 32})
    tensor, meta, pyramid = prepare(image, cfg)
    assert tensor.shape[-2:] == (64, 64) and tuple(pyramid.sizes[-1]) == (32, 32)
    assert (meta.height, meta.width) == (32, 32) and meta.pixel_size == pytest.approx(0.5, rel=1e-5)
    _, native = prepare(image, SinGANConfig.from_dict({**TINY, "max_size": 64}))[:2]
    assert native.pixel_size == pytest.approx(0.25, rel=1e-5)


def test_a_non_finite_loss_stops_the_run_and_the_last_checkpoint_resumes(tmp_path, rgb_image, monkeypatch):
    real_step = train_mod.SinGANTrainer.train_step
    calls = {"n": 0}

    def poisoned(self):
        values = real_step(self)
        calls["n"] += 1
        if calls["n"] == 7:  # scale 0, step 6: after the checkpoint at step 4
            values = {**values, "D": torch.tensor(float("nan"))}
        return values

    monkeypatch.setattr(train_mod.SinGANTrainer, "train_step", poisoned)
    with pytest.raises(FewganError, match=r"non-finite loss at scale 0, step 6 \(D=nan\): the run stopped") as info:
        train(rgb_image, results=tmp_path / "runs", quiet=True, **TINY)
    (run,) = (tmp_path / "runs").iterdir()
    assert f"fewgan singan train --resume {run}" in str(info.value)
    ckpt = load_checkpoint(run / "checkpoints" / "resume.pt")
    assert (ckpt["scale"], ckpt["step"]) == (0, 4)
    assert "error: non-finite loss at scale 0, step 6" in (run / "log.txt").read_text()
    monkeypatch.setattr(train_mod.SinGANTrainer, "train_step", real_step)
    assert train(resume=run, quiet=True) == run and (run / "generator.pt").is_file()
    steps = [(r["scale"], r["step"]) for r in read_metrics(run) if "D" in r]
    assert len(steps) == len(set(steps)) == 4 * 3  # 4 scales, steps 0, 5, 10


def test_input_errors_name_the_fix(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(FewganError, match="is a folder; SinGAN trains on one image file"):
        prepare(folder, SinGANConfig())
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tiny)
    with pytest.raises(FewganError, match=r"image is 5x5 px; SinGAN needs at least 11 px on the short side"):
        prepare(tiny, SinGANConfig())
