"""Inception features: weights, input handling, batched extraction and the feature cache.

This is the only module of :mod:`fewgan.metrics` that touches a network (and the only place
in fewgan that may download a file, in :func:`fetch_weights`, when a user asks for it). The
metrics themselves (:mod:`~fewgan.metrics.fid`, :mod:`~fewgan.metrics.kid`,
:mod:`~fewgan.metrics.prdc`, :mod:`~fewgan.metrics.sifid`) are pure functions over the
feature arrays returned here.

Weights
    FID is defined on the TF ``inception-2015-12-05`` graph; the community files
    ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid) and
    ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity) are the same bytes
    (SHA-256 :data:`WEIGHTS_SHA256`, 95,628,359 bytes) and load strictly into
    :class:`fewgan.metrics.inception.InceptionV3FID`. :func:`find_weights` looks, in order, at an
    explicit path, the environment variable ``FEWGAN_INCEPTION_WEIGHTS`` and torch's hub cache
    (``torch.hub.get_dir()/checkpoints``), so a file another tool already downloaded just works.
    A file with another hash still loads (a test network, say) but is reported as not the
    reference, and its hash goes into every result.

Input handling (:func:`preprocess`)
    images are ``[C, H, W]`` in [-1, 1] (as :func:`fewgan.data.images.read_image` returns them);
    grayscale is replicated to 3 channels; values are mapped to the 8-bit range with **one**
    intensity window (:func:`intensity_window`, taken from the real set and applied to the fakes
    too, never per image) and rounded, as a PNG on disk would be; then resized to 299 x 299:

    * ``"clean"``: PIL bicubic on the float values of each channel, clipped to [0, 255]
      (Parmar, Zhang and Zhu, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation",
      CVPR 2022, the ``clean-fid`` convention);
    * ``"tf1"``: the TensorFlow 1 ``resize_bilinear`` (``align_corners=False``, no half-pixel
      offset) that the original TF FID code and torch-fidelity use, and so most published FIDs;

    and normalised to the TF graph's input range ``(x - 128) / 128``.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.run import resolve_device
from fewgan.metrics.inception import STEM_LAYERS, InceptionV3FID, tap_name

__all__ = [
    "WEIGHTS_SHA256", "WEIGHTS_SIZE", "WEIGHTS_NAMES", "WEIGHTS_URLS", "ENV_VAR", "RESIZE_MODES",
    "WeightsMissing", "find_weights", "weights_candidates", "file_sha256", "load_inception",
    "load_stem", "import_weights", "fetch_weights", "weights_status", "intensity_window",
    "to_uint8_range", "resize_clean", "resize_tf1", "preprocess", "extract_features",
    "stem_features", "feature_info", "default_cache_dir",
]

#: SHA-256 of the FID Inception weights (both community files are these bytes).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#: Size in bytes of the community file.
WEIGHTS_SIZE = 95_628_359
#: File names under which other tools keep the weights in torch's hub cache (pytorch-fid first).
WEIGHTS_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
#: Where ``fewgan weights fetch`` downloads from (pytorch-fid's release, then torch-fidelity's).
WEIGHTS_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
#: Environment variable naming a weights file.
ENV_VAR = "FEWGAN_INCEPTION_WEIGHTS"
#: Resize modes to 299 x 299.
RESIZE_MODES = ("clean", "tf1")
#: Input side of the FID network.
INPUT_SIZE = 299
_CACHE_FORMAT = 1  # bump when the preprocessing changes, so old cached features are not reused


class WeightsMissing(FewganError):
    """The Inception weights file is not where fewgan looks; the message says where to put it."""


# --------------------------------------------------------------------------- weights lookup
def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _missing_message(detail: str) -> str:
    hub = _hub_checkpoints()
    return (
        f"{detail}: the FID Inception weights are needed for this metric; put "
        f"{WEIGHTS_NAMES[0]} (pytorch-fid) or {WEIGHTS_NAMES[1]} (torch-fidelity) into {hub}, "
        f"or set {ENV_VAR}=FILE; 'fewgan weights import FILE' checks and copies a file you have, "
        f"'fewgan weights fetch' downloads it (needs internet); metrics without a network (swd, "
        f"psnr, ssim, particles) run without it"
    )


def weights_candidates(path: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
    """The places :func:`find_weights` looks, in order, as ``(source, path)`` pairs."""
    out: list[tuple[str, Path | None]] = []
    if path is not None:
        out.append(("argument", Path(path).expanduser()))
    env = os.environ.get(ENV_VAR)
    out.append((f"${ENV_VAR}", Path(env).expanduser() if env else None))
    for name in WEIGHTS_NAMES:
        out.append(("torch hub cache", _hub_checkpoints() / name))
    return out


def find_weights(path: str | os.PathLike | None = None) -> Path:
    """Path of the Inception weights: ``path``, then ``$FEWGAN_INCEPTION_WEIGHTS``, then the hub cache.

    An explicit ``path`` or environment variable that names no file is an error (not skipped),
    so a typo does not silently fall through to another file.

    Raises
    ------
    WeightsMissing
        with a one-line message naming the file, where to put it and the commands.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsMissing(_missing_message(f"Inception weights file {p} does not exist"))
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsMissing(_missing_message(f"{ENV_VAR}={env} names no file"))
        return p
    for _, p in weights_candidates()[1:]:
        if p is not None and p.is_file():
            return p
    raise WeightsMissing(_missing_message(f"no Inception weights in {_hub_checkpoints()}"))


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, remembered per (path, size, mtime) within the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-torch files
        raise FewganError(f"{path}: cannot be read as a torch weights file ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); re-download it with "
                          f"'fewgan weights fetch' or import a good copy") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FewganError(f"{path}: holds a {type(state).__name__}, not a state dict of the Inception network")
    return state


