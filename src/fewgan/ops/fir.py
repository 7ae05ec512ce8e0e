"""FIR-filtered up- and down-sampling in pure PyTorch (no compiled kernels).

StyleGAN2 resamples feature maps and images through a small separable low-pass filter
(``[1, 3, 3, 1]``) instead of nearest-neighbour or bilinear interpolation, so that the
networks do not alias (Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020, section 4 and appendix B; the filter choice follows Zhang, "Making
Convolutional Networks Shift-Invariant Again", ICML 2019).

The primitive is :func:`upfirdn2d`: zero-insertion upsampling by ``up``, zero padding (or
cropping, for negative pads), correlation with the filter, decimation by ``down``. A
separable filter (a 1-D tap vector) is applied as two 1-D depthwise convolutions, which
is cheaper on a CPU than one 2-D convolution with the outer product.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def make_filter(taps: Sequence[float] = (1, 3, 3, 1), device=None) -> torch.Tensor:
    """A 1-D low-pass filter normalised to sum 1 (its 2-D version is the outer product).

    Returns a float32 tensor ``[K]``; the 2-D filter ``f[:, None] * f[None, :]`` sums to 1,
    so a constant image stays constant (up to the ``gain`` of :func:`upfirdn2d`).
    """
    f = torch.as_tensor(taps, dtype=torch.float32, device=device)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError("make_filter: expected a non-empty 1-D tap list")
    return f / f.sum()


def _pads(padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return (padding, padding, padding, padding)
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    if len(padding) == 4:
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    raise ValueError("padding: int, (px, py) or (px0, px1, py0, py1)")


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding=0,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with a separable FIR filter, decimate.

    Parameters
    ----------
    x : ``[N, C, H, W]`` tensor (any range).
    f : ``[K]`` 1-D taps (separable; applied along both axes) from :func:`make_filter`.
    up, down : integer factors.
    padding : ``int``, ``(px, py)`` or ``(px0, px1, py0, py1)`` applied after zero
        insertion; negative values crop.
    gain : overall gain; ``up ** 2`` keeps the mean of an upsampled image (zero insertion
        divides it by ``up ** 2``).

    Returns ``[N, C, (H * up + py0 + py1 - K) // down + 1, (W * up + px0 + px1 - K) // down + 1]``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d: expected [N, C, H, W], got {tuple(x.shape)}")
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = _pads(padding)
    if any((px0, px1, py0, py1)):
        x = F.pad(x, [px0, px1, py0, py1])
    f = f.to(dtype=x.dtype, device=x.device) * (gain ** 0.5)
    k = f.numel()
    # symmetric taps are their own flip; flip anyway so the op is a true convolution
    f = f.flip(0)
    fx = f.view(1, 1, 1, k).expand(c, 1, 1, k)
    fy = f.view(1, 1, k, 1).expand(c, 1, k, 1)
    x = F.conv2d(x, fx, groups=c, stride=(1, down))
    x = F.conv2d(x, fy, groups=c, stride=(down, 1))
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, H * factor, W * factor]``: zero insertion + FIR, mean kept."""
    k = f.numel()
    p0 = (k + factor - 1) // 2
    p1 = (k - factor) // 2
    return upfirdn2d(x, f, up=factor, padding=(p0, p1, p0, p1), gain=factor ** 2)


def downsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, H // factor, W // factor]``: FIR low-pass + decimation."""
    k = f.numel()
    p0 = (k - factor + 1) // 2
    p1 = (k - factor) // 2
    return upfirdn2d(x, f, down=factor, padding=(p0, p1, p0, p1))
