"""Synthetic particle micrographs with exact ground truth.

A micrograph is rendered in photo-electrons and quantised like a camera would:

1. particle radii drawn from a log-normal distribution (median ``radius``, shape
   ``radius_sigma``), clipped to ``[radius_min, radius_max]``;
2. centres placed uniformly, fully inside the field, with at least ``min_spacing`` px
   between particle edges (a negative spacing allows that much overlap), by rejection;
3. each particle a uniform disk rendered with 4 x 4 supersampling (so its area is exact to
   a fraction of a pixel), of peak intensity ``photons * U(1 - peak_jitter, 1 + peak_jitter)``
   photo-electrons above the background;
4. blurred by a Gaussian point-spread function of standard deviation ``psf_sigma`` px;
5. background ``background`` photo-electrons; everything multiplied by a linear
   illumination field from ``1 - gradient/2`` to ``1 + gradient/2`` across the image at
   angle ``gradient_angle``;
6. Poisson shot noise, then Gaussian read noise of ``read_noise`` electrons;
7. converted with ``gain`` digital numbers per electron plus ``offset``, rounded and
   clipped to 8 or 16 bits (the default gain fills about a third of the 16-bit range, or
   most of the 8-bit range).

Particles are bright on a dark background (fluorescence); ``polarity='dark'`` inverts the
particle contrast (bright-field, electron micrographs). The ground truth lists every
particle's centre (x, y in px, origin at the top-left pixel's centre), radius (px) and
peak intensity (photo-electrons, and the expected digital number at its centre before
noise), with all generation parameters.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from fewgan.errors import FewganError
from fewgan.run import atomic_write_text


@dataclasses.dataclass(frozen=True)
class SynthParams:
    """Parameters of one synthetic micrograph (defaults: a 16-bit fluorescence-like image)."""

    size: tuple[int, int] = (512, 512)
    density: float = 2.5          # particles per 10,000 px^2 (65 on 512 x 512)
    radius: float = 6.0           # median radius, px
    radius_sigma: float = 0.2     # log-normal shape
    radius_min: float = 2.0
    radius_max: float = 16.0
    min_spacing: float = 3.0      # px between particle edges; negative allows overlap
    psf_sigma: float = 1.0        # Gaussian PSF, px
    photons: float = 800.0        # peak particle signal above background, photo-electrons
    peak_jitter: float = 0.25     # peak drawn from photons * U(1 - j, 1 + j)
    background: float = 150.0     # photo-electrons
    gradient: float = 0.3         # illumination varies by this fraction across the field
    gradient_angle: float = 30.0  # degrees, direction of increasing illumination
    read_noise: float = 4.0       # electrons, Gaussian
    shot_noise: bool = True       # Poisson noise on the signal
    gain: float | None = None     # DN per electron; default from bit depth
    offset: float | None = None   # DN added; default from bit depth
    bit_depth: int = 16
    channels: int = 1
    polarity: str = "bright"
    pixel_size: float | None = None
    pixel_unit: str = "nm"

    def resolved_gain_offset(self) -> tuple[float, float]:
        if self.bit_depth == 16:
            gain = 16.0 if self.gain is None else self.gain
            offset = 100.0 if self.offset is None else self.offset
        else:
            top = (self.background + self.photons * (1 + self.peak_jitter)) * (1 + self.gradient / 2)
            gain = 220.0 / top if self.gain is None else self.gain
            offset = 10.0 if self.offset is None else self.offset
        return gain, offset

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["gain"], d["offset"] = self.resolved_gain_offset()
        return d


_TINTS = np.array([[1.0, 0.85, 0.35], [0.4, 1.0, 0.55], [0.45, 0.6, 1.0]])


def make_micrograph(seed: int = 0, noise: bool = True, **params: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one micrograph.

    Parameters
    ----------
    seed : random seed; the same seed and parameters give the same image, bit for bit.
    noise : False renders the noise-free expected image (no shot or read noise).
    **params : fields of :class:`SynthParams` (``size`` may be an int for a square).

    Returns
    -------
    image : ``[H, W]`` (gray) or ``[H, W, 3]`` array of uint8 / uint16.
    truth : dict with ``particles`` (list of {x, y, radius, peak_electrons, peak_dn, tint}),
        ``count``, ``params``, ``seed`` and ``noise``.
    """
    if isinstance(params.get("size"), int):
        params["size"] = (params["size"], params["size"])
    try:
        p = SynthParams(**params)
    except TypeError as exc:
        raise FewganError(f"synthetic micrograph: {exc}") from None
    _check(p)
    rng = np.random.default_rng(seed)
    h, w = int(p.size[0]), int(p.size[1])
    target = int(round(p.density * h * w / 10_000))
    particles = _place(rng, h, w, target, p)

    ss = 4  # supersampling factor for anti-aliased disks
    signal = np.zeros((h, w), dtype=np.float64)
    tint_index = []
    layers = np.zeros((3, h, w)) if p.channels == 3 else None
    for x, y, r, peak in particles:
        x0, x1 = max(int(np.floor(x - r - 1)), 0), min(int(np.ceil(x + r + 2)), w)
        y0, y1 = max(int(np.floor(y - r - 1)), 0), min(int(np.ceil(y + r + 2)), h)
        yy = (np.arange(y0 * ss, y1 * ss) + 0.5) / ss - 0.5
        xx = (np.arange(x0 * ss, x1 * ss) + 0.5) / ss - 0.5
        inside = ((yy[:, None] - y) ** 2 + (xx[None, :] - x) ** 2) <= r * r
        cover = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
        signal[y0:y1, x0:x1] += peak * cover
        if layers is not None:
            k = int(rng.integers(0, len(_TINTS)))
            tint_index.append(k)
            layers[:, y0:y1, x0:x1] += peak * cover[None] * _TINTS[k][:, None, None]
    if p.psf_sigma > 0:
        signal = ndimage.gaussian_filter(signal, p.psf_sigma, mode="constant")
        if layers is not None:
            layers = np.stack([ndimage.gaussian_filter(l, p.psf_sigma, mode="constant") for l in layers])
    illum = _illumination(h, w, p)
    if p.polarity == "dark":
        # dark particles on a bright field: the particle signal absorbs from background + photons
        level = p.background + p.photons
        expected = (level - signal) * illum
        stack = None if layers is None else (level - layers) * illum[None]
    else:
        expected = (p.background + signal) * illum
        stack = None if layers is None else (p.background + layers) * illum[None]
    rng_noise = np.random.default_rng([seed, 1])
    electrons = stack if stack is not None else expected[None]
    if noise:
        electrons = rng_noise.poisson(np.clip(electrons, 0, None)).astype(np.float64) if p.shot_noise else electrons
        electrons = electrons + rng_noise.normal(0.0, p.read_noise, size=electrons.shape)
    gain, offset = p.resolved_gain_offset()
    dn = electrons * gain + offset
    dtype = np.uint16 if p.bit_depth == 16 else np.uint8
    image = np.clip(np.rint(dn), 0, np.iinfo(dtype).max).astype(dtype)
    image = image[0] if p.channels == 1 else np.moveaxis(image, 0, -1)

    records = []
    for i, (x, y, r, peak) in enumerate(particles):
        ix, iy = int(round(x)), int(round(y))
        rec = {
            "x": round(float(x), 4), "y": round(float(y), 4), "radius": round(float(r), 4),
            "peak_electrons": round(float(peak), 3),
            "peak_dn": round(float(expected[iy, ix] * gain + offset), 2),
        }
        if tint_index:
            rec["tint"] = [float(v) for v in _TINTS[tint_index[i]]]
        records.append(rec)
    truth = {
        "count": len(records),
        "requested_count": target,
        "particles": records,
        "seed": int(seed),
        "noise": bool(noise),
        "params": p.to_dict(),
        "coordinates": "x = column, y = row, in px, origin at the centre of the top-left pixel",
    }
    return image, truth


