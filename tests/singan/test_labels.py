"""SinGAN with labels (issue 13): the image and its encoded instances trained as one C + 2 channel image;
parameter counts by hand, exact resume, samples with labels at any size, export read back, label consistency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from fewgan.errors import FewganError
from fewgan.model import count_parameters
from fewgan.run import load_checkpoint, torch_threads
from fewgan.singan.nets import Discriminator, Generator
from fewgan.singan.sample import SinGANModel
from fewgan.singan.train import train

from .conftest import TINY

LABELLED = {**TINY, "labels": "beside"}


@pytest.fixture(scope="module")
def micrograph(tmp_path_factory) -> Path:
    """A 40 x 40 16-bit gray ``fewgan synth`` micrograph with its exact ``micrograph_masks.tif`` beside it."""
    from fewgan.data.synthetic import synth

    return synth(tmp_path_factory.mktemp("synth"), size=40, seed=3, density=40.0, radius=3.0)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, micrograph) -> Path:
    with torch_threads(1):
        return train(micrograph, results=tmp_path_factory.mktemp("runs"), quiet=True, **LABELLED)


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def test_parameter_counts_by_hand(labelled_run):
    # g_multivanilla / d_vanilla with 32 features, 5 layers of 3x3 convs, BatchNorm (2 x 32) after the first four
    f, bn = 32, 64
    body = lambda c: _conv(c, f) + bn + 3 * (_conv(f, f) + bn)  # noqa: E731
    gray_g, gray_d = body(1) + _conv(f, 1), body(1) + _conv(f, 1)
    labelled_g, labelled_d = body(3) + _conv(f, 3), body(3) + _conv(f, 1)
    assert (gray_g, gray_d) == (28609, 28609)
    assert labelled_g - gray_g == 2 * 2 * f * 9 + 2 == 1154 and labelled_d - gray_d == 2 * f * 9 == 576
    # 1 gray channel + 2 label channels has the RGB networks' size (the seed's 29,763 / 29,185)
    assert count_parameters(Generator(1, f)) == gray_g and count_parameters(Discriminator(1, f)) == gray_d
    log = (labelled_run / "log.txt").read_text()
    assert f"Number of parameters in generator: {labelled_g}" in log
    assert f"Number of parameters in discriminator: {labelled_d}" in log
    assert "of which for the 2 label channels: generator 1154, discriminator 576" in log


def test_run_records_labels_and_keeps_the_image_meta(labelled_run, micrograph):
    payload = json.loads((labelled_run / "config.json").read_text())
    truth = tifffile.imread(micrograph.with_name("micrograph_masks.tif"))
    assert payload["config"]["labels"] == "beside"
    assert payload["labels"]["instances"] == int(truth.max()) >= 5
    assert payload["labels"]["source"].endswith("micrograph_masks.tif")
    model = SinGANModel.load(labelled_run)
    assert model.outputs == ("labels",)
    assert (model.channels, model.image_channels, model.meta.channels) == (3, 1, 1)
    assert model.meta.dtype == "uint16"
    # the finest real's label channels are the encoded truth (the image is not resized at 40 px)
    from fewgan.data.labels import encode_instances

    assert torch.allclose(model.reals[-1][0, 1:], torch.from_numpy(encode_instances(truth)), atol=1e-5)
    rec = model.reconstruction()
    assert rec.image.shape == rec.target.shape == (1, 1, 40, 40)


def test_samples_with_labels_at_any_size(labelled_run):
    from fewgan.data.labels import decode_instances  # noqa: F401 (the rule the labels come from)

    model = SinGANModel.load(labelled_run)
    images = model.sample_tensor(2, seed=5)
    assert images.shape == (2, 1, 40, 40)
    both, labels = model.sample_with_labels(2, seed=5)
    assert torch.equal(both, images)  # the same images: sample_tensor is their image channels
    assert len(labels) == 2 and all(lab.shape == (40, 40) and lab.dtype == np.int32 for lab in labels)
    wide, wide_labels = model.sample_with_labels(1, seed=5, size="30x70")
    assert wide.shape == (1, 1, 30, 70) and wide_labels[0].shape == (30, 70)
    for lab in labels + wide_labels:  # instances numbered 1..N without gaps
        assert set(np.unique(lab)) == set(range(int(lab.max()) + 1))


def test_sample_export_reads_back_and_label_consistency(labelled_run, tmp_path, capsys):
    from pycocotools.coco import COCO

    from fewgan.cli import main
    from fewgan.data.export import boxes, read_yolo_boxes
    from fewgan.data.images import read_image
    from fewgan.metrics.instances import label_consistency

    out = tmp_path / "out"
    assert main(["singan", "sample", str(labelled_run), "--out", str(out), "--n", "3", "--seed", "2",
                 "--export", "coco,yolo", "--device", "cpu"]) == 0
    images, labels = SinGANModel.load(labelled_run).sample_with_labels(3, seed=2)
    coco = COCO(str(out / "coco.json"))
    for i, lab in enumerate(labels):
        name = f"sample_{i:05d}"
        masks = tifffile.imread(out / f"{name}_masks.tif")
        assert masks.dtype == np.uint16 and np.array_equal(masks, lab)
        written, _ = read_image(out / f"{name}.png")
        assert written.shape == (1, 40, 40)  # the image alone, in the input's bit depth
        anns = coco.loadAnns(coco.getAnnIds(imgIds=i + 1))
        assert len(anns) == lab.max()
        for j, ann in enumerate(anns, start=1):
            assert np.array_equal(coco.annToMask(ann).astype(bool), lab == j)
        assert read_yolo_boxes(out / "yolo" / "labels" / f"{name}.txt", 40, 40) == boxes(lab)
    assert (out / "yolo" / "dataset.yaml").is_file()
    # the label-quality metric on the samples: a number, whatever a 10-step run learnt
    result = label_consistency(images, labels)
    assert 0.0 <= result["f1"] <= 1.0 and result["images"] == 3


def test_resume_with_labels_is_exact(tmp_path, micrograph, labelled_run):
    cut = train(micrograph, results=tmp_path, quiet=True, stop_after=18, **LABELLED)
    assert not (cut / "generator.pt").exists()
    with pytest.raises(FewganError, match="cannot change labels"):
        train(resume=cut, labels="auto", quiet=True)
    train(resume=cut, quiet=True)
    full, resumed = load_checkpoint(labelled_run / "generator.pt"), load_checkpoint(cut / "generator.pt")
    assert full["amps"] == resumed["amps"] and full["channels"] == resumed["channels"] == 3
    for a, b in zip(full["generators"], resumed["generators"]):
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_unlabelled_models_are_unchanged(tiny_run, tmp_path):
    model = SinGANModel.load(tiny_run)
    assert model.outputs == () and model.channels == model.image_channels == 3
    with pytest.raises(FewganError, match="without labels"):
        model.sample_with_labels(1)
    with pytest.raises(FewganError, match="--export needs a model trained with labels"):
        from fewgan.api import sample

        sample(tiny_run, tmp_path / "x", n=1, export="coco")
    assert not (tmp_path / "x").exists()


def test_label_inputs_and_their_errors(tmp_path, micrograph, capsys):
    from fewgan.cli import main
    from fewgan.data.images import read_image
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import prepare, resolve_labels

    def one_line(argv) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("fewgan: error: ") and "\n" not in err and "Traceback" not in err
        return err

    small = tmp_path / "small_masks.tif"
    tifffile.imwrite(small, np.ones((20, 40), np.uint16))
    base = ["singan", "train", str(micrograph), "--results", str(tmp_path / "r"), "--steps", "1"]
    assert "labels are 20 x 40 px but the image is 40 x 40 px" in one_line(base + ["--labels", str(small)])
    tifffile.imwrite(small, np.zeros((40, 40), np.uint16))
    assert "empty" in one_line(base + ["--labels", str(small)])
    lone = tmp_path / "lone.png"
    lone.write_bytes(micrograph.read_bytes())
    assert "found no lone_masks.tif" in one_line(["singan", "train", str(lone), "--results", str(tmp_path / "r"),
                                                   "--labels", "beside"])
    assert not (tmp_path / "r").exists()
    # a binary mask (0/255) is split into instances; the tensor gains 2 channels, meta stays the image's
    truth = tifffile.imread(micrograph.with_name("micrograph_masks.tif"))
    mask = tmp_path / "binary.tif"
    tifffile.imwrite(mask, np.where(truth > 0, 255, 0).astype(np.uint8))
    tensor, meta, _ = prepare(micrograph, SinGANConfig(labels=str(mask)))
    assert tensor.shape == (3, 40, 40) and meta.channels == 1
    assert torch.equal(tensor[1], torch.where(torch.from_numpy(truth.astype(np.int32)) > 0, 1.0, -1.0))
    # auto: fewgan's particle analysis, its parameters recorded
    image, _ = read_image(micrograph)
    instances, info = resolve_labels(micrograph, image, "auto")
    assert info["source"] == "auto" and info["instances"] == instances.max() > 0
    assert {"threshold", "polarity"} <= set(info["threshold"]) and "smooth_sigma" in info["particles"]
