"""``fewgan eval``: every metric between a real and a generated set, each beside its floor.

REAL and FAKE are each a folder of images, one image file, or a run folder (a folder with a
``config.json`` written by ``fewgan singan train`` / ``fewgan stylegan2 train``):

* a run folder as FAKE generates ``n`` images first; for a model with a reconstruction
  (SinGAN's fixed-noise pass), PSNR/SSIM compare it with the real image;
* a run folder as REAL stands for the data it was trained on (the path in its ``config.json``).

This module works on images only: a run folder reaches it through the ``run_loader`` the API
passes in (:func:`fewgan.trained.run_image_set`), never by loading a run itself.

Two modes follow from REAL:

* **set mode** (REAL is a folder): FID, KID, precision/recall/density/coverage (Inception
  features), SWD, particle statistics and memorisation by default;
* **single-image mode** (REAL is one image, SinGAN's case): SIFID (both taps), pixel diversity,
  SWD (patches of the one image against the samples), particle statistics by default.

PSNR and SSIM are computed when asked (``metrics=[..., 'psnr', 'ssim']``): against the one real
image (single-image mode) or pairwise in file order (two folders of equal size and count).

**Floors** (what "as good as real" looks like on these data): every metric is also computed
between two halves of the real set (a seeded random split), or, for one image, between one
half of the image and random crops (3/4 of the half's size) of the other half. Estimators that
depend on the sample size (FID most, SWD and KID's spread less) are biased upwards on the N/2
images of a floor compared with the N images of the main comparison: read the two side by side
as an order of magnitude, not as a strict bound.

**Bad input** is one line and exit status 2 (:class:`fewgan.errors.FewganError`): an empty or
missing folder, real and generated images with different channel counts (load both with
``channels``), fewer images than a metric needs (FID and KID: 2 per set; PRDC: k + 1 = 6;
memorisation: 2 training images; pixel diversity: 2 samples; floors need twice as many real
images and are skipped with a reason otherwise). Generated images of another size than the
real set (set mode) are resized to the real size (bicubic, antialiased) with a warning, or
refused with ``size_mismatch='error'``. A metric asked for explicitly that cannot run is an
error; a default metric that cannot run is reported as skipped, with the reason. Without
Inception weights the network metrics (FID, KID, PRDC, SIFID, feature-space memorisation) are
skipped with the one-line message naming the file and the command that installs it, and
everything else runs; when the user asked only for network metrics, that message is the error.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from fewgan.errors import FewganError

if TYPE_CHECKING:  # torch is imported where it is used, so that ``fewgan --help`` stays fast
    import torch

NETWORK_METRICS = ("fid", "kid", "prdc", "sifid")
METRICS = ("fid", "kid", "prdc", "sifid", "diversity", "swd", "psnr", "ssim", "particles", "memorisation")
DEFAULT_SET = ("fid", "kid", "prdc", "swd", "particles", "memorisation")
DEFAULT_SINGLE = ("sifid", "diversity", "swd", "particles")
SIZE_MISMATCH = ("resize", "error")
PRDC_K = 5
PR_K = 3


@dataclasses.dataclass
class ImageSet:
    """One side of a comparison: images ``[N, C, H, W]`` in [-1, 1] and where they came from."""

    images: torch.Tensor
    meta: Any  # fewgan.data.images.ImageMeta, or None for a bare tensor
    source: str
    kind: str  # 'folder' | 'image' | 'run'
    recon: torch.Tensor | None = None  # SinGAN run: its reconstruction [1, C, H, W]
    recon_real: torch.Tensor | None = None  # SinGAN run: the real image at the trained size [1, C, H, W]
    notes: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        meta = self.meta.to_dict() if self.meta is not None else None
        return {"source": self.source, "kind": self.kind, "n": int(self.images.shape[0]),
                "channels": int(self.images.shape[1]), "size": [int(self.images.shape[2]), int(self.images.shape[3])],
                "meta": meta, "notes": list(self.notes)}


# --------------------------------------------------------------------------- loading
def _is_run(path: Path) -> bool:
    from fewgan.run import CONFIG_FILE

    return path.is_dir() and (path / CONFIG_FILE).is_file()


#: How a run folder becomes an image set: ``loader(run, *, role, n, seed, device, want_recon, resolution,
#: channels) -> ImageSet``. Runs are a layer above metrics; :func:`fewgan.trained.run_image_set` is the one
#: the API passes in.
RunLoader = Callable[..., "ImageSet"]


def _load_folder_native(folder: Path, channels: str | int) -> tuple[torch.Tensor, Any, list[str]]:
    """Every image of ``folder`` at its own size (no square fit): ``([N, C, H, W], meta, notes)``.

    Images of one size (square or not) are stacked as they are; images of several sizes are
    centre-cropped to the largest size they all hold, and the note says so.
    """
    import torch

    from fewgan.data.folder import list_images
    from fewgan.data.images import read_image

    files = list_images(folder)
    images, metas = zip(*(read_image(f, channels=channels) for f in files))
    if len({im.shape[0] for im in images}) > 1:  # 'auto' found gray and colour images: load all as RGB
        images, metas = zip(*(read_image(f, channels=3) for f in files))
    sizes = {tuple(im.shape[-2:]) for im in images}
    notes = []
    if len(sizes) > 1:
        h, w = min(s[0] for s in sizes), min(s[1] for s in sizes)
        images = [_centre_crop(im, (h, w)) for im in images]
        notes.append(f"{len(files)} images of {len(sizes)} sizes centre-cropped to {h}x{w} px")
    return torch.stack(list(images)), metas[0], notes


def _centre_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``size`` (h, w) of ``[..., H, W]`` (H >= h, W >= w)."""
    h, w = size
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top: top + h, left: left + w]