def instance_labels(truth: dict[str, Any]) -> np.ndarray:
    """The exact instance label image ``[H, W]`` uint16 of a micrograph's ground truth.

    Pixel (row r, column c) belongs to particle i (1-based, in the order of ``truth['particles']``)
    when its centre lies inside the particle's disk, ``(c - x)^2 + (r - y)^2 <= radius^2`` (the
    coordinates of the truth: origin at the top-left pixel's centre); where disks overlap (negative
    ``min_spacing``) the particle whose centre is nearer relative to its radius wins. 0 is background.
    """
    h, w = (int(v) for v in truth["params"]["size"])
    labels = np.zeros((h, w), np.uint16)
    best = np.full((h, w), np.inf)
    for i, rec in enumerate(truth["particles"], start=1):
        x, y, r = rec["x"], rec["y"], rec["radius"]
        x0, x1 = max(int(np.floor(x - r)), 0), min(int(np.ceil(x + r)) + 1, w)
        y0, y1 = max(int(np.floor(y - r)), 0), min(int(np.ceil(y + r)) + 1, h)
        rr = ((np.arange(y0, y1)[:, None] - y) ** 2 + (np.arange(x0, x1)[None, :] - x) ** 2) / (r * r)
        win_best, win_labels = best[y0:y1, x0:x1], labels[y0:y1, x0:x1]
        take = (rr <= 1.0) & (rr < win_best)
        win_best[take] = rr[take]
        win_labels[take] = i
    return labels


