"""Instance labels beside images: read, check, encode as generator channels, decode back.

An *instance label image* is ``[H, W]`` integers, 0 for background and 1..N for the objects
(the Cellpose ``NAME_masks.tif`` convention); a *binary mask* (0/1 or 0/255) is accepted too and
split into instances by connected components (8-connectivity).

Generators learn labels as extra image channels, trained jointly with the image (SinGAN-Seg:
Thambawita et al., "SinGAN-Seg: Synthetic training data generation for medical image
segmentation", PLOS ONE 17(5), 2022, doi:10.1371/journal.pone.0267976). A label image cannot be
learnt as it is: instance ids are arbitrary, and a binary mask loses the line between two touching
particles. So the labels are encoded as two smooth channels in [-1, 1]:

- channel 0, **foreground**: +1 on objects, -1 on background;
- channel 1, **normalised distance**: inside each instance, the Euclidean distance to the nearest
  pixel outside *that instance* (so a boundary runs between touching particles), divided by the
  instance's own maximum, mapped from [0, 1] to [-1, 1]; -1 on background.

Why this pair: the distance channel peaks at 1 at the centre of every object whatever its size
and falls to 0 at every boundary, including the line where two particles touch, which is what a
watershed needs to split them; the foreground channel gives the outline independently of the
distance's sharp ridge. (A boundary class instead of the distance map was the alternative; a
one-pixel boundary is a thin structure that a convolutional generator blurs first.)

:func:`decode_instances` is the documented rule that turns generated channels back into
instances: foreground = channel 0 > 0; markers = connected components of the foreground where
the normalised distance exceeds ``marker_level`` (0.5 by default: the inner half of each object,
which stays separate for two touching disks); a watershed of the negated distance from those
markers inside the foreground; foreground parts that no marker reached become instances of their
own; objects smaller than ``min_area`` px are dropped. For a label image that was encoded, decoding
returns the same instances (tested, touching particles included).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from fewgan.errors import FewganError

LABEL_CHANNELS = 2
LABEL_CHANNEL_NAMES = ("foreground", "distance")
MASK_SUFFIXES = ("_masks.tif", "_masks.tiff", "_masks.png")


def check_label_image(array: np.ndarray, where: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate a label array and return it as instances ``[H, W]`` int32 (0 background, 1..N).

    Parameters
    ----------
    array : ``[H, W]`` or ``[H, W, 1]`` integers (or floats holding whole numbers): an instance
        label image, or a binary mask (values {0, 1} or {0, 255}), which is split into instances
        by 8-connected components.
    where : the file name, for error messages.
    shape : ``(H, W)`` of the image the labels belong to; a different size is an error.

    Raises
    ------
    FewganError
        for colour label images, non-integer or negative values, an empty mask or a size mismatch.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise FewganError(f"{where}: a label image must have one channel (got shape {tuple(a.shape)}); "
                          "save instance ids 0..N as a 16-bit gray TIFF or PNG")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise FewganError(f"{where}: labels are {a.shape[0]} x {a.shape[1]} px but the image is "
                          f"{shape[0]} x {shape[1]} px; they must have the same height and width")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise FewganError(f"{where}: labels must be whole numbers (0 background, 1..N instances); "
                              "this file holds fractional or non-finite values")
    elif a.dtype.kind not in "uib":
        raise FewganError(f"{where}: unsupported label data type {a.dtype}")
    if a.size and a.min() < 0:
        raise FewganError(f"{where}: labels must not be negative (0 background, 1..N instances)")
    values = np.unique(a)
    if values.size <= 1 and (values.size == 0 or values[0] == 0):
        raise FewganError(f"{where}: the label image is empty (no object); label at least one object")
    if a.dtype == bool or set(values.tolist()) <= {0, 255} or (set(values.tolist()) <= {0, 1}):
        inst, _ = ndimage.label(a > 0, structure=np.ones((3, 3), bool))
        return inst.astype(np.int32)
    return relabel_sequential(a.astype(np.int64))


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Instance ids renumbered 1..N in order of first appearance in raster order; 0 stays 0."""
    flat = np.asarray(labels).ravel()
    ids, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    new_ids = np.zeros(ids.size, np.int32)
    nonzero = np.flatnonzero(ids != 0)
    ranked = nonzero[np.argsort(first[nonzero], kind="stable")]
    new_ids[ranked] = np.arange(1, ranked.size + 1, dtype=np.int32)
    out = new_ids[inverse].reshape(np.shape(labels))
    return out


