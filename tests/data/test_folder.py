"""Folder data sets: one data range for the set, channel unification, fitting, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.data.folder import fit_square, load_folder
from fewgan.data.images import write_array
from fewgan.errors import FewganError


def _write(path, array, fmt="png"):
    write_array(path, array if array.ndim == 3 else array[..., None], fmt)


def test_one_data_range_for_the_whole_set(tmp_path):
    # a dim and a bright image must keep their difference (no per-image min-max)
    _write(tmp_path / "dim.png", np.full((8, 8), 1000, np.uint16))
    _write(tmp_path / "bright.png", np.full((8, 8), 30000, np.uint16))
    images, meta = load_folder(tmp_path)
    assert images.shape == (2, 1, 8, 8)
    assert meta.image.data_range == (0.0, 65535.0)
    bright, dim = images[0, 0, 0, 0].item(), images[1, 0, 0, 0].item()  # sorted: bright, dim
    assert bright == pytest.approx(2 * 30000 / 65535 - 1, abs=1e-6)
    assert dim == pytest.approx(2 * 1000 / 65535 - 1, abs=1e-6)


def test_float_set_uses_global_value_range(tmp_path):
    _write(tmp_path / "a.tif", np.full((4, 4), 2.0, np.float32), "tiff")
    _write(tmp_path / "b.tif", np.full((4, 4), 6.0, np.float32), "tiff")
    images, meta = load_folder(tmp_path)
    assert meta.image.data_range == (2.0, 6.0)
    assert images[0].max().item() == -1.0 and images[1].min().item() == 1.0


def test_mixed_bit_depths_name_two_files(tmp_path):
    _write(tmp_path / "a8.png", np.zeros((4, 4), np.uint8))
    _write(tmp_path / "b16.png", np.zeros((4, 4), np.uint16))
    with pytest.raises(FewganError, match=r"a8\.png.*b16\.png"):
        load_folder(tmp_path)


def test_channels_auto_and_fit_modes(tmp_path):
    gray = np.random.default_rng(0).integers(0, 255, (10, 20), dtype=np.uint8)
    _write(tmp_path / "g.png", np.repeat(gray[..., None], 3, axis=2))  # gray saved as RGB
    _write(tmp_path / "h.png", gray)
    images, meta = load_folder(tmp_path, resolution=8, fit="crop")
    assert images.shape == (2, 1, 8, 8) and meta.image.channels == 1
    assert "fitted to 8x8 by crop" in meta.notes[0]
    torch.testing.assert_close(images[0], images[1])
    for fit in ("resize", "pad"):
        out, m = load_folder(tmp_path, resolution=16, fit=fit)
        assert out.shape == (2, 1, 16, 16) and m.fit == fit
    colour = np.random.default_rng(1).integers(0, 255, (10, 20, 3), dtype=np.uint8)
    _write(tmp_path / "c.png", colour)
    images, meta = load_folder(tmp_path, resolution=8)
    assert images.shape == (3, 3, 8, 8) and meta.image.channels == 3


def test_crop_takes_the_centre():
    x = torch.arange(6.0).repeat(1, 4, 1)  # [1, 4, 6]: columns 0..5
    out = fit_square(x, 4, "crop")
    assert out.shape == (1, 4, 4)
    assert out[0, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(FewganError, match="no PNG, TIFF or JPEG images"):
        load_folder(tmp_path)
    with pytest.raises(FewganError, match="folder not found"):
        load_folder(tmp_path / "nope")


def test_recursive_and_resolution_required(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "a.png", np.zeros((4, 6), np.uint8))
    with pytest.raises(FewganError, match="--recursive"):
        load_folder(tmp_path)
    with pytest.raises(FewganError, match="--resolution"):
        load_folder(tmp_path, recursive=True)
    images, meta = load_folder(tmp_path, recursive=True, resolution=4)
    assert images.shape == (1, 1, 4, 4) and len(meta.files) == 1
