"""Small image data sets held in memory as one tensor.

Every image under a folder is read, converted to one channel count and one square
resolution, and mapped to [-1, 1] with **one** data range for the whole set (the dtype's
range for integer data, the set's global value range for float data), never per-image
min-max, which would erase real intensity differences between images.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fewgan.data.images import IMAGE_SUFFIXES, ImageMeta, convert_channels, read_array, to_unit_range
from fewgan.errors import FewganError

FITS = ("crop", "resize", "pad")


@dataclasses.dataclass
class FolderMeta:
    """What a folder data set is: its files, the common image metadata and how it was fitted."""

    root: str
    files: list[str]
    image: ImageMeta
    resolution: int
    fit: str
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "count": len(self.files),
            "files": list(self.files),
            "image": self.image.to_dict(),
            "resolution": self.resolution,
            "fit": self.fit,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FolderMeta":
        return cls(root=data["root"], files=list(data.get("files", [])), image=ImageMeta.from_dict(data["image"]),
                   resolution=int(data["resolution"]), fit=data.get("fit", "crop"), notes=list(data.get("notes", [])))


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files (PNG, TIFF, JPEG) under ``folder``, sorted; hidden files and label images
    (``NAME_masks.tif|png``, the Cellpose convention) are skipped."""
    from fewgan.data.labels import is_label_file

    folder = Path(folder)
    if not folder.exists():
        raise FewganError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise FewganError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in folder.glob(pattern)
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and not is_label_file(p)
    )
    if not files:
        hint = "" if recursive else " (add --recursive to search sub-folders)"
        raise FewganError(f"{folder}: no PNG, TIFF or JPEG images found{hint}")
    return files


