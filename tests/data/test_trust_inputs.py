"""Inputs a user cannot always trust: non-finite pixels, decompression bombs, pixel sizes after a resize."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from fewgan.data import images as images_mod
from fewgan.data.folder import load_folder
from fewgan.data.images import ImageMeta, read_array, read_image, set_read_options, write_image
from fewgan.errors import FewganError


@pytest.fixture(autouse=True)
def _default_read_options(monkeypatch):
    monkeypatch.delenv("FEWGAN_MAX_PIXELS", raising=False)
    monkeypatch.delenv("FEWGAN_NONFINITE", raising=False)
    saved = dict(images_mod._limits)
    images_mod._limits.clear()
    yield
    images_mod._limits.clear()
    images_mod._limits.update(saved)


def _float_tiff(path, nan=1, posinf=1, neginf=0):
    a = np.linspace(0.5, 2.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    flat = a.reshape(-1)
    flat[:nan] = np.nan
    flat[100:100 + posinf] = np.inf
    flat[200:200 + neginf] = -np.inf
    tifffile.imwrite(path, a)
    return path


def test_nan_and_inf_pixels_are_an_error_naming_file_and_counts(tmp_path):
    path = _float_tiff(tmp_path / "bad.tif", nan=3, posinf=2, neginf=1)
    with pytest.raises(FewganError, match=r"bad\.tif: 3 NaN, 2 \+inf and 1 -inf value\(s\) in 4096") as info:
        read_image(path)
    assert "--nonfinite replace" in str(info.value)
    folder = tmp_path / "set"
    folder.mkdir()
    _float_tiff(folder / "a.tif", nan=0, posinf=0)
    _float_tiff(folder / "b.tif", nan=1, posinf=1)
    with pytest.raises(FewganError, match=r"b\.tif: 1 NaN, 1 \+inf"):
        load_folder(folder)


def test_replace_policy_maps_to_the_finite_range_and_says_so(tmp_path):
    path = _float_tiff(tmp_path / "bad.tif", nan=2, posinf=1, neginf=1)
    set_read_options(nonfinite="replace")
    x, meta = read_image(path)
    assert torch.isfinite(x).all()
    finite = np.linspace(0.5, 2.0, 64 * 64, dtype=np.float32)
    lo, hi = float(finite[[i for i in range(4096) if i not in (0, 1, 100, 200)]].min()), float(finite.max())
    assert meta.data_range == pytest.approx((lo, hi))
    flat = x[0].reshape(-1)
    assert flat[0] == -1 and flat[1] == -1 and flat[200] == -1 and flat[100] == 1  # NaN, -inf -> lo; +inf -> hi
    assert any("2 NaN, 1 +inf and 1 -inf" in n and "--nonfinite replace" in n for n in meta.notes)
    folder = tmp_path / "set"
    folder.mkdir()
    _float_tiff(folder / "a.tif", nan=0, posinf=0)
    _float_tiff(folder / "b.tif", nan=1, posinf=1)
    data, fmeta = load_folder(folder)
    assert torch.isfinite(data).all() and fmeta.image.data_range[1] == pytest.approx(2.0)
    assert any(n.startswith("b.tif: non-finite values replaced") for n in fmeta.notes)
    with pytest.raises(FewganError, match="--nonfinite 'drop'"):
        set_read_options(nonfinite="drop")


def _must_not_decode(*args, **kwargs):
    raise AssertionError("the image was decoded before the size check")


@pytest.mark.parametrize("kind", ["png8", "png16rgb", "tiff", "jpeg"])
def test_size_limit_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch, kind):
    h, w = 30, 40
    if kind == "png8":
        path = tmp_path / "a.png"
        Image.fromarray(np.zeros((h, w), np.uint8)).save(path)
    elif kind == "png16rgb":
        import png

        path = tmp_path / "a.png"
        with open(path, "wb") as fh:
            png.Writer(width=w, height=h, greyscale=False, bitdepth=16).write(fh, np.zeros((h, w * 3), np.uint16))
    elif kind == "tiff":
        path = tmp_path / "a.tif"
        tifffile.imwrite(path, np.zeros((h, w), np.uint16))
    else:
        path = tmp_path / "a.jpg"
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image.Image, "load", _must_not_decode)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", _must_not_decode)
    import png

    monkeypatch.setattr(png.Reader, "asDirect", _must_not_decode)
    set_read_options(max_pixels=h * w - 1)
    with pytest.raises(FewganError, match=r"40 x 30 px \(0\.0 megapixels\) is above the limit of 0\.001199 "
                                          r"megapixels.*--max-pixels 1200"):
        read_array(path)
    monkeypatch.undo()
    set_read_options(max_pixels=h * w)  # raised to the image's size, it reads
    array, meta = read_array(path)
    assert array.shape[:2] == (h, w)


def test_size_limit_default_and_environment(monkeypatch):
    assert images_mod.max_pixels() == 64_000_000
    monkeypatch.setenv("FEWGAN_MAX_PIXELS", "2e8")
    assert images_mod.max_pixels() == 200_000_000
    with pytest.raises(FewganError, match="must be a positive number"):
        set_read_options(max_pixels=0)


def test_png_and_tiff_carry_the_pixel_size_of_a_resampled_image(tmp_path):
    meta = ImageMeta(format="tiff", dtype="uint16", bit_depth=16, data_range=(0.0, 65535.0), pixel_size=0.25,
                     pixel_unit="um", height=64, width=64)
    half = meta.resampled(32, 32)
    assert half.pixel_size == pytest.approx(0.5) and "0.25 -> 0.5 um" in half.notes[-1]
    assert meta.resampled(64, 64).pixel_size == 0.25 and meta.with_size(128, 128).pixel_size == 0.25
    for fmt, channels in (("tiff", 1), ("png", 1), ("png", 3)):
        m = ImageMeta(format=fmt, dtype="uint16", bit_depth=16, channels=channels, source_channels=channels,
                      data_range=(0.0, 65535.0), pixel_size=0.25, pixel_unit="um", height=64, width=64)
        path = write_image(tmp_path / f"x{channels}.{fmt}", torch.zeros(channels, 32, 32), m.resampled(32, 32))
        _, back = read_array(path)
        assert back.pixel_size == pytest.approx(0.5, rel=1e-6) and back.pixel_unit == "um", (fmt, channels)


def test_a_resized_folder_records_the_pixel_size_at_the_training_resolution(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(2):
        tifffile.imwrite(folder / f"{i}.tif", np.full((64, 64), 100 * i, np.uint16), resolution=(4.0, 4.0),
                         imagej=True, metadata={"unit": "um"})
    _, meta = load_folder(folder, resolution=32)
    assert meta.image.pixel_size == pytest.approx(0.5) and meta.image.pixel_unit == "um"
    _, same = load_folder(folder)
    assert same.image.pixel_size == pytest.approx(0.25)
