"""Label export round trips, each format read back with the field's own reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fewgan.data.export import (
    LabelledImage, boxes, export, parse_formats, read_yolo_boxes, read_yolo_polygons,
)
from fewgan.errors import FewganError


def _known_set(tmp_path):
    """Two images with known instances: disks, a rectangle, an L shape and two touching disks."""
    yy, xx = np.mgrid[:40, :56]
    a = np.zeros((40, 56), np.int32)
    a[(yy - 10) ** 2 + (xx - 12) ** 2 <= 36] = 1
    a[5:15, 30:50] = 2
    a[25:38, 4:8] = 3
    a[34:38, 4:20] = 3                      # an L: its box is not its mask
    b = np.zeros((40, 56), np.int32)
    b[(yy - 20) ** 2 + (xx - 20) ** 2 <= 49] = 1
    b[(yy - 20) ** 2 + (xx - 33) ** 2 <= 36] = 2   # touches instance 1
    items = []
    for name, lab in (("s0000.png", a), ("s0001.png", b)):
        Image.fromarray(np.zeros(lab.shape, np.uint8)).save(tmp_path / name)
        items.append(LabelledImage(tmp_path / name, lab))
    return items


def test_cellpose_masks_round_trip(tmp_path):
    items = _known_set(tmp_path)
    export(items, tmp_path, ["cellpose"])
    for item in items:
        back = tifffile.imread(item.image.with_name(item.image.stem + "_masks.tif"))
        assert back.dtype == np.uint16 and np.array_equal(back, item.labels)


def test_coco_round_trip_through_pycocotools(tmp_path):
    items = _known_set(tmp_path)
    export(items, tmp_path, ["coco"])
    coco = COCO(str(tmp_path / "coco.json"))
    assert len(coco.getImgIds()) == 2 and coco.getCatIds() == [1]
    for image_id, item in enumerate(items, start=1):
        info = coco.loadImgs(image_id)[0]
        assert (tmp_path / info["file_name"]).resolve() == item.image.resolve()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == item.labels.max()
        for ann, (i, (x, y, w, h)) in zip(anns, enumerate(boxes(item.labels), start=1)):
            truth = item.labels == i
            back = coco.annToMask(ann).astype(bool)
            assert np.array_equal(back, truth)                       # IoU 1
            assert ann["bbox"] == [x, y, w, h]                          # exact box
            assert ann["area"] == truth.sum()
    # an L-shaped object's area is its mask's, not its box's
    assert coco.loadAnns(coco.getAnnIds(imgIds=1))[2]["area"] < 13 * 16


def test_yolo_boxes_round_trip_exactly(tmp_path):
    items = _known_set(tmp_path)
    export(items, tmp_path, ["yolo"])
    base = tmp_path / "yolo"
    yaml = (base / "dataset.yaml").read_text()
    assert "train: images" in yaml and "0: particle" in yaml
    for item in items:
        assert (base / "images" / item.image.name).read_bytes() == item.image.read_bytes()
        txt = base / "labels" / (item.image.stem + ".txt")
        assert all(line.startswith("0 ") for line in txt.read_text().splitlines())
        assert read_yolo_boxes(txt, *item.labels.shape) == boxes(item.labels)


def test_yolo_polygons_match_the_masks_under_pycocotools(tmp_path):
    items = _known_set(tmp_path)
    export(items, tmp_path, ["yolo-seg"])
    for item in items:
        h, w = item.labels.shape
        polys = read_yolo_polygons(tmp_path / "yolo" / "labels" / (item.image.stem + ".txt"), h, w)
        assert len(polys) == item.labels.max()
        for i, poly in enumerate(polys, start=1):
            rle = mask_utils.merge(mask_utils.frPyObjects([poly.ravel().tolist()], h, w))
            back = mask_utils.decode(rle).astype(bool)
            truth = item.labels == i
            iou = (back & truth).sum() / (back | truth).sum()
            assert iou > 0.85, (i, iou)


def test_formats_are_parsed_and_checked():
    assert parse_formats("coco, yolo") == ("coco", "yolo")
    assert parse_formats("all") == ("cellpose", "coco", "yolo")
    assert parse_formats(None) == () and parse_formats("none") == ()
    with pytest.raises(FewganError, match="unknown export format voc"):
        parse_formats("voc")
    with pytest.raises(FewganError, match="one of yolo"):
        parse_formats("yolo,yolo-seg")


def test_coco_json_is_plain_json(tmp_path):
    items = _known_set(tmp_path)
    export(items, tmp_path, ["coco"])
    data = json.loads((tmp_path / "coco.json").read_text())
    assert isinstance(data["annotations"][0]["segmentation"]["counts"], str)
