"""The report's verdict (on top) and its instance outlines over real and generated images (issues 13, 15)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from fewgan.report import plots
from fewgan.report.html import SECTIONS, write_report
from fewgan.run import SINGAN_TRAINING_LABELS_FILE

from .test_html import Page, decode

ORANGE = np.array(plots.OUTLINE_COLOUR, np.uint8)


# --------------------------------------------------------------------------- the overlay itself
def _two_instances() -> np.ndarray:
    labels = np.zeros((8, 8), np.int32)
    labels[1:4, 1:4] = 1   # 3 x 3: every pixel but the centre is on its outline
    labels[1:4, 4:6] = 2   # 3 x 2, touching instance 1: every pixel is on its outline
    return labels


def _coloured(rgb: np.ndarray) -> np.ndarray:
    return np.all(rgb == ORANGE, axis=-1)


def test_outline_overlay_draws_each_instance_inner_boundary():
    image = np.full((8, 8), 100, np.uint8)
    out = plots.outline_overlay(image, _two_instances())
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    edge = _coloured(out)
    assert edge.sum() == 8 + 6
    assert not edge[2, 2] and edge[2, 3] and edge[2, 4]  # the centre stays; both sides of the touching line drawn
    assert np.all(out[~edge] == 100)  # gray stays gray everywhere else
    zoomed = plots.outline_overlay(image, _two_instances(), zoom=2)
    assert zoomed.shape == (16, 16, 3)
    # 6 x 6 -> 36 - 16 inner pixels = 20; 6 x 4 -> 24 - 8 = 16: outlines one display pixel wide
    assert _coloured(zoomed).sum() == 20 + 16


def test_outline_overlay_keeps_colour_images_and_checks_its_input():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 2] = 200
    out = plots.outline_overlay(rgb, _two_instances())
    assert np.all(out[~_coloured(out)] == [0, 0, 200])
    with pytest.raises(ValueError, match="uint8"):
        plots.outline_overlay(np.zeros((8, 8), np.uint16), _two_instances())
    with pytest.raises(ValueError, match="differ in size"):
        plots.outline_overlay(np.zeros((8, 9), np.uint8), _two_instances())
    assert plots.instance_count(_two_instances()) == 2
    assert plots.instance_count(np.zeros((3, 3), int)) == 0


@pytest.mark.parametrize("shape, zoom", [((24, 32), 8), ((64, 64), 3), ((512, 512), 1), ((300, 2000), 1)])
def test_display_zoom(shape, zoom):
    assert plots.display_zoom(*shape) == zoom


# --------------------------------------------------------------------------- verdict
VERDICT = [
    {"question": "fidelity", "level": "warn", "text": "far below the floor: a sign of copying; SWD 0.09 vs 0.31"},
    {"question": "diversity", "level": "good", "text": "as varied as the real data: diversity 0.9 vs real 0.96"},
    {"question": "copying (layout)", "level": "bad", "text": "copies the training layout: 23 % in place, chance 2 %"},
    {"question": "utility", "level": "unknown", "text": "not measured <needs labels>"},
    {"question": "labels", "level": "odd", "text": "an unknown level is shown as n/a"},
]


def test_verdict_is_the_first_section_with_marks_and_words(singan_run, eval_json):
    from fewgan.metrics.verdict import THRESHOLDS

    assert THRESHOLDS  # the place the report points to exists
    (singan_run / "eval.json").write_text(json.dumps({**eval_json, "verdict": VERDICT}))
    text = write_report(singan_run, plots=False).read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections[0] == "verdict" == SECTIONS[0] and page.sections == list(SECTIONS)
    section = text[text.index('<section id="verdict">'):text.index('<section id="summary">')]
    # the title, then the verdict: no section stands above it
    assert text.index("<section") == text.index('<section id="verdict">')
    items = section.split("<li>")[1:]
    assert len(items) == len(VERDICT)
    marks = [item.split("</span>")[0] for item in items]
    assert marks == ['<span class="level level-warn">warn', '<span class="level level-good">ok',
                     '<span class="level level-bad">BAD', '<span class="level level-unknown">n/a',
                     '<span class="level level-unknown">n/a']
    words = page.text_by_section["verdict"]
    assert "copying (layout): copies the training layout: 23 % in place, chance 2 %" in words
    assert "not measured <needs labels>" in words and "&lt;needs labels&gt;" in section  # escaped
    assert "fewgan.metrics.verdict.THRESHOLDS" in words
    # each level has its own colour in the page's CSS
    for level, colour in (("good", "#107c10"), ("warn", "#b35900"), ("bad", "#a4262c")):
        assert f".level-{level}{{background:{colour}}}" in text


def test_verdict_missing_or_rebuilt(singan_run, eval_json, monkeypatch):
    import fewgan.metrics.verdict as verdict

    text = write_report(singan_run, plots=False).read_text(encoding="utf-8")
    assert "no verdict yet" in Page(text).text_by_section["verdict"]  # no eval.json
    (singan_run / "eval.json").write_text(json.dumps(eval_json))  # an eval.json of before the verdict
    monkeypatch.delattr(verdict, "verdict_lines", raising=False)
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    assert "holds no verdict" in page.text_by_section["verdict"]
    assert ["swd", "12.5", "3.25", "levels 2, 3"] in page.rows_by_section["evaluation"]  # the rest is intact
    seen = []

    def rebuilt(result):
        seen.append(result["metrics"]["swd"]["value"])
        return [verdict.Line("fidelity", "bad", "rebuilt from the metrics")]

    monkeypatch.setattr(verdict, "verdict_lines", rebuilt, raising=False)
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    assert seen == [12.5] and "BADfidelity: rebuilt from the metrics" in page.text_by_section["verdict"]
    (singan_run / "eval.json").write_text("{not json")
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    assert "not valid JSON" in page.text_by_section["verdict"]


# --------------------------------------------------------------------------- outlines in the report
def _png16(path, array):
    Image.fromarray(array.astype(np.uint16)).save(path)


def _labelled_singan_run(singan_run, tmp_path, labels_record=None):
    """The fake run as a labelled one: a 16-bit micrograph using 2000..3000 of 0..65535, its labels
    as trained, and one sample with generated labels beside it."""
    image = np.full((24, 32), 2000, np.uint16)
    image[4:8, 4:8] = 3000
    image[12:16, 20:24] = 3000
    image[20, 2] = 2500
    _png16(tmp_path / "micrograph.png", image)
    labels = np.zeros((24, 32), np.uint16)
    labels[4:8, 4:8] = 1
    labels[12:16, 20:24] = 2
    tifffile.imwrite(singan_run / SINGAN_TRAINING_LABELS_FILE, labels)
    sample = np.full((24, 32), 2000, np.uint16)
    sample[2:6, 10:14] = 3000
    _png16(singan_run / "samples" / "sample_000.png", sample)
    generated = np.zeros((24, 32), np.uint16)
    generated[2:6, 10:12], generated[2:6, 12:14], generated[18:20, 28:30] = 1, 2, 3
    tifffile.imwrite(singan_run / "samples" / "sample_000_masks.tif", generated)
    cfg = json.loads((singan_run / "config.json").read_text())
    cfg["data"]["path"] = str(tmp_path / "micrograph.png")
    cfg["config"]["labels"] = "beside"
    cfg["labels"] = labels_record or {"source": str(tmp_path / "micrograph_masks.tif"), "instances": 2}
    (singan_run / "config.json").write_text(json.dumps(cfg))
    return image


def _labels_images(page):
    return [img for img in page.images if img["section"] == "labels"]


def test_labelled_singan_report_outlines_real_and_generated_in_true_gray(singan_run, tmp_path, eval_json):
    _labelled_singan_run(singan_run, tmp_path)
    # only the labelled images count for the window: keep the other 16-bit samples out of it
    for other in ("sample_001.png", "sample_002.png", "large_000.tif"):
        (singan_run / "samples" / other).unlink()
    eval_json["metrics"]["labels"] = {"generated": {"f1": 0.8, "mean_matched_iou": 0.71},
                                      "real": {"f1": 0.95, "mean_matched_iou": 0.9}}
    (singan_run / "eval.json").write_text(json.dumps(eval_json))
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    shown = _labels_images(page)
    assert [img["alt"] for img in shown] == [
        f"training image micrograph.png at the trained size 24x32 px, labels from {tmp_path / 'micrograph_masks.tif'}; "
        "2 instances",
        "samples/sample_000.png: 3 instances"]
    real = np.asarray(Image.open(io.BytesIO(decode(shown[0]["src"]))).convert("RGB"))
    assert real.shape == (24 * 8, 32 * 8, 3)  # zoom 8 for a 24 px image
    # one window for the pooled 16-bit values, 2000..3000: not value / 257 (which would be 8..12)
    assert tuple(real[8 * 20 + 4, 8 * 2 + 4]) == (128, 128, 128)  # 2500, half way
    assert tuple(real[8 * 1, 8 * 1]) == (0, 0, 0)                  # background 2000
    assert tuple(real[8 * 5 + 4, 8 * 5 + 4]) == (255, 255, 255)    # inside a particle, 3000
    # two 4 x 4 particles at zoom 8: 32 x 32 squares with 32 * 32 - 30 * 30 = 124 outline pixels each
    assert _coloured(real).sum() == 2 * 124
    generated = np.asarray(Image.open(io.BytesIO(decode(shown[1]["src"]))).convert("RGB"))
    # two touching 4 x 2 instances (32 x 16 at zoom 8) and a 2 x 2 one (16 x 16)
    assert _coloured(generated).sum() == 2 * (32 * 16 - 30 * 14) + (16 * 16 - 14 * 14)
    text = page.text_by_section["labels"]
    assert "2000 .. 3000 data units" in text
    assert ["generated images, their generated labels", "0.8", "0.71"] in page.rows_by_section["labels"]
    # masks are shown as outlines, never as sample images
    assert sorted(img["alt"] for img in page.images if img["section"] == "samples") == ["recon_s3.png",
                                                                                     "samples/sample_000.png"]


def test_auto_labels_say_how_they_were_found(singan_run, tmp_path):
    _labelled_singan_run(singan_run, tmp_path, {"source": "auto", "threshold": 0.125, "instances": 2,
                                                "particles": {"min_area": 4, "invert": False}})
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    alt = _labels_images(page)[0]["alt"]
    assert ("labels from fewgan's particle analysis (--labels auto), threshold 0.125, min_area 4, invert false: "
            "check that they match the particles; 2 instances") in alt


def test_unlabelled_or_unfinished_runs_say_so(singan_run, tmp_path):
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    assert "trained without labels" in page.text_by_section["labels"]
    assert _labels_images(page) == []
    _labelled_singan_run(singan_run, tmp_path)
    (singan_run / SINGAN_TRAINING_LABELS_FILE).unlink()
    (tmp_path / "micrograph.png").unlink()
    page = Page(write_report(singan_run, plots=False).read_text(encoding="utf-8"))
    assert f"no {SINGAN_TRAINING_LABELS_FILE} in the run folder yet" in page.text_by_section["labels"]
    assert [img["alt"] for img in _labels_images(page)] == ["samples/sample_000.png: 3 instances"]


def test_labelled_stylegan2_report_shows_training_images_and_skips_export_copies(stylegan2_run, tmp_path):
    data = tmp_path / "particles"
    data.mkdir()
    files = []
    for i in range(5):
        image = np.full((20, 20), 40, np.uint8)
        image[5:9, 5:5 + i + 1] = 220
        Image.fromarray(image).save(data / f"img{i}.png")
        labels = (image > 100).astype(np.uint16)
        tifffile.imwrite(data / f"img{i}_masks.tif", labels)
        files.append(str(data / f"img{i}.png"))
    cfg = json.loads((stylegan2_run / "config.json").read_text())
    cfg["config"]["labels"] = "beside"
    cfg["data"]["files"] = files
    (stylegan2_run / "config.json").write_text(json.dumps(cfg))
    generated = stylegan2_run / "generated"
    (generated / "yolo" / "images").mkdir(parents=True)
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(generated / "seed0000.png")
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(generated / "yolo" / "images" / "seed0000.png")
    tifffile.imwrite(generated / "seed0000_masks.tif", np.zeros((16, 16), np.uint16))
    page = Page(write_report(stylegan2_run, plots=False).read_text(encoding="utf-8"))
    alts = [img["alt"] for img in _labels_images(page)]
    assert alts == [f"training image img{i}.png as read (before fitting to the training resolution), labels "
                    f"img{i}_masks.tif; 1 instance" for i in range(3)] + ["generated/seed0000.png: 0 instances"]
    first = np.asarray(Image.open(io.BytesIO(decode(_labels_images(page)[0]["src"]))).convert("RGB"))
    assert _coloured(first).sum() == 32 * 8 - 30 * 6  # a 4 x 1 particle at zoom 8: 32 x 8 px
    samples = [img["alt"] for img in page.images if img["section"] == "samples"]
    assert "generated/seed0000.png" in samples and not any("yolo" in a or "_masks" in a for a in samples)