_MODELS: dict[tuple, tuple[InceptionV3FID, dict]] = {}
_MODELS_LOCK = threading.Lock()


def _weights_info(p: Path, sha: str) -> dict[str, Any]:
    return {"file": str(p), "name": p.name, "sha256": sha, "reference": sha == WEIGHTS_SHA256}


def _warn_not_reference(p: Path, sha: str) -> None:
    if sha != WEIGHTS_SHA256:  # Python's warning filters show it once per place of call
        warnings.warn(f"{p} (sha256 {sha[:12]}...) is not the FID Inception weights "
                      f"({WEIGHTS_SHA256[:12]}...): its FID/KID are not comparable with published values",
                      stacklevel=3)


def load_inception(path: str | os.PathLike | None = None, device="cpu") -> tuple[InceptionV3FID, dict]:
    """The FID Inception network in eval mode with its weights, cached per process.

    Parameters
    ----------
    path : explicit weights file, else :func:`find_weights` looks it up.
    device : ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.

    Returns
    -------
    (model, info) with ``info = {"file", "name", "sha256", "reference"}`` (``reference`` is
    True when the hash is :data:`WEIGHTS_SHA256`).
    """
    model, info = _cached_model("full", path, device, _load_full)
    _warn_not_reference(Path(info["file"]), info["sha256"])
    return model, info


def _load_full(p: Path, state: dict, model: InceptionV3FID) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise FewganError(f"{p}: is not the FID Inception-v3 state dict ({first}); use "
                          f"{WEIGHTS_NAMES[0]} or {WEIGHTS_NAMES[1]}") from None


def _load_stem(p: Path, state: dict, model: InceptionV3FID) -> None:
    want = {k for k in model.state_dict() if k.split(".")[0] in STEM_LAYERS}
    stem = {k: v for k, v in state.items() if k in want}
    missing = sorted(want - set(stem))
    if missing:
        raise FewganError(f"{p}: lacks the Inception stem tensors {missing[:3]}... ; use the FID "
                          f"Inception weights or torchvision's inception_v3_google file")
    try:
        model.load_state_dict(stem, strict=False)
    except RuntimeError as exc:
        raise FewganError(f"{p}: stem tensors do not fit Inception-v3 ({' '.join(str(exc).split())[:300]})") from None


def _cached_model(kind: str, path, device, load) -> tuple[InceptionV3FID, dict]:
    """One network per (kind, file, hash, device) per process; ``load(path, state, model)`` fills it."""
    p = find_weights(path).resolve()
    sha = file_sha256(p)
    dev = resolve_device(device)
    key = (kind, str(p), sha, str(dev))
    with _MODELS_LOCK:
        if key not in _MODELS:
            model = InceptionV3FID()
            load(p, _read_state_dict(p), model)
            # channels-last runs the convolutions about 3x faster on CPU (oneDNN); same results
            model.eval().requires_grad_(False).to(dev, memory_format=torch.channels_last)
            _MODELS[key] = (model, _weights_info(p, sha))
        model, info = _MODELS[key]
    return model, dict(info)


