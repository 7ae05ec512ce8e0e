"""MATLAB-style bicubic resizing with antialiasing, as a pair of cached linear maps.

MATLAB's ``imresize(..., 'bicubic')`` (the resize SinGAN's public code uses to build its
pyramid and to upsample between scales) is separable: along each axis, output pixel ``j``
of ``out`` pixels sits at input coordinate ``(j + 0.5) * in / out - 0.5`` and takes a
weighted sum of its neighbours with Keys' cubic kernel (``a = -0.5``); when shrinking, the
kernel is stretched by ``in / out`` (antialiasing); weights are normalised to sum to one;
samples outside the image are mirrored with the edge pixel repeated (``[a, a, b, c, d, d]``).
The output side for a scale factor ``s`` is ``ceil(side * s)``.

Because the weights depend only on the two sizes, each axis is a fixed ``[out, in]``
matrix. :func:`resize_matrix` builds it once per size pair (cached) and :func:`imresize`
applies ``M_h @ x @ M_w^T``, which is differentiable and costs two small matrix products.

References
----------
Keys, "Cubic convolution interpolation for digital image processing", IEEE Trans. ASSP
29(6), 1981. doi:10.1109/TASSP.1981.1163711
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = ["cubic", "resize_matrix", "imresize", "scaled_size"]


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (``a = -0.5``, MATLAB's choice) at distances ``x``."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def scaled_size(side: int, scale: float) -> int:
    """Output side of a resize by ``scale``: ``ceil(side * scale)`` (MATLAB and the public SinGAN)."""
    return int(math.ceil(side * scale))


def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    """Symmetric padding with the edge repeated: -1 -> 0, -2 -> 1, size -> size - 1 (any distance)."""
    period = 2 * size
    index = np.mod(index, period)
    return np.where(index >= size, period - 1 - index, index)


@functools.lru_cache(maxsize=512)
def _resize_matrix_np(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    if in_size == out_size:
        return np.eye(in_size)
    scale = out_size / in_size
    support = 4.0  # width of the cubic kernel in its own units
    stretch = scale if (antialias and scale < 1) else 1.0
    taps = int(math.ceil(support / stretch)) + 2  # a margin on both sides, as MATLAB does
    pos = (np.arange(out_size) + 0.5) / scale - 0.5  # input coordinate of each output pixel
    first = np.floor(pos) - taps // 2 + 1
    index = first[:, None] + np.arange(taps)[None, :]
    weight = cubic((pos[:, None] - index) * stretch)
    weight /= weight.sum(axis=1, keepdims=True)
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.repeat(np.arange(out_size), taps), _mirror(index.astype(np.int64), in_size).ravel()),
              weight.ravel())
    return matrix


_DEVICE_CACHE: dict = {}


def resize_matrix(in_size: int, out_size: int, antialias: bool = True, *, dtype=torch.float32,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``[out_size, in_size]`` matrix of a 1-D MATLAB-style bicubic resize.

    Rows sum to one; the identity when the sizes are equal. Cached per sizes, dtype and device.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}")
    key = (int(in_size), int(out_size), bool(antialias), dtype, str(device))
    m = _DEVICE_CACHE.get(key)
    if m is None:
        m = torch.from_numpy(_resize_matrix_np(int(in_size), int(out_size), bool(antialias))).to(dtype=dtype, device=device)
        if len(_DEVICE_CACHE) > 2048:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = m
    return m


def imresize(x: torch.Tensor, scale: float | tuple[float, float] | None = None,
             size: tuple[int, int] | None = None, antialias: bool = True) -> torch.Tensor:
    """Resize ``[..., H, W]`` images with MATLAB-style bicubic interpolation.

    Parameters
    ----------
    x : tensor ``[..., H, W]`` (e.g. ``[N, C, H, W]`` in [-1, 1]); any float dtype.
    scale : factor (or ``(sy, sx)``); the output is ``ceil(H * sy) x ceil(W * sx)``.
    size : ``(h, w)`` output size instead of ``scale``.
    antialias : stretch the kernel when shrinking (MATLAB's default).

    Returns ``[..., h, w]``, differentiable with respect to ``x``. Values can overshoot the
    input range slightly (the cubic kernel has negative lobes), as in MATLAB.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    h, w = x.shape[-2], x.shape[-1]
    if size is None:
        sy, sx = (scale, scale) if not isinstance(scale, (tuple, list)) else scale
        size = (scaled_size(h, sy), scaled_size(w, sx))
    out_h, out_w = int(size[0]), int(size[1])
    if (out_h, out_w) == (h, w):
        return x
    y = x
    if out_h != h:
        y = torch.matmul(resize_matrix(h, out_h, antialias, dtype=x.dtype, device=x.device), y)
    if out_w != w:
        y = torch.matmul(y, resize_matrix(w, out_w, antialias, dtype=x.dtype, device=x.device).t())
    return y
