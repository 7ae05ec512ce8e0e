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

**Copying** (single-image mode, by default): layout copying (objects in place within 2 px, beside
the chance level and, with ``second_real``, two real images) and patch copying
(:mod:`fewgan.metrics.copying`). Sets have the memorisation test instead.

**Labels** travel with the images (:attr:`ImageSet.labels`): ``NAME_masks.tif|png`` beside the
real image(s) or ``real_labels``; a labelled run's ``sample_with_labels``; the masks beside a
folder of samples. The ``labels`` metric (default-on whenever both sides have labels) is the label
consistency of :mod:`fewgan.metrics.instances` on the generated images beside the same on the real
images with their real labels, both detected with the real set's threshold.

**Utility** (only when asked: minutes): :mod:`fewgan.metrics.utility` trained on REAL, on FAKE and
on both, tested on held-out real images with labels: ``test``, or :data:`UTILITY_SPLIT`. The
generator must never have seen them; :func:`prepare_utility` checks it against the training data
a FAKE run records, and refuses otherwise.

**The verdict**: ``result['verdict']`` is :func:`fewgan.metrics.verdict.verdict_lines` of the
result, one ``{question, level, text}`` per question whose metric ran.

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
METRICS = ("fid", "kid", "prdc", "sifid", "diversity", "swd", "psnr", "ssim", "particles", "memorisation",
           "copying", "labels", "utility")
DEFAULT_SET = ("fid", "kid", "prdc", "swd", "particles", "memorisation")
DEFAULT_SINGLE = ("sifid", "diversity", "swd", "particles", "copying")
#: Default-on (either mode) whenever both sides carry instance labels.
DEFAULT_WITH_LABELS = ("labels",)
#: How to give labels, for the one-line error of a label metric asked for without them.
LABEL_HINT = ("give instance labels on both sides: NAME_masks.tif|png beside the real image(s) or "
              "--real-labels PATH|DIR, and a run trained with --labels (or a folder of samples written "
              "with --export cellpose) as FAKE")
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
    #: per image its instances ``[H, W]`` int (0 background, 1..n) at the image's size, or None
    labels: list[np.ndarray] | None = None
    labels_from: str | None = None  # where the labels came from, in words
    files: list[str] | None = None  # the image files, in order (folder or image)
    trained_on: str | None = None  # a run (FAKE): the training data its config.json records

    def describe(self) -> dict[str, Any]:
        meta = self.meta.to_dict() if self.meta is not None else None
        return {"source": self.source, "kind": self.kind, "n": int(self.images.shape[0]),
                "channels": int(self.images.shape[1]), "size": [int(self.images.shape[2]), int(self.images.shape[3])],
                "meta": meta, "notes": list(self.notes), "labels": self.labels_from,
                "trained_on": self.trained_on}


# --------------------------------------------------------------------------- loading
def _is_run(path: Path) -> bool:
    from fewgan.run import CONFIG_FILE

    return path.is_dir() and (path / CONFIG_FILE).is_file()