def load_set(path: Any, *, role: str, n: int | None = None, seed: int = 0, resolution: int | None = None,
             channels: str | int = "auto", device: str = "cpu", want_recon: bool = False,
             run_loader: RunLoader | None = None, native_size: bool = False) -> ImageSet:
    """Load one side: a tensor ``[N, C, H, W]`` (used as is), an image file, a folder, or a run folder
    through ``run_loader`` (:data:`RunLoader`; without one a run folder is an error).

    ``native_size``: a folder is loaded at its images' own size (see :func:`_load_folder_native`)
    instead of a square ``resolution``; used for the samples of single-image mode.
    """
    import torch

    if isinstance(path, ImageSet):
        return path
    if isinstance(path, torch.Tensor):
        images = path[None] if path.ndim == 3 else path
        return ImageSet(images=images.float(), meta=None, source=f"<{role} tensor>", kind="tensor")
    p = Path(path)
    if not p.exists():
        raise FewganError(f"{role} {p}: no such file or folder")
    if _is_run(p):
        if run_loader is None:
            raise FewganError(f"{role} {p} is a run folder: evaluate it through fewgan.evaluate / fewgan eval")
        return run_loader(p, role=role, n=n or 64, seed=seed, device=device, want_recon=want_recon,
                          resolution=resolution, channels=channels)
    if p.is_dir() and native_size and resolution is None:
        images, meta, notes = _load_folder_native(p, channels)
        return ImageSet(images=images, meta=meta, source=str(p), kind="folder", notes=notes)
    if p.is_dir():
        from fewgan.data.folder import load_folder

        images, meta = load_folder(p, resolution=resolution, channels=channels)
        return ImageSet(images=images, meta=meta.image, source=str(p), kind="folder", notes=list(meta.notes))
    from fewgan.data.images import read_image

    image, meta = read_image(p, channels=channels)
    return ImageSet(images=image[None], meta=meta, source=str(p), kind="image", notes=list(meta.notes))


# --------------------------------------------------------------------------- helpers
class _Skip(Exception):
    """A metric that cannot run on these inputs (reason in the message)."""


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise _Skip(reason)


def _as_dict(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple) and len(value) == 2 and name == "kid":
        return {"value": float(value[0]), "std": float(value[1])}
    return {"value": float(value)}


