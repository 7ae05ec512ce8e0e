"""Export images with instance labels in the formats detectors and segmenters read.

Three formats, any combination (``FORMATS``):

- ``cellpose``: ``NAME_masks.tif`` beside ``NAME.png``, uint16, 0 background, 1..N instances
  (Stringer et al., "Cellpose: a generalist algorithm for cellular segmentation", Nature Methods 18,
  2021, doi:10.1038/s41592-020-01018-x);
- ``coco``: one ``coco.json`` for the set, one annotation per instance with ``bbox`` ``[x, y, w, h]``
  (pixel-inclusive, as pycocotools' ``toBbox``), ``area`` and the mask as compressed RLE made by
  pycocotools (Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014);
- ``yolo`` (boxes: ``class cx cy w h`` normalised to [0, 1]) or ``yolo-seg`` (polygons:
  ``class x1 y1 x2 y2 ...`` normalised): ``yolo/images/NAME.png`` (hard links to the written images,
  copies where links are impossible), ``yolo/labels/NAME.txt`` and ``yolo/dataset.yaml``, the layout
  Ultralytics' loaders expect (they find a label file by replacing ``images`` with ``labels`` in the
  image path, so the labels cannot sit beside the images).

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewgan.errors import FewganError

FORMATS = ("cellpose", "coco", "yolo", "yolo-seg")
CATEGORY = {"id": 1, "name": "particle"}
COCO_FILE = "coco.json"
YOLO_DIR = "yolo"


@dataclass(frozen=True)
class LabelledImage:
    """One exported item: the image file already written, and its instances ``[H, W]`` (0, 1..N)."""

    image: Path
    labels: np.ndarray


def parse_formats(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``'coco,yolo'`` or a list -> a tuple of known format names; ``None``/``''``/``'none'`` -> ()."""
    if spec is None:
        return ()
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s and s != "none"]
    if items == ["all"]:
        return ("cellpose", "coco", "yolo")
    unknown = [s for s in items if s not in FORMATS]
    if unknown:
        raise FewganError(f"unknown export format {', '.join(unknown)}: choose from {', '.join(FORMATS)} "
                          "(comma-separated) or 'all'")
    if "yolo" in items and "yolo-seg" in items:
        raise FewganError("choose one of yolo (boxes) and yolo-seg (polygons): both write yolo/labels/")
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------- per-instance geometry
def instance_masks(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(id, [H, W] bool)`` for every instance id present, in increasing id order."""
    ids = np.unique(labels)
    return [(int(i), labels == i) for i in ids if i != 0]


def boxes(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Pixel-inclusive ``(x, y, w, h)`` of instances 1..N in id order (x: column, y: row)."""
    from scipy import ndimage

    out = []
    for sl in ndimage.find_objects(labels.astype(np.int64)):
        if sl is None:
            continue
        rows, cols = sl
        out.append((cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))
    return out


def polygon(mask: np.ndarray, tolerance: float = 0.5) -> np.ndarray:
    """The outer outline of one object as ``[K, 2]`` (x, y) points in continuous pixel coordinates.

    Pixel (row r, column c) covers ``[c, c + 1] x [r, r + 1]``; the outline is the 0.5 iso-line of the
    padded mask through pixel centres (skimage ``find_contours``), simplified with Douglas-Peucker at
    ``tolerance`` px. Only the longest closed outline is kept (holes are not representable in YOLO's
    polygon form).
    """
    from skimage.measure import approximate_polygon, find_contours

    padded = np.pad(mask.astype(np.float64), 1)
    contours = find_contours(padded, 0.5)
    if not contours:
        return np.zeros((0, 2))
    outline = max(contours, key=len)
    if tolerance > 0:
        outline = approximate_polygon(outline, tolerance)
    # padded (row, col) -> original pixel-centre coordinates (-1), then to continuous (+0.5)
    return np.stack([outline[:, 1] - 0.5, outline[:, 0] - 0.5], axis=1)


# --------------------------------------------------------------------------- writers
def write_cellpose(item: LabelledImage) -> Path:
    """``NAME_masks.tif`` (uint16) beside the image."""
    from fewgan.data.images import write_array

    if item.labels.max(initial=0) > np.iinfo(np.uint16).max:
        raise FewganError(f"{item.image}: more than 65535 instances do not fit a 16-bit Cellpose mask")
    from fewgan.data.labels import mask_path

    return write_array(mask_path(item.image), item.labels.astype(np.uint16)[..., None], "tiff")


def coco_dict(items: Sequence[LabelledImage], root: Path) -> dict:
    """The COCO instance dictionary for the items (file names relative to ``root``)."""
    from pycocotools import mask as mask_utils

    images, annotations = [], []
    ann_id = 1
    for image_id, item in enumerate(items, start=1):
        h, w = item.labels.shape
        images.append({"id": image_id, "file_name": os.path.relpath(item.image, root), "height": int(h),
                       "width": int(w)})
        for _, m in instance_masks(item.labels):
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": CATEGORY["id"], "iscrowd": 0,
                "area": float(mask_utils.area(rle)), "bbox": bbox,
                "segmentation": {"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")},
            })
            ann_id += 1
    return {"info": {"description": "fewgan generated images with instance labels"},
            "images": images, "annotations": annotations, "categories": [dict(CATEGORY)]}


