"""Tiny images and a tiny trained run shared by the SinGAN tests (CPU, 1 thread)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fewgan.run import torch_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def blobs(h: int, w: int, channels: int = 3, seed: int = 0, peak: float = 255.0) -> np.ndarray:
    """A smooth test image: a few Gaussian blobs on a gradient, ``[H, W, C]`` float in [0, peak]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, channels))
    for c in range(channels):
        img = 0.3 * (xx / w) + 0.2 * (yy / h) * (c + 1) / channels
        for _ in range(4):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(2, max(3, min(h, w) / 4))
            img += 0.6 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out[..., c] = img
    out -= out.min()
    out /= out.max()
    return out * peak


def write_png(path, array: np.ndarray) -> str:
    arr = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path)
    return str(path)


TINY = dict(steps=10, log_every=5, checkpoint_every=4, sample_count=2, min_size=16, max_size=200)


@pytest.fixture(scope="session")
def rgb_image(tmp_path_factory) -> str:
    return write_png(tmp_path_factory.mktemp("img") / "rgb24.png", blobs(24, 22, 3))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, rgb_image):
    """A finished 4-scale run (18x16 to 24x22) on a 24 x 22 RGB image, 10 steps per scale (through the
    API, which also draws the scale figure and writes the report)."""
    from fewgan.api import train_singan as train

    with torch_threads(1):
        return train(rgb_image, results=tmp_path_factory.mktemp("runs"), quiet=True, **TINY)