def fit_square(image: torch.Tensor, resolution: int, fit: str = "crop") -> torch.Tensor:
    """Bring ``[C, H, W]`` to ``[C, resolution, resolution]``.

    ``crop``: centre-crop to a square, then resize; ``resize``: resize both sides (the
    aspect changes); ``pad``: pad the short side symmetrically with edge reflection, then
    resize. Resizing is bicubic with antialiasing (when shrinking) on float data.
    """
    if fit not in FITS:
        raise FewganError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    c, h, w = image.shape
    if fit == "crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[:, top:top + side, left:left + side]
    elif fit == "pad" and h != w:
        side = max(h, w)
        ph, pw = side - h, side - w
        mode = "reflect" if ph < h and pw < w else "replicate"
        image = F.pad(image[None], (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)[0]
    if image.shape[1:] != (resolution, resolution):
        image = resize(image, (resolution, resolution))
    return image


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of ``[C, H, W]`` or ``[N, C, H, W]`` float images."""
    batched = image.dim() == 4
    x = image if batched else image[None]
    antialias = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    return y if batched else y[0]


def load_folder(
    path: str | os.PathLike,
    resolution: int | None = None,
    channels: str | int = "auto",
    fit: str = "crop",
    recursive: bool = False,
    data_range: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, FolderMeta]:
    """Load every image under ``path`` as one ``[N, C, R, R]`` float32 tensor in [-1, 1].

    Parameters
    ----------
    path : folder of PNG / TIFF / JPEG images.
    resolution : square side R; default: the images' common side if they are all square
        and of one size, else an error asking for it.
    channels : 'auto' (1 if every image is gray or gray saved as RGB, else 3), 1 or 3.
    fit : 'crop', 'resize' or 'pad' (see :func:`fit_square`), recorded in the metadata.
    recursive : include sub-folders.
    data_range : (lo, hi) for the whole set; default the dtype's range (integer data) or
        the set's global min/max (float data).

    Mixed bit depths are an error naming two offending files.
    """
    root = Path(path)
    files = list_images(root, recursive=recursive)
    arrays: list[np.ndarray] = []
    metas: list[ImageMeta] = []
    for f in files:
        array, meta = read_array(f)
        if metas and meta.dtype != metas[0].dtype:
            raise FewganError(
                f"{root}: mixed bit depths: {metas[0].path} is {metas[0].dtype} but {meta.path} is {meta.dtype}; "
                "convert the images to one bit depth"
            )
        arrays.append(array)
        metas.append(meta)
    first = metas[0]
    # channel count for the set
    if channels == "auto":
        gray = [convert_channels(a, "auto").shape[2] == 1 for a in arrays]
        channels = 1 if all(gray) else 3
    channels = int(channels)
    if channels not in (1, 3):
        raise FewganError(f"channels must be 'auto', 1 or 3, not {channels}")
    # one data range for the whole set
    if data_range is None:
        if first.dtype == "uint8":
            data_range = (0.0, 255.0)
        elif first.dtype == "uint16":
            data_range = (0.0, 65535.0)
        else:
            lo = min(float(np.nanmin(a)) for a in arrays)
            hi = max(float(np.nanmax(a)) for a in arrays)
            data_range = (lo, hi if hi > lo else lo + 1.0)
    data_range = (float(data_range[0]), float(data_range[1]))
    if resolution is None:
        sizes = {(a.shape[0], a.shape[1]) for a in arrays}
        if len(sizes) == 1 and next(iter(sizes))[0] == next(iter(sizes))[1]:
            resolution = next(iter(sizes))[0]
        else:
            raise FewganError(f"{root}: images have different or non-square sizes; choose --resolution")
    resolution = int(resolution)
    notes: list[str] = []
    out = torch.empty((len(arrays), channels, resolution, resolution), dtype=torch.float32)
    resized = 0
    for i, (array, meta) in enumerate(zip(arrays, metas)):
        array = convert_channels(array, channels, where=meta.path or "image")
        # non-finite values were refused (or replaced, by choice) when the file was read
        x = to_unit_range(array, data_range)
        if x.shape[1:] != (resolution, resolution):
            resized += 1
        out[i] = fit_square(x, resolution, fit)
    if resized:
        notes.append(f"{resized} of {len(arrays)} images fitted to {resolution}x{resolution} by {fit} "
                     "(bicubic, antialiased)")
    # the pixel size of each image at the training resolution: a crop keeps it, a resize of the
    # square side s to R multiplies it by s / R (pad: the long side, resize: the mean of both)
    for m in metas:
        if m.pixel_size is not None and (m.height, m.width) != (resolution, resolution):
            side = {"crop": min(m.height, m.width), "pad": max(m.height, m.width)}.get(fit, (m.height + m.width) / 2)
            m.pixel_size = float(m.pixel_size) * side / resolution
    for m in metas:
        notes.extend(f"{Path(m.path).name}: {n}" for n in m.notes if "non-finite" in n)
    pixel_sizes = {(None if m.pixel_size is None else round(m.pixel_size, 12), m.pixel_unit) for m in metas}
    pixel_size, pixel_unit = next(iter(pixel_sizes)) if len(pixel_sizes) == 1 else (None, None)
    if len(pixel_sizes) > 1:
        notes.append("images carry different pixel sizes; none recorded for the set")
    image_meta = ImageMeta(
        format="png" if first.format == "jpeg" else first.format,
        dtype=first.dtype, bit_depth=first.bit_depth, channels=channels,
        source_channels=channels,
        data_range=data_range, pixel_size=pixel_size, pixel_unit=pixel_unit,
        height=resolution, width=resolution, path=None, notes=[],
    )
    meta = FolderMeta(root=str(root), files=[str(f) for f in files], image=image_meta, resolution=resolution,
                      fit=fit, notes=notes)
    return out.clamp_(-1.0, 1.0), meta  # bicubic overshoot stays inside the data range


def label_paths(files: list[str] | list[Path], labels: str) -> list[Path]:
    """The label file of each image of a folder: ``'beside'`` (``NAME_masks.tif|png`` next to each
    image, the Cellpose convention) or a folder holding a label file of the same name (or stem) as
    each image. A missing label or a label without an image: one-line errors."""
    from fewgan.data.labels import MASK_SUFFIXES, is_label_file, labels_beside

    files = [Path(f) for f in files]
    if labels == "beside":
        paths = [labels_beside(f) for f in files]
        missing = [f for f, p in zip(files, paths) if p is None]
        if missing:
            raise FewganError(f"{missing[0]}: no label image beside it ({missing[0].stem}_masks.tif or .png); "
                              f"{len(missing)} of {len(files)} images have none")
        stems = {f.parent / f.stem for f in files}
        for folder in {f.parent for f in files}:
            for q in folder.iterdir():
                if is_label_file(q):
                    name = q.name[: -len(next(s for s in MASK_SUFFIXES if q.name.lower().endswith(s)))]
                    if folder / name not in stems:
                        raise FewganError(f"{q}: label image without an image ({name}.png/.tif not found)")
    else:
        folder = Path(labels)
        if not folder.is_dir():
            raise FewganError(f"--labels {labels}: use none, beside, auto or a folder of label images")
        by_stem: dict[str, Path] = {}
        for q in sorted(folder.iterdir()):
            if q.is_file() and q.suffix.lower() in (".png", ".tif", ".tiff") and not q.name.startswith("."):
                by_stem.setdefault(q.stem, q)
        paths = [folder / f.name if (folder / f.name).is_file() else by_stem.get(f.stem) for f in files]
        missing = [f for f, p in zip(files, paths) if p is None]
        if missing:
            raise FewganError(f"{missing[0]}: no label image {missing[0].stem}.png/.tif in {folder}; "
                              f"{len(missing)} of {len(files)} images have none")
        extra = sorted(set(by_stem) - {f.stem for f in files})
        if extra:
            raise FewganError(f"{by_stem[extra[0]]}: label image without an image of that name")
    return paths


def load_folder_labels(files: list[str] | list[Path], labels: str, resolution: int, fit: str = "crop") -> torch.Tensor:
    """The label channels of a folder's images: ``[N, 2, R, R]`` float32 in [-1, 1].

    ``labels``: as :func:`label_paths`. Each label image is checked against its image's size,
    encoded at full resolution (:func:`fewgan.data.labels.encode_instances`) and fitted to ``R``
    exactly like its image (:func:`fit_square`). A missing label, a label without an image, a wrong
    size: one-line errors.
    """
    from fewgan.data.images import read_array
    from fewgan.data.labels import encode_instances, read_labels

    files = [Path(f) for f in files]
    paths = label_paths(files, labels)
    out = torch.empty((len(files), 2, resolution, resolution), dtype=torch.float32)
    for i, (f, p) in enumerate(zip(files, paths)):
        shape = read_array(f)[0].shape[:2]
        encoded = torch.from_numpy(encode_instances(read_labels(p, shape=shape)))
        out[i] = fit_square(encoded, resolution, fit)
    return out.clamp_(-1.0, 1.0)