def yolo_lines(labels: np.ndarray, form: str = "yolo") -> list[str]:
    """One line per instance: ``0 cx cy w h`` (boxes) or ``0 x1 y1 ...`` (``yolo-seg``), normalised."""
    h, w = labels.shape
    lines = []
    if form == "yolo":
        for x, y, bw, bh in boxes(labels):
            lines.append(f"0 {(x + bw / 2) / w:.8f} {(y + bh / 2) / h:.8f} {bw / w:.8f} {bh / h:.8f}")
        return lines
    for _, m in instance_masks(labels):
        pts = polygon(m)
        if len(pts) < 3:
            continue
        coords = " ".join(f"{px / w:.6f} {py / h:.6f}" for px, py in np.clip(pts, 0, [w, h]))
        lines.append(f"0 {coords}")
    return lines


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp-link")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def write_yolo(items: Sequence[LabelledImage], root: Path, form: str = "yolo") -> Path:
    """``root/yolo/{images,labels}/`` and ``root/yolo/dataset.yaml``; returns the YAML path."""
    from fewgan.run import atomic_write_text

    base = root / YOLO_DIR
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "labels").mkdir(parents=True, exist_ok=True)
    for item in items:
        _link_or_copy(item.image, base / "images" / item.image.name)
        text = "\n".join(yolo_lines(item.labels, form))
        atomic_write_text(base / "labels" / (item.image.stem + ".txt"), text + ("\n" if text else ""))
    kind = "polygons (segmentation)" if form == "yolo-seg" else "boxes"
    yaml = (f"# fewgan export: {len(items)} generated images, instance {kind}\n"
            f"path: {base.resolve()}\ntrain: images\nval: images\nnames:\n  0: {CATEGORY['name']}\n")
    return atomic_write_text(base / "dataset.yaml", yaml)


def export(items: Iterable[LabelledImage], root: str | os.PathLike, formats: Sequence[str]) -> dict[str, list[str]]:
    """Write the requested formats for already written images under ``root``; returns what was written."""
    from fewgan.run import atomic_write_json

    items = list(items)
    root = Path(root)
    formats = parse_formats(formats)
    written: dict[str, list[str]] = {}
    if "cellpose" in formats:
        written["cellpose"] = [str(write_cellpose(item)) for item in items]
    if "coco" in formats:
        written["coco"] = [str(atomic_write_json(root / COCO_FILE, coco_dict(items, root)))]
    for form in ("yolo", "yolo-seg"):
        if form in formats:
            written[form] = [str(write_yolo(items, root, form))]
    return written


# --------------------------------------------------------------------------- readers (for round trips)
def read_yolo_boxes(path: str | os.PathLike, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """``(x, y, w, h)`` pixel boxes from a YOLO box file (rounded back to whole pixels)."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:5])
        w_px, h_px = round(bw * width), round(bh * height)
        out.append((round(cx * width - w_px / 2), round(cy * height - h_px / 2), w_px, h_px))
    return out


def read_yolo_polygons(path: str | os.PathLike, height: int, width: int) -> list[np.ndarray]:
    """``[K, 2]`` (x, y) pixel polygons from a YOLO segmentation file."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) < 7:
            continue
        xy = np.asarray([float(v) for v in parts[1:]]).reshape(-1, 2)
        out.append(xy * [width, height])
    return out

