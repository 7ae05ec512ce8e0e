"""PSNR and SSIM: identities, hand computations, data range from the image metadata, Wang et al.'s window."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from fewgan.data.images import ImageMeta, read_image, write_array
from fewgan.metrics.fidelity import compare, data_range_of, psnr, ssim


def _image(seed=0, shape=(40, 48)):
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 200 + 20


def _ssim_by_hand(x, y, data_range, sample_covariance=False):
    """Wang et al. 2004: Gaussian window sigma 1.5 (11 x 11), K1 0.01, K2 0.03, mean over the valid area."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)

    def filt(a):
        return ndimage.gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")  # radius 5: 11 x 11

    n = 11 * 11
    correction = n / (n - 1) if sample_covariance else 1.0
    mx, my = filt(x), filt(y)
    vx = (filt(x * x) - mx * mx) * correction
    vy = (filt(y * y) - my * my) * correction
    cxy = (filt(x * y) - mx * my) * correction
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean())


def test_ssim_of_an_image_with_itself_is_one_and_psnr_infinite():
    x = _image()
    assert ssim(x, x, 255) == pytest.approx(1.0, abs=1e-12)
    assert psnr(x, x, 255) == math.inf
    rgb = np.stack([x, x * 0.5, x * 0.8], axis=-1)
    assert ssim(rgb, rgb, 255) == pytest.approx(1.0, abs=1e-12)


def test_psnr_hand_computation():
    real = np.array([[0.0, 10.0], [20.0, 30.0]])
    fake = np.array([[1.0, 12.0], [20.0, 27.0]])
    mse = (1 + 4 + 0 + 9) / 4  # 3.5
    assert psnr(real, fake, 255) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
    assert psnr(real, fake, 4095) == pytest.approx(10 * math.log10(4095**2 / 3.5), abs=1e-12)
    # a constant offset of 1 grey level in 8-bit: 10 log10(255^2) = 48.13 dB
    assert psnr(real, real + 1, 255) == pytest.approx(48.1308036, abs=1e-6)


def test_ssim_uses_gaussian_window_sigma_1_5_and_population_covariance():
    x = _image(1)
    y = x + np.random.default_rng(2).normal(0, 12, size=x.shape)
    expected = _ssim_by_hand(x, y, 255)
    assert ssim(x, y, 255) == pytest.approx(expected, abs=1e-9)
    # the sample-covariance variant differs measurably, so the test can tell the conventions apart
    assert abs(_ssim_by_hand(x, y, 255, sample_covariance=True) - expected) > 1e-4


def test_data_range_from_bit_depth_12_bit_in_uint16_is_4095(tmp_path):
    rng = np.random.default_rng(3)
    real = rng.integers(0, 4096, size=(24, 24, 1)).astype(np.uint16)
    fake = np.clip(real.astype(np.int64) + rng.integers(-40, 41, size=real.shape), 0, 4095).astype(np.uint16)
    write_array(tmp_path / "real.tif", real, "tiff")
    write_array(tmp_path / "fake.tif", fake, "tiff")
    r, meta = read_image(tmp_path / "real.tif", data_range=(0, 4095))
    f, _ = read_image(tmp_path / "fake.tif", data_range=(0, 4095))
    assert tuple(meta.data_range) == (0.0, 4095.0)
    assert data_range_of(meta) == 4095.0
    got = compare(r, f, meta)
    mse = np.mean((real.astype(np.float64) - fake.astype(np.float64)) ** 2)
    assert got["data_range"] == 4095.0
    assert got["psnr"] == pytest.approx(10 * math.log10(4095**2 / mse), abs=1e-4)
    # the dtype's range would overstate the PSNR by 20 log10(65535 / 4095) = 24.08 dB
    assert psnr(real[..., 0], fake[..., 0], 65535) - got["psnr"] == pytest.approx(20 * math.log10(65535 / 4095), abs=1e-3)
    assert got["ssim"] == pytest.approx(ssim(real[..., 0].astype(float), fake[..., 0].astype(float), 4095), abs=1e-5)
    # 8-bit default and images in [-1, 1]
    assert data_range_of(ImageMeta()) == 255.0
    assert data_range_of(None) == 2.0


def test_compare_on_tensors_in_unit_range():
    x = torch.rand(3, 20, 20) * 2 - 1
    y = (x + 0.01).clamp(-1, 1)
    out = compare(x, y)
    assert out["data_range"] == 2.0
    mse = float(((x.double() - y.double()) ** 2).mean())
    assert out["psnr"] == pytest.approx(10 * math.log10(4 / mse), abs=1e-5)
    assert 0.9 < out["ssim"] <= 1.0


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)), 255)
