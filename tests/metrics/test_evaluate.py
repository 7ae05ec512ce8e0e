"""The ``evaluate`` orchestrator: set and single-image modes, floors, run folders, skipped network metrics, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fewgan.data.images import write_array
from fewgan.data.synthetic import make_micrograph
from fewgan.errors import FewganError
from fewgan.metrics.evaluate import DEFAULT_SET, DEFAULT_SINGLE, evaluate, format_table
from fewgan.metrics.features import WeightsMissing

from .fixtures.random_inception import save_random_weights


def _write_set(folder: Path, n: int, seed: int, size: int = 48, **params) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, _ = make_micrograph(seed=seed * 1000 + i, size=size, density=8.0, radius=4.0, min_spacing=2.0,
                                   bit_depth=8, **params)
        write_array(folder / f"img_{i:03d}.png", image[:, :, None], "png")
    return folder


@pytest.fixture(autouse=True)
def no_weights(monkeypatch, tmp_path):
    """No Inception weights anywhere unless a test provides them."""
    monkeypatch.delenv("FEWGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return {"real": _write_set(root / "real", 16, seed=1), "fake": _write_set(root / "fake", 12, seed=2),
            "root": root}


def test_set_mode_without_weights_runs_everything_else_with_floors(folders, tmp_path):
    out_json = tmp_path / "eval.json"
    result = evaluate(folders["real"], folders["fake"], json_path=out_json)
    assert result["mode"] == "set"
    assert list(result["metrics"]) == list(DEFAULT_SET)
    for name in ("fid", "kid", "prdc"):
        entry = result["metrics"][name]
        assert entry["weights_missing"] and "fewgan weights import" in entry["skipped"]
    assert "skipped" in result["network_metrics"]
    swd = result["metrics"]["swd"]
    assert swd["value"] > 0 and len(swd["levels"]) == 2  # 48 -> 24 px
    assert swd["floor"]["value"] > 0  # real half against real half, 8 vs 8 images
    particles = result["metrics"]["particles"]
    assert {r["quantity"] for r in particles["table"]} >= {"count", "diameter", "intensity", "circularity", "spacing"}
    assert "table" in particles["floor"]
    mem = result["metrics"]["memorisation"]
    assert mem["spaces"] == ["pixel"] and mem["value"] == mem["near_copy_share"] == 0.0
    assert len(mem["pixel"]["nearest"]) == 12 and "floor" in mem
    # every number of the table is in the JSON
    saved = json.loads(out_json.read_text())
    assert saved["metrics"]["swd"]["value"] == pytest.approx(swd["value"])
    assert saved["table"] == json.loads(json.dumps(result["table"]))
    text = format_table(result)
    assert "swd" in text and "near-copies (pixel)" in text and "skipped: no Inception weights" in text


def test_floor_is_the_same_metric_between_two_halves_of_the_real_set(folders):
    from fewgan.data.folder import load_folder
    from fewgan.metrics.evaluate import _half_split
    from fewgan.metrics.swd import swd

    result = evaluate(folders["real"], folders["fake"], metrics=["swd"], seed=3)
    real, _ = load_folder(folders["real"])
    a, b = _half_split(real.shape[0], 3)
    assert len(a) == len(b) == 8 and not set(a) & set(b)
    assert result["metrics"]["swd"]["floor"]["value"] == pytest.approx(swd(real[a], real[b], seed=3))


def test_copies_of_the_training_set_are_near_copies_with_a_clean_floor(folders, tmp_path):
    from fewgan.data.folder import load_folder

    real, _ = load_folder(folders["real"])
    copies = (real[:10] + 0.01 * torch.randn(10, 1, 48, 48, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    result = evaluate(folders["real"], copies, metrics=["memorisation"])
    mem = result["metrics"]["memorisation"]
    assert mem["value"] == 1.0 and mem["pixel"]["nearest"] == list(range(10))
    assert mem["floor"]["near_copy_share"] == 0.0


def test_only_network_metrics_without_weights_is_the_one_line_error(folders):
    with pytest.raises(WeightsMissing, match="fewgan weights"):
        evaluate(folders["real"], folders["fake"], metrics=["fid", "kid"])


def test_network_metrics_plumbing_with_stand_in_features(folders, monkeypatch):
    """Feature extraction replaced by a cheap stand-in: each set is extracted once, floors use subsets."""
    from fewgan.metrics import features

    calls = []

    def fake_extract(images, **kw):
        calls.append(images.shape[0])
        x = images.double()
        return torch.cat([x.mean(dim=(1, 2, 3))[:, None], x.std(dim=(1, 2, 3))[:, None],
                          x[:, :, ::8, ::8].flatten(1)], dim=1).numpy()

    monkeypatch.setattr(features, "find_weights", lambda path=None: Path("stand-in.pth"))
    monkeypatch.setattr(features, "extract_features", fake_extract)
    monkeypatch.setattr(features, "feature_info", lambda **kw: {"weights_file": "stand-in", **kw})
    result = evaluate(folders["real"], folders["fake"], metrics=["fid", "kid", "prdc", "memorisation"])
    assert calls == [16, 12]  # real once, fake once; the floors index the real features
    fid = result["metrics"]["fid"]
    assert fid["value"] > 0 and fid["floor"]["value"] > 0 and (fid["n_real"], fid["n_fake"]) == (16, 12)
    assert fid["features"]["n"] == 12 and fid["floor"]["features"]["n"] == 8
    assert result["metrics"]["kid"]["std"] >= 0
    prdc = result["metrics"]["prdc"]
    assert set(prdc["density_coverage"]) == {"precision", "recall", "density", "coverage"}
    assert set(prdc["precision_recall"]) == {"precision", "recall"}
    assert 0 <= prdc["floor"]["density_coverage"]["coverage"] <= 1
    mem = result["metrics"]["memorisation"]
    assert mem["spaces"] == ["pixel", "feature"] and len(mem["feature"]["nearest"]) == 12
    assert result["network_metrics"] == "computed"
    assert any("FID on" in w for w in result["warnings"])  # the small-N warning is passed on
    rows = {r["metric"] for r in result["table"]}
    assert {"fid", "kid", "precision (k=3)", "coverage (k=5)", "near-copies (feature)"} <= rows


@pytest.mark.slow
def test_kid_with_a_random_weights_inception(folders, tmp_path, monkeypatch):
    # a network of the FID architecture with seeded random weights (the real file cannot be downloaded)
    monkeypatch.setenv("FEWGAN_INCEPTION_WEIGHTS", str(save_random_weights(tmp_path)))
    real = _write_set(tmp_path / "r", 4, seed=8)
    fake = _write_set(tmp_path / "f", 3, seed=9)
    # KID rather than FID: scipy's sqrtm of a singular 2048 x 2048 product takes ~30 s on one core
    result = evaluate(real, fake, metrics=["kid", "memorisation"])
    kid = result["metrics"]["kid"]
    assert math.isfinite(kid["value"]) and math.isfinite(kid["floor"]["value"])
    assert kid["features"]["resize"] == "clean" and len(kid["features"]["weights_sha256"]) == 64
    assert result["metrics"]["memorisation"]["spaces"] == ["pixel", "feature"]


def test_single_image_mode_uses_crops_of_the_image_as_floor(tmp_path):
    image, _ = make_micrograph(seed=3, size=96, bit_depth=16)
    write_array(tmp_path / "real.tif", image[:, :, None], "tiff")
    fakes = tmp_path / "samples"
    fakes.mkdir()
    for i in range(4):
        sample, _ = make_micrograph(seed=10 + i, size=96, bit_depth=16)
        write_array(fakes / f"s{i}.tif", sample[:, :, None], "tiff")
    result = evaluate(tmp_path / "real.tif", fakes, metrics=None)
    assert result["mode"] == "single-image"
    assert list(result["metrics"]) == list(DEFAULT_SINGLE)
    assert result["metrics"]["sifid"]["weights_missing"]
    assert result["metrics"]["diversity"]["value"] > 0
    assert result["metrics"]["swd"]["floor"]["value"] > 0
    assert "crops" in result["floor"]
    # PSNR/SSIM of each sample against the one real image, in 16-bit data units
    result = evaluate(tmp_path / "real.tif", fakes, metrics=["psnr", "ssim"], floors=False)
    assert result["metrics"]["psnr"]["data_range"] == 65535.0
    assert len(result["metrics"]["psnr"]["per_image"]) == 4
    same = evaluate(tmp_path / "real.tif", tmp_path / "real.tif", metrics=["psnr", "ssim"], floors=False,
                    json_path=tmp_path / "same.json")
    assert same["metrics"]["ssim"]["value"] == pytest.approx(1.0)
    assert same["metrics"]["psnr"]["value"] == math.inf and same["metrics"]["psnr"]["per_image"] == [None]
    text = (tmp_path / "same.json").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON: infinite PSNR is null
    assert json.loads(text)["metrics"]["psnr"]["value"] is None


def test_single_image_mode_takes_non_square_samples_without_a_resolution(tmp_path, capsys):
    from fewgan.cli import main

    image, _ = make_micrograph(seed=3, size=(40, 64), bit_depth=8)
    write_array(tmp_path / "real.png", image[:, :, None], "png")
    same, other = tmp_path / "same", tmp_path / "other"
    same.mkdir()
    other.mkdir()
    for i in range(4):
        sample, _ = make_micrograph(seed=10 + i, size=(40, 64), bit_depth=8)
        write_array(same / f"s{i}.png", sample[:, :, None], "png")
        write_array(other / f"s{i}.png", np.ascontiguousarray(sample[:, :48, None]), "png")
    result = evaluate(tmp_path / "real.png", same, metrics=["diversity", "swd", "psnr"], floors=False)
    assert result["fake"]["size"] == [40, 64] and result["fake"]["n"] == 4   # not squashed to a square
    assert "note" not in result["metrics"]["diversity"] and "note" not in result["metrics"]["swd"]
    # by hand: per-pixel std over the 4 samples, mean, over the real image's std (all in [-1, 1])
    fake = torch.stack([torch.from_numpy(make_micrograph(seed=10 + i, size=(40, 64), bit_depth=8)[0]).double()
                        for i in range(4)]) / 127.5 - 1
    real = torch.from_numpy(image).double() / 127.5 - 1
    expected = float(fake.std(0, unbiased=False).mean() / real.std(unbiased=False))
    assert result["metrics"]["diversity"]["value"] == pytest.approx(expected, rel=1e-6)
    assert len(result["metrics"]["psnr"]["per_image"]) == 4
    # samples of another size: diversity on centre crops, SWD by patches, each saying so; PSNR cannot pair
    result = evaluate(tmp_path / "real.png", other, metrics=["diversity", "swd"], floors=False)
    assert result["fake"]["size"] == [40, 48]
    assert "centre 40x48 px crops" in result["metrics"]["diversity"]["note"]
    assert "patches" in result["metrics"]["swd"]["note"] and result["metrics"]["swd"]["value"] > 0
    with pytest.raises(FewganError, match="real size"):
        evaluate(tmp_path / "real.png", other, metrics=["psnr"], floors=False)
    # the CLI: no --resolution needed, exit 0, the crop note in the table
    assert main(["eval", str(tmp_path / "real.png"), str(other), "--metrics", "diversity", "swd",
                 "--no-floors", "--quiet"]) == 0
    assert "centre 40x48 px crops" in capsys.readouterr().out


def test_bad_input_is_one_line(folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FewganError, match="no PNG, TIFF or JPEG"):
        evaluate(empty, folders["fake"])
    with pytest.raises(FewganError, match="no such file"):
        evaluate(tmp_path / "missing", folders["fake"])
    with pytest.raises(FewganError, match="unknown metric 'fidd'"):
        evaluate(folders["real"], folders["fake"], metrics=["fidd"])
    # pixel diversity asked of a set: said to be the single-image measure, with the set's counterpart
    with pytest.raises(FewganError, match=r"^diversity: pixel diversity is the single-image measure .* prdc"):
        evaluate(folders["real"], folders["fake"], metrics=["diversity"])
    # channel counts differ
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for i in range(3):
        write_array(rgb / f"{i}.png", np.random.default_rng(i).integers(0, 255, (48, 48, 3), dtype=np.uint8), "png")
    with pytest.raises(FewganError, match="channel"):
        evaluate(folders["real"], rgb, metrics=["swd"])
    assert evaluate(folders["real"], rgb, metrics=["swd"], channels=3, floors=False)["metrics"]["swd"]["value"] > 0
    # sizes differ: resized with a warning, or an error when asked
    small = _write_set(tmp_path / "small", 6, seed=5, size=32)
    result = evaluate(folders["real"], small, metrics=["swd"], floors=False)
    assert any("resized to the real size" in w for w in result["warnings"])
    assert result["fake"]["size"] == [48, 48]
    with pytest.raises(FewganError, match="32x32 px but real images 48x48"):
        evaluate(folders["real"], small, metrics=["swd"], size_mismatch="error")
    # fewer images than a metric needs: an error when asked for, a reason when by default
    few = _write_set(tmp_path / "few", 3, seed=6)
    with pytest.raises(FewganError, match="at least 6 images"):
        evaluate(folders["real"], few, metrics=["prdc"])
    with pytest.raises(FewganError, match="at least 2 generated"):
        evaluate(few / "img_001.png", few / "img_000.png", metrics=["diversity"])
    one_real = evaluate(few / "img_000.png", few, metrics=["swd"])
    assert one_real["mode"] == "single-image"
    assert one_real["metrics"]["swd"]["floor"]["value"] > 0
    tiny = evaluate(few, few, metrics=None)  # 3 real images: halves of 1
    assert "at least 6 images" in tiny["metrics"]["prdc"]["skipped"]
    assert tiny["metrics"]["memorisation"]["value"] == 1.0  # the fakes are the training images
    assert "at least 2 training images" in tiny["metrics"]["memorisation"]["floor"]["skipped"]
