"""Single-image FID and pixel diversity for single-image generators (SinGAN).

SIFID: Shaham, Dekel and Michaeli, "SinGAN: Learning a Generative Model from a Single Natural
Image", ICCV 2019. For each generated image, the Frechet distance between the distribution of
Inception feature vectors over the *positions* of a feature map of the real image and that of
the generated image, at native resolution (no resize). The paper describes the features before
the second max pool (192 channels); the authors' script uses the 64 channels before the first
max pool, with torchvision's ImageNet Inception weights. Both taps are computed here, each
labelled with its layer and weights file; the stem of the FID weights file or of torchvision's
``inception_v3_google-0cc3c7bd.pth`` loads into the same network. Per-image values are kept so
that outliers show.

Pixel diversity: the per-pixel standard deviation over the generated samples, averaged over
pixels and channels, divided by the standard deviation of the real image (Shaham et al. 2019
report this diversity measure beside SIFID).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.metrics.fid import frechet_distance, trace_sqrt_product

__all__ = ["SIFID", "PIXEL_DIVERSITY", "SIFID_TAPS", "sifid_from_positions", "sifid", "pixel_diversity"]

#: Result names.
SIFID = "sifid"
PIXEL_DIVERSITY = "pixel_diversity"
#: The two taps and what they are.
SIFID_TAPS = {
    "64": "Conv2d_2b_3x3 output, 64 channels, before the first max pool (the official SIFID script)",
    "192": "Conv2d_4a_3x3 output, 192 channels, before the second max pool (the SinGAN paper)",
}


def sifid_from_positions(real_positions, fake_positions, eps: float = 1e-6, method: str = "auto") -> float:
    """Frechet distance between two ``[P, C]`` sets of feature-map positions (float64).

    ``method="sqrtm"`` is the reference computation (:func:`fewgan.metrics.fid.frechet_distance`,
    as the official script); ``"svd"`` computes the same number through
    :func:`fewgan.metrics.fid.trace_sqrt_product`; ``"auto"`` uses ``"svd"`` when a map has fewer
    positions than channels (singular covariances, where ``sqrtm`` is slow) and ``"sqrtm"``
    otherwise.
    """
    a = np.asarray(real_positions, dtype=np.float64)
    b = np.asarray(fake_positions, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(a.shape[0], b.shape[0]) < 2:
        raise FewganError(f"SIFID needs [P, C] position sets with P >= 2 and the same C, got {a.shape} and {b.shape}")
    if method not in ("auto", "sqrtm", "svd"):
        raise FewganError(f"SIFID method {method!r} is not 'auto', 'sqrtm' or 'svd'")
    if method == "auto":
        method = "svd" if min(a.shape[0], b.shape[0]) < a.shape[1] else "sqrtm"
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if method == "svd":
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(a, b))
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)


def _images(x) -> list:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, torch.Tensor):
        return [x] if x.ndim == 3 else list(x)
    return list(x)


def sifid(real_image, fake_images, layer: str | Iterable[str] = ("64", "192"), weights=None, device="cpu",
          window=None) -> dict[str, Any]:
    """SIFID of each generated image against the one real image, at both taps.

    Parameters
    ----------
    real_image : ``[C, H, W]`` tensor/array in [-1, 1] (C = 1 or 3).
    fake_images : ``[N, C, H', W']`` or a list of ``[C, H', W']`` in [-1, 1] (any size, used as is).
    layer : ``"64"``, ``"192"`` or both (default).
    weights : weights file (FID file or torchvision's ImageNet Inception file); None looks up
        the FID weights (:func:`fewgan.metrics.features.find_weights`).
    window : intensity window; None takes it from the real image
        (:func:`fewgan.metrics.features.intensity_window`) and applies it to the fakes too.

    Returns
    -------
    ``{"sifid_64": {...}, "sifid_192": {...}}``, each ``{"mean", "std", "median", "max",
    "per_image": [N floats], "layer": description, "weights_file", "weights_sha256", "n",
    "resize", "window", "positions_real", "channels"}``; when the real map has fewer positions than channels (e.g. a
    64 px image at the 192 tap: 12 x 12 positions) the covariances are singular and the value is
    less reliable (the 64 tap, or larger images, avoid that).
    """
    from fewgan.metrics import features

    taps = [layer] if isinstance(layer, (str, int)) else list(layer)
    taps = [str(t) for t in taps]
    for t in taps:
        if t not in SIFID_TAPS:
            raise FewganError(f"SIFID layer {t!r} is not one of {', '.join(SIFID_TAPS)}")
    real = _images(real_image)
    if len(real) != 1:
        raise FewganError(f"SIFID compares against one real image, got {len(real)}")
    fakes = _images(fake_images)
    if not fakes:
        raise FewganError("SIFID needs at least one generated image")
    if window is None:
        window = features.intensity_window(real[0])
    _, info = features.load_stem(weights, device)
    ref = features.stem_features(real[0], window=window, taps=taps, weights=weights, device=device)
    values: dict[str, list[float]] = {t: [] for t in taps}
    for fake in fakes:
        got = features.stem_features(fake, window=window, taps=taps, weights=weights, device=device)
        for t in taps:
            values[t].append(sifid_from_positions(ref[t], got[t]))
    out = {}
    for t in taps:
        v = np.asarray(values[t])
        out[f"{SIFID}_{t}"] = {
            "mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "max": float(v.max()),
            "per_image": [float(x) for x in v], "layer": SIFID_TAPS[t], "weights_file": info["name"],
            "weights_sha256": info["sha256"], "n": int(v.size), "resize": "none (native resolution)",
            "window": [float(window[0]), float(window[1])],
            # fewer positions than channels makes the covariance singular (small images at the 192 tap)
            "positions_real": int(ref[t].shape[0]), "channels": int(ref[t].shape[1]),
        }
    return out


def pixel_diversity(samples, real) -> float:
    """Mean over pixels and channels of the per-pixel std over ``samples``, divided by the real image's std.

    ``samples``: ``[N, C, H, W]`` (N >= 2) and ``real``: ``[C, H, W]``, same C, H, W, same units
    (e.g. [-1, 1]). Population standard deviations. 0 when every sample is the same image.
    """
    s = np.asarray(samples.detach().cpu() if isinstance(samples, torch.Tensor) else samples, dtype=np.float64)
    r = np.asarray(real.detach().cpu() if isinstance(real, torch.Tensor) else real, dtype=np.float64)
    if s.ndim != 4 or s.shape[0] < 2:
        raise FewganError(f"pixel diversity needs [N, C, H, W] samples with N >= 2, got shape {s.shape}")
    if s.shape[1:] != r.shape:
        raise FewganError(f"pixel diversity needs samples of the real image's shape {r.shape}, got {s.shape[1:]}: "
                          f"generate at the real size")
    real_std = r.std()
    if real_std == 0:
        raise FewganError("the real image is constant (standard deviation 0): pixel diversity is undefined")
    return float(s.std(axis=0).mean() / real_std)