def read_labels(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a label image file (PNG or TIFF) to instances ``[H, W]`` int32; see :func:`check_label_image`."""
    from fewgan.data.images import read_array

    path = Path(path)
    if not path.is_file():
        raise FewganError(f"{path}: label file not found")
    array, meta = read_array(path)
    if meta.dtype not in ("uint8", "uint16") and not meta.dtype.startswith(("int", "uint", "float")):
        raise FewganError(f"{path}: unsupported label data type {meta.dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
            array = array[..., :1]
    return check_label_image(array, str(path), shape)


def mask_path(image: str | os.PathLike) -> Path:
    """Where the Cellpose-convention label image of ``image`` is written: ``NAME_masks.tif`` beside it."""
    image = Path(image)
    return image.with_name(image.stem + MASK_SUFFIXES[0])


def labels_beside(image: str | os.PathLike) -> Path | None:
    """The Cellpose-convention label file beside an image (``NAME_masks.tif|tiff|png``), if there is one."""
    image = Path(image)
    for suffix in MASK_SUFFIXES:
        candidate = image.with_name(image.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def is_label_file(path: str | os.PathLike) -> bool:
    """Whether a file name follows the label convention (so that a folder loader skips it as an image)."""
    return Path(path).name.lower().endswith(MASK_SUFFIXES)


# --------------------------------------------------------------------------- encoding for generators
def encode_instances(labels: np.ndarray) -> np.ndarray:
    """Instances ``[H, W]`` (0 background, 1..N) -> ``[2, H, W]`` float32 channels in [-1, 1].

    Channel 0 is the foreground (+1 / -1), channel 1 each instance's distance to its own boundary
    divided by its maximum, mapped to [-1, 1] (module docstring).
    """
    labels = np.asarray(labels)
    fg = labels > 0
    dist01 = np.zeros(labels.shape, np.float64)
    # the distance to the nearest pixel outside one's own instance: a per-instance transform on a
    # padded window, so touching instances each fall to 0 along their shared line
    objects = ndimage.find_objects(labels.astype(np.int64))
    for index, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        window = np.pad(labels[sl] == index, 1)
        d = ndimage.distance_transform_edt(window)[1:-1, 1:-1]
        top = d.max()
        if top > 0:
            inside = labels[sl] == index
            dist01[sl][inside] = d[inside] / top
    out = np.empty((LABEL_CHANNELS, *labels.shape), np.float32)
    out[0] = np.where(fg, 1.0, -1.0)
    out[1] = np.where(fg, dist01 * 2.0 - 1.0, -1.0)
    return out


def decode_instances(channels: np.ndarray, marker_level: float = 0.5, min_area: int = 4) -> np.ndarray:
    """``[2, H, W]`` label channels in [-1, 1] -> instances ``[H, W]`` int32 (0 background, 1..N).

    The rule (module docstring): foreground = channel 0 > 0; markers = 8-connected components of
    the foreground where the normalised distance (channel 1 mapped to [0, 1]) exceeds
    ``marker_level``; watershed of the negated distance from the markers within the foreground;
    foreground left without a marker becomes its own instances; objects under ``min_area`` px go.
    """
    from skimage.segmentation import watershed

    channels = np.asarray(channels, np.float64)
    if channels.ndim != 3 or channels.shape[0] != LABEL_CHANNELS:
        raise ValueError(f"expected [{LABEL_CHANNELS}, H, W] label channels, got {channels.shape}")
    fg = channels[0] > 0.0
    dist01 = np.clip((channels[1] + 1.0) / 2.0, 0.0, 1.0) * fg
    eight = np.ones((3, 3), bool)
    markers, n = ndimage.label(fg & (dist01 > marker_level), structure=eight)
    labels = watershed(-dist01, markers, mask=fg) if n else np.zeros(fg.shape, np.int64)
    rest, m = ndimage.label(fg & (labels == 0), structure=eight)
    if m:
        labels = np.where(rest > 0, rest + labels.max(), labels)
    if min_area > 1 and labels.max() > 0:
        areas = np.bincount(labels.ravel())
        small = areas < min_area
        small[0] = False
        labels[small[labels]] = 0
    return relabel_sequential(labels)


def instances_to_channels(labels: np.ndarray):
    """Instances ``[H, W]`` -> a ``[2, H, W]`` float32 torch tensor for the generator (see :func:`encode_instances`)."""
    import torch

    return torch.from_numpy(encode_instances(labels))
