"""Read and write the images scientists have: PNG, TIFF and JPEG; 8/16-bit and float; gray or RGB.

An image is read to a float32 tensor ``[C, H, W]`` in [-1, 1] plus an :class:`ImageMeta`
that records how to map it back: format, dtype and bit depth, channel count, the **data
range** ``(lo, hi)`` that maps to [-1, 1] (the dtype's range by default; a 12-bit camera
image in uint16 can say ``(0, 4095)``; for float data the value range), and the physical
pixel size where the file carries it (TIFF resolution tags, ImageJ or OME metadata, PNG
pHYs). :func:`write_image` writes a tensor back in that format, bit depth and data range;
a read -> write -> read round trip of any 8- or 16-bit PNG or TIFF is exact.

Codecs: Pillow for PNG/JPEG except 16-bit colour PNG, which Pillow silently reduces to
8 bits, so that case goes through pypng (pure Python); tifffile for TIFF.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.run import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
_FORMAT_OF_SUFFIX = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}
_DTYPE_RANGE = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0)}
#: the largest image read, in pixels (width x height), checked from the file's header before
#: anything is decoded: a 12000 x 12000 PNG of 820 KB would otherwise take GBs of memory.
#: ``fewgan --max-pixels N`` or the environment variable ``FEWGAN_MAX_PIXELS`` raise it.
DEFAULT_MAX_PIXELS = 64_000_000
#: what a NaN or infinite value in a float image does: 'error' (the default: one line naming
#: the file and the counts) or 'replace' (NaN and -inf -> the lowest finite value, +inf -> the
#: highest; recorded in the image's notes). ``fewgan --nonfinite replace`` or ``FEWGAN_NONFINITE``.
NONFINITE_POLICIES = ("error", "replace")
_limits: dict[str, Any] = {}


def set_read_options(max_pixels: int | None = None, nonfinite: str | None = None) -> None:
    """Process-wide reading options (the CLI's ``--max-pixels`` / ``--nonfinite``); ``None`` keeps the current."""
    if max_pixels is not None:
        if not max_pixels >= 1:
            raise FewganError(f"--max-pixels {max_pixels}: must be a positive number of pixels")
        _limits["max_pixels"] = int(max_pixels)
    if nonfinite is not None:
        if nonfinite not in NONFINITE_POLICIES:
            raise FewganError(f"--nonfinite {nonfinite!r}: use one of {', '.join(NONFINITE_POLICIES)}")
        _limits["nonfinite"] = nonfinite


def max_pixels() -> int:
    """The pixel limit in force: :func:`set_read_options`, else ``FEWGAN_MAX_PIXELS``, else the default."""
    if "max_pixels" in _limits:
        return _limits["max_pixels"]
    env = os.environ.get("FEWGAN_MAX_PIXELS")
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise FewganError(f"FEWGAN_MAX_PIXELS={env!r}: not a number of pixels") from None
        if value >= 1:
            return value
    return DEFAULT_MAX_PIXELS


def nonfinite_policy() -> str:
    """The non-finite policy in force: :func:`set_read_options`, else ``FEWGAN_NONFINITE``, else 'error'."""
    policy = _limits.get("nonfinite") or os.environ.get("FEWGAN_NONFINITE") or "error"
    if policy not in NONFINITE_POLICIES:
        raise FewganError(f"FEWGAN_NONFINITE={policy!r}: use one of {', '.join(NONFINITE_POLICIES)}")
    return policy


def check_pixel_count(path: str | os.PathLike, width: int, height: int) -> None:
    """Raise :class:`FewganError` when a ``width x height`` image exceeds :func:`max_pixels`."""
    limit = max_pixels()
    if int(width) * int(height) > limit:
        raise FewganError(
            f"{path}: {int(width)} x {int(height)} px ({int(width) * int(height) / 1e6:.1f} megapixels) is above the "
            f"limit of {limit / 1e6:g} megapixels (checked before decoding); if the file is genuine, raise it with "
            f"fewgan --max-pixels {int(width) * int(height)} ... (or FEWGAN_MAX_PIXELS)")


def handle_nonfinite(array: np.ndarray, path: Any, policy: str | None = None) -> tuple[np.ndarray, str | None]:
    """Apply the non-finite policy to a float ``array``: ``(array, note or None)``.

    'error': NaN or infinite values raise :class:`FewganError` naming the file and the counts
    (a model trained on them would be NaN, or map the whole image to one value). 'replace':
    NaN and -inf become the lowest finite value, +inf the highest, and the note says how many.
    """
    if array.dtype.kind != "f":
        return array, None
    bad = ~np.isfinite(array)
    if not bad.any():
        return array, None
    n_nan = int(np.isnan(array).sum())
    n_pos = int(np.isposinf(array).sum())
    n_neg = int(np.isneginf(array).sum())
    counts = f"{n_nan} NaN, {n_pos} +inf and {n_neg} -inf value(s) in {array.size} pixel values"
    policy = policy or nonfinite_policy()
    finite = array[~bad]
    if policy == "error" or finite.size == 0:
        fix = ("fix the file (e.g. mask the pixels in ImageJ/Fiji), or choose fewgan --nonfinite replace ... "
               "(NaN and -inf become the lowest finite value, +inf the highest)") if finite.size else "fix the file"
        raise FewganError(f"{path}: {counts}; {fix}")
    lo, hi = float(finite.min()), float(finite.max())
    out = np.where(np.isnan(array) | np.isneginf(array), lo, array)
    out = np.where(np.isposinf(out), hi, out).astype(array.dtype)
    return out, f"non-finite values replaced (--nonfinite replace): {counts}"


_UNIT_TO_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "micron": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9,
               "angstrom": 0.1, "å": 0.1, "inch": 2.54e7}