def _check(p: SynthParams) -> None:
    if p.bit_depth not in (8, 16):
        raise FewganError(f"bit depth must be 8 or 16, not {p.bit_depth}")
    if p.channels not in (1, 3):
        raise FewganError(f"channels must be 1 or 3, not {p.channels}")
    if p.polarity not in ("bright", "dark"):
        raise FewganError(f"polarity must be 'bright' or 'dark', not {p.polarity!r}")
    if min(p.size) < 8:
        raise FewganError(f"image size {p.size} too small (at least 8 px)")
    if p.radius <= 0 or p.radius_min <= 0 or p.radius_max < p.radius_min:
        raise FewganError("radii must be positive with radius_min <= radius_max")
    if p.density < 0:
        raise FewganError("density must be >= 0")


def _place(rng: np.random.Generator, h: int, w: int, target: int, p: SynthParams) -> list[tuple[float, float, float, float]]:
    placed: list[tuple[float, float, float, float]] = []
    attempts = 0
    limit = max(200, 200 * target)
    while len(placed) < target and attempts < limit:
        attempts += 1
        r = float(np.clip(p.radius * np.exp(p.radius_sigma * rng.standard_normal()), p.radius_min, p.radius_max))
        if 2 * r + 2 > min(h, w):
            continue
        x = float(rng.uniform(r + 0.5, w - 1.5 - r))
        y = float(rng.uniform(r + 0.5, h - 1.5 - r))
        ok = True
        for (qx, qy, qr, _) in placed:
            if (x - qx) ** 2 + (y - qy) ** 2 < (r + qr + p.min_spacing) ** 2:
                ok = False
                break
        if ok:
            peak = p.photons * float(rng.uniform(1 - p.peak_jitter, 1 + p.peak_jitter))
            placed.append((x, y, r, peak))
    return placed


def _illumination(h: int, w: int, p: SynthParams) -> np.ndarray:
    theta = np.deg2rad(p.gradient_angle)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    proj = (xx / max(w - 1, 1) - 0.5) * np.cos(theta) + (yy / max(h - 1, 1) - 0.5) * np.sin(theta)
    span = abs(np.cos(theta)) + abs(np.sin(theta))
    return 1.0 + p.gradient * proj / max(span, 1e-9)


