"""One contract for every trained model (fewgan.model.TrainedModel), run against both methods at tiny
size, as diffusers runs one test class against every model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import fewgan
from fewgan.data.images import ImageMeta
from fewgan.model import Reconstruction, TrainedModel
from fewgan.run import torch_threads


def _singan_run(root: Path) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:22]
    arr = np.stack([(xx * 9 + yy * 3 + c * 40) % 256 for c in range(3)], -1).astype(np.float64)
    arr += rng.normal(0, 10, arr.shape)
    image = root / "img.png"
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(image)
    run = fewgan.train_singan(image, results=root / "runs", quiet=True, steps=2, log_every=5, checkpoint_every=4,
                              sample_count=1, min_size=16, max_size=200)
    return Path(run), image


def _stylegan2_run(root: Path) -> tuple[Path, Path]:
    from fewgan.stylegan2.train import train

    data = fewgan.synth(root / "data", mode="folder", n=6, size=16, seed=0)
    run = train(data, results=root / "runs", quiet=True, metric_fn=lambda fake: float(fake.std()),
                resolution=16, batch=4, z_dim=16, w_dim=32, cbase=256, cmax=32, classical="none",
                diffaugment="none", kimg=0.008, eval_every=1, eval_images=4, sample_every=0)
    return Path(run), Path(data)


class ModelContract:
    """The checks every method's model passes; subclasses say how to make a tiny run."""

    method: str
    channels: int
    size: tuple[int, int]
    has_reconstruction: bool
    dtype: str
    data_range: tuple[float, float]
    run_fixture: str
    clipped: bool  # SinGAN clips its samples to [-1, 1]; StyleGAN2 returns the network's output as it is

    @pytest.fixture
    def trained(self, request):
        return request.getfixturevalue(self.run_fixture)

    def test_loads_through_the_one_loader_as_its_method(self, trained):
        run, _ = trained
        model = fewgan.load(run)
        assert isinstance(model, TrainedModel)
        assert model.method == self.method == json.loads((run / "config.json").read_text())["method"]
        assert Path(model.run) == run
        assert model.outputs == ()

    def test_meta_is_an_image_meta_member(self, trained):
        model = fewgan.load(trained[0])
        # the same kind of member for both methods: an attribute or property, never a method to call
        assert isinstance(model.meta, ImageMeta)
        assert model.meta.channels == self.channels
        assert model.meta.dtype == self.dtype and tuple(model.meta.data_range) == self.data_range

    def test_sample_tensor_shape_range_and_seeds(self, trained):
        model = fewgan.load(trained[0])
        a = model.sample_tensor(3, seed=4)
        assert a.shape == (3, self.channels, *self.size) and a.dtype == torch.float32 and a.device.type == "cpu"
        assert bool(torch.isfinite(a).all()) and float(a.std()) > 1e-3
        if self.clipped:
            assert float(a.min()) >= -1 and float(a.max()) <= 1
        assert torch.equal(a, model.sample_tensor(3, seed=4))          # a seed is a seed
        assert not torch.allclose(a, model.sample_tensor(3, seed=5))   # and another seed is another image
        # image i depends on (seed, i) only: the first two of three are the two of a draw of two
        torch.testing.assert_close(a[:2], model.sample_tensor(2, seed=4), rtol=1e-4, atol=1e-4)

    def test_training_data_is_what_it_was_trained_on(self, trained):
        run, data = trained
        assert fewgan.load(run).training_data() == data

    def test_reconstruction(self, trained):
        rec = fewgan.load(trained[0]).reconstruction()
        if not self.has_reconstruction:
            assert rec is None
            return
        assert isinstance(rec, Reconstruction)
        assert rec.image.shape == rec.target.shape == (1, self.channels, *self.size)
        assert float(rec.image.min()) >= -1 and float(rec.image.max()) <= 1
        # a reconstruction resembles its target far more than the target's own mirror image does
        err = float((rec.image - rec.target).pow(2).mean())
        assert err < float((rec.target.flip(-1) - rec.target).pow(2).mean())


def _on_one_thread(make, root):
    """Tiny runs train fastest on one thread (and the other tests keep theirs)."""
    with torch_threads(1):
        return make(root)


@pytest.fixture(scope="module")
def singan_trained(tmp_path_factory):
    return _on_one_thread(_singan_run, tmp_path_factory.mktemp("singan"))


@pytest.fixture(scope="module")
def stylegan2_trained(tmp_path_factory):
    return _on_one_thread(_stylegan2_run, tmp_path_factory.mktemp("stylegan2"))


class TestSinGANModel(ModelContract):
    method, channels, size, has_reconstruction = "singan", 3, (24, 22), True
    dtype, data_range, run_fixture = "uint8", (0.0, 255.0), "singan_trained"
    clipped = True


class TestStyleGAN2Model(ModelContract):
    method, channels, size, has_reconstruction = "stylegan2", 1, (16, 16), False
    dtype, data_range, run_fixture = "uint16", (0.0, 65535.0), "stylegan2_trained"
    clipped = False
