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
from fewgan.run import torch_threads

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


# --------------------------------------------------------------------------- labelled runs, utility
def _labelled_micrograph(path, seed, size=64):
    from fewgan.data.labels import mask_path
    from fewgan.data.synthetic import instance_labels

    image, truth = make_micrograph(seed=seed, size=(size, size), bit_depth=8, density=14.0, radius=3.5)
    labels = instance_labels(truth)
    write_array(path, image[:, :, None], "png")
    write_array(mask_path(path), labels.astype("uint16")[:, :, None], "tiff")
    return torch.from_numpy(image.astype("float32") / 127.5 - 1.0)[None], labels.astype("int32")


class _LabelledModel(_StubModel):
    """A labelled SinGAN through the contract: ``outputs == ('labels',)``, images as ``sample_tensor``'s."""

    outputs = ("labels",)

    def __init__(self, pairs):
        super().__init__(pairs[0][0])
        self.pairs = pairs

    def sample_with_labels(self, n, seed=0):
        self.calls.append(("with labels", n, seed))
        picks = [self.pairs[(seed + i) % len(self.pairs)] for i in range(n)]
        return torch.stack([p[0] for p in picks]), [p[1] for p in picks]


@pytest.fixture
def labelled_run(tmp_path, monkeypatch):
    """A SinGAN run trained on ``train.png`` (its config.json says so), and held-out labelled images."""
    from fewgan.run import write_run_config

    train = _labelled_micrograph(tmp_path / "train.png", 1)
    pairs = [_labelled_micrograph(tmp_path / f"sample{s}.png", s) for s in (2, 3, 4)]
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    for s in (7, 8):
        _labelled_micrograph(held_out / f"h{s}.png", s)
    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run, "singan", {"labels": "beside"}, data={"path": str(tmp_path / "train.png")})
    model = _LabelledModel(pairs)
    monkeypatch.setattr(trained, "load", lambda path, **kw: model)
    return {"run": run, "train": tmp_path / "train.png", "held_out": held_out, "model": model, "pairs": pairs,
            "train_pair": train, "root": tmp_path}


def test_a_labelled_run_generates_its_labels_with_its_images(labelled_run):
    run, model = labelled_run["run"], labelled_run["model"]
    result = evaluate(labelled_run["train"], run, metrics=["labels"], n=3, seed=1)
    assert model.calls == [("with labels", 3, 1)]
    assert result["fake"]["labels"].startswith("generated by the run")
    assert result["fake"]["trained_on"] == str(labelled_run["train"])
    entry = result["metrics"]["labels"]
    assert entry["generated"]["n_ref"] == sum(int(model.pairs[(1 + i) % 3][1].max()) for i in range(3))
    assert entry["generated"]["f1"] > 0.9 and entry["real"]["f1"] > 0.9
    # the run as REAL: its training image with the mask beside it
    result = evaluate(run, run, metrics=["labels"], n=2)
    assert result["real"]["labels"] and result["metrics"]["labels"]["real"]["n_ref"] == int(labelled_run["train_pair"][1].max())


def test_utility_refuses_test_images_the_generator_saw(labelled_run):
    import shutil

    run, train, root = labelled_run["run"], labelled_run["train"], labelled_run["root"]
    small = {"steps": 2, "batch": 2, "crop": 32}
    with pytest.raises(FewganError, match="--test .*is the training data"):
        evaluate(train, run, metrics=["utility"], n=2, test=train, utility_options=small)
    # a renamed copy of the training image is still the training image
    (root / "copy").mkdir()
    shutil.copy(train, root / "copy" / "renamed.png")
    shutil.copy(root / "train_masks.tif", root / "copy" / "renamed_masks.tif")
    with pytest.raises(FewganError, match="same bytes"):
        evaluate(root / "held_out" / "h7.png", run, metrics=["utility"], n=2, test=root / "copy", utility_options=small)
    # a split of REAL when the run trained on all of REAL: nothing is held out from the generator
    from fewgan.run import write_run_config

    sg2 = root / "sg2"
    sg2.mkdir()
    write_run_config(sg2, "stylegan2", {}, data={"root": str(root / "held_out"), "resolution": 64})
    with pytest.raises(FewganError, match="seen by the generator.*lies inside the training data.*pass --test"):
        evaluate(root / "held_out", sg2, metrics=["utility"], n=2, utility_options=small)
    # one real image and no --test: how to give held-out data
    with pytest.raises(FewganError, match="pass --test"):
        evaluate(train, run, metrics=["utility"], n=2, utility_options=small)
    # --test images without labels
    (root / "bare").mkdir()
    shutil.copy(root / "held_out" / "h7.png", root / "bare" / "h7.png")
    with pytest.raises(FewganError, match="--test .*no labels beside"):
        evaluate(train, run, metrics=["utility"], n=2, test=root / "bare", utility_options=small)


def test_utility_on_held_out_images_is_repeatable_from_its_seed(labelled_run):
    run, train, held_out = labelled_run["run"], labelled_run["train"], labelled_run["held_out"]
    options = {"steps": 6, "batch": 2, "crop": 32}
    a = evaluate(train, run, metrics=["utility"], n=3, test=held_out, utility_options=options, seed=3)
    b = evaluate(train, run, metrics=["utility"], n=3, test=held_out, utility_options=options, seed=3)
    ua, ub = a["metrics"]["utility"], b["metrics"]["utility"]
    assert ua["test"]["images"] == 2 and ua["test"]["held_out"].startswith("checked")
    assert ua["train"] == {"real_images": 1, "synthetic_images": 3} and ua["config"]["seed"] == 3
    for source in ("real", "synthetic", "both"):
        for key in ("f1", "tp", "fp", "fn", "n_pred"):
            assert ua[source][key] == ub[source][key], (source, key)
    assert ua["real"]["n_ref"] == sum(int(lab.max()) for lab in
                                      (_labelled_micrograph(held_out / f"h{s}.png", s)[1] for s in (7, 8)))
    assert any(line["question"] == "utility" for line in a["verdict"])


@pytest.mark.slow
def test_a_trained_labelled_singan_run_through_eval(tmp_path):
    """A real (tiny) labelled SinGAN trained on its image shrunk to 32 px: the samples' instances come from
    sample_with_labels with the images sample_tensor gives, the real labels are brought to the trained size
    by nearest neighbour, and the labels metric runs by default."""
    from fewgan.data.labels import read_labels
    from fewgan.data.synthetic import synth
    from fewgan.singan.train import train

    micrograph = synth(tmp_path / "synth", size=40, seed=3, density=40.0, radius=3.0)
    with torch_threads(1):
        run = train(micrograph, results=tmp_path / "runs", quiet=True, steps=4, log_every=5, checkpoint_every=4,
                    sample_count=1, min_size=16, max_size=32, labels="beside")
        result = evaluate(micrograph, run, n=3, seed=2, floors=False)
        model = trained.load(run)
        images = model.sample_tensor(3, seed=2)
    assert result["fake"]["labels"].startswith("generated") and result["real"]["size"] == [32, 32]
    entry = result["metrics"]["labels"]
    assert entry["generated"]["images"] == 3 and entry["real"]["images"] == 1
    truth = read_labels(str(micrograph).replace(".png", "_masks.tif"))
    from fewgan.metrics.evaluate import resize_labels

    assert entry["real"]["n_ref"] == int(resize_labels(truth, (32, 32)).max()) > 0
    assert any(line["question"] == "labels" for line in result["verdict"])
    # the compared images are the unlabelled sampler's, bit for bit (same seed rule)
    fake_images, _ = model.sample_with_labels(3, seed=2)
    assert torch.equal(fake_images, images)
