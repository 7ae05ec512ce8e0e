"""report.html: every section and figure present, every image embedded, robust to missing pieces."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from fewgan.errors import FewganError
from fewgan.report.html import SECTIONS, image_data_uri, write_report
from fewgan.run import SINGAN_FIGURE_FILE


class Page(HTMLParser):
    """What a browser would load from the page: sections, images, links, scripts, tables."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.images: list[dict] = []
        self.links: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self.text_by_section: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self.rows_by_section: dict[str, list[list[str]]] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._section: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self._section = attrs.get("id")
            self.sections.append(self._section)
        if tag == "img":
            self.images.append(dict(attrs, section=self._section))
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        if tag in ("script", "link", "iframe", "object", "embed") or (tag == "style" and attrs.get("src")):
            self.external.append(tag)
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value.startswith(("http:", "https:", "//", "file:")):
                self.external.append(value)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self.rows_by_section.setdefault(self._section, []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._section:
            self.text_by_section[self._section] = self.text_by_section.get(self._section, "") + data
        if self._cell is not None:
            self._cell.append(data)


def decode(uri: str) -> bytes:
    assert uri.startswith("data:image/")
    return base64.b64decode(uri.split(",", 1)[1], validate=True)


def test_singan_report_has_every_section_and_figure(singan_run, eval_json, fake):
    (singan_run / "eval.json").write_text(json.dumps(eval_json))
    (singan_run / "particles.json").write_text(json.dumps(fake.make_particles_json()))
    path = write_report(singan_run)
    assert path == singan_run / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    assert page.sections == list(SECTIONS)
    assert page.external == []  # no scripts, stylesheets, fonts or remote images
    assert all(href.startswith("#") for href in page.links)
    assert {h[1:] for h in page.links} == set(SECTIONS)
    # every <img> is an embedded image that decodes
    assert page.images and all(img["src"].startswith("data:image/") for img in page.images)
    for img in page.images:
        with Image.open(io.BytesIO(decode(img["src"]))) as im:
            im.verify()
    # every plot written into plots/ is embedded, byte for byte
    plots = sorted((singan_run / "plots").glob("*.png"))
    assert {p.stem for p in plots} == {"singan_losses", "singan_amp", "singan_fidelity", "particles"}
    embedded = [decode(img["src"]) for img in page.images]
    for p in plots:
        assert p.read_bytes() in embedded, p.name
    # the trainer's comparison figure is a figure; samples are samples; checkpoints are never shown
    figure_alts = [img["alt"] for img in page.images if img["section"] == "figures"]
    assert any(SINGAN_FIGURE_FILE in a for a in figure_alts)
    sample_alts = {img["alt"] for img in page.images if img["section"] == "samples"}
    assert sample_alts == {"samples/sample_000.png", "samples/sample_001.png", "samples/sample_002.png",
                           "samples/large_000.tif", "recon_s3.png"}
    assert not any("not_a_sample" in img["alt"] for img in page.images)
    # the sK, size, amp table: one row per finished scale, with the values of metrics.jsonl
    table = page.rows_by_section["results"]
    assert table[0] == ["scale", "size HxW", "amp", "PSNR (dB)", "SSIM", "features"]
    assert [r[0] for r in table[1:]] == ["s0", "s1", "s2", "s3"]
    assert table[3] == ["s2", "32x40", "0.03333", "22", "0.7", "32"]
    # timings per scale and their total (2.5 + 3.5 + 4.5 + 5.5 s)
    assert "16.0 s" in page.text_by_section["timings"]
    # evaluation: values with their floors, skipped metrics with the reason, particle details, warnings
    rows = page.rows_by_section["evaluation"]
    assert ["swd", "12.5", "3.25", "levels 2, 3"] in rows
    assert ["sifid", "—", "—", "skipped: Inception weights missing: fewgan weights import FILE"] in rows
    assert ["diameter", "px", "3", "8", "5", "9", "1", "0.2", "0.9"] in rows
    assert "<few patches>" in page.text_by_section["evaluation"]
    # summary: the run has no generator.pt, so it did not finish
    assert "not finished: 4 scales done (s0..s3)" in page.text_by_section["summary"]
    # config and environment
    assert "max_size" in page.text_by_section["config"]
    assert "torch" in page.text_by_section["environment"] and "threads" in page.text_by_section["environment"]
    # the log is escaped text, not markup
    assert "line 99 <b>&" in page.text_by_section["log"]
    log_html = path.read_text(encoding="utf-8").split('<section id="log">', 1)[1]
    assert "<b>" not in log_html and "line 99 &lt;b&gt;&amp;" in log_html  # no markup from the log
    assert not [p for p in singan_run.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_run_status(singan_run, stylegan2_run, fake):
    from fewgan.report.html import run_status
    from fewgan.run import read_metrics, read_run_config

    def status(run):
        return run_status(run, read_run_config(run), read_metrics(run))

    cfg = json.loads((singan_run / "config.json").read_text())
    cfg["pyramid"] = {"sizes": [[16, 20], [24, 30], [32, 40], [40, 50], [48, 64]]}
    (singan_run / "config.json").write_text(json.dumps(cfg))
    assert status(singan_run) == ("not finished: 4 of 5 scales done (s0..s3); still running, stopped or killed "
                                  "(resume with --resume)", False)
    (singan_run / "generator.pt").write_bytes(b"x")
    assert status(singan_run) == ("finished (4 of 5 scales)", True)
    # StyleGAN2: budget 6 epochs x 40 images = 0.24 kimg; the fixture stops at 0.288 kimg
    assert status(stylegan2_run) == ("finished", True)
    records = fake.stylegan2_records(epochs=2)
    (stylegan2_run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text, done = status(stylegan2_run)
    assert not done and text.startswith("not finished: 0.096 of 0.24 kimg")
    (stylegan2_run / "log.txt").write_text("step 1\ndone: 12 steps\n")
    assert status(stylegan2_run) == ("finished", True)


def test_report_renders_a_real_evaluation(singan_run):
    """eval.json as fewgan.metrics.evaluate writes it (SWD and particles on tiny synthetic images)."""
    import torch

    from fewgan.data.synthetic import make_micrograph
    from fewgan.metrics.evaluate import evaluate
    from fewgan.report.plots import write_particle_values

    def images(seed, n):
        out = []
        for i in range(n):
            array, _ = make_micrograph(seed=seed + i, size=(48, 48), radius=3.0, density=30.0)
            a = torch.from_numpy(array.astype("float32") / 65535.0)
            out.append(a.reshape(1, 48, 48) * 2 - 1)
        return torch.stack(out)

    real, generated = images(0, 4), images(100, 4)
    result = evaluate(real, generated, metrics=["swd", "particles"], json_path=singan_run / "eval.json")
    write_particle_values(singan_run, real, generated)
    page = Page(write_report(singan_run).read_text(encoding="utf-8"))
    rows = page.rows_by_section["evaluation"]
    assert ["metric", "value", "floor (real vs real)", "note"] in rows
    shown = [r[0] for r in rows]
    for row in result["table"]:
        assert row["metric"] in shown
    assert (singan_run / "plots" / "particles.png").is_file()
    embedded = [decode(i["src"]) for i in page.images]
    assert (singan_run / "plots" / "particles.png").read_bytes() in embedded


def test_stylegan2_report(stylegan2_run):
    page = Page(write_report(stylegan2_run).read_text(encoding="utf-8"))
    assert page.sections == list(SECTIONS)
    assert len([i for i in page.images if i["section"] == "figures"]) == 4
    assert ["SWD", "1.667", "5", "0.288", "1.667", "6"] in page.rows  # best metric, epoch, kimg, last, count
    assert "images/s" in page.text_by_section["timings"]
    assert "no eval.json" in page.text_by_section["evaluation"]


def test_report_of_a_run_killed_before_its_first_step(tmp_path, fake):
    run = fake.make_singan_run(tmp_path)
    for name in ("metrics.jsonl", "log.txt", SINGAN_FIGURE_FILE, "recon_s3.png"):
        (run / name).unlink()
    shutil.rmtree(run / "samples")
    page = Page(write_report(run).read_text(encoding="utf-8"))
    assert page.sections == list(SECTIONS)
    assert page.images == []
    assert "no scale has finished yet" in page.text_by_section["results"]
    assert "no progress recorded yet" in page.text_by_section["summary"]


def test_report_of_a_run_killed_mid_scale(tmp_path, fake):
    run = fake.make_singan_run(tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    # drop the last scale end and tear the last line, as a SIGKILL during a write would
    lines = [ln for ln in lines if '"scale_end", "scale": 3' not in ln]
    (run / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:17])
    (run / "eval.json").write_text("{not json")
    page = Page(write_report(run).read_text(encoding="utf-8"))
    assert "not finished: 3 scales done (s0..s2)" in page.text_by_section["summary"]
    assert "unfinished" in page.text_by_section["timings"]
    assert "not valid JSON" in page.text_by_section["evaluation"]


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FewganError, match="no config.json"):
        write_report(tmp_path)
    with pytest.raises(FewganError, match="not found"):
        write_report(tmp_path / "missing")


def test_out_option_and_no_plots(singan_run, tmp_path):
    out = write_report(singan_run, out=tmp_path / "elsewhere" / "r.html", plots=False)
    assert out.is_file() and not (singan_run / "plots").exists()
    page = Page(out.read_text(encoding="utf-8"))
    assert "no figures" not in page.text_by_section["figures"]  # the trainer's figure is still there


def test_sixteen_bit_and_tiff_images_are_shown_in_8_bits(tmp_path):
    array = np.array([[0, 257 * 10, 65535], [1000, 2000, 3000]], dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "a.png")
    with Image.open(io.BytesIO(decode(image_data_uri(tmp_path / "a.png")))) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.round(array / 257).astype(np.uint8))
    import tifffile

    tifffile.imwrite(tmp_path / "b.tif", np.array([[0.0, 0.5], [1.0, 2.0]], dtype=np.float32))
    with Image.open(io.BytesIO(decode(image_data_uri(tmp_path / "b.tif")))) as im:
        np.testing.assert_array_equal(np.asarray(im), [[0, 64], [128, 255]])  # min..max of the image
    # one shared window: 16-bit images that use a fraction of 0..65535 are stretched alike
    from fewgan.report.html import _common_window

    Image.fromarray(np.array([[1000, 2000]], dtype=np.uint16)).save(tmp_path / "c.png")
    Image.fromarray(np.array([[1500, 3000]], dtype=np.uint16)).save(tmp_path / "d.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "e.png")  # 8-bit: not part of the window
    window = _common_window([tmp_path / "c.png", tmp_path / "d.png", tmp_path / "e.png"], low=0, high=100)
    assert window == (1000.0, 3000.0)
    with Image.open(io.BytesIO(decode(image_data_uri(tmp_path / "c.png", window=window)))) as im:
        np.testing.assert_array_equal(np.asarray(im), [[0, 128]])  # (2000 - 1000) / 2000 * 255 = 127.5
    assert _common_window([tmp_path / "e.png"]) is None
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 2000), np.uint8)).save(big)
    with Image.open(io.BytesIO(decode(image_data_uri(big, max_side=500)))) as im:
        assert im.size == (500, 75)