@dataclasses.dataclass
class ImageMeta:
    """How an image maps to [-1, 1] and back.

    Attributes
    ----------
    format : 'png' | 'tiff' | 'jpeg'
    dtype : 'uint8' | 'uint16' | 'float32' (what is written back)
    bit_depth : 8, 16 or 32 (float)
    channels : channels of the tensor (1 or 3)
    source_channels : channels stored in the file (3 for a gray image saved as RGB)
    data_range : (lo, hi) data values that map to -1 and +1
    pixel_size, pixel_unit : physical size of one pixel, where the file says
    height, width : size in pixels
    path : where it was read from (None for generated images)
    page : TIFF page read (None: the only page)
    notes : what was done on reading (alpha dropped, palette converted, ...)
    """

    format: str = "png"
    dtype: str = "uint8"
    bit_depth: int = 8
    channels: int = 1
    source_channels: int = 1
    data_range: tuple[float, float] = (0.0, 255.0)
    pixel_size: float | None = None
    pixel_unit: str | None = None
    height: int = 0
    width: int = 0
    path: str | None = None
    page: int | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data_range"] = [float(v) for v in self.data_range]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageMeta":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "data_range" in kwargs:
            kwargs["data_range"] = tuple(float(v) for v in kwargs["data_range"])
        return cls(**kwargs)

    @property
    def pixel_size_nm(self) -> float | None:
        """Pixel size in nanometres when the unit is known."""
        if self.pixel_size is None or self.pixel_unit is None:
            return None
        factor = _UNIT_TO_NM.get(self.pixel_unit.lower())
        return None if factor is None else self.pixel_size * factor

    def resampled(self, height: int, width: int) -> "ImageMeta":
        """A copy for this image resampled to ``height x width``: the pixel size scales by the
        downscale factor (a 64 px image at 0.25 um/px shown at 32 px has 0.5 um pixels).

        The factor is the width ratio (the height ratio when they differ by more than 1 %,
        which only an aspect change does, uses their mean and says so in the notes).
        """
        new = dataclasses.replace(self, height=int(height), width=int(width), notes=list(self.notes))
        if self.pixel_size is not None and self.width and self.height and (height, width) != (self.height, self.width):
            fx, fy = self.width / float(width), self.height / float(height)
            factor = fx if abs(fx - fy) <= 0.01 * fx else (fx + fy) / 2
            new.pixel_size = float(self.pixel_size) * factor
            new.notes.append(f"resampled from {self.height} x {self.width} to {height} x {width} px: pixel size "
                             f"{self.pixel_size:g} -> {new.pixel_size:g} {self.pixel_unit or ''}".rstrip())
        return new

    def with_size(self, height: int, width: int) -> "ImageMeta":
        """A copy for an image of another size (generated samples), same mapping."""
        return dataclasses.replace(self, height=int(height), width=int(width), path=None, notes=list(self.notes))