def load_stem(path: str | os.PathLike | None = None, device="cpu") -> tuple[InceptionV3FID, dict]:
    """An :class:`InceptionV3FID` whose stem (``Conv2d_1a_3x3`` .. ``Conv2d_4a_3x3``) holds the file's weights.

    Used by SIFID: the stem of the FID file and of torchvision's ImageNet file
    (``inception_v3_google-0cc3c7bd.pth``, which the official SIFID script uses) have the same
    names and shapes, so either loads; every stem tensor must be present. Only
    :meth:`InceptionV3FID.stem_maps` of the returned model is meaningful.
    """
    return _cached_model("stem", path, device, _load_stem)


# --------------------------------------------------------------------------- import, fetch, status
def _install(src_path: Path, dest_dir: Path | None) -> Path:
    dest_dir = Path(dest_dir) if dest_dir is not None else _hub_checkpoints()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / WEIGHTS_NAMES[0]
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest_dir)
    os.close(fd)
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def import_weights(file: str | os.PathLike, dest_dir: str | os.PathLike | None = None, *,
                   expected_sha256: str = WEIGHTS_SHA256) -> Path:
    """Check a weights file's SHA-256 and copy it into the hub cache (atomically); returns the new path.

    ``dest_dir`` defaults to ``torch.hub.get_dir()/checkpoints``; the copy is named
    ``pt_inception-2015-12-05-6726825d.pth``. A file with another hash is refused
    (:class:`FewganError`) and nothing is written.
    """
    src = Path(file).expanduser()
    if not src.is_file():
        raise FewganError(f"{src}: no such file; give the path of {WEIGHTS_NAMES[0]} or {WEIGHTS_NAMES[1]}")
    sha = file_sha256(src)
    if sha != expected_sha256:
        raise FewganError(f"{src}: sha256 is {sha}, expected {expected_sha256}: not the FID Inception weights "
                          f"(a truncated download or another file); download {WEIGHTS_URLS[0]} again")
    return _install(src, Path(dest_dir) if dest_dir is not None else None)