#: How a run folder becomes an image set: ``loader(run, *, role, n, seed, device, want_recon, resolution,
#: channels, labels) -> ImageSet``. Runs are a layer above metrics; :func:`fewgan.trained.run_image_set` is the one
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
             run_loader: RunLoader | None = None, native_size: bool = False, labels: Any = None,
             labels_option: str = "--real-labels") -> ImageSet:
    """Load one side: a tensor ``[N, C, H, W]`` (used as is), an image file, a folder, or a run folder
    through ``run_loader`` (:data:`RunLoader`; without one a run folder is an error).

    ``native_size``: a folder is loaded at its images' own size (see :func:`_load_folder_native`)
    instead of a square ``resolution``; used for the samples of single-image mode.

    ``labels``: the instance labels of the images (:func:`attach_labels`): None takes the Cellpose
    ``NAME_masks.tif|png`` beside every image when every image has one; a label file (one image) or a
    folder of label files named like the images is required to fit. ``labels_option`` names the
    option in error messages.
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
                          resolution=resolution, channels=channels, labels=labels)
    if p.is_dir():
        from fewgan.data.folder import list_images

        files = list_images(p)
        native = native_size and resolution is None
        if native:
            images, meta, notes = _load_folder_native(p, channels)
            out = ImageSet(images=images, meta=meta, source=str(p), kind="folder", notes=notes)
        else:
            from fewgan.data.folder import load_folder

            images, folder_meta = load_folder(p, resolution=resolution, channels=channels)
            out = ImageSet(images=images, meta=folder_meta.image, source=str(p), kind="folder",
                           notes=list(folder_meta.notes))
    else:
        from fewgan.data.images import read_image

        files, native = [p], True
        image, meta = read_image(p, channels=channels)
        out = ImageSet(images=image[None], meta=meta, source=str(p), kind="image", notes=list(meta.notes))
    out.files = [str(f) for f in files]
    return attach_labels(out, labels, labels_option, resize=not native)


# --------------------------------------------------------------------------- labels
def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Instances ``[H, W]`` -> ``[h, w]`` by nearest neighbour (pixel centres); ids are kept, and renumbered
    1..n in their order only when an instance too small for the new grid vanishes."""
    labels = np.asarray(labels)
    h0, w0 = labels.shape
    h, w = int(size[0]), int(size[1])
    if (h0, w0) == (h, w):
        return labels
    rows = np.minimum(((np.arange(h) + 0.5) * h0 / h).astype(np.int64), h0 - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * w0 / w).astype(np.int64), w0 - 1)
    out = labels[rows[:, None], cols[None, :]]
    return out if np.unique(out).size == np.unique(labels).size else _compact(out)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Instance ids made 1..n (in their order) when some are missing; 0 stays background."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if not ids.size or ids[-1] == ids.size:
        return labels.astype(np.int32)
    lut = np.zeros(int(labels.max(initial=0)) + 1, np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[labels]


def _fit_labels(labels: np.ndarray, size: tuple[int, int], resize: bool = True) -> np.ndarray:
    """A file's instances brought to the grid its image was loaded at: centre-cropped to ``size``
    (``resize=False``, as :func:`_load_folder_native` crops) or to its aspect and then resized by
    nearest neighbour (as :func:`fewgan.data.folder.fit_square` crops and resizes; :func:`resize_labels`)."""
    h0, w0 = labels.shape
    h, w = size
    if not resize:
        return _centre_crop(labels, (h, w))
    if h0 * w != w0 * h:  # crop to the target's aspect first
        if h0 * w > w0 * h:
            labels = _centre_crop(labels, (max(1, round(w0 * h / w)), w0))
        else:
            labels = _centre_crop(labels, (h0, max(1, round(h0 * w / h))))
    return resize_labels(labels, size)


def _label_file_in(folder: Path, image: Path) -> Path | None:
    """The label file of ``image`` in ``folder``: the Cellpose name, the same name, or the same stem
    (never the image itself, when ``folder`` is the image's own folder)."""
    from fewgan.data.labels import MASK_SUFFIXES

    for name in [image.stem + s for s in MASK_SUFFIXES] + [image.name] + [image.stem + s for s in (".png", ".tif", ".tiff")]:
        candidate = folder / name
        if candidate.is_file() and candidate.resolve() != image.resolve():
            return candidate
    return None


def attach_labels(image_set: ImageSet, labels: Any = None, option: str = "--real-labels",
                  resize: bool = True) -> ImageSet:
    """Read the instance labels of an image set's files and fit them to its images' grid.

    ``labels``: None (the Cellpose ``NAME_masks.tif|png`` beside every image, when every image has
    one; otherwise no labels, with a note when only some have them), a label file (one image), or a
    folder of label files with the images' names or stems. Each label image is checked against its
    image's size (:func:`fewgan.data.labels.read_labels`: one-line errors for a wrong size, non-integer
    values, an empty mask) and brought to the loaded size by the same centre crop and (``resize``,
    images fitted to a square resolution) a nearest-neighbour resize (instance ids kept).
    """
    from fewgan.data.images import read_array
    from fewgan.data.labels import labels_beside, read_labels

    files = [Path(f) for f in image_set.files or []]
    if not files:
        if labels is not None:
            raise FewganError(f"{option} {labels}: labels need the images as files, not a tensor")
        return image_set
    if labels is None:
        beside = [labels_beside(f) for f in files]
        found = sum(b is not None for b in beside)
        if found == 0:
            return image_set
        if found < len(files):
            image_set.notes.append(f"{found} of {len(files)} images have labels beside them: labels not used "
                                   "(every image needs its NAME_masks.tif|png)")
            return image_set
        if len(files) > 1:
            from fewgan.data.folder import label_paths

            beside = label_paths(files, "beside")  # also refuses a label image without its image
        paths, origin = beside, "NAME_masks.tif|png beside the images"
    else:
        given = Path(labels)
        if given.is_file():
            if len(files) != 1:
                raise FewganError(f"{option} {given}: one label file is for one image; for a folder of "
                                  "images give a folder of label images with the same names")
            paths = [given]
        elif given.is_dir():
            paths = [_label_file_in(given, f) for f in files]
            missing = [f for f, q in zip(files, paths) if q is None]
            if missing:
                raise FewganError(f"{option} {given}: no label image for {missing[0].name} (expected "
                                  f"{missing[0].stem}.png/.tif or {missing[0].stem}_masks.tif there); "
                                  f"{len(missing)} of {len(files)} images have none")
        else:
            raise FewganError(f"{option} {given}: no such label file or folder")
        origin = str(given)
    size = tuple(int(v) for v in image_set.images.shape[-2:])
    out = []
    for f, q in zip(files, paths):
        instances = read_labels(q, shape=tuple(read_array(f)[0].shape[:2]))
        out.append(_compact(_fit_labels(instances, size, resize)))
    image_set.labels = out
    image_set.labels_from = origin
    return image_set


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


def _second_real(path: Any, compared: tuple[int, int], native: tuple[int, int], channels: int,
                 single: bool) -> torch.Tensor:
    """The independent real image of ``second_real`` ``[1, C, H, W]`` at the compared size: as it is,
    or resized like REAL when REAL was (a run trained on it shrunk); another size is an error."""
    from fewgan.data.folder import resize

    if not single:
        raise FewganError("--second-real is for single-image mode (REAL one image); sets have the memorisation test")
    other = load_set(path, role="second real", channels=channels)
    if other.images.shape[0] != 1:
        raise FewganError(f"--second-real {path}: give one image, not {other.images.shape[0]}")
    size = tuple(int(v) for v in other.images.shape[-2:])
    if size == compared:
        return other.images
    if size == native:
        return resize(other.images, compared).clamp(-1.0, 1.0)
    raise FewganError(f"--second-real {path}: the image is {size[0]}x{size[1]} px but the real image "
                      f"{native[0]}x{native[1]} px; give an independent real image of the same size")


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def held_out_overlap(test_files: list[Any], training: Any, test_root: Any = None) -> str | None:
    """Why the test images are *not* held out from the training data at ``training`` (a file or a
    folder of images), or None when they are: a test path (or ``test_root``) that is the training
    data, lies inside it or contains it, or a test image with the same bytes as a training image."""
    from fewgan.data.folder import IMAGE_SUFFIXES

    training = Path(training).resolve()
    roots = [Path(f).resolve() for f in test_files] + ([Path(test_root).resolve()] if test_root is not None else [])
    for r in roots:
        if r == training:
            return f"{r} is the training data"
        if training in r.parents:
            return f"{r} lies inside the training data {training}"
        if r in training.parents:
            return f"{r} contains the training data {training}"
    if training.is_dir():
        train_files = [f for f in training.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        train_files = [training] if training.is_file() else []
    digests = {_digest(f): f for f in train_files}
    for f in test_files:
        twin = digests.get(_digest(Path(f)))
        if twin is not None:
            return f"{f} has the same bytes as the training image {twin}"
    return None


@dataclasses.dataclass
class _UtilityData:
    real: list  # ([C, H, W], [H, W]) pairs the real-only segmenter trains on
    test: list  # held-out ([C, H, W], [H, W]) pairs
    config: Any  # fewgan.metrics.utility.UtilityConfig
    test_source: str
    checked: str


UTILITY_SPLIT = ("without --test, the last quarter of REAL's images in file order (at least one) is held out "
                 "for testing and the rest trains the real-only segmenter")


def prepare_utility(real_set: ImageSet, fake_set: ImageSet, test: Any, *, channels: int, seed: int,
                    options: dict[str, Any] | None, warns: list[str]) -> _UtilityData:
    """The held-out real data of ``utility`` and the check that the generator never saw it.

    ``test``: an image or a folder with labels beside (``NAME_masks.tif|png``); without it, the
    documented split (:data:`UTILITY_SPLIT`). Refused (one line): test images that are, lie inside,
    contain or repeat (same bytes) the training data the FAKE run's ``config.json`` records, or REAL
    (what the real-only segmenter trains on). FAKE as a folder of samples records nothing: the
    requirement is then stated in a warning, not checked.
    """
    from fewgan.metrics.utility import UtilityConfig

    config = UtilityConfig.from_dict({"seed": int(seed), **(options or {})})
    for side, image_set in (("real", real_set), ("generated", fake_set)):
        if image_set.labels is None:
            raise FewganError(f"utility: the {side} images have no labels; {LABEL_HINT}")
    real_pairs = list(zip(real_set.images, real_set.labels))
    trained_on = fake_set.trained_on
    if test is not None:
        test_set = load_set(test, role="test", channels=channels, native_size=True, labels_option="--test")
        if test_set.labels is None:
            raise FewganError(f"--test {test}: the test images have no labels beside them (NAME_masks.tif|png "
                              "beside each image); the segmenters are scored against them")
        test_pairs = list(zip(test_set.images, test_set.labels))
        test_files = [Path(f) for f in test_set.files or []]
        if real_set.kind in ("image", "folder"):  # a run as REAL is loaded as its training image or folder
            why = held_out_overlap(test_files, real_set.source, test_root=test)
            if why:
                raise FewganError(f"--test {test}: {why}; the real-only segmenter trains on REAL, so test on "
                                  "other labelled real images")
        source, root = str(test), test
    else:
        n = len(real_pairs)
        if n < 2 or not real_set.files:
            raise FewganError("utility needs held-out real images with labels: pass --test IMAGE|DIR (labels "
                              "beside), or give REAL as a folder of at least 2 labelled images (its last quarter "
                              "is held out)")
        k = max(1, n // 4)
        test_pairs, real_pairs = real_pairs[n - k:], real_pairs[: n - k]
        test_files = [Path(f) for f in real_set.files[n - k:]]
        source = f"the last {k} of REAL's {n} images in file order ({', '.join(f.name for f in test_files)})"
        root = None
    if trained_on is None:
        checked = "unchecked: FAKE records no training data"
        warns.append(f"utility: FAKE records no training data, so the held-out requirement (its generator never "
                     f"saw the test images: {source}) is not checked; make sure it holds")
    elif not Path(trained_on).exists():
        checked = f"unchecked: the run's training data {trained_on} is not on this machine"
        warns.append(f"utility: the run's training data {trained_on} is not on this machine: the held-out "
                     "requirement is not checked")
    else:
        why = held_out_overlap(test_files, trained_on, test_root=root)
        if why:
            fix = ("pass --test with labelled real images the generator never saw" if test is None else
                   "test on labelled real images the generator never saw")
            raise FewganError(f"utility: the test images were seen by the generator ({why}, recorded in "
                              f"{fake_set.source}/config.json); {fix}")
        checked = f"checked: none of the test images is in the run's training data {trained_on}"
    return _UtilityData(real=real_pairs, test=test_pairs, config=config, test_source=source, checked=checked)


# --------------------------------------------------------------------------- the orchestrator
def evaluate(real: Any, fake: Any, *, metrics: list[str] | tuple[str, ...] | None = None,
             json_path: Any = None, device: str = "cpu", n: int | None = None, seed: int = 0,
             resolution: int | None = None, channels: str | int = "auto", size_mismatch: str = "resize",
             floors: bool = True, resize: str = "clean", batch_size: int = 50, weights: Any = None,
             cache: bool | str | None = None, particle_options: dict[str, Any] | None = None,
             near_copy_threshold: float | None = None, log: Callable[[str], None] | None = None,
             progress: bool = False, run_loader: RunLoader | None = None, real_labels: Any = None,
             second_real: Any = None, test: Any = None,
             utility_options: dict[str, Any] | None = None) -> dict[str, Any]:
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
    real_labels : instance labels of REAL: a label file (one image) or a folder of label files
        named like the images; default the Cellpose ``NAME_masks.tif|png`` beside each image.
        FAKE's labels come from a labelled run (``outputs == ('labels',)``) or the masks beside a
        folder of samples.
    second_real : an independent real image (single-image mode): the layout and patch copying
        measures between it and REAL show what two real images give.
    test : held-out real images with labels beside them (an image or a folder) for ``utility``;
        default: the last quarter of REAL's images (:func:`utility_split`).
    utility_options : fields of :class:`fewgan.metrics.utility.UtilityConfig` (its seed defaults
        to ``seed``).

    Returns
    -------
    dict: ``real`` and ``fake`` (what was compared), ``mode``, ``metrics`` (per metric its
    numbers, its ``floor`` and ``seconds``, or ``skipped`` with the reason), ``table`` (rows
    ``{metric, value, floor, note}`` for the terminal), ``verdict`` (one
    :meth:`fewgan.metrics.verdict.Line.to_dict` per question whose metric ran:
    :func:`fewgan.metrics.verdict.verdict_lines`), ``warnings``.
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

    real_set = load_set(real, role="real", resolution=resolution, channels=channels, run_loader=run_loader,
                        labels=real_labels)
    single = real_set.images.shape[0] == 1
    real_native = tuple(int(v) for v in real_set.images.shape[-2:])
    chosen = list(requested or (DEFAULT_SINGLE if single else DEFAULT_SET))
    explicit = requested is not None
    if n is None:
        n = max(int(real_set.images.shape[0]), 50) if single else int(real_set.images.shape[0])
    fake_set = load_set(fake, role="fake", n=n, seed=seed, resolution=resolution, channels=channels,
                        device=device, want_recon=("psnr" in chosen or "ssim" in chosen), run_loader=run_loader,
                        native_size=single)
    if fake_set.meta is None:
        fake_set.meta = real_set.meta
    if not explicit and real_set.labels is not None and fake_set.labels is not None:
        chosen += [m for m in DEFAULT_WITH_LABELS if m not in chosen]
    trained = fake_set.recon_real
    if (single and trained is not None and trained.shape[1] == real_set.images.shape[1]
            and trained.shape[-2:] != real_set.images.shape[-2:]):
        # SinGAN trained on the image resized to its max size: compare at that size, so that
        # particle sizes and patch scales match the samples
        (h0, w0), (h1, w1) = real_set.images.shape[-2:], trained.shape[-2:]
        real_set.images = trained
        if real_set.labels is not None:  # nearest neighbour, instance ids kept
            real_set.labels = [resize_labels(lab, (int(h1), int(w1))) for lab in real_set.labels]
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
        if fake_set.labels is not None:
            fake_set.labels = [resize_labels(lab, tuple(r_img.shape[-2:])) for lab in fake_set.labels]
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

    second = None
    if second_real is not None:
        second = _second_real(second_real, tuple(int(v) for v in r_img.shape[-2:]), real_native,
                              int(r_img.shape[1]), single)
    utility_data = None
    if "utility" in chosen:
        utility_data = prepare_utility(real_set, fake_set, test, channels=int(r_img.shape[1]), seed=seed,
                                       options=utility_options, warns=warns)
    ctx = _Context(r_img, f_img, real_set, fake_set, floor_pair, single, seed, device, resize, batch_size,
                   weights, cache, particle_options or {}, near_copy_threshold, progress, say,
                   real_labels=real_set.labels, fake_labels=fake_set.labels, second_real=second,
                   utility_data=utility_data)
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
    from fewgan.metrics.verdict import verdict_lines

    out["verdict"] = [line.to_dict() for line in verdict_lines(json_safe(out))]
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
    real_labels: list[np.ndarray] | None = None
    fake_labels: list[np.ndarray] | None = None
    second_real: torch.Tensor | None = None  # [1, C, H, W] at the compared size, or None
    utility_data: Any = None  # _UtilityData, prepared before the metrics run
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
    _need(ctx.single, "pixel diversity is the single-image measure (REAL one image, SinGAN's case); for a set "
                      "of real images the variety is prdc's recall and coverage")
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


def _copying(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.copying import PATCH_SIZE, single_image_copying
    from fewgan.metrics.particles import ParticleConfig

    _need(ctx.single, "copying compares samples with one training image; sets have the memorisation test")
    _need(not floor, "compared with chance levels (and with a second real image: --second-real)")
    real, fake = ctx.real, ctx.fake
    _need(min(real.shape[-2:]) >= 2 * PATCH_SIZE and min(fake.shape[-2:]) >= PATCH_SIZE,
          f"copying needs a real image of at least {2 * PATCH_SIZE} px and samples of at least {PATCH_SIZE} px")
    config = ParticleConfig.from_dict(ctx.particle_options)
    other = ctx.second_real[0] if ctx.second_real is not None else None
    out = single_image_copying(real[0], fake, other_real=other, particle_config=config, seed=ctx.seed)
    if fake.shape[-2:] != real.shape[-2:]:
        out["layout"]["note"] = (f"samples are {fake.shape[-2]}x{fake.shape[-1]} px, the training image "
                                 f"{real.shape[-2]}x{real.shape[-1]} px: objects inside its frame are counted")
    out["value"] = out["layout"]["fraction"]
    out["value_is"] = "layout: fraction of sample objects in place"
    return out


def _labels(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.instances import label_consistency
    from fewgan.metrics.particles import ParticleConfig, find_threshold

    missing = [side for side, lab in (("the real images", ctx.real_labels), ("the generated images", ctx.fake_labels))
               if lab is None]
    _need(not missing, f"{' and '.join(missing)} have no labels; {LABEL_HINT}")
    _need(not floor, "the reference is the same measure on the real images with their real labels")
    config = ParticleConfig.from_dict(ctx.particle_options)
    threshold = find_threshold(ctx.real, config)  # one detection rule for both sides: the real set's
    real = label_consistency(ctx.real, [_compact(lab) for lab in ctx.real_labels], config, threshold)
    fake = label_consistency(ctx.fake, [_compact(lab) for lab in ctx.fake_labels], config, threshold)
    ratio = fake["f1"] / real["f1"] if real["f1"] > 0 else float("nan")
    return {"value": fake["f1"], "generated": fake, "real": real, "ratio": ratio, "threshold": threshold,
            "definition": "fewgan's particle analysis of each image (the real set's threshold) matched to the "
                          "image's instance labels: F1 at IoU 0.5 (Hungarian matching), mean matched IoU"}


def _utility(ctx: _Context, floor: bool) -> dict[str, Any]:
    from fewgan.metrics.utility import utility

    _need(not floor, "the reference is the segmenter trained on real images only")
    data = ctx.utility_data
    synthetic = list(zip(ctx.fake, ctx.fake_labels))
    ctx.say(f"utility: training the segmenter 3 times ({data.config.steps} steps each) ...")
    out = utility(data.real, synthetic, data.test, data.config)
    out["value"] = out["synthetic"]["f1"]
    out["test"] = {"source": data.test_source, "images": len(data.test), "held_out": data.checked}
    out["train"] = {"real_images": len(data.real), "synthetic_images": len(synthetic)}
    out["split_rule"] = UTILITY_SPLIT
    return out


_METRIC_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "fid": _fid, "kid": _kid, "prdc": _prdc, "sifid": _sifid, "diversity": _diversity, "swd": _swd,
    "psnr": lambda ctx, floor: _psnr_ssim(ctx, floor, "psnr"),
    "ssim": lambda ctx, floor: _psnr_ssim(ctx, floor, "ssim"),
    "particles": _particles, "memorisation": _memorisation,
    "copying": _copying, "labels": _labels, "utility": _utility,
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
        elif name == "copying":
            lay, pat = entry["layout"], entry["patches"]
            note = f"chance {lay['chance']:.3g}, r = {lay['radius']:g} px, {lay['objects']} objects"
            if lay.get("real_fraction") is not None:
                note += f"; second real image {lay['real_fraction']:.3g}"
            rows.append({"metric": "copying layout (in place)", "value": lay["fraction"], "floor": None, "note": note})
            note = f"chance {pat['chance']:.3g}, {pat['patch']}x{pat['patch']} px patches"
            if pat.get("real_share") is not None:
                note += f"; second real image {pat['real_share']:.3g}"
            rows.append({"metric": "copying patches", "value": pat["share"], "floor": None, "note": note})
        elif name == "labels":
            gen, ref = entry["generated"], entry["real"]
            rows.append({"metric": "labels F1", "value": gen["f1"], "floor": ref["f1"],
                         "note": f"floor: real images with real labels; {gen['n_ref']} generated instances"})
            rows.append({"metric": "labels mean matched IoU", "value": gen["mean_matched_iou"],
                         "floor": ref["mean_matched_iou"], "note": "floor: real images with real labels"})
        elif name == "utility":
            for source, label in (("real", "real only"), ("synthetic", "synthetic only"), ("both", "real + synthetic")):
                if source in entry:
                    e = entry[source]
                    rows.append({"metric": f"utility F1 ({label})", "value": e["f1"], "floor": None,
                                 "note": f"mean matched IoU {e['mean_matched_iou']:.3g}, count error "
                                         f"{e['relative_count_error']:+.2f}, {e['seconds']:.0f} s"})
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
