"""``fewgan gpnn IMAGE OUT``: samples of the requested size and dtype, seeds, labels that describe the
samples, export files, and one line + exit 2 for every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from fewgan import api
from fewgan.cli import main
from fewgan.data import images
from fewgan.data.images import read_image
from fewgan.metrics.instances import label_consistency

FAST = ["--iterations", "2", "--min-size", "21"]


@pytest.fixture(autouse=True)
def _no_leaking_limits():
    yield
    images._limits.clear()  # --max-pixels is process-wide


@pytest.fixture(scope="module")
def micrograph(tmp_path_factory):
    """A 48 px 16-bit synthetic micrograph (pixel size 0.25 um) with its exact NAME_masks.tif beside it."""
    root = tmp_path_factory.mktemp("gpnn_data")
    return api.synth(root, size=48, seed=11, format="tiff", radius=3.0, density=25.0, pixel_size=0.25,
                     pixel_unit="um")


def test_command_writes_samples_labels_and_record(micrograph, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["gpnn", str(micrograph), str(out), "--n", "2", "--size", "40x56", "--labels", "beside",
               "--export", "all", "--quiet", *FAST])
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.glob("sample_*.tif"))
    assert names == ["sample_00000.tif", "sample_00000_masks.tif", "sample_00001.tif", "sample_00001_masks.tif"]
    sample = tifffile.imread(out / "sample_00000.tif")
    assert sample.shape == (40, 56) and sample.dtype == np.uint16  # 16-bit in, 16-bit out
    x, meta = read_image(out / "sample_00001.tif")
    assert meta.pixel_size == pytest.approx(0.25) and meta.pixel_unit == "um"  # native pixel size kept
    # the labels describe the sample: particle detection on the sample agrees with its decoded instances
    for i in range(2):
        x, _ = read_image(out / f"sample_0000{i}.tif")
        masks = tifffile.imread(out / f"sample_0000{i}_masks.tif")
        assert masks.shape == (40, 56) and masks.max() >= 3
        assert label_consistency(x[None], [masks])["f1"] > 0.85
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == int(
        sum(tifffile.imread(out / f"sample_0000{i}_masks.tif").max() for i in range(2)))
    assert (out / "yolo" / "dataset.yaml").is_file() and len(list((out / "yolo" / "labels").glob("*.txt"))) == 2
    record = json.loads((out / "gpnn.json").read_text())
    assert record["method"] == "gpnn" and record["size"] == [40, 56] and record["config"]["iterations"] == 2
    assert record["n"] == 2 and len(record["seconds"]) == 2 and record["labels"]["instances"] >= 3
    assert record["data"]["image"]["height"] == 48 and "own resolution (48 x 48 px, pixel size 0.25 um)" in \
        record["data"]["image"]["notes"][-1]


def test_same_seed_same_samples_other_seed_differs(micrograph, tmp_path):
    a = api.gpnn(micrograph, tmp_path / "a", n=2, seed=3, quiet=True, iterations=2)
    b = api.gpnn(micrograph, tmp_path / "b", n=2, seed=3, quiet=True, iterations=2)
    c = api.gpnn(micrograph, tmp_path / "c", n=1, seed=4, quiet=True, iterations=2)
    first = [tifffile.imread(a / f"sample_0000{i}.tif") for i in range(2)]
    assert all(np.array_equal(f, tifffile.imread(b / f"sample_0000{i}.tif")) for i, f in enumerate(first))
    assert not np.array_equal(first[0], first[1])  # the samples of one draw differ
    other = tifffile.imread(c / "sample_00000.tif")
    assert np.abs(other.astype(np.int64) - first[0]).mean() > 100  # another seed, another sample


@pytest.mark.parametrize("kind", ["rgb8", "float"])
def test_rgb_8_bit_and_float_keep_their_type(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "rgb8":
        path = api.synth(tmp_path / "data", size=32, seed=2, bit_depth=8, channels=3)
    else:
        path = tmp_path / "float.tif"
        tifffile.imwrite(path, (rng.random((32, 32)) * 3.0 - 1.0).astype(np.float32))
    out = api.gpnn(path, tmp_path / "out", n=1, quiet=True, iterations=1, scale="1x1.5")
    written = sorted(p for p in out.glob("sample_00000.*"))
    assert len(written) == 1
    x, meta = read_image(written[0])
    original, original_meta = read_image(path)
    assert (meta.dtype, meta.channels) == (original_meta.dtype, original_meta.channels)
    assert tuple(x.shape[1:]) == (32, 48)
    if kind == "float":  # values stay in the image's own data range
        data = tifffile.imread(written[0])
        assert data.dtype == np.float32 and data.min() >= original_meta.data_range[0] - 1e-5 \
            and data.max() <= original_meta.data_range[1] + 1e-5


def _bad_cases(micrograph, tmp_path):
    wrong = tmp_path / "wrong_masks.tif"
    tifffile.imwrite(wrong, np.ones((20, 20), np.uint16))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    img, out = str(micrograph), str(tmp_path / "out")
    return {
        "missing image": (["gpnn", str(tmp_path / "nope.tif"), out], "nope.tif"),
        "not an image": (["gpnn", str(a_file), out], "a_file"),
        "size below a patch": (["gpnn", img, out, "--size", "5x40"], "smaller than one patch"),
        "size not a size": (["gpnn", img, out, "--size", "big"], "--size"),
        "negative scale": (["gpnn", img, out, "--scale", "-1"], "--scale"),
        "size and scale": (["gpnn", img, out, "--size", "40x40", "--scale", "2"], "not both"),
        "out is a file": (["gpnn", img, str(a_file)], "OUT"),
        "labels of another size": (["gpnn", img, out, "--labels", str(wrong)], "wrong_masks"),
        "too many pixels": (["--max-pixels", "2500", "gpnn", img, out, "--size", "60x60"], "max-pixels"),
        "export without labels": (["gpnn", img, out, "--export", "coco"], "--labels"),
        "even patch": (["gpnn", img, out, "--patch", "6"], "odd"),
    }


def test_bad_inputs_one_line_exit_2(micrograph, tmp_path, capsys):
    for name, (argv, needle) in _bad_cases(micrograph, tmp_path).items():
        images._limits.clear()
        rc = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert rc == 2, name
        assert len(lines) == 1 and lines[0].startswith("fewgan: error:"), (name, captured.err)
        assert needle in lines[0], (name, lines[0])
        assert not (tmp_path / "out").exists(), name  # nothing written before the check
