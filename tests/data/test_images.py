"""Image I/O: exact round trips, data ranges, pixel sizes, channel handling, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from fewgan.data.images import (
    ImageMeta, read_array, read_image, save_grid, to_numpy, write_array, write_image,
)
from fewgan.errors import FewganError


def _random(dtype, channels, shape=(19, 23), seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, size=(*shape, channels), dtype=np.int64).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_round_trip_is_exact(tmp_path, dtype, channels, suffix):
    original = _random(dtype, channels)
    src = tmp_path / f"in{suffix}"
    write_array(src, original, "png" if suffix == ".png" else "tiff")
    image, meta = read_image(src)
    assert meta.bit_depth == (8 if dtype == np.uint8 else 16)
    assert meta.channels == channels
    assert image.dtype == torch.float32 and image.shape == (channels, 19, 23)
    assert float(image.min()) >= -1.0 and float(image.max()) <= 1.0
    dst = write_image(tmp_path / f"out{suffix}", image, meta)
    back, back_meta = read_array(dst)
    assert back.dtype == original.dtype
    assert np.array_equal(back, original)  # zero difference in every pixel
    assert back_meta.format == meta.format


def test_16bit_rgb_png_keeps_16_bits(tmp_path):
    # Pillow reads this case as 8-bit; fewgan must not.
    original = _random(np.uint16, 3, seed=3)
    original[0, 0] = [1, 257, 65535]  # values that differ only in the low byte
    path = tmp_path / "rgb16.png"
    write_array(path, original, "png")
    with Image.open(path) as im:  # the file really is a 16-bit colour PNG
        assert im.info is not None
    import png

    assert png.Reader(filename=str(path)).read()[3]["bitdepth"] == 16
    image, meta = read_image(path)
    assert meta.dtype == "uint16" and meta.channels == 3
    assert np.array_equal(to_numpy(image, meta), original)


def test_float_tiff_maps_value_range_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    original = (rng.normal(size=(16, 12)) * 37.5 + 3.0).astype(np.float32)
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, original)
    image, meta = read_image(path)
    assert meta.dtype == "float32" and meta.bit_depth == 32
    assert meta.data_range == pytest.approx((float(original.min()), float(original.max())))
    assert float(image.min()) == pytest.approx(-1.0) and float(image.max()) == pytest.approx(1.0)
    out = write_image(tmp_path / "g.tif", image, meta)
    back = tifffile.imread(out)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, original, rtol=0, atol=1e-5 * float(np.abs(original).max()))


def test_explicit_data_range_for_12_bit_camera(tmp_path):
    original = np.array([[0, 4095], [2048, 100]], dtype=np.uint16)[..., None]
    path = tmp_path / "cam.tif"
    write_array(path, original, "tiff")
    image, meta = read_image(path, data_range=(0, 4095))
    assert meta.data_range == (0.0, 4095.0)
    assert float(image[0, 0, 0]) == -1.0 and float(image[0, 0, 1]) == 1.0
    assert float(image[0, 1, 0]) == pytest.approx(2 * 2048 / 4095 - 1)
    back, _ = read_array(write_image(tmp_path / "cam2.tif", image, meta))
    assert np.array_equal(back, original)
    with pytest.raises(FewganError, match="outside the data range"):
        read_image(path, data_range=(0, 1000))


def test_pixel_size_from_imagej_tiff_and_carried_through(tmp_path):
    data = _random(np.uint16, 1)[..., 0]
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "um"})
    _, meta = read_image(path)
    assert meta.pixel_size == pytest.approx(0.25) and meta.pixel_unit == "um"
    assert meta.pixel_size_nm == pytest.approx(250.0)
    image, _ = read_image(path)
    out = write_image(tmp_path / "ij2.tif", image, meta)
    _, meta2 = read_image(out)
    assert meta2.pixel_size == pytest.approx(0.25) and meta2.pixel_unit == "um"


def test_pixel_size_from_ome_tiff(tmp_path):
    data = _random(np.uint8, 1)[..., 0]
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"PhysicalSizeX": 12.5, "PhysicalSizeXUnit": "nm",
                                                     "PhysicalSizeY": 12.5, "PhysicalSizeYUnit": "nm"})
    _, meta = read_image(path)
    assert meta.pixel_size == pytest.approx(12.5) and meta.pixel_unit == "nm"


def test_gray_saved_as_rgb_is_detected_and_overridable(tmp_path):
    gray = _random(np.uint8, 1)
    rgb = np.repeat(gray, 3, axis=2)
    path = tmp_path / "g.png"
    write_array(path, rgb, "png")
    image, meta = read_image(path)
    assert meta.channels == 1 and meta.source_channels == 3
    assert np.array_equal(to_numpy(image, meta), gray)
    image3, meta3 = read_image(path, channels=3)
    assert meta3.channels == 3 and image3.shape[0] == 3
    # written back as the file was: three equal channels
    back, _ = read_array(write_image(tmp_path / "g2.png", image, meta))
    assert np.array_equal(back, rgb)
    # a truly coloured image is not collapsed under 'auto'
    colour = _random(np.uint8, 3, seed=5)
    write_array(tmp_path / "c.png", colour, "png")
    assert read_image(tmp_path / "c.png")[1].channels == 3
    assert read_image(tmp_path / "c.png", channels=1)[1].channels == 1


def test_rgba_dropped_with_warning_and_palette_converted(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="alpha"):
        image, meta = read_image(tmp_path / "a.png")
    assert meta.channels == 3 and "alpha channel dropped" in meta.notes
    assert np.array_equal(to_numpy(image, meta)[..., 0], np.full((8, 8), 200, np.uint8))

    pal = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) % 4, mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    pal.save(tmp_path / "p.png")
    image, meta = read_image(tmp_path / "p.png")
    arr = to_numpy(image, meta)
    assert meta.channels == 3 and tuple(arr[0, 1]) == (255, 0, 0)


def test_multipage_tiff_needs_a_page(tmp_path):
    stack = np.stack([np.full((6, 6), i, np.uint16) for i in range(3)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    with pytest.raises(FewganError, match="multi-page TIFF with 3 pages"):
        read_image(path)
    image, meta = read_image(path, page=2)
    assert meta.page == 2 and int(to_numpy(image, meta)[0, 0, 0]) == 2
    with pytest.raises(FewganError, match="out of range"):
        read_image(path, page=3)


def test_jpeg_read_with_tolerance_and_written_as_png(tmp_path):
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = ((xx + yy) * 4).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "s.jpg", quality=95)
    image, meta = read_image(tmp_path / "s.jpg")
    assert meta.format == "jpeg" and meta.channels == 1
    assert np.abs(to_numpy(image, meta)[..., 0].astype(int) - smooth).max() <= 8
    out = write_image(tmp_path / "s_out", image, meta)
    assert out.suffix == ".png"
    out_jpeg = write_image(tmp_path / "s_out2", image, meta, format="jpeg")
    assert out_jpeg.suffix == ".jpg"


@pytest.mark.parametrize("content,match", [
    (None, "file not found"),
    (b"not an image at all", "unsupported file type"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "cannot read image"),
])
def test_bad_files_raise_one_line_errors(tmp_path, content, match):
    path = tmp_path / ("missing.png" if content is None else ("bad.png" if content.startswith(b"\x89") else "bad.xyz"))
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FewganError, match=match) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_write_is_atomic_leaves_no_temporary_files(tmp_path):
    image = torch.zeros(1, 4, 4)
    write_image(tmp_path / "z.png", image, ImageMeta())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.png"]


def test_save_grid_tiles_images(tmp_path):
    images = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 1.0, 0.0)])
    path = save_grid(tmp_path / "grid.png", images, nrow=3, padding=1)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (6, 16)
    assert grid[1, 1] == 0 and grid[1, 6] == 255 and grid[1, 11] in (127, 128)


def test_metadata_round_trips_through_dict():
    meta = ImageMeta(format="tiff", dtype="uint16", bit_depth=16, channels=1, data_range=(0.0, 4095.0),
                     pixel_size=0.1, pixel_unit="um", height=3, width=4)
    assert ImageMeta.from_dict(meta.to_dict()) == meta
