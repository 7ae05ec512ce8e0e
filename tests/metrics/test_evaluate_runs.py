"""Evaluating run folders (fewgan.trained, through fewgan.api.evaluate): a run as FAKE generates its images
through the model contract, a run as REAL stands for its training data; metrics.evaluate reaches runs only
through the loader the API passes in."""

from __future__ import annotations

import math

import pytest
import torch

from fewgan import trained
from fewgan.api import evaluate
from fewgan.data.images import ImageMeta, write_array
from fewgan.data.synthetic import make_micrograph
from fewgan.errors import FewganError
from fewgan.model import Reconstruction

from .test_evaluate import folders, no_weights  # noqa: F401  (the same fixtures: data sets, no Inception weights)


class _StubModel:
    """Stands in for a trained SinGAN run through the model contract: samples and a reconstruction."""

    method = "singan"
    outputs = ()
    run = None

    def __init__(self, real: torch.Tensor):
        self.real = real
        self.meta = ImageMeta(dtype="uint16", bit_depth=16, data_range=(0.0, 65535.0), height=real.shape[-2],
                              width=real.shape[-1])
        self.calls = []

    def training_data(self):
        return None

    def reconstruction(self):
        return Reconstruction(image=self.reconstruct_tensor(), target=self.real[None])

    def sample_tensor(self, n, seed=0):
        self.calls.append((n, seed))
        g = torch.Generator().manual_seed(seed)
        return (self.real[None] + 0.05 * torch.randn((n,) + tuple(self.real.shape), generator=g)).clamp(-1, 1)

    def reconstruct_tensor(self):
        return (self.real[None] + 0.01).clamp(-1, 1)


def test_a_run_folder_generates_its_images_first(tmp_path, monkeypatch):
    from fewgan.run import write_run_config

    image, _ = make_micrograph(seed=4, size=64, bit_depth=16)
    write_array(tmp_path / "real.tif", image[:, :, None], "tiff")
    from fewgan.data.images import read_image

    real, meta = read_image(tmp_path / "real.tif")
    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run, "singan", {}, data=meta.to_dict())
    stub = _StubModel(real)
    monkeypatch.setattr(trained, "load", lambda path, **kw: stub)
    result = evaluate(tmp_path / "real.tif", run, metrics=["swd", "diversity", "psnr"], n=6, seed=7)
    assert stub.calls == [(6, 7)]
    assert result["fake"]["kind"] == "run" and result["fake"]["n"] == 6
    psnr = result["metrics"]["psnr"]
    assert "reconstruction" in psnr["pairing"]
    expected = 10 * math.log10(65535.0**2 / float(((stub.reconstruct_tensor() - real[None]).double() * 65535 / 2).pow(2).mean()))
    assert psnr["value"] == pytest.approx(expected, abs=0.05)
    # the run as REAL stands for the image it was trained on
    result = evaluate(run, run, metrics=["swd"], n=3)
    assert result["real"]["n"] == 1 and result["mode"] == "single-image"
    # SinGAN trained on the image shrunk to its max size: the comparison happens at that size,
    # with the pixel size scaled to match
    small = torch.nn.functional.interpolate(real[None], size=(48, 48), mode="area")[0]
    stub = _StubModel(small)
    monkeypatch.setattr(trained, "load", lambda path, **kw: stub)
    real_meta = ImageMeta(dtype="uint16", bit_depth=16, data_range=(0.0, 65535.0), pixel_size=2.0,
                          pixel_unit="nm", height=64, width=64)
    from fewgan.metrics.evaluate import ImageSet

    real_set = ImageSet(images=real[None], meta=real_meta, source="real.tif", kind="image")
    result = evaluate(real_set, run, metrics=["particles", "psnr"], n=2, floors=False)
    assert result["real"]["size"] == [48, 48] and result["real"]["meta"]["pixel_size"] == pytest.approx(2.0 * 64 / 48)
    assert any("resized from 64x64 to 48x48" in w for w in result["warnings"])
    assert result["metrics"]["particles"]["units"]["length"] == "nm"


def test_a_stylegan2_run_as_real_and_fake(folders, tmp_path, monkeypatch):
    """REAL = the folder the run trained on, at its training resolution; FAKE = the run's samples."""
    from fewgan.run import write_run_config

    run = tmp_path / "sg2"
    run.mkdir()
    write_run_config(run, "stylegan2", {}, data={"root": str(folders["real"]), "resolution": 32})

    class Model:  # StyleGAN2Model through the contract: no reconstruction, samples are not clamped
        method, outputs, run = "stylegan2", (), None
        meta = ImageMeta(dtype="uint8", bit_depth=8, data_range=(0.0, 255.0), height=32, width=32)

        def training_data(self):
            return None

        def reconstruction(self):
            return None

        def sample_tensor(self, n, seed=0):
            return 1.5 * torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))

    monkeypatch.setattr(trained, "load", lambda path, **kw: Model())
    result = evaluate(run, run, metrics=["swd", "memorisation"], n=5)
    assert result["real"]["n"] == 16 and result["real"]["size"] == [32, 32]
    assert result["fake"]["n"] == 5 and not result["warnings"]
    assert result["metrics"]["memorisation"]["value"] == 0.0



def test_metrics_alone_refuse_a_run_folder(folders, tmp_path):
    """metrics.evaluate works on images: without the API's run loader a run folder is a one-line error."""
    from fewgan.metrics.evaluate import evaluate as images_only
    from fewgan.run import write_run_config

    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run, "stylegan2", {}, data={"root": str(folders["real"]), "resolution": 32})
    with pytest.raises(FewganError, match="is a run folder"):
        images_only(folders["real"], run, metrics=["swd"])


def test_a_run_without_recorded_data_cannot_stand_for_real(tmp_path, folders):
    from fewgan.run import write_run_config

    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run, "stylegan2", {}, data={"folder": str(folders["real"])})  # not the key stylegan2 records
    with pytest.raises(FewganError, match="does not name training data"):
        evaluate(run, folders["fake"], metrics=["swd"])
