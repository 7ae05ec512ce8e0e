"""``evaluate`` answers the verdict's questions: copies are flagged, independent images are not, noise is
far off; labels travel with the images and are checked against the images; the verdict rebuilds from JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fewgan.data.images import write_array
from fewgan.data.labels import mask_path
from fewgan.data.synthetic import instance_labels, make_micrograph
from fewgan.errors import FewganError
from fewgan.metrics.evaluate import ImageSet, evaluate, json_safe, resize_labels
from fewgan.metrics.verdict import THRESHOLDS, Line, verdict_lines

SIZE = 96


def _micrograph(seed: int) -> tuple[np.ndarray, np.ndarray]:
    image, truth = make_micrograph(seed=seed, size=(SIZE, SIZE), bit_depth=8, density=14.0, radius=3.5)
    return image, instance_labels(truth).astype(np.int32)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The training micrograph with its Cellpose mask beside it, and an independent one (another seed)."""
    root = tmp_path_factory.mktemp("verdict")
    out = {}
    for name, seed in (("train", 1), ("other", 9)):
        image, labels = _micrograph(seed)
        path = root / f"{name}.png"
        write_array(path, image[:, :, None], "png")
        write_array(mask_path(path), labels.astype(np.uint16)[:, :, None], "tiff")
        out[name] = path
    out["root"] = root
    return out


def _lines(result) -> dict[str, Line]:
    return {d["question"]: Line(**d) for d in result["verdict"]}


def test_a_copy_is_flagged_as_copying(files):
    train = _tensor(_micrograph(1)[0])
    # the training image itself and crops of it shifted by up to 2 px
    copies = torch.stack([train[:, dy:dy + 88, dx:dx + 88] for dy, dx in ((0, 0), (1, 1), (0, 2), (2, 0))])
    result = evaluate(files["train"], copies, metrics=["swd", "copying"], second_real=files["other"])
    lines = _lines(result)
    layout, patches = result["metrics"]["copying"]["layout"], result["metrics"]["copying"]["patches"]
    assert layout["objects"] >= THRESHOLDS["min_objects"] and layout["fraction"] > 0.8 > 10 * layout["chance"]
    assert lines["copying (layout)"].level == "bad" and "copies the training layout" in lines["copying (layout)"].text
    assert lines["copying (patches)"].level == "bad"
    # two independent real images sit near chance on both measures, and the lines say so beside the samples'
    assert layout["real_fraction"] < 3 * layout["chance"] + 0.05 and patches["real_share"] < 0.15
    assert "another real image" in lines["copying (layout)"].text
    assert lines["fidelity"].level != "bad"
    # the whole image shifted by a pixel or two (wrapped around): SWD far below its floor is not praised
    rolled = torch.stack([torch.roll(train, shift, (1, 2)) for shift in ((0, 0), (1, 0), (0, 1), (1, 1))])
    lines = _lines(evaluate(files["train"], rolled, metrics=["swd"]))
    assert lines["fidelity"].level == "warn" and "sign of copying" in lines["fidelity"].text
    # crops shifted further move every object out of place: the layout measure lets them pass, the patch
    # measure (any offset) does not
    far = torch.stack([train[:, dy:dy + 80, dx:dx + 80] for dy, dx in ((9, 5), (13, 2), (4, 11))])
    lines = _lines(evaluate(files["train"], far, metrics=["copying"]))
    assert lines["copying (layout)"].level != "bad" and lines["copying (patches)"].level == "bad"


def test_independent_images_are_not_flagged(files):
    new = torch.stack([_tensor(_micrograph(s)[0]) for s in (2, 3, 4, 5)])
    result = evaluate(files["train"], new, metrics=["swd", "copying"])
    lines = _lines(result)
    assert lines["copying (layout)"].level == "good", lines["copying (layout)"]
    assert lines["copying (patches)"].level != "bad", lines["copying (patches)"]
    assert "copying" not in lines["fidelity"].text and lines["fidelity"].level != "bad"