def _half_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2: 2 * (n // 2)])


def _single_image_floor(image: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One image ``[1, C, H, W]`` -> (one half ``[1, C, h, w]``, ``n`` crops of 3/4 size of the other half)."""
    from fewgan.metrics.swd import single_image_crops

    _, _, h, w = image.shape
    if w >= h:
        a, b = image[..., : w // 2], image[..., w // 2: 2 * (w // 2)]
    else:
        a, b = image[..., : h // 2, :], image[..., h // 2: 2 * (h // 2), :]
    size = (max(1, int(round(b.shape[-2] * 0.75))), max(1, int(round(b.shape[-1] * 0.75))))
    return a, single_image_crops(b, n, size, seed=seed)


def _to_data_units(images: torch.Tensor, meta) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> ``[N, H, W, C]`` float64 in data units (or [-1, 1] without meta)."""
    x = images.detach().cpu().double().numpy().transpose(0, 2, 3, 1)
    if meta is None:
        return x
    lo, hi = (float(v) for v in meta.data_range)
    return (np.clip(x, -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo


# --------------------------------------------------------------------------- the orchestrator
def evaluate(real: Any, fake: Any, *, metrics: list[str] | tuple[str, ...] | None = None,
             json_path: Any = None, device: str = "cpu", n: int | None = None, seed: int = 0,
             resolution: int | None = None, channels: str | int = "auto", size_mismatch: str = "resize",
             floors: bool = True, resize: str = "clean", batch_size: int = 50, weights: Any = None,
             cache: bool | str | None = None, particle_options: dict[str, Any] | None = None,
             near_copy_threshold: float | None = None, log: Callable[[str], None] | None = None,
             progress: bool = False, run_loader: RunLoader | None = None) -> dict[str, Any]:
    """Compare real and generated images with every requested metric and its real-vs-real floor.

    Parameters
    ----------
    real, fake : folder, image file or run folder (see the module docstring), or a tensor
        ``[N, C, H, W]`` in [-1, 1].
    metrics : names from :data:`METRICS`; default :data:`DEFAULT_SET` (REAL a folder) or
        :data:`DEFAULT_SINGLE` (REAL one image).
    json_path : where to write the result as JSON (atomically), if given.
    device : 'cpu', 'cuda' or 'auto' for Inception features and SWD projections.
    n : images to generate when FAKE is a run folder (default: as many as REAL has, at least 50
        for one real image).
    seed : seed of generation, the half split, crops, SWD and KID subsets.
    resolution, channels : how folders are loaded (:func:`fewgan.data.folder.load_folder`).
    size_mismatch : 'resize' (generated images resized to the real size with a warning) or
        'error', in set mode.
    floors : also compute every metric between two halves of the real data.
    resize, batch_size, weights, cache : Inception feature options (:mod:`fewgan.metrics.features`).
    particle_options : fields of :class:`fewgan.metrics.particles.ParticleConfig`.
    near_copy_threshold : memorisation ratio threshold (default 0.5).
    log : called with progress lines (the CLI passes a printer); None for silence.
    run_loader : turns a run folder into an image set (:data:`RunLoader`); the API passes
        :func:`fewgan.trained.run_image_set`. Without it REAL and FAKE must be images.

    Returns
    -------
    dict: ``real`` and ``fake`` (what was compared), ``mode``, ``metrics`` (per metric its
    numbers, its ``floor`` and ``seconds``, or ``skipped`` with the reason), ``table`` (rows
    ``{metric, value, floor, note}`` for the terminal), ``warnings``.
    """
    say = log or (lambda line: None)
    if size_mismatch not in SIZE_MISMATCH:
        raise FewganError(f"size_mismatch must be one of {', '.join(SIZE_MISMATCH)}, not {size_mismatch!r}")
    from fewgan.run import resolve_device

    device = str(resolve_device(device))
    requested = None
    if isinstance(metrics, str):
        metrics = [metrics]
    if metrics:
        requested = []
        for m in metrics:
            for name in str(m).replace(",", " ").split():
                name = name.strip().lower()
                if name not in METRICS:
                    raise FewganError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
                if name not in requested:
                    requested.append(name)
    warns: list[str] = []
    started = time.perf_counter()

    real_set = load_set(real, role="real", resolution=resolution, channels=channels, run_loader=run_loader)
    single = real_set.images.shape[0] == 1
    chosen = list(requested or (DEFAULT_SINGLE if single else DEFAULT_SET))
    explicit = requested is not None
    if n is None:
        n = max(int(real_set.images.shape[0]), 50) if single else int(real_set.images.shape[0])
    fake_set = load_set(fake, role="fake", n=n, seed=seed, resolution=resolution, channels=channels,
                        device=device, want_recon=("psnr" in chosen or "ssim" in chosen), run_loader=run_loader,
                        native_size=single)
    if fake_set.meta is None:
        fake_set.meta = real_set.meta
    trained = fake_set.recon_real
    if (single and trained is not None and trained.shape[1] == real_set.images.shape[1]
            and trained.shape[-2:] != real_set.images.shape[-2:]):
        # SinGAN trained on the image resized to its max size: compare at that size, so that
        # particle sizes and patch scales match the samples
        (h0, w0), (h1, w1) = real_set.images.shape[-2:], trained.shape[-2:]
        real_set.images = trained
        if real_set.meta is not None:
            pixel_size = real_set.meta.pixel_size
            real_set.meta = dataclasses.replace(
                real_set.meta, height=int(h1), width=int(w1),
                pixel_size=None if pixel_size is None else float(pixel_size) * w0 / w1)
        warns.append(f"the run trained on the real image resized from {h0}x{w0} to {h1}x{w1} px; "
                     "the real image is compared at the trained size")
    r_img, f_img = real_set.images, fake_set.images
    if r_img.shape[1] != f_img.shape[1]:
        raise FewganError(
            f"real images have {r_img.shape[1]} channel(s) ({real_set.source}) but generated images "
            f"{f_img.shape[1]} ({fake_set.source}); pass --channels 1 or --channels 3 to load both alike"
        )
    if not single and r_img.shape[-2:] != f_img.shape[-2:]:
        text = (f"generated images are {f_img.shape[-2]}x{f_img.shape[-1]} px but real images "
                f"{r_img.shape[-2]}x{r_img.shape[-1]} px")
        if size_mismatch == "error":
            raise FewganError(f"{text}; resize one set, or allow resizing (size_mismatch='resize')")
        from fewgan.data.folder import resize as _resize

        f_img = _resize(f_img, tuple(r_img.shape[-2:])).clamp(-1.0, 1.0)
        warns.append(f"{text}: generated images resized to the real size (bicubic, antialiased)")
    say(f"real: {real_set.source} ({r_img.shape[0]} x {r_img.shape[1]}x{r_img.shape[2]}x{r_img.shape[3]}), "
        f"fake: {fake_set.source} ({f_img.shape[0]} x {f_img.shape[1]}x{f_img.shape[2]}x{f_img.shape[3]})")
    say(f"device: {device}")

    # floor data: halves of the real set, or half of the one image against crops of the other half
    floor_pair = None
    floor_reason = None
    if floors:
        if single:
            if min(r_img.shape[-2:]) >= 2 * 16:
                floor_pair = _single_image_floor(r_img, min(max(f_img.shape[0], 2), 50), seed)
            else:
                floor_reason = "the real image is too small to split into halves of at least 16 px"
        elif r_img.shape[0] >= 2:
            a, b = _half_split(r_img.shape[0], seed)
            floor_pair = (r_img[a], r_img[b])
        else:
            floor_reason = "needs at least 2 real images"

    ctx = _Context(r_img, f_img, real_set, fake_set, floor_pair, single, seed, device, resize, batch_size,
                   weights, cache, particle_options or {}, near_copy_threshold, progress, say)
    results: dict[str, Any] = {}
    network_error: FewganError | None = None
    for name in chosen:
        t0 = time.perf_counter()
        say(f"{name} ...")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                entry = _METRIC_FUNCS[name](ctx, floor=False)
                if floors:
                    if floor_pair is None:
                        entry["floor"] = {"skipped": floor_reason}
                    else:
                        try:
                            entry["floor"] = _METRIC_FUNCS[name](ctx, floor=True)
                        except _Skip as exc:
                            entry["floor"] = {"skipped": str(exc)}
            for w in caught:
                text = f"{name}: {w.message}"
                if text not in warns:
                    warns.append(text)
        except _Skip as exc:
            if explicit:
                raise FewganError(f"{name}: {exc}") from None
            entry = {"skipped": str(exc)}
        except FewganError as exc:
            if _is_weights_missing(exc):
                network_error = exc
                entry = {"skipped": str(exc), "weights_missing": True}
            else:
                raise
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        results[name] = entry
    if network_error is not None and explicit and all(m in NETWORK_METRICS for m in chosen):
        raise network_error

    out = {
        "mode": "single-image" if single else "set",
        "real": real_set.describe(),
        "fake": {**fake_set.describe(), "n": int(f_img.shape[0]), "size": [int(f_img.shape[2]), int(f_img.shape[3])]},
        "metrics": results,
        "table": build_table(results),
        "floor": ("two halves of the real image: one half against random 3/4-size crops of the other"
                  if single else "two halves of the real set (seeded random split)") if floors else None,
        "seed": int(seed),
        "warnings": warns,
        "network_metrics": "skipped: " + str(network_error) if network_error is not None else "computed",
        "seconds": round(time.perf_counter() - started, 3),
    }
    if json_path:
        from fewgan.run import atomic_write_json

        atomic_write_json(json_path, json_safe(out))
    return out


def json_safe(obj: Any) -> Any:
    """A copy with non-finite floats (an infinite PSNR of identical images, NaN) as ``None``: strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _is_weights_missing(exc: Exception) -> bool:
    from fewgan.metrics.features import WeightsMissing

    return isinstance(exc, WeightsMissing)


@dataclasses.dataclass
class _Context:
    real: torch.Tensor
    fake: torch.Tensor
    real_set: ImageSet
    fake_set: ImageSet
    floor_pair: tuple[torch.Tensor, torch.Tensor] | None
    single: bool
    seed: int
    device: str
    resize: str
    batch_size: int
    weights: Any
    cache: Any
    particle_options: dict[str, Any]
    near_copy_threshold: float | None
    progress: bool
    say: Callable[[str], None]
    _features: dict[str, Any] = dataclasses.field(default_factory=dict)

    def pair(self, floor: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if floor:
            if self.floor_pair is None:
                raise _Skip("no floor data")
            return self.floor_pair
        return self.real, self.fake

    # Inception features: computed once per set, the floor uses subsets of the real features
    def window(self):
        from fewgan.metrics.features import intensity_window

        if "window" not in self._features:
            dtype = getattr(self.real_set.meta, "dtype", None)
            self._features["window"] = intensity_window(self.real, dtype=dtype)
        return self._features["window"]

    def features(self, which: str) -> np.ndarray:
        from fewgan.metrics.features import extract_features, find_weights

        if "error" in self._features:  # weights missing: say it once, not per metric
            raise self._features["error"]
        if which not in self._features:
            try:
                find_weights(self.weights)
            except FewganError as exc:
                self._features["error"] = exc
                raise
            images = {"real": self.real, "fake": self.fake,
                      "floor_a": self.floor_pair[0] if self.floor_pair else None,
                      "floor_b": self.floor_pair[1] if self.floor_pair else None}[which]
            if which.startswith("floor") and not self.single:
                a, b = _half_split(self.real.shape[0], self.seed)
                return self.features("real")[a if which == "floor_a" else b]
            self.say(f"Inception features of the {which} images ({images.shape[0]}) ...")
            self._features[which] = extract_features(
                images, window=self.window(), resize=self.resize, batch_size=self.batch_size,
                device=self.device, weights=self.weights, progress=self.progress, cache=self.cache,
            )
        return self._features[which]

    def feature_pair(self, floor: bool) -> tuple[np.ndarray, np.ndarray]:
        return (self.features("floor_a"), self.features("floor_b")) if floor else (self.features("real"), self.features("fake"))

    def feature_info(self, n: int) -> dict[str, Any]:
        from fewgan.metrics.features import feature_info

        return feature_info(weights=self.weights, resize=self.resize, n=n, window=self.window())


# --------------------------------------------------------------------------- metrics
def _fid(ctx: _Context, floor: bool) -> dict[str, Any]:
    _need(not ctx.single, "FID compares sets of images; for one real image use sifid")
    real, fake = ctx.pair(floor)
    _need(real.shape[0] >= 2 and fake.shape[0] >= 2, "FID needs at least 2 images per set")
    from fewgan.metrics.fid import fid_from_features

    rf, ff = ctx.feature_pair(floor)
    out = _as_dict(fid_from_features(rf, ff), "fid")
    out["features"] = ctx.feature_info(int(min(len(rf), len(ff))))
    out["n_real"], out["n_fake"] = int(len(rf)), int(len(ff))
    return out


def _kid(ctx: _Context, floor: bool) -> dict[str, Any]:
    _need(not ctx.single, "KID compares sets of images; for one real image use sifid")
    real, fake = ctx.pair(floor)
    _need(real.shape[0] >= 2 and fake.shape[0] >= 2, "KID needs at least 2 images per set")
    from fewgan.metrics.kid import kid_from_features

    rf, ff = ctx.feature_pair(floor)
    out = _as_dict(kid_from_features(rf, ff, seed=ctx.seed), "kid")
    out["features"] = ctx.feature_info(int(min(len(rf), len(ff))))
    return out


def _prdc(ctx: _Context, floor: bool) -> dict[str, Any]:
    _need(not ctx.single, "precision/recall compare sets of images")
    real, fake = ctx.pair(floor)
    need = PRDC_K + 1
    _need(real.shape[0] >= need and fake.shape[0] >= need,
          f"precision/recall/density/coverage need at least {need} images per set (k = {PRDC_K})")
    from fewgan.metrics import prdc as _prdc_mod

    rf, ff = ctx.feature_pair(floor)
    out = _as_dict(_prdc_mod.prdc(rf, ff, k=PRDC_K), "prdc")
    out = {"density_coverage": out, "k_density_coverage": PRDC_K}
    if real.shape[0] > PR_K and fake.shape[0] > PR_K:
        out["precision_recall"] = _as_dict(_prdc_mod.precision_recall(rf, ff, k=PR_K), "pr")
        out["k_precision_recall"] = PR_K
    out["features"] = ctx.feature_info(int(min(len(rf), len(ff))))
    return out


def _sifid(ctx: _Context, floor: bool) -> dict[str, Any]:
    _need(ctx.single, "SIFID compares samples with one real image; give a single real image")
    real, fake = ctx.pair(floor)
    from fewgan.metrics.sifid import sifid

    return _as_dict(sifid(real[0], fake, window=ctx.window(), weights=ctx.weights, device=ctx.device), "sifid")


def _diversity(ctx: _Context, floor: bool) -> dict[str, Any]:
    real, fake = ctx.pair(floor)
    _need(fake.shape[0] >= 2, "pixel diversity needs at least 2 generated images")
    from fewgan.metrics.sifid import pixel_diversity

    if not floor:
        note = None
        if ctx.single and fake.shape[-2:] != real.shape[-2:]:
            # per-pixel spread needs one grid: compare the centre crops both images hold
            size = (min(real.shape[-2], fake.shape[-2]), min(real.shape[-1], fake.shape[-1]))
            note = (f"samples are {fake.shape[-2]}x{fake.shape[-1]} px, the real image {real.shape[-2]}x"
                    f"{real.shape[-1]} px: computed on their centre {size[0]}x{size[1]} px crops")
            real, fake = _centre_crop(real, size), _centre_crop(fake, size)
        out = _as_dict(pixel_diversity(fake, real[0] if ctx.single else real), "diversity")
        if note:
            out["note"] = note
        return out
    # same definition: mean over pixels of the std over samples, divided by the real image's std
    value = float(fake.double().std(dim=0, unbiased=False).mean() / real.double().std(unbiased=False).clamp_min(1e-12))
    return {"value": value}


def _swd(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.swd import swd_levels

    real, fake = ctx.pair(floor)
    _need(min(real.shape[-2:]) >= 7 and min(fake.shape[-2:]) >= 7, "SWD needs images of at least 7 px")
    out = swd_levels(real, fake, seed=ctx.seed, device=ctx.device)
    out["value"] = out.pop("swd")
    if real.shape[-2:] != fake.shape[-2:]:
        out["note"] = (f"{real.shape[-2]}x{real.shape[-1]} px real against {fake.shape[-2]}x{fake.shape[-1]} px "
                       "generated: compared by 7x7 patches at every pyramid level, no resize")
    return out


def _fidelity_pairs(ctx: _Context) -> tuple[torch.Tensor, torch.Tensor, str]:
    real, fake = ctx.real, ctx.fake
    recon = ctx.fake_set.recon
    if recon is not None and ctx.single:
        target = ctx.fake_set.recon_real if ctx.fake_set.recon_real is not None else real
        _need(target.shape == recon.shape,
              f"the run's reconstruction is {recon.shape[-2]}x{recon.shape[-1]} px, the real image "
              f"{target.shape[-2]}x{target.shape[-1]} px")
        return target, recon, "the run's fixed-noise reconstruction against the real image it was trained on"
    if ctx.single:
        _need(real.shape[-2:] == fake.shape[-2:],
              f"PSNR/SSIM need generated images of the real size {real.shape[-2]}x{real.shape[-1]}")
        return real.expand(fake.shape[0], -1, -1, -1), fake, "every generated image against the real image"
    _need(real.shape == fake.shape, "PSNR/SSIM pair images in file order: both folders need the same count and size")
    return real, fake, "pairs in file order"


def _psnr_ssim(ctx: _Context, floor: bool, which: str) -> dict[str, Any]:
    _need(not floor, "no floor for a pairwise reconstruction metric")
    from fewgan.metrics.fidelity import data_range_of, psnr, ssim

    real, fake, pairing = _fidelity_pairs(ctx)
    meta = ctx.real_set.meta
    data_range = data_range_of(meta)
    r, f = _to_data_units(real, meta), _to_data_units(fake, meta)
    fn = psnr if which == "psnr" else ssim
    values = [fn(a[..., 0] if a.shape[-1] == 1 else a, b[..., 0] if b.shape[-1] == 1 else b, data_range)
              for a, b in zip(r, f)]
    finite = [v for v in values if math.isfinite(v)]
    mean = float(np.mean(finite)) if finite else float("inf")
    return {"value": mean, "per_image": [float(v) if math.isfinite(v) else None for v in values],
            "data_range": data_range, "pairing": pairing}


def _particles(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.particles import ParticleConfig, particle_statistics

    real, fake = ctx.pair(floor)
    config = ParticleConfig.from_dict(ctx.particle_options)
    out = particle_statistics(real, fake, config=config, meta=ctx.real_set.meta)
    out["value"] = float(np.mean([row["ks"] for row in out["table"] if row["ks"] is not None] or [float("nan")]))
    out["value_is"] = "mean KS statistic over the compared quantities"
    return out


def _memorisation(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.memorisation import NEAR_COPY_THRESHOLD, memorisation

    _need(not ctx.single, "memorisation needs a training set of at least 2 images")
    real, fake = ctx.pair(floor)
    _need(real.shape[0] >= 2, "memorisation needs at least 2 training images")
    threshold = NEAR_COPY_THRESHOLD if ctx.near_copy_threshold is None else float(ctx.near_copy_threshold)
    rf = ff = None
    feature_note = None
    try:
        rf, ff = ctx.feature_pair(floor)
    except FewganError as exc:
        if not _is_weights_missing(exc):
            raise
        feature_note = str(exc)
    out = memorisation(real, fake, train_features=rf, generated_features=ff, threshold=threshold)
    if feature_note:
        out["note"] = f"{out['note']}: {feature_note}"
    out["value"] = out["near_copy_share"]
    # per-item lists are long; keep them for the main comparison only
    if floor:
        for space in out["spaces"]:
            for key in ("nearest", "distance", "ratio", "train_nn_distance"):
                out[space].pop(key, None)
    return out


_METRIC_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "fid": _fid, "kid": _kid, "prdc": _prdc, "sifid": _sifid, "diversity": _diversity, "swd": _swd,
    "psnr": lambda ctx, floor: _psnr_ssim(ctx, floor, "psnr"),
    "ssim": lambda ctx, floor: _psnr_ssim(ctx, floor, "ssim"),
    "particles": _particles, "memorisation": _memorisation,
}


# --------------------------------------------------------------------------- table
def _floor_value(entry: dict[str, Any], getter: Callable[[dict[str, Any]], Any]) -> Any:
    floor = entry.get("floor")
    if not isinstance(floor, dict) or "skipped" in floor:
        return None
    try:
        return getter(floor)
    except (KeyError, TypeError, IndexError):
        return None


def build_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{metric, value, floor, note}`` (one per number a user reads) from ``evaluate``'s metrics."""
    rows: list[dict[str, Any]] = []

    def add(label, entry, getter, note=""):
        try:
            value = getter(entry)
        except (KeyError, TypeError, IndexError):
            value = None
        rows.append({"metric": label, "value": value, "floor": _floor_value(entry, getter), "note": note})

    for name, entry in results.items():
        if "skipped" in entry:
            note = "skipped: no Inception weights (see below)" if entry.get("weights_missing") else \
                f"skipped: {entry['skipped']}"
            rows.append({"metric": name, "value": None, "floor": None, "note": note})
            continue
        if name == "kid":
            add("kid", entry, lambda e: e["value"], f"std {entry.get('std', float('nan')):.3g}")
        elif name == "prdc":
            for key in ("precision", "recall"):
                if "precision_recall" in entry:
                    add(f"{key} (k={PR_K})", entry, lambda e, key=key: e["precision_recall"][key])
            for key in ("density", "coverage"):
                add(f"{key} (k={PRDC_K})", entry, lambda e, key=key: e["density_coverage"][key])
        elif name == "sifid":
            scalar = {k: v for k, v in entry.items() if isinstance(v, dict) and "mean" in v}
            if scalar:
                for key, v in scalar.items():
                    add(f"sifid {key}", entry, lambda e, key=key: e[key]["mean"])
            else:
                add("sifid", entry, lambda e: e.get("value", e.get("mean")))
        elif name == "swd":
            add("swd", entry, lambda e: e["value"], "levels " + ", ".join(f"{v:.3g}" for v in entry["levels"])
                + (f"; {entry['note']}" if entry.get("note") else ""))
        elif name == "particles":
            for i, row in enumerate(entry["table"]):
                add(f"particles {row['quantity']} KS", entry, lambda e, i=i: e["table"][i]["ks"],
                    f"W1 {row['wasserstein']:.4g} {row['unit']}".strip() if row["wasserstein"] is not None else "")
        elif name == "memorisation":
            for space in entry["spaces"]:
                add(f"near-copies ({space})", entry, lambda e, space=space: e[space]["near_copy_share"],
                    f"ratio < {entry['threshold']:g}, median ratio {entry[space]['median_ratio']:.3g}")
        elif name in ("psnr", "ssim"):
            add(name, entry, lambda e: e["value"], entry.get("pairing", ""))
        else:
            add(name, entry, lambda e: e["value"], entry.get("note", ""))
    return rows


def format_table(result: dict[str, Any]) -> str:
    """The terminal table of :func:`evaluate`'s result: metric, value, floor (real vs real), note."""

    def num(v):
        if v is None:
            return "-"
        if isinstance(v, float) and not math.isfinite(v):
            return "inf"
        return f"{v:.4g}"

    rows = result["table"]
    width = max([len(r["metric"]) for r in rows] + [6])
    lines = [f"{'metric':<{width}}  {'value':>10}  {'floor':>10}  note"]
    for r in rows:
        lines.append(f"{r['metric']:<{width}}  {num(r['value']):>10}  {num(r['floor']):>10}  {r['note']}")
    return "\n".join(lines)