@pytest.mark.slow
def test_headless_chromium_screenshot(singan_run, eval_json, tmp_path):
    """The page renders in a real browser (Debian's chromium), without network access, to a non-blank image."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the screenshot check needs it")
    (singan_run / "eval.json").write_text(json.dumps(eval_json))
    report = write_report(singan_run)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         "--proxy-server=127.0.0.1:9", "--window-size=1366,3000", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        gray = np.asarray(im.convert("L"))
    assert gray.shape == (3000, 1366)
    # text, tables and figures: a good share of the page is not background
    assert (gray < 200).mean() > 0.02


def test_cli_report(stylegan2_run, tmp_path, capsys):
    from fewgan.cli import main

    assert main(["report", str(stylegan2_run), "--no-plots"]) == 0
    assert capsys.readouterr().out.strip() == str(stylegan2_run / "report.html")
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["report", str(stylegan2_run), "--max-images", "-1"]) == 2


def test_stylegan2_seconds_per_epoch_counts_the_epochs_between_logged_steps():
    """Logged every 4.7 epochs at 2.2 s/epoch: the column says 2.2, not the seconds per log interval."""
    from fewgan.report.html import _stylegan2_timings

    records = [{"step": 20 * i, "kimg": 0.32 * i, "epoch": 4.7 * i, "seconds": 2.2 * 4.7 * i} for i in range(1, 6)]
    html = _stylegan2_timings(records)
    import re

    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    per_epoch = [float(cells[k]) for k in range(2, len(cells), 4)]
    assert len(per_epoch) == 5 and float(cells[1]) == pytest.approx(10.34, abs=0.01)  # seconds per row
    assert per_epoch and all(abs(v - 2.2) < 0.01 for v in per_epoch), per_epoch


def test_the_summary_shows_what_was_done_to_the_data(tmp_path):
    from fewgan.report.html import _summary

    note = "non-finite values replaced (--nonfinite replace): 1 NaN, 1 +inf and 0 -inf value(s) in 4096 pixel values"
    cfg = {"data": {"path": "x.tif", "height": 32, "width": 32, "notes": [note, "resampled from 64 x 64 to 32 x 32 px"]}}
    html = _summary(tmp_path, cfg, "singan", [])
    assert "data note" in html and "1 NaN, 1 +inf" in html and "resampled from 64 x 64" in html
    folder = {"data": {"root": "set", "notes": ["3 of 5 images fitted to 16x16 by crop"], "image": {"notes": []}}}
    assert "3 of 5 images fitted" in _summary(tmp_path, folder, "stylegan2", [])


def test_singan_samples_state_their_sampling_rule(singan_run):
    from fewgan.report import html as html_module
    from fewgan.singan.nets import SAMPLING_RULE

    page = html_module.render_report(singan_run, plots=False)
    assert "sampling rule is not recorded" in page          # records of a run before issue 17
    with open(singan_run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"event": "scale_end", "scale": 9, "size": [48, 64], "amp": 0.1, "psnr": 30.0,
                            "ssim": 0.9, "sampling_rule": SAMPLING_RULE}) + "\n")
    page = html_module.render_report(singan_run, plots=False)
    assert "share one rule, standing statistics: the scale shown normalises with the mean of many samples" in page
    assert "not recorded" not in page
    # a run trained under the earlier rule says which rule drew what
    lines = (singan_run / "metrics.jsonl").read_text().splitlines()
    (singan_run / "metrics.jsonl").write_text("\n".join(lines[:-1] + [lines[-1].replace(SAMPLING_RULE, "as-trained")])
                                              + "\n")
    page = html_module.render_report(singan_run, plots=False)
    assert "training drew its per-scale samples with as trained: the scale shown" in page
    assert "now use standing statistics" in page and "share one rule" not in page


def test_singan_samples_state_their_contrast_and_warn_when_it_leaves_the_real_images(singan_run):
    import html

    from fewgan.report import html as html_module

    page = html_module.render_report(singan_run, plots=False)
    assert "Contrast of the samples" not in page                  # a run before the contrast was recorded
    end = {"event": "scale_end", "scale": 9, "size": [48, 64], "amp": 0.1, "psnr": 30.0, "ssim": 0.9}
    cases = [([0.9, 1.02, 1.12], None),
             ([0.82, 1.06, 1.34], "some samples are over 1.3x (blown out)"),
             ([1.2, 1.4, 1.6], "the mean is 40% above the real image's"),
             ([0.5, 0.8, 0.95], "some samples are under 0.7x (dull)")]
    lines = (singan_run / "metrics.jsonl").read_text()
    for contrast, warning in cases:
        (singan_run / "metrics.jsonl").write_text(lines + json.dumps({**end, "sample_contrast": contrast}) + "\n")
        page = html.unescape(html_module.render_report(singan_run, plots=False))
        assert "Contrast of the samples in scale s9's grid" in page and f"{contrast[0]:.2f}-{contrast[2]:.2f}x" in page
        assert ("Warning:" in page) == (warning is not None)
        if warning:
            assert warning in page
    dull = [{**end, "sample_contrast": [0.7, 0.8, 0.9]}]
    assert "the mean is 20% below" in html_module._contrast_note("singan", dull)
    assert html_module._contrast_note("stylegan2", dull) is None
