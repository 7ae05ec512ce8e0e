"""PSNR and SSIM with an explicit data range.

The data range comes from the image's bit depth and metadata (a 12-bit image stored in
uint16 has range 4095, not 65535; see :class:`fewgan.data.images.ImageMeta`), never from
the images themselves.

References
----------
Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE Trans. Image Processing 13(4), 2004. doi:10.1109/TIP.2003.819861
"""

from __future__ import annotations

import numpy as np

PSNR = "psnr"
SSIM = "ssim"


def _pair(real, fake) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.shape != fake.shape:
        raise ValueError(f"shape mismatch: real {real.shape} vs fake {fake.shape}")
    return real, fake


def psnr(real, fake, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    Parameters
    ----------
    real, fake : arrays of one shape (``[H, W]`` or ``[H, W, C]``) in data units.
    data_range : the span of the data (255 for 8-bit, 4095 for 12-bit, 2 for [-1, 1]).

    Returns ``inf`` for identical images.
    """
    real, fake = _pair(real, fake)
    mse = float(np.mean((real - fake) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(float(data_range) ** 2 / mse))


def ssim(real, fake, data_range: float) -> float:
    """Mean structural similarity with Wang et al.'s parameters.

    Gaussian window with sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, population covariance
    (``use_sample_covariance=False``), averaged over channels for ``[H, W, C]`` input.
    Images smaller than the 11 px window use the largest odd window that fits.
    """
    from skimage.metrics import structural_similarity

    real, fake = _pair(real, fake)
    channel_axis = -1 if real.ndim == 3 else None
    side = min(real.shape[0], real.shape[1])
    kwargs = {}
    if side < 11:  # skimage's Gaussian window needs 11 px; shrink it (and say so in the docstring)
        kwargs["win_size"] = side if side % 2 == 1 else side - 1
        kwargs["gaussian_weights"] = False
    else:
        kwargs["gaussian_weights"] = True
        kwargs["sigma"] = 1.5
    return float(
        structural_similarity(
            real, fake, data_range=float(data_range), channel_axis=channel_axis,
            use_sample_covariance=False, **kwargs,
        )
    )


def data_range_of(meta) -> float:
    """The PSNR/SSIM data range of images described by ``meta`` (``ImageMeta``): ``hi - lo``.

    ``meta.data_range`` is what the image was read with: (0, 255) for 8-bit, (0, 65535) for
    16-bit, (0, 4095) for a 12-bit camera image stored in uint16 when read with that range;
    ``None`` means images in [-1, 1] (range 2).
    """
    if meta is None:
        return 2.0
    lo, hi = meta.data_range
    return float(hi) - float(lo)


def compare(real, fake, meta=None) -> dict[str, float]:
    """PSNR and SSIM of two ``[C, H, W]`` tensors/arrays in [-1, 1], in the data units of ``meta``.

    For SinGAN's per-scale reconstructions: ``compare(real_at_scale, recon_at_scale, meta)``.
    Returns ``{"psnr": dB, "ssim": value, "data_range": hi - lo}``.
    """
    def units(x):
        x = x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)
        x = np.moveaxis(x, 0, -1)
        x = x[..., 0] if x.shape[-1] == 1 else x
        if meta is None:
            return x
        lo, hi = (float(v) for v in meta.data_range)
        return (np.clip(x, -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo

    r, f = units(real), units(fake)
    data_range = data_range_of(meta)
    return {PSNR: psnr(r, f, data_range), SSIM: ssim(r, f, data_range), "data_range": data_range}