def synth(
    out: str | os.PathLike,
    mode: str = "micrograph",
    n: int | None = None,
    size: int | None = None,
    seed: int = 0,
    format: str | None = None,
    **params: Any,
) -> Path:
    """Write synthetic micrographs and their ground truth into the folder ``out``.

    ``mode='micrograph'``: one image ``micrograph.png`` (default 512 x 512) and
    ``micrograph.json``. ``mode='folder'``: ``n`` images ``particles_0000.png`` ... (default
    200 of 64 x 64, fewer particles each) with one JSON per image. Beside every image its exact
    instance label image ``NAME_masks.tif`` (uint16, 0 background, 1..N in the order of the JSON's
    particles; :func:`instance_labels`), the Cellpose convention that fewgan's ``--labels`` reads.
    A ``synth.json`` records the parameters and seed. Returns the path of the image (micrograph
    mode) or folder.
    """
    from fewgan.data.images import ImageMeta, write_array

    out = Path(out)
    fmt = (format or "png").lower()
    if fmt not in ("png", "tiff", "tif"):
        raise FewganError(f"format must be png or tiff, not {format!r}")
    suffix = ".png" if fmt == "png" else ".tif"
    if mode not in ("micrograph", "folder"):
        raise FewganError(f"mode must be 'micrograph' or 'folder', not {mode!r}")
    if out.exists() and not out.is_dir():
        raise FewganError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if mode == "micrograph":
        side = size or 512
        image, truth = make_micrograph(seed=seed, size=(side, side), **params)
        path = _write(out / f"micrograph{suffix}", image, truth, write_array, ImageMeta)
        atomic_write_text(out / "synth.json", json.dumps({"mode": mode, "seed": seed, "files": [path.name],
                                                          "params": truth["params"]}, indent=2) + "\n")
        return path
    count = 200 if n is None else int(n)
    if count < 1:
        raise FewganError("--n must be at least 1")
    side = size or 64
    params.setdefault("density", 8.0)
    params.setdefault("radius", 4.0)
    params.setdefault("min_spacing", 2.0)
    files = []
    truth = None
    for i in range(count):
        image, truth = make_micrograph(seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
                                       size=(side, side), **params)
        files.append(_write(out / f"particles_{i:04d}{suffix}", image, truth, write_array, ImageMeta).name)
    atomic_write_text(out / "synth.json", json.dumps({"mode": mode, "seed": seed, "count": count, "files": files,
                                                      "params": truth["params"] if truth else {}}, indent=2) + "\n")
    return out


def synth_files(out: str | os.PathLike) -> list[Path]:
    """Every file :func:`synth` wrote into ``out``, from the image names its ``synth.json`` records:
    each image with what :func:`_write` puts beside it (``NAME_masks.tif``, ``NAME.json``), and
    ``synth.json`` itself."""
    from fewgan.data.labels import mask_path

    out = Path(out)
    files = [out / "synth.json"]
    for name in json.loads((out / "synth.json").read_text())["files"]:
        image = out / name
        files += [image, mask_path(image), image.with_suffix(".json")]
    return files


def _write(path: Path, image: np.ndarray, truth: dict[str, Any], write_array, ImageMeta) -> Path:
    arr = image[:, :, None] if image.ndim == 2 else image
    p = truth["params"]
    meta = ImageMeta(pixel_size=p.get("pixel_size"), pixel_unit=p.get("pixel_unit") if p.get("pixel_size") else None)
    fmt = "tiff" if path.suffix == ".tif" else "png"
    write_array(path, arr, fmt, meta)
    from fewgan.data.labels import mask_path

    write_array(mask_path(path), instance_labels(truth)[:, :, None], "tiff", meta)
    atomic_write_text(path.with_suffix(".json"), json.dumps(truth, indent=1) + "\n")
    return path
