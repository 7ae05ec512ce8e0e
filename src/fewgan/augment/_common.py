"""Helpers shared by the augmentation modules: random draws, input checks, pixel gathers.

Random draws take an optional :class:`torch.Generator`. Parameters are drawn on the
generator's device (CPU when a CPU generator is given, so a seeded replay does not depend
on the accelerator) and then moved to the images' device; without a generator they use
the global RNG of the images' device. All parameters are float32 or int64 tensors.
"""

from __future__ import annotations

import torch


def check_images(x: torch.Tensor, who: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating ``[N, C, H, W]`` tensor (a programming error)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who} expects a floating [N, C, H, W] tensor, got {shape}")


def _where(generator: torch.Generator | None, device: torch.device) -> dict:
    if generator is None:
        return {"device": device}
    return {"device": generator.device, "generator": generator}


def uniform(
    n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``n`` float32 draws from U(lo, hi), on ``device``."""
    u = torch.rand(n, dtype=torch.float32, **_where(generator, device))
    return (lo + (hi - lo) * u).to(device)


def normal(n: int, std: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` float32 draws from N(0, std^2), on ``device``."""
    z = torch.randn(n, dtype=torch.float32, **_where(generator, device))
    return (std * z).to(device)


def randint(
    n: int, lo: int, hi: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``n`` int64 draws, uniform over the integers ``lo <= k < hi``, on ``device``."""
    k = torch.randint(lo, hi, (n,), dtype=torch.int64, **_where(generator, device))
    return k.to(device)


def bernoulli(n: int, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` booleans, each True with probability ``p``, on ``device``."""
    return uniform(n, 0.0, 1.0, generator, device) < p


def gather_pixels(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Pick pixels by integer index: ``y[n, c, i, j] = x[n, c, rows[n, i, j], cols[n, i, j]]``.

    ``rows`` / ``cols``: int64 ``[N, H, W]`` inside the image. Differentiable w.r.t. ``x``
    (the backward pass scatters the gradient back to the picked pixels).
    """
    n, c, h, w = x.shape
    index = (rows * w + cols).reshape(n, 1, h * w).expand(n, c, h * w)
    return torch.gather(x.reshape(n, c, h * w), 2, index).reshape(n, c, h, w)


def pixel_grid(n: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of every pixel, int64 ``[N, H, W]`` each (views, no copy)."""
    rows = torch.arange(h, device=device).view(1, h, 1).expand(n, h, w)
    cols = torch.arange(w, device=device).view(1, 1, w).expand(n, h, w)
    return rows, cols


def as_factor(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-sample ``[N]`` parameter as ``[N, 1, 1, 1]`` in ``x``'s dtype and device."""
    return value.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def split_labels(x: torch.Tensor, label_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``[N, C + L, H, W]`` -> (image ``[N, C, H, W]``, label channels ``[N, L, H, W]`` or None when L is 0).

    Label channels (:mod:`fewgan.data.labels`: -1 is background) move with the image under every
    geometric op and never take a colour op.
    """
    if not label_channels:
        return x, None
    return x[:, :-label_channels], x[:, -label_channels:]


def join_labels(image: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The inverse of :func:`split_labels`."""
    return image if labels is None else torch.cat([image, labels], dim=1)