# --------------------------------------------------------------------------- mapping
def to_unit_range(array: np.ndarray, data_range: tuple[float, float]) -> torch.Tensor:
    """``[H, W, C]`` data values -> ``[C, H, W]`` float32 in [-1, 1] (linear in ``data_range``)."""
    lo, hi = float(data_range[0]), float(data_range[1])
    if not hi > lo:
        raise FewganError(f"invalid data range ({lo}, {hi}): the upper end must exceed the lower end")
    x = (array.astype(np.float64) - lo) * (2.0 / (hi - lo)) - 1.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float()


def to_numpy(image: torch.Tensor | np.ndarray, meta: ImageMeta) -> np.ndarray:
    """``[C, H, W]`` (or ``[N, C, H, W]``) in [-1, 1] -> ``[H, W, C]`` (``[N, H, W, C]``) in ``meta.dtype``.

    Integer outputs are rounded and clipped to the dtype; values outside [-1, 1] are clipped
    to the data range first.
    """
    x = image.detach().cpu().double().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float64)
    x = np.moveaxis(x, -3, -1)
    lo, hi = float(meta.data_range[0]), float(meta.data_range[1])
    values = (np.clip(x, -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo
    if meta.dtype in _DTYPE_RANGE:
        dmin, dmax = _DTYPE_RANGE[meta.dtype]
        return np.clip(np.rint(values), dmin, dmax).astype(meta.dtype)
    return values.astype(np.float32)


# --------------------------------------------------------------------------- reading
def read_image(
    path: str | os.PathLike,
    channels: str | int = "auto",
    data_range: tuple[float, float] | None = None,
    page: int | None = None,
) -> tuple[torch.Tensor, ImageMeta]:
    """Read an image file to ``([C, H, W] float32 in [-1, 1], ImageMeta)``.

    Parameters
    ----------
    path : PNG, TIFF or JPEG file.
    channels : 'auto' (an RGB image whose three channels are equal is read as 1 channel),
        1 (RGB is converted to luminance, ITU-R 601) or 3 (gray is replicated).
    data_range : (lo, hi) data values mapped to [-1, 1]; default: the dtype range for
        integer images (0-255, 0-65535), the value range for float images.
    page : TIFF page for multi-page files (a multi-page file without it is an error).
    """
    array, meta = read_array(path, page=page)
    return array_to_tensor(array, meta, channels=channels, data_range=data_range)


def array_to_tensor(
    array: np.ndarray,
    meta: ImageMeta,
    channels: str | int = "auto",
    data_range: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, ImageMeta]:
    """``[H, W, C]`` data array + meta -> ``([C, H, W]`` in [-1, 1], meta with channels and range set)."""
    meta = dataclasses.replace(meta, notes=list(meta.notes))
    meta.source_channels = array.shape[2]
    array = convert_channels(array, channels, where=meta.path or "image")
    meta.channels = array.shape[2]
    if meta.channels != meta.source_channels:
        meta.notes.append(f"{meta.source_channels} channel(s) in the file read as {meta.channels}")
    if data_range is None:
        if meta.dtype in _DTYPE_RANGE:
            data_range = _DTYPE_RANGE[meta.dtype]
        else:
            finite = array[np.isfinite(array)]
            if finite.size == 0:
                raise FewganError(f"{meta.path}: image has no finite values")
            lo, hi = float(finite.min()), float(finite.max())
            data_range = (lo, hi if hi > lo else lo + 1.0)
    else:
        data_range = (float(data_range[0]), float(data_range[1]))
        if meta.dtype in _DTYPE_RANGE:
            vmax = float(array.max())
            if vmax > data_range[1] or float(array.min()) < data_range[0]:
                raise FewganError(
                    f"{meta.path}: values {float(array.min()):g}-{vmax:g} lie outside the data range "
                    f"{data_range[0]:g}-{data_range[1]:g}; give a wider --data-range"
                )
    meta.data_range = data_range
    if meta.dtype not in _DTYPE_RANGE and not np.isfinite(array).all():
        # read_array applied the policy already; an array given directly gets it here
        array, note = handle_nonfinite(array, meta.path or "image")
        if note:
            meta.notes.append(note)
    return to_unit_range(array, data_range), meta


def convert_channels(array: np.ndarray, channels: str | int, where: str = "image") -> np.ndarray:
    """``[H, W, C]`` with C in (1, 3) -> the requested channel count ('auto', 1 or 3)."""
    c = array.shape[2]
    if channels == "auto":
        if c == 3 and np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
            return array[..., :1]
        return array
    channels = int(channels)
    if channels == c:
        return array
    if channels == 3 and c == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 1 and c == 3:
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
            return array[..., :1]
        gray = array.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        if array.dtype.kind in "ui":
            gray = np.clip(np.rint(gray), 0, np.iinfo(array.dtype).max).astype(array.dtype)
        else:
            gray = gray.astype(array.dtype)
        return gray[..., None]
    raise FewganError(f"{where}: channels must be 'auto', 1 or 3, not {channels}")


def read_array(path: str | os.PathLike, page: int | None = None) -> tuple[np.ndarray, ImageMeta]:
    """Read the raw data of an image file: ``([H, W, C] array in its dtype, ImageMeta)``.

    Alpha is dropped with a warning, palette images are converted to RGB, 1-bit images to
    8-bit. Unsupported files raise :class:`FewganError`.
    """
    path = Path(path)
    if not path.exists():
        raise FewganError(f"{path}: file not found")
    if path.is_dir():
        raise FewganError(f"{path}: is a folder, expected an image file")
    fmt = _FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        fmt = _sniff_format(path)
    if fmt is None:
        raise FewganError(f"{path}: unsupported file type (expected PNG, TIFF or JPEG)")
    try:
        if fmt == "tiff":
            array, meta = _read_tiff(path, page)
        elif fmt == "png":
            array, meta = _read_png(path)
        else:
            array, meta = _read_pillow(path, "jpeg")
    except FewganError:
        raise
    except Exception as exc:  # corrupt or truncated file: one line for the user
        text = str(exc)
        name = type(exc).__name__
        why = text if text.startswith(name) else f"{name}: {text}"  # pypng's messages start with their type
        raise FewganError(f"{path}: cannot read image ({why})".splitlines()[0]) from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise FewganError(f"{path}: unsupported image shape {array.shape} (expected gray or RGB)")
    if array.shape[2] in (2, 4):
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=3)
        meta.notes.append("alpha channel dropped")
        array = array[..., : array.shape[2] - 1]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype not in (np.uint8, np.uint16):
        if array.dtype.kind not in "uif":
            raise FewganError(f"{path}: unsupported pixel type {array.dtype}")
        if array.dtype != np.float32:
            meta.notes.append(f"{array.dtype} data read as float32")
        array = array.astype(np.float32)
        array, note = handle_nonfinite(array, path)
        if note:
            meta.notes.append(note)
    meta.dtype = str(array.dtype)
    meta.bit_depth = {"uint8": 8, "uint16": 16}.get(meta.dtype, 32)
    meta.height, meta.width = int(array.shape[0]), int(array.shape[1])
    meta.path = str(path)
    meta.format = fmt
    return np.ascontiguousarray(array), meta


def _sniff_format(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89PNG"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    return None


def _read_png(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import png  # pypng

    with open(path, "rb") as fh:  # pypng given a file name would leave it open on a corrupt file
        reader = png.Reader(file=fh)
        reader.preamble()
        check_pixel_count(path, reader.width, reader.height)  # from the IHDR chunk, before any decoding
        meta = ImageMeta(format="png")
        if reader.bitdepth == 16 and (reader.color_type & 2):  # 16-bit colour: Pillow would lose 8 bits
            width, height, rows, info = reader.asDirect()
            planes = info["planes"]
            array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
            phys = info.get("physical")
            if phys is not None and getattr(phys, "unit_is_meter", False) and phys.x:
                meta.pixel_size, meta.pixel_unit = 1e6 / float(phys.x), "um"
            return array, meta
    return _read_pillow(path, "png")


def _read_pillow(path: Path, fmt: str) -> tuple[np.ndarray, ImageMeta]:
    from PIL import Image

    meta = ImageMeta(format=fmt)
    # our limit (checked from the header, before load()) stands in for Pillow's bomb check,
    # which would otherwise stop a file the user allowed with --max-pixels
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            check_pixel_count(path, *im.size)
            im.load()
            mode = im.mode
            if mode == "P" or mode == "PA":
                meta.notes.append("palette image converted to RGB")
                im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode == "CMYK" or mode == "YCbCr":
                im = im.convert("RGB")
            elif mode == "LA" or mode == "La":
                im = im.convert("LA")
            elif mode == "RGBa":
                im = im.convert("RGBA")
            dpi = im.info.get("dpi")
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                array = np.asarray(im, dtype=np.uint16)
            elif mode == "I":
                array = np.asarray(im)
                if array.min() >= 0 and array.max() <= 65535:
                    array = array.astype(np.uint16)
            elif mode == "F":
                array = np.asarray(im, dtype=np.float32)
            else:
                array = np.asarray(im)
    finally:
        Image.MAX_IMAGE_PIXELS = before
    if dpi and fmt == "png" and dpi[0] and abs(dpi[0] - 72) > 0.5:
        meta.pixel_size, meta.pixel_unit = 25.4e3 / float(dpi[0]), "um"
    return array, meta


def _read_tiff(path: Path, page: int | None) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    meta = ImageMeta(format="tiff")
    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        n = len(pages)
        series = tif.series[0] if tif.series else None
        if page is None:
            if n > 1:
                raise FewganError(
                    f"{path}: multi-page TIFF with {n} pages; choose one with --page K (0..{n - 1})"
                )
            page = None
            tiff_page = pages[0]
        else:
            if not 0 <= page < n:
                raise FewganError(f"{path}: page {page} out of range (the file has {n} page(s): 0..{n - 1})")
            tiff_page = pages[page]
            meta.page = int(page)
        check_pixel_count(path, tiff_page.imagewidth, tiff_page.imagelength)  # from the tags, before decoding
        array = tiff_page.asarray()
        axes = tiff_page.axes
        if array.ndim == 3 and axes.startswith("S") and array.shape[0] in (3, 4):  # planar RGB
            array = np.moveaxis(array, 0, -1)
        size, unit = _tiff_pixel_size(tif, tiff_page)
        meta.pixel_size, meta.pixel_unit = size, unit
        del series
    return array, meta


def _tiff_pixel_size(tif, page) -> tuple[float | None, str | None]:
    """Pixel size from OME, ImageJ or the resolution tags (in that order of trust)."""
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            for el in root.iter():
                if el.tag.endswith("Pixels") and el.get("PhysicalSizeX"):
                    return float(el.get("PhysicalSizeX")), el.get("PhysicalSizeXUnit", "µm").replace("µm", "um")
        except ET.ParseError:
            pass
    tags = page.tags
    if "XResolution" in tags:
        num, den = tags["XResolution"].value
        if num and den:
            pixels_per_unit = num / den
            unit_tag = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2
            ij = tif.imagej_metadata or {}
            if ij.get("unit"):
                unit = str(ij["unit"]).replace("\\u00B5", "u").replace("µ", "u").replace("micron", "um")
                return 1.0 / pixels_per_unit, unit
            unit_tag = int(unit_tag)
            if unit_tag == 3:  # centimetre
                return 1e4 / pixels_per_unit, "um"
            if unit_tag == 2 and abs(pixels_per_unit - 72) > 0.5 and abs(pixels_per_unit - 1) > 1e-9:  # inch
                return 25.4e3 / pixels_per_unit, "um"
    return None, None


# --------------------------------------------------------------------------- writing
def write_image(
    path: str | os.PathLike,
    image: torch.Tensor | np.ndarray,
    meta: ImageMeta,
    format: str | None = None,
) -> Path:
    """Write a ``[C, H, W]`` image in [-1, 1] in ``meta``'s dtype, bit depth and data range.

    The format comes from ``format``, else the path's suffix, else ``meta.format``; JPEG
    input is written as PNG unless JPEG is asked for explicitly (by ``format`` or a
    ``.jpg`` suffix). A 1-channel image read from a gray-as-RGB file is written with three
    equal channels again, so a round trip gives the same file contents. Written atomically.
    """
    path = Path(path)
    fmt = format or _FORMAT_OF_SUFFIX.get(path.suffix.lower()) or ("png" if meta.format == "jpeg" else meta.format)
    fmt = {"tif": "tiff", "jpg": "jpeg"}.get(fmt, fmt)
    if fmt not in ("png", "tiff", "jpeg"):
        raise FewganError(f"{path}: unsupported output format {fmt!r} (use png, tiff or jpeg)")
    if not path.suffix:
        path = path.with_suffix({"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}[fmt])
    if isinstance(image, torch.Tensor) and image.dim() != 3:
        raise FewganError(f"write_image expects [C, H, W], got shape {tuple(image.shape)}")
    array = to_numpy(image, meta)
    if array.shape[2] == 1 and meta.source_channels == 3:
        array = np.repeat(array, 3, axis=2)
    return write_array(path, array, fmt, meta)


def write_array(path: Path, array: np.ndarray, fmt: str, meta: ImageMeta | None = None) -> Path:
    """Encode an ``[H, W, C]`` array (uint8, uint16 or float32) to ``path`` atomically."""
    meta = meta or ImageMeta()
    buffer = io.BytesIO()
    squeezed = array[..., 0] if array.shape[2] == 1 else array
    if fmt == "tiff":
        import tifffile

        kwargs: dict[str, Any] = {"photometric": "minisblack" if array.shape[2] == 1 else "rgb"}
        if meta.pixel_size:
            kwargs["resolution"] = (1.0 / meta.pixel_size, 1.0 / meta.pixel_size)
            kwargs["imagej"] = array.dtype != np.float64
            kwargs["metadata"] = {"unit": meta.pixel_unit or "um"}
            if array.shape[2] == 3:
                kwargs["imagej"] = False
                kwargs.pop("metadata")
                kwargs["resolutionunit"] = "CENTIMETER"
                cm = meta.pixel_size * _UNIT_TO_NM.get((meta.pixel_unit or "um").lower(), 1e3) / 1e7
                kwargs["resolution"] = (1.0 / cm, 1.0 / cm)
        tifffile.imwrite(buffer, squeezed, **kwargs)
    elif fmt == "png":
        if array.dtype == np.float32:
            raise FewganError(f"{path}: float images can only be written as TIFF (use a .tif name)")
        # the pixel size travels as PNG pHYs (pixels per metre), as the reader expects it
        nm = meta.pixel_size_nm
        per_metre = int(round(1e9 / nm)) if nm else None
        if array.dtype == np.uint16 and array.shape[2] == 3:
            import png

            phys = {"x_pixels_per_unit": per_metre, "y_pixels_per_unit": per_metre, "unit_is_meter": True} \
                if per_metre else {}
            writer = png.Writer(width=array.shape[1], height=array.shape[0], greyscale=False, bitdepth=16, **phys)
            writer.write(buffer, array.reshape(array.shape[0], -1))
        else:
            from PIL import Image

            extra = {"dpi": (per_metre * 0.0254, per_metre * 0.0254)} if per_metre else {}
            Image.fromarray(squeezed).save(buffer, format="PNG", **extra)
    else:
        if array.dtype != np.uint8:
            raise FewganError(f"{path}: JPEG holds 8-bit data only; write {array.dtype} data as PNG or TIFF")
        from PIL import Image

        Image.fromarray(squeezed).save(buffer, format="JPEG", quality=95)
    return atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------- grids
def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``[N, C, H, W]`` images into one ``[C, H', W']`` image (row-major, ``nrow`` per row)."""
    if images.dim() == 3:
        images = images[None]
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value,
                      dtype=images.dtype)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid


def save_grid(path: str | os.PathLike, images: torch.Tensor, nrow: int | None = None, meta: ImageMeta | None = None,
              padding: int = 2) -> Path:
    """Save ``[N, C, H, W]`` images in [-1, 1] as one 8-bit PNG grid for viewing (atomic)."""
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=padding)
    view = ImageMeta(format="png", dtype="uint8", bit_depth=8, channels=grid.shape[0], source_channels=grid.shape[0],
                     data_range=(0.0, 255.0))
    return write_array(Path(path), to_numpy(grid, view), "png")