def test_noise_is_far_from_the_real_data(files):
    noise = torch.rand(4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    lines = _lines(evaluate(files["train"], noise, metrics=["swd", "copying"]))
    assert lines["fidelity"].level == "bad" and "far from the real data" in lines["fidelity"].text
    assert lines["copying (patches)"].level == "good"


def test_one_real_image_marks_particle_statistics_as_too_few(files):
    new = torch.stack([_tensor(_micrograph(s)[0]) for s in (2, 3)])
    result = evaluate(files["train"], new, metrics=["particles"], floors=False)
    stats = [d for d in result["verdict"] if d["question"] == "statistics"]
    assert stats and stats[0]["level"] == "unknown" and "1 real image" in stats[0]["text"]
    # the mark is rebuilt from the JSON alone (an older eval.json in the report)
    rebuilt = verdict_lines(json.loads(json.dumps(json_safe(result))))
    assert [line.to_dict() for line in rebuilt] == result["verdict"]


def _labelled(images: torch.Tensor, labels: list[np.ndarray]) -> ImageSet:
    return ImageSet(images=images, meta=None, source="<labelled>", kind="tensor", labels=labels)


def test_label_consistency_of_real_labels_and_of_shifted_labels(files):
    image, labels = _micrograph(1)
    x = _tensor(image)[None]
    # the same images with the same labels on both sides: the generated score is the real reference
    result = evaluate(files["train"], _labelled(x, [labels]), metrics=["labels"])
    entry = result["metrics"]["labels"]
    assert result["real"]["labels"] == "NAME_masks.tif|png beside the images"
    assert entry["generated"]["f1"] == entry["real"]["f1"] > 0.9 and entry["ratio"] == 1.0
    assert entry["generated"]["n_ref"] == int(labels.max())
    assert _lines(result)["labels"].level == "good"
    # the particle analysis' own instances as labels: every object matched with IoU 1
    from fewgan.metrics.particles import ParticleConfig, find_threshold, measure_set

    threshold = find_threshold(x, ParticleConfig())
    own = measure_set(x, ParticleConfig(), threshold=threshold, keep_labels=True)["labels"][0]
    entry = evaluate(files["train"], _labelled(x, [own]), metrics=["labels"])["metrics"]["labels"]
    assert entry["generated"]["f1"] == 1.0 and entry["generated"]["mean_matched_iou"] == 1.0
    # labels that do not sit on their objects
    shifted = np.roll(labels, (7, 7), axis=(0, 1))
    result = evaluate(files["train"], _labelled(x, [shifted]), metrics=["labels"])
    assert result["metrics"]["labels"]["generated"]["f1"] < 0.3
    assert _lines(result)["labels"].level == "bad"


def test_labels_are_default_on_with_labels_on_both_sides_and_an_error_when_asked_without(files):
    x = _tensor(_micrograph(1)[0])[None]
    result = evaluate(files["train"], _labelled(x, [_micrograph(1)[1]]), metrics=None, floors=False)
    assert "labels" in result["metrics"] and "copying" in result["metrics"]
    result = evaluate(files["train"], x, floors=False)  # generated images without labels: not run, no line
    assert "labels" not in result["metrics"] and "labels" not in _lines(result)
    with pytest.raises(FewganError, match="generated images have no labels.*--export cellpose"):
        evaluate(files["train"], x, metrics=["labels"])


def test_explicit_real_labels_and_their_checks(files, tmp_path):
    image, labels = _micrograph(1)
    write_array(tmp_path / "plain.png", image[:, :, None], "png")  # no mask beside it
    x = _labelled(_tensor(image)[None], [labels])
    with pytest.raises(FewganError, match="real images have no labels.*--real-labels"):
        evaluate(tmp_path / "plain.png", x, metrics=["labels"])
    entry = evaluate(tmp_path / "plain.png", x, metrics=["labels"],
                     real_labels=mask_path(files["train"]))["metrics"]["labels"]
    assert entry["real"]["f1"] > 0.9
    write_array(tmp_path / "small_masks.tif", labels[:64, :64].astype(np.uint16)[:, :, None], "tiff")
    with pytest.raises(FewganError, match="labels are 64 x 64 px but the image is 96 x 96 px"):
        evaluate(tmp_path / "plain.png", x, metrics=["labels"], real_labels=tmp_path / "small_masks.tif")
    with pytest.raises(FewganError, match="no such label file"):
        evaluate(tmp_path / "plain.png", x, metrics=["labels"], real_labels=tmp_path / "nothing.tif")


def test_resize_labels_is_nearest_neighbour_and_keeps_ids():
    labels = np.zeros((8, 8), np.int32)
    labels[0:4, 0:4], labels[4:8, 4:8], labels[6, 0] = 3, 5, 7
    up = resize_labels(labels, (16, 16))
    assert set(np.unique(up)) == {0, 3, 5, 7} and (up[:8, :8] == 3).all() and np.array_equal(up[::2, ::2], labels)
    down = resize_labels(labels, (4, 4))  # the 1-px object vanishes: ids made 1..n in their order
    assert set(np.unique(down)) == {0, 1, 2} and (down[:2, :2] == 1).all() and (down[2:, 2:] == 2).all()


def test_the_readme_example_is_what_the_verdict_prints():
    from pathlib import Path

    from fewgan.metrics import verdict

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert str(verdict.fidelity(0.0885, 0.3138)) in readme
    layout = {"fraction": 0.23, "chance": 0.02, "objects": 120, "train_objects": 30, "radius": 2.0}
    assert str(verdict.layout_copying(layout)) in readme


def test_labels_follow_their_images_when_a_folder_is_loaded(tmp_path):
    """Samples of two sizes (native, single-image mode) are centre-cropped, a set fitted to a square
    resolution is cropped and resized: the labels go through the same crop (and a nearest-neighbour resize)."""
    from fewgan.metrics.evaluate import load_set

    folder = tmp_path / "samples"
    folder.mkdir()
    labels = {}
    for name, size in (("a", 64), ("b", 48)):
        image = np.zeros((size, size), np.uint8)
        lab = np.zeros((size, size), np.uint16)
        image[size // 2 - 4: size // 2 + 4, size // 2 - 4: size // 2 + 4] = 200
        lab[size // 2 - 4: size // 2 + 4, size // 2 - 4: size // 2 + 4] = 1
        lab[0:3, 0:3] = 2  # a corner object that the centre crop of the 64 px image removes
        write_array(folder / f"{name}.png", image[:, :, None], "png")
        write_array(mask_path(folder / f"{name}.png"), lab[:, :, None], "tiff")
        labels[name] = lab
    native = load_set(folder, role="fake", native_size=True)
    assert native.images.shape[-2:] == (48, 48) and native.labels_from.startswith("NAME_masks")
    # the object sits where the image's bright square sits, in both images; the cropped-away corner is gone
    # (ids are renumbered in raster order when read: the corner object, where present, is 1)
    for image, lab in zip(native.images, native.labels):
        assert np.array_equal(lab[3:, 3:] > 0, image[0].numpy()[3:, 3:] > 0)
    assert native.labels[0].max() == 1 and native.labels[1].max() == 2
    square = load_set(folder, role="real", resolution=32)
    assert [lab.shape for lab in square.labels] == [(32, 32), (32, 32)]
    assert (square.labels[0] == 1).sum() == 1 and (square.labels[0] == 2).sum() == 16  # 64 -> 32: halved
