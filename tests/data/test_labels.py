"""Instance labels: reading and checking, the generator encoding and its decoding rule."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from fewgan.data.labels import (
    check_label_image, decode_instances, encode_instances, is_label_file, labels_beside, read_labels,
    relabel_sequential,
)
from fewgan.errors import FewganError


def disks(shape, centres, radius):
    """Instances 1..N: disks of ``radius`` at ``centres`` (later disks win where they overlap)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, start=1):
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = i
    return out


def same_partition(a, b):
    """Two label images describe the same instances (ids may differ): a one-to-one id map exists."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist()))
    return len(pairs) == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_encoding_is_in_range_and_decodes_to_the_same_instances():
    labels = disks((48, 64), [(10, 10), (30, 40), (12, 50)], 6)
    ch = encode_instances(labels)
    assert ch.shape == (2, 48, 64) and ch.dtype == np.float32
    assert ch.min() >= -1 and ch.max() <= 1
    assert np.array_equal(ch[0] > 0, labels > 0)
    # every object's distance channel peaks at exactly +1 (normalised per instance)
    for i in (1, 2, 3):
        assert ch[1][labels == i].max() == pytest.approx(1.0)
    assert same_partition(decode_instances(ch), labels)


def test_touching_particles_stay_apart():
    # two disks whose edges touch along a line: a binary mask would merge them
    labels = disks((40, 60), [(20, 20), (20, 33)], 7)
    assert (labels == 1).sum() > 0 and (labels == 2).sum() > 0
    merged, n = __import__("scipy.ndimage", fromlist=["label"]).label(labels > 0)
    assert n == 1  # they do touch
    decoded = decode_instances(encode_instances(labels))
    assert decoded.max() == 2
    assert same_partition(decoded, labels)


def test_decoding_a_noisy_encoding_still_counts_the_objects():
    rng = np.random.default_rng(0)
    centres = [(12, 12), (12, 40), (36, 12), (36, 40), (24, 60)]
    labels = disks((50, 72), centres, 6)
    ch = encode_instances(labels) + rng.normal(0, 0.15, (2, 50, 72)).astype(np.float32)
    decoded = decode_instances(np.clip(ch, -1, 1))
    assert decoded.max() == len(centres)


def test_binary_masks_become_instances_and_ids_are_renumbered():
    labels = disks((30, 30), [(8, 8), (22, 22)], 4)
    for binary in ((labels > 0).astype(np.uint8), (labels > 0).astype(np.uint8) * 255):
        inst = check_label_image(binary, "mask.png")
        assert inst.max() == 2 and same_partition(inst, labels)
    sparse = np.where(labels == 1, 7, np.where(labels == 2, 300, 0)).astype(np.uint16)
    assert np.array_equal(check_label_image(sparse, "x"), labels)
    assert np.array_equal(relabel_sequential(np.array([[0, 9], [4, 9]])), [[0, 1], [2, 1]])


@pytest.mark.parametrize("bad, words", [
    (np.zeros((8, 8), np.uint16), "empty"),
    (np.full((8, 8), 0.5, np.float32), "whole numbers"),
    (np.full((8, 8), -1, np.int32), "negative"),
    (np.zeros((8, 8, 3), np.uint8), "one channel"),
])
def test_bad_label_images_are_one_line_errors(bad, words):
    with pytest.raises(FewganError, match=words):
        check_label_image(bad, "labels.tif")


def test_size_mismatch_names_both_sizes():
    with pytest.raises(FewganError, match=r"10 x 12 px but the image is 10 x 13"):
        check_label_image(np.ones((10, 12), np.uint8), "l.png", shape=(10, 13))


def test_label_files_beside_images_follow_the_cellpose_convention(tmp_path):
    labels = disks((20, 24), [(10, 12)], 5).astype(np.uint16)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(tmp_path / "cell_01.png")
    assert labels_beside(tmp_path / "cell_01.png") is None
    tifffile.imwrite(tmp_path / "cell_01_masks.tif", labels)
    found = labels_beside(tmp_path / "cell_01.png")
    assert found == tmp_path / "cell_01_masks.tif" and is_label_file(found)
    assert not is_label_file(tmp_path / "cell_01.png")
    assert np.array_equal(read_labels(found, shape=(20, 24)), labels)
    with pytest.raises(FewganError, match="not found"):
        read_labels(tmp_path / "nothing_masks.tif")