def fetch_weights(url: str | None = None, dest_dir: str | os.PathLike | None = None, *,
                  expected_sha256: str = WEIGHTS_SHA256, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download the FID Inception weights, check the SHA-256, install them; returns the path.

    Tries ``url`` if given, else :data:`WEIGHTS_URLS` in turn. The download streams to a
    temporary file beside the destination; a wrong hash is refused and leaves nothing behind.
    This is the only function in fewgan that opens a network connection.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else _hub_checkpoints()
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for u in ([url] if url else list(WEIGHTS_URLS)):
        fd, tmp = tempfile.mkstemp(prefix=f".{WEIGHTS_NAMES[0]}.", suffix=".part", dir=dest_dir)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(u, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = None
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=total, unit="B", unit_scale=True, desc="Inception weights", file=sys.stderr,
                               leave=False)
                try:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        out.write(chunk)
                        h.update(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
            sha = h.hexdigest()
            if sha != expected_sha256:
                raise FewganError(f"download from {u} has sha256 {sha}, expected {expected_sha256}; refused "
                                  f"and deleted (a proxy page or a broken download); try again or fetch by hand "
                                  f"and run 'fewgan weights import FILE'")
            dest = dest_dir / WEIGHTS_NAMES[0]
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{u}: {getattr(exc, 'reason', None) or exc}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise FewganError(f"could not download the Inception weights ({'; '.join(errors)}); on a machine that is "
                      f"online download {WEIGHTS_URLS[0]} and run 'fewgan weights import FILE'")


def weights_status(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Where fewgan looks for the weights and what it finds (for ``fewgan weights where``).

    Returns ``{"candidates": [{"source", "path", "exists"}], "found": path or None,
    "sha256": ..., "reference": bool, "error": message or None}``.
    """
    cands = [{"source": s, "path": str(p) if p is not None else None, "exists": bool(p and p.is_file())}
             for s, p in weights_candidates(path)]
    out: dict[str, Any] = {"candidates": cands, "found": None, "sha256": None, "reference": False, "error": None}
    try:
        p = find_weights(path)
    except WeightsMissing as exc:
        out["error"] = str(exc)
        return out
    out["found"] = str(p)
    out["sha256"] = file_sha256(p)
    out["reference"] = out["sha256"] == WEIGHTS_SHA256
    return out


# --------------------------------------------------------------------------- input handling
def _as_list(images) -> list[torch.Tensor] | torch.Tensor:
    """A ``[N, C, H, W]`` tensor, or a list of ``[C, H, W]`` tensors of any sizes."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4:
            raise FewganError(f"images must be [N, C, H, W] or [C, H, W], got shape {tuple(images.shape)}")
        return images.float()
    if isinstance(images, (list, tuple)):
        out = []
        for i, im in enumerate(images):
            t = torch.from_numpy(np.ascontiguousarray(im)) if isinstance(im, np.ndarray) else im
            if not isinstance(t, torch.Tensor):
                raise FewganError(f"image {i} is a {type(im).__name__}, not a tensor or array")
            if t.ndim == 4 and t.shape[0] == 1:
                t = t[0]
            if t.ndim != 3:
                raise FewganError(f"image {i} must be [C, H, W], got shape {tuple(t.shape)}")
            out.append(t.float())
        return out
    raise FewganError(f"images must be a tensor, an array or a list of them, not {type(images).__name__}")


def _count(images) -> int:
    return images.shape[0] if isinstance(images, torch.Tensor) else len(images)


def intensity_window(real_images, dtype: str | None = None) -> tuple[float, float]:
    """The one intensity window ``(lo, hi)`` (in the [-1, 1] units of the images) mapped to 0..255.

    ``dtype="uint8"`` (8-bit data) gives ``(-1, 1)``: the images are used as they are, as the
    reference FID tools use 8-bit files. Otherwise (16-bit, float, or unknown) the window is the
    minimum and maximum over the *whole real set*, so a 16-bit micrograph that fills a tenth of
    its range still uses all 256 levels; apply the same window to the fakes
    (:func:`to_uint8_range`), never a per-image min-max, which would hide brightness and contrast
    errors. Non-finite values are ignored.

    Parameters
    ----------
    real_images : ``[N, C, H, W]`` / ``[C, H, W]`` tensor or array in [-1, 1], or a list of them.
    dtype : the real files' dtype (``ImageMeta.dtype``), if known.
    """
    if dtype == "uint8":
        return (-1.0, 1.0)
    imgs = _as_list(real_images)
    seq = [imgs] if isinstance(imgs, torch.Tensor) else imgs
    lo, hi = math.inf, -math.inf
    for t in seq:
        finite = t[torch.isfinite(t)]
        if finite.numel():
            lo = min(lo, float(finite.min()))
            hi = max(hi, float(finite.max()))
    if not math.isfinite(lo):
        raise FewganError("the real images hold no finite values; cannot choose an intensity window")
    if hi - lo < 1e-6:  # a constant image: map it to mid-grey rather than divide by zero
        lo, hi = lo - 1.0, hi + 1.0
    return (lo, hi)


def to_uint8_range(images: torch.Tensor, window: Sequence[float] | None = None) -> torch.Tensor:
    """Map ``images`` (any shape, [-1, 1] units) through ``window`` to whole numbers 0..255 (float32).

    ``window=None`` means ``(-1, 1)``. Values outside the window clip to 0 or 255; rounding
    to integers mimics the 8-bit files the reference tools read.
    """
    lo, hi = (-1.0, 1.0) if window is None else (float(window[0]), float(window[1]))
    if not hi > lo:
        raise FewganError(f"intensity window ({lo}, {hi}) is empty; hi must exceed lo")
    x = torch.as_tensor(images, dtype=torch.float32)
    x = (x - lo) * (255.0 / (hi - lo))
    return torch.nan_to_num(x, nan=0.0).round_().clamp_(0.0, 255.0)


def resize_clean(image: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """``[C, H, W]`` float in [0, 255] -> ``[C, size, size]``: PIL bicubic on float, per channel, clipped.

    The "clean" resize of Parmar, Zhang and Zhu, CVPR 2022 (no quantisation after resizing).
    """
    from PIL import Image

    arr = image.detach().cpu().numpy().astype(np.float32, copy=False)
    if arr.shape[-2:] == (size, size):
        return torch.from_numpy(arr.copy())
    out = np.empty((arr.shape[0], size, size), dtype=np.float32)
    for c in range(arr.shape[0]):
        im = Image.fromarray(arr[c], mode="F").resize((size, size), resample=Image.BICUBIC)
        out[c] = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(out).clamp_(0.0, 255.0)


def _tf1_axis(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # TF1 resize_bilinear, align_corners=False: source = dst * (in / out), no half-pixel shift.
    scale = n_in / n_out
    src = torch.arange(n_out, dtype=torch.float64, device=device) * scale
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    w = (src - i0.double()).float()
    return i0, i1, w


def resize_tf1(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """``[N, C, H, W]`` float -> ``[N, C, size, size]`` with TensorFlow 1's ``resize_bilinear``.

    ``align_corners=False`` in TF1 maps output pixel ``i`` to input position ``i * in / out``
    (no half-pixel offset, unlike ``torch.nn.functional.interpolate``); the right and bottom
    neighbours are clamped at the border. This is the resize of the original TF FID code and
    torch-fidelity (Heusel et al., NeurIPS 2017).
    """
    n, c, h, w = images.shape
    y0, y1, wy = _tf1_axis(h, size, images.device)
    x0, x1, wx = _tf1_axis(w, size, images.device)
    wy = wy.view(1, 1, size, 1)
    rows = images[:, :, y0, :] * (1 - wy) + images[:, :, y1, :] * wy
    wx = wx.view(1, 1, 1, size)
    return rows[:, :, :, x0] * (1 - wx) + rows[:, :, :, x1] * wx


def _to_rgb(t: torch.Tensor, where: str) -> torch.Tensor:
    if t.shape[-3] == 3:
        return t
    if t.shape[-3] == 1:
        return t.expand(*t.shape[:-3], 3, *t.shape[-2:])
    raise FewganError(f"{where}: images with {t.shape[-3]} channels; Inception features need 1 (grayscale, "
                      f"replicated) or 3 (RGB); convert the images first")


def preprocess(batch, window=None, resize: str = "clean", size: int = INPUT_SIZE) -> torch.Tensor:
    """Images in [-1, 1] -> the FID network's input ``[B, 3, size, size]`` in ``(x - 128) / 128``.

    ``batch``: ``[B, C, H, W]`` tensor or list of ``[C, H, W]`` (sizes may differ), C = 1 or 3.
    ``window``: the intensity window of :func:`intensity_window` (None: (-1, 1)).
    ``resize``: ``"clean"`` or ``"tf1"`` (see the module docstring).
    """
    if resize not in RESIZE_MODES:
        raise FewganError(f"resize mode {resize!r} is not one of {', '.join(RESIZE_MODES)}")
    items = list(batch) if isinstance(batch, (list, tuple)) else [batch[i] for i in range(batch.shape[0])]
    out = []
    for t in items:
        x = to_uint8_range(t, window)
        if x.shape[0] not in (1, 3):
            _to_rgb(x, "preprocess")
        if resize == "clean":
            x = resize_clean(x, size)
        else:
            x = resize_tf1(x[None], size)[0]
        out.append(_to_rgb(x, "preprocess"))
    return (torch.stack(out) - 128.0) / 128.0


# --------------------------------------------------------------------------- extraction and cache
def default_cache_dir() -> Path:
    """``$FEWGAN_CACHE_DIR/features``, else ``$XDG_CACHE_HOME/fewgan/features`` or ``~/.cache/fewgan/features``."""
    if os.environ.get("FEWGAN_CACHE_DIR"):
        return Path(os.environ["FEWGAN_CACHE_DIR"]).expanduser() / "features"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fewgan" / "features"


def _content_key(images, window, resize, tap, sha) -> str:
    h = hashlib.sha256()
    h.update(repr((_CACHE_FORMAT, None if window is None else (float(window[0]), float(window[1])),
                   resize, tap, sha)).encode())
    seq = [images] if isinstance(images, torch.Tensor) else images
    for t in seq:
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def extract_features(images, *, window=None, resize: str = "clean", batch_size: int = 50, device="cpu",
                     weights=None, layer="2048", progress=True, cache: bool | str | os.PathLike | None = None
                     ) -> np.ndarray:
    """Inception features of a set of images, batched, optionally cached by content hash.

    Parameters
    ----------
    images : ``[N, C, H, W]`` float tensor (or array) in [-1, 1], or a list of ``[C, H, W]``
        tensors/arrays (sizes may differ; each is resized to 299); C = 1 or 3.
    window : ``(lo, hi)`` from :func:`intensity_window` of the *real* set; None means (-1, 1).
    resize : ``"clean"`` (PIL bicubic, default) or ``"tf1"`` (TF1 bilinear, as published FIDs).
    batch_size : images per forward pass.
    device : ``"cpu"``, ``"cuda"`` or ``"auto"``.
    weights : weights file; None looks it up (:func:`find_weights`).
    layer : ``"2048"``/``"pool3"`` (FID), ``"768"``, ``"192"``, ``"64"`` or ``"logits"``.
    progress : True for a progress bar on stderr (when N > batch_size), False for none, or a
        :class:`fewgan.run.RunLogger` whose ``progress()`` to use.
    cache : None/False: no cache; True: :func:`default_cache_dir`; a folder: cache there. The
        key hashes the pixel values, window, resize mode, layer and weights hash, so a real set
        is extracted once.

    Returns
    -------
    ``[N, D]`` float32 array.
    """
    tap = tap_name(layer)
    if batch_size < 1:
        raise FewganError(f"batch size must be at least 1, not {batch_size}")
    if resize not in RESIZE_MODES:
        raise FewganError(f"resize mode {resize!r} is not one of {', '.join(RESIZE_MODES)}")
    imgs = _as_list(images)
    n = _count(imgs)
    if n == 0:
        raise FewganError("no images to extract Inception features from")
    model, info = load_inception(weights, device)
    path = None
    if cache:
        folder = default_cache_dir() if cache is True else Path(cache).expanduser()
        path = folder / f"{_content_key(imgs, window, resize, tap, info['sha256'])}.npy"
        if path.is_file():
            try:
                feats = np.load(path, allow_pickle=False)
                if feats.shape[0] == n:
                    return feats
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed and rewritten
    dev = next(model.parameters()).device
    bar = _progress(progress, n, batch_size)
    chunks = []
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = imgs[start:start + batch_size]
                if resize == "tf1" and isinstance(batch, torch.Tensor):
                    # tf1 runs on the device; clean (PIL) runs on the CPU
                    x = to_uint8_range(batch.to(dev), window)
                    x = _to_rgb(resize_tf1(x) if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE else x,
                                "extract_features")
                    x = (x - 128.0) / 128.0
                else:
                    x = preprocess(batch, window, resize).to(dev)
                out = model(x.contiguous(memory_format=torch.channels_last), taps=(tap,))[tap]
                chunks.append(out.float().cpu().numpy())
                if bar is not None:
                    bar.update(out.shape[0])
    finally:
        if bar is not None:
            bar.close()
    feats = np.concatenate(chunks, axis=0)
    if path is not None:
        from fewgan.run import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, feats, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    return feats


def _progress(progress, n: int, batch_size: int):
    if progress is False or progress is None or n <= batch_size:
        return None
    if hasattr(progress, "progress"):
        return progress.progress(n, "Inception features", "img")
    from types import SimpleNamespace

    from fewgan.run import Progress

    # tqdm on a terminal, a plain line with rate and ETA every 30 s otherwise (logs, batch jobs)
    return Progress(n, desc="Inception features", unit="img", initial=0,
                    logger=SimpleNamespace(enabled=True, quiet=False), every_s=30.0)


def stem_features(image, *, window=None, taps: Iterable = ("64", "192"), weights=None, device="cpu"
                  ) -> dict[str, np.ndarray]:
    """Feature-map positions at the SIFID taps of one image at its native resolution.

    ``image``: ``[C, H, W]`` tensor or array in [-1, 1] (C = 1 or 3, H, W >= 19 for ``"192"``).
    It is mapped through ``window`` to 0..255 and normalised as the official SIFID script does
    (``x / 255 * 2 - 1``), with no resize. Returns ``{tap: [h * w, C_tap] float64 array}``: one
    row per position of the map before the first (``"64"``) or second (``"192"``) max pool.
    """
    t = _as_list(image)
    if not isinstance(t, torch.Tensor) or t.shape[0] != 1:
        raise FewganError("stem_features takes one [C, H, W] image")
    model, _ = load_stem(weights, device)
    dev = next(model.parameters()).device
    x = _to_rgb(to_uint8_range(t, window), "SIFID") / 127.5 - 1.0
    with torch.inference_mode():
        try:
            maps = model.stem_maps(x.to(dev).contiguous(memory_format=torch.channels_last), taps=tuple(taps))
        except ValueError as exc:
            raise FewganError(f"SIFID: {exc}") from None
    return {k: v[0].flatten(1).T.double().cpu().numpy() for k, v in maps.items()}


def feature_info(*, weights=None, resize: str = "clean", layer="2048", n: int | None = None,
                 window=None) -> dict[str, Any]:
    """What a metrics JSON records about its features: weights file and hash, resize mode, layer, N, window."""
    p = find_weights(weights)
    sha = file_sha256(p)
    return {
        "weights_file": p.name,
        "weights_sha256": sha,
        "weights_reference": sha == WEIGHTS_SHA256,
        "resize": resize,
        "layer": tap_name(layer),
        "n": n,
        "window": None if window is None else [float(window[0]), float(window[1])],
    }
