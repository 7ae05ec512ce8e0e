"""``report.html``: one self-contained page per run, rendered from the files of its run folder only.

The page reads ``config.json``, ``metrics.jsonl``, ``log.txt``, ``eval.json`` (when ``fewgan eval``
ran on the run) and the images the trainer wrote, draws the plots of :mod:`fewgan.report.plots`
into ``plots/`` and embeds every figure and image as a base64 ``data:`` URI, with its CSS
inline: the file can be mailed to a colleague and opened without network access. It is written
atomically, so a report being rewritten at the end of a run is never seen half-written.

Every section is always there, what a reader looks at first on top (``verdict``, ``summary``,
``results``, ``evaluation``, ``labels``, ``figures``, ``samples``, ``timings``, ``config``,
``environment``, ``log``); a
section whose files do not exist yet (a run killed at its first scale, no evaluation, no
samples) says so in one line instead of failing, so the trainers can call :func:`write_report` at any point of a run.

Only the standard library renders the page (``html.escape`` and f-strings): no template engine.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fewgan.data.export import YOLO_DIR
from fewgan.data.labels import is_label_file
from fewgan.errors import FewganError
from fewgan.report import plots as _plots
from fewgan.run import (
    CHECKPOINT_DIR,
    EVAL_FILE,
    FIGURE_FILES,
    LOG_FILE,
    PARTICLES_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    SINGAN_FIGURE_FILE,
    SINGAN_TRAINING_LABELS_FILE,
    STYLEGAN2_TRAINING_LABELS_DIR,
    STYLEGAN2_STEP_KEYS,
    TB_DIR,
    atomic_write_text,
    format_seconds,
    read_metrics,
    read_run_config,
)

#: The ids of the report's sections in page order, results first and reference material last
#: (tests check that each one is present).
SECTIONS = ("verdict", "summary", "results", "evaluation", "labels", "figures", "samples", "timings", "config",
            "environment", "log")
_SECTION_TITLES = {
    "verdict": "Verdict", "labels": "Labels", "summary": "Summary", "config": "Configuration", "environment": "Environment", "timings": "Timings",
    "results": "Results", "evaluation": "Evaluation", "figures": "Figures", "samples": "Samples", "log": "Log",
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Folders that hold no images a reader should see in the report.
_SKIP_DIRS = {PLOTS_DIR, TB_DIR, CHECKPOINT_DIR, STYLEGAN2_TRAINING_LABELS_DIR}  # the last: shown as outlines
_MAX_SIDE = 1024  # embedded images are shrunk to this (longest side) to keep the file mailable


# --------------------------------------------------------------------------- entry point
def write_report(
    run_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    plots: bool = True,
    max_images: int = 24,
    log_lines: int = 60,
) -> Path:
    """Draw the run's plots and write its self-contained ``report.html``; returns the report's path.

    Parameters
    ----------
    run_dir : a fewgan run folder (it must hold ``config.json``; everything else is optional).
    out : where to write the page (default ``run_dir/report.html``).
    plots : draw the plots into ``run_dir/plots/`` first (``False`` embeds only existing ones).
    max_images : most sample images embedded (each folder of samples shows its first ones).
    log_lines : lines of ``log.txt`` shown (the first lines and the last ones).

    Raises
    ------
    FewganError : ``run_dir`` is not a run folder (no ``config.json``) or ``out`` cannot be written.
    """
    run_dir = Path(run_dir)
    page = render_report(run_dir, plots=plots, max_images=max_images, log_lines=log_lines)
    path = Path(out) if out is not None else run_dir / REPORT_FILE
    try:
        return atomic_write_text(path, page)
    except OSError as exc:
        raise FewganError(f"{path}: cannot write the report ({exc.strerror or exc}); choose another --out") from None


def render_report(run_dir: str | os.PathLike, *, plots: bool = True, max_images: int = 24, log_lines: int = 60) -> str:
    """The report page of ``run_dir`` as one HTML string (see :func:`write_report`)."""
    run_dir = Path(run_dir)
    cfg = _run_record(run_dir)
    method = str(cfg.get("method", "unknown"))
    records = read_metrics(run_dir)
    evaluation = _read_eval(run_dir)

    figures: list[tuple[str, Path | bytes]] = []
    if plots:
        written = _plots.write_run_plots(run_dir, records, method=method if method in ("singan", "stylegan2") else None)
        # a plot that fails is left out (with a warning); it never costs the rest of the report
    else:
        written = {p.stem: p for p in sorted((run_dir / PLOTS_DIR).glob("*.png"))}
    particle_plot = None
    if plots:
        particle_plot = _particle_plot(run_dir, evaluation)
    elif not plots and (run_dir / PLOTS_DIR / "particles.png").is_file():
        particle_plot = run_dir / PLOTS_DIR / "particles.png"
    for name, path in written.items():
        if name != "particles":
            figures.append((_PLOT_CAPTIONS.get(name, name), path))
    if particle_plot is not None:
        figures.append((_PLOT_CAPTIONS["particles"], particle_plot))

    trainer_figures, samples = _collect_images(run_dir)
    figures = [(_caption_for(run_dir, path), path) for path in trainer_figures] + figures

    body = {
        "verdict": _verdict_section(evaluation),
        "labels": _labels_section(run_dir, cfg, method, samples, evaluation),
        "summary": _summary(run_dir, cfg, method, records),
        "config": _config_section(cfg),
        "environment": _environment_section(cfg),
        "timings": _timings_section(method, records),
        "results": _results_section(method, records),
        "evaluation": _evaluation_section(evaluation),
        "figures": _figures_section(figures),
        "samples": _samples_section(run_dir, samples, max_images, _sampling_rule_note(method, records),
                                    _contrast_note(method, records)),
        "log": _log_section(run_dir, log_lines),
    }
    title = f"fewgan {method} run {run_dir.resolve().name}"
    nav = " · ".join(f'<a href="#{s}">{_SECTION_TITLES[s]}</a>' for s in SECTIONS)
    sections = "\n".join(
        f'<section id="{s}">\n<h2>{_SECTION_TITLES[s]}</h2>\n{body[s]}\n</section>' for s in SECTIONS
    )
    generated = _dt.datetime.now().isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(title)}</h1>\n<p class=\"muted\">Report generated {_e(generated)} from the files of "
        f"<code>{_e(str(run_dir))}</code> by fewgan {_e(str(cfg.get('fewgan_version', '')))}.</p>\n"
        f"<nav>{nav}</nav>\n{sections}\n</main>\n</body>\n</html>\n"
    )


_PLOT_CAPTIONS = {
    "singan_losses": "Losses of every scale in training order: critic D and adversarial G_adv (top), "
                     "reconstruction MSE G_recon (bottom, log).",
    "singan_amp": "Noise amplitude per scale.",
    "singan_fidelity": "PSNR and SSIM of the fixed-noise reconstruction against the real image, per scale.",
    "stylegan2_losses": "Generator and discriminator losses over training images (kimg).",
    "stylegan2_regularisers": "R1 gradient penalty and path-length penalty.",
    "stylegan2_ada": "Adaptive augmentation probability p.",
    "stylegan2_metric": "Selection metric over epochs (best ringed).",
    "particles": "Particle statistics, real vs generated (densities; shared bins).",
}


# --------------------------------------------------------------------------- helpers
_CSS = """
:root{--fg:#1b1b1b;--muted:#666;--line:#ddd;--bg:#fff;--accent:#2b5797;--head:#f3f5f8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:12px 20px 40px}
h1{font-size:1.45em;margin:.4em 0 .2em}
h2{font-size:1.2em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--accent)}
h3{font-size:1.02em;margin:1em 0 .4em}
nav{position:sticky;top:0;background:var(--bg);padding:6px 0;border-bottom:1px solid var(--line);font-size:.92em;z-index:1}
a{color:var(--accent);text-decoration:none}
.muted{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;margin:.3em 0 .8em;font-size:.9em}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{color:var(--muted);white-space:nowrap}
.kv td.num{text-align:left}
.cols{display:flex;flex-wrap:wrap;gap:0 28px}
figure{margin:.6em 0 1.2em}
.figs{display:flex;flex-wrap:wrap;gap:0 18px;align-items:flex-start}
.figs figure{max-width:100%;display:table}
.figs figcaption{display:table-caption;caption-side:bottom}
figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:.88em}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.gallery figure{margin:0;max-width:48%}
.pixel img{image-rendering:pixelated}
pre{background:#f7f7f7;border:1px solid var(--line);padding:8px;overflow-x:auto;font-size:.8em;line-height:1.3}
.warn{color:#a4262c}
.ok{color:#107c10}
ul.verdict{list-style:none;padding:0;margin:.3em 0 .6em}
ul.verdict li{margin:.25em 0}
.level{display:inline-block;min-width:4.2em;text-align:center;border-radius:3px;padding:0 .4em;margin-right:.5em;
 font-weight:600;font-size:.85em;color:#fff}
.level-good{background:#107c10}.level-warn{background:#b35900}.level-bad{background:#a4262c}.level-unknown{background:#777}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers to short text (4 significant digits), everything else to text."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        if len(value) <= 8 and all(not isinstance(v, (dict, list)) for v in value):
            return "[" + ", ".join(_fmt(v, digits) for v in value) + "]"
        head = ", ".join(_fmt(v, digits) for v in value[:2])
        return f"{len(value)} items: {head}, ..."[:300]
    return str(value)


def _td(value: Any) -> str:
    cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{cls}>{_e(_fmt(value))}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_td(v) for v in row) + "</tr>" for row in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv_table(items: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td>{_td(v)}</tr>" for k, v in items)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, obj)]


def _note(text: str) -> str:
    return f'<p class="muted">{_e(text)}</p>'


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------- images
def image_data_uri(path: str | os.PathLike | bytes, max_side: int = _MAX_SIDE,
                   window: tuple[float, float] | None = None) -> str:
    """A ``data:image/png;base64,...`` URI for an image file (or PNG bytes).

    8-bit PNG/JPEG files no larger than ``max_side`` are embedded as they are; 16-bit and float
    images are shown in 8 bits (``window`` (lo, hi) in data units maps linearly to 0..255; without
    it 16-bit is value / 257 and float is min..max of the image), TIFF is converted to PNG
    (browsers do not show TIFF), and larger images are shrunk.
    """
    if isinstance(path, (bytes, bytearray)):
        return "data:image/png;base64," + base64.b64encode(bytes(path)).decode("ascii")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        with Image.open(path) as im:
            simple = im.mode in ("L", "RGB", "RGBA", "P", "LA") and max(im.size) <= max_side
        if simple:
            mime = "image/png" if suffix == ".png" else "image/jpeg"
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return "data:image/png;base64," + base64.b64encode(_display_png(path, max_side, window)).decode("ascii")


def _display_png(path: Path, max_side: int, window: tuple[float, float] | None = None) -> bytes:
    """Any image fewgan writes, as 8-bit PNG bytes with its longest side at most ``max_side``."""
    from PIL import Image

    im = Image.fromarray(_display_values(_read_display_array(path), window))
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _png_bytes(im)


def _png_bytes(im) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _display_values(array: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """An ``[H, W, C]`` image in data units as 8-bit display values: ``[H, W]`` (gray) or ``[H, W, 3|4]``.

    8-bit data is shown as it is; 16-bit and float data through ``window`` (lo, hi) in data units
    when given (never clipped to the low byte), else 16-bit as value / 257 and float as min..max.
    """
    if array.dtype != np.uint8:
        if window is not None and window[1] > window[0]:
            a = (np.nan_to_num(array.astype(np.float64)) - window[0]) / (window[1] - window[0])
            array = (a.clip(0, 1) * 255).round().astype(np.uint8)
        elif array.dtype == np.uint16:
            array = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
        else:
            a = array.astype(np.float64)
            finite = a[np.isfinite(a)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            a = np.nan_to_num((a - lo) / (hi - lo if hi > lo else 1.0))
            array = (a.clip(0, 1) * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[2] in (1, 2):  # gray, gray + alpha
        array = array[:, :, 0]
    return array


def _read_display_array(path: Path) -> np.ndarray:
    """The raw ``[H, W, C]`` array of any image fewgan writes (a multi-page TIFF: its first page)."""
    import warnings

    from fewgan.data.images import read_array

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "alpha channel dropped": the report shows the colour channels
        try:
            return read_array(path)[0]
        except FewganError as exc:
            if "multi-page" not in str(exc):
                raise
            return read_array(path, page=0)[0]


def _collect_images(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """Images a trainer wrote into the run folder: (figures, samples), each sorted by name.

    Plots, TensorBoard and checkpoints are left out; figures are the files
    :data:`fewgan.run.FIGURE_FILES` names (SinGAN's scale figure).
    """
    figures: list[Path] = []
    samples: list[Path] = []
    for path in sorted(run_dir.rglob("*"), key=_natural_key):
        rel = path.relative_to(run_dir)
        if not path.is_file() or path.suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        if rel.parts[0] in _SKIP_DIRS or any(part.startswith(".") for part in rel.parts):
            continue
        if is_label_file(path) or _in_yolo_export(rel):  # labels are shown as outlines, not as images
            continue
        if len(rel.parts) == 1 and rel.name in FIGURE_FILES:
            figures.append(path)
        else:
            samples.append(path)
    return figures, samples


def _in_yolo_export(rel: Path) -> bool:
    """Whether a run-relative path is one of the image links of a YOLO export (``.../yolo/images/``)."""
    parts = rel.parts[:-1]
    return any(a == YOLO_DIR and b == "images" for a, b in zip(parts, parts[1:]))


def _natural_key(path: Path) -> list:
    """Sort ``s2`` before ``s10``: digit runs compare as numbers."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def _caption_for(run_dir: Path, path: Path) -> str:
    rel = path.relative_to(run_dir).as_posix()
    if rel == SINGAN_FIGURE_FILE:
        return f"{rel}: the scales s0..sN side by side (real, reconstruction, samples), written by the trainer."
    return f"{rel} (written by the trainer)."


def _img(src: Path | bytes, alt: str, pixel: bool = False, max_side: int = _MAX_SIDE,
         window: tuple[float, float] | None = None) -> str:
    try:
        uri = image_data_uri(src, max_side=max_side, window=window)
    except Exception as exc:  # a torn or unreadable file must not stop the report
        return f'<p class="warn">{_e(alt)}: cannot be shown ({_e(type(exc).__name__)}: {_e(str(exc)[:120])})</p>'
    cls = ' class="pixel"' if pixel else ""
    width = _upscaled_width(src) if pixel and isinstance(src, Path) else None
    style = f' style="width:{width}px"' if width else ""
    return f'<figure{cls}><img src="{uri}" alt="{_e(alt)}"{style}>'


def _upscaled_width(path: Path, target: int = 160, max_width: int = 1000) -> int | None:
    """Small images (a 16 px scale, a strip of them) are shown at an integer zoom a reader can see."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
    except Exception:  # e.g. a float TIFF Pillow cannot open: shown at its own size
        return None
    short = min(width, height)
    if short >= target or short < 1:
        return None
    zoom = min(8, target // short, max(1, max_width // width))
    return width * zoom if zoom > 1 else None


def _common_window(paths: Sequence[Path], low: float = 0.1, high: float = 99.9) -> tuple[float, float] | None:
    """One display window (data units) for every 16-bit or float image of ``paths``.

    The ``low``/``high`` percentiles of their pooled pixels: a 16-bit micrograph that uses a
    fraction of 0..65535 would look black at value / 257, and one shared window keeps the
    brightness of real, reconstructed and generated images comparable. ``None`` if all are 8-bit.
    """
    arrays = []
    for path in paths:
        try:
            arrays.append(_read_display_array(path))
        except Exception:
            continue
    return _arrays_window(arrays, low, high)


def _arrays_window(arrays: Sequence[np.ndarray], low: float = 0.1, high: float = 99.9) -> tuple[float, float] | None:
    """:func:`_common_window` of arrays already read (``None`` if all are 8-bit)."""
    pooled = []
    for array in arrays:
        if array.dtype == np.uint8:
            continue
        a = array.astype(np.float64).ravel()
        a = a[np.isfinite(a)]
        if a.size > 20000:
            a = a[:: a.size // 20000]
        pooled.append(a)
    if not pooled:
        return None
    values = np.concatenate(pooled)
    lo, hi = np.percentile(values, [low, high])
    return (float(lo), float(hi)) if hi > lo else None


# --------------------------------------------------------------------------- sections
def _summary(run_dir: Path, cfg: Mapping[str, Any], method: str, records: Sequence[Mapping[str, Any]]) -> str:
    data = cfg.get("data") or {}
    image = data.get("image") if isinstance(data.get("image"), Mapping) else data  # folder sets nest it
    seconds = [r["seconds"] for r in records if _finite(r.get("seconds"))]
    rows: list[tuple[str, Any]] = [("method", method), ("run folder", str(run_dir)),
                                   ("created", cfg.get("created", "—"))]
    source = data.get("path") or data.get("root") or data.get("file") or data.get("folder")
    if source:
        rows.append(("data", source))
    if _finite(data.get("count")):
        rows.append(("images", data["count"]))
    h, w = image.get("height"), image.get("width")
    if h and w:
        rows.append(("image size", f"{h} x {w} px"))
    if _finite(data.get("resolution")):
        rows.append(("training resolution", f"{data['resolution']} px"))
    for key in ("channels", "dtype", "format"):
        if key in image:
            rows.append((key, image[key]))
    if image.get("pixel_size"):
        rows.append(("pixel size", f"{image['pixel_size']} {image.get('pixel_unit') or ''}".strip()))
    # what was done to the data on reading (non-finite values replaced, a downscale, images fitted)
    notes = list(image.get("notes") or []) + (list(data.get("notes") or []) if image is not data else [])
    rows.extend(("data note", str(note)) for note in notes)
    device = (cfg.get("environment") or {}).get("device")
    if device:
        rows.append(("device", device))
    if seconds:
        rows.append(("training time", format_seconds(max(seconds))))
    rows.extend(_headline(method, records))
    status, done = run_status(run_dir, cfg, records)
    steps = [r for r in records if "event" not in r]
    if steps:
        last = steps[-1]
        where = ", ".join(f"{k} {_fmt(last[k])}" for k in ("scale", "step", "epoch", "kimg") if k in last)
        rows.append(("last logged step", where))
    if not records:
        rows.append(("metrics", "metrics.jsonl is empty or missing: the run has logged no step yet"))
    cls = "ok" if done else "warn"
    body = "".join(f"<tr><td>{_e(k)}</td>{_td(v)}</tr>" for k, v in rows)
    body = f'<tr><td>status</td><td class="{cls}">{_e(status)}</td></tr>' + body
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _headline(method: str, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """The one or two numbers a reader looks for first."""
    if method == "singan":
        ends = _plots.singan_scale_ends(records)
        if ends and (_finite(ends[-1].get("psnr")) or _finite(ends[-1].get("ssim"))):
            last = ends[-1]
            return [(f"reconstruction at s{last['scale']}",
                     f"PSNR {_fmt(last.get('psnr'))} dB, SSIM {_fmt(last.get('ssim'))}")]
    if method == "stylegan2":
        evals = _plots.stylegan2_evals(records)
        if evals:
            best = min(evals, key=lambda r: r["value"])
            return [(f"best {str(best['metric']).upper()}", f"{_fmt(best['value'])} at epoch {_fmt(best.get('epoch'))}")]
    return []


def run_status(run_dir: str | os.PathLike, cfg: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> tuple[str, bool]:
    """``(text, finished)``: whether the run finished, from what its files say.

    SinGAN: finished when the final model (``generator.pt``) exists; otherwise how many of the
    planned scales (``config.json``'s pyramid) ended. StyleGAN2: finished when ``log.txt`` has
    the trainer's ``done:`` line or the last logged step reached the image budget.
    """
    run_dir = Path(run_dir)
    method = cfg.get("method")
    config = cfg.get("config") or {}
    if any(r.get("event") in ("end", "done", "finished", "train_end") for r in records):
        return "finished", True
    if method == "singan":
        planned = len((cfg.get("pyramid") or {}).get("sizes") or [])
        ends = _plots.singan_scale_ends(records)
        of = f" of {planned}" if planned else ""
        if (run_dir / "generator.pt").is_file():
            return f"finished ({len(ends)}{of} scales)", True
        if ends:
            return (f"not finished: {len(ends)}{of} scales done (s0..s{ends[-1]['scale']}); "
                    "still running, stopped or killed (resume with --resume)"), False
    if method == "stylegan2":
        if _log_has_done(run_dir):
            return "finished", True
        steps = _plots.stylegan2_steps(records)
        if steps:
            last = steps[-1]
            count = (cfg.get("data") or {}).get("count")
            budget_kimg = config.get("kimg") if _finite(config.get("kimg")) and config.get("kimg") else None
            if budget_kimg is None and _finite(config.get("epochs")) and _finite(count):
                budget_kimg = config["epochs"] * count / 1000
            if budget_kimg and _finite(last.get("kimg")) and last["kimg"] >= budget_kimg - 1e-9:
                return "finished", True
            of = f" of {_fmt(budget_kimg)}" if budget_kimg else ""
            return (f"not finished: {_fmt(last.get('kimg'))}{of} kimg (epoch {_fmt(last.get('epoch'))}); "
                    "still running, stopped or killed (resume with --resume)"), False
    return "no progress recorded yet", False


def _log_has_done(run_dir: Path) -> bool:
    path = run_dir / LOG_FILE
    if not path.is_file():
        return False
    try:
        tail = path.read_bytes()[-4096:].decode("utf-8", "replace")
    except OSError:
        return False
    return any(line.startswith("done:") for line in tail.splitlines())


def _config_section(cfg: Mapping[str, Any]) -> str:
    parts = []
    config = cfg.get("config")
    if isinstance(config, Mapping) and config:
        items = _flatten(config)
        per = max(10, -(-len(items) // 3))  # long configurations in up to three columns
        tables = "".join(f"<div>{_kv_table(items[i:i + per])}</div>" for i in range(0, len(items), per))
        parts.append(f'<h3>Training configuration</h3><div class="cols">{tables}</div>')
    else:
        parts.append(_note("config.json holds no training configuration."))
    data = cfg.get("data")
    if isinstance(data, Mapping) and data:
        parts.append("<h3>Data</h3>" + _kv_table(_flatten(data)))
    return "".join(parts)


def _environment_section(cfg: Mapping[str, Any]) -> str:
    env = cfg.get("environment")
    if not isinstance(env, Mapping) or not env:
        return _note("config.json records no environment.")
    items = []
    for k, v in _flatten(env):
        if k == "argv" and isinstance(v, list):
            v = " ".join(str(a) for a in v)
        items.append((k, v))
    return _kv_table(items)


def _timings_section(method: str, records: Sequence[Mapping[str, Any]]) -> str:
    if method == "singan":
        return _singan_timings(records)
    if method == "stylegan2":
        return _stylegan2_timings(records)
    return _note("no timings for this method.")


def _singan_timings(records) -> str:
    per_scale = _plots.singan_steps(records)
    ends = {int(r["scale"]): r for r in _plots.singan_scale_ends(records)}
    scales = sorted(set(per_scale) | set(ends))
    if not scales:
        return _note("no logged steps yet.")
    rows = []
    total = 0.0
    for s in scales:
        recs = per_scale.get(s, [])
        end = ends.get(s, {})
        seconds = end.get("seconds_scale")
        measured = "scale end"
        if not _finite(seconds) and len(recs) >= 2 and _finite(recs[0].get("seconds")) and _finite(recs[-1].get("seconds")):
            seconds, measured = recs[-1]["seconds"] - recs[0]["seconds"], "between logged steps (unfinished)"
        steps = (recs[-1]["step"] - recs[0]["step"]) if len(recs) >= 2 else None
        if s in ends and recs:
            steps = recs[-1]["step"] + 1
        rate = steps / seconds if _finite(seconds) and seconds > 0 and steps else None
        if _finite(seconds):
            total += seconds
        rows.append((f"s{s}", _fmt_size(end.get("size")), seconds if _finite(seconds) else None,
                     format_seconds(seconds) if _finite(seconds) else "—", rate, measured))
    table = _table(("scale", "size", "seconds", "h:m:s", "steps/s", "measured"), rows)
    return table + f"<p>Total over the scales: <b>{_e(format_seconds(total))}</b> ({total:.1f} s).</p>"


def _fmt_size(size: Any) -> str:
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return f"{size[0]}x{size[1]}"
    return "—"


def _stylegan2_timings(records) -> str:
    steps = _plots.stylegan2_steps(records)
    if not steps:
        return _note("no logged steps yet.")
    last_by_epoch: dict[int, Mapping[str, Any]] = {}
    for r in steps:
        if _finite(r.get("epoch")) and _finite(r.get("seconds")):
            last_by_epoch[int(r["epoch"])] = r
    epochs = sorted(last_by_epoch)
    rows = []
    # Group the epochs into at most 12 ranges so that a 3000-epoch run stays one screen.
    groups = np.array_split(np.asarray(epochs), min(12, len(epochs))) if epochs else []
    prev_seconds, prev_kimg, prev_epoch = 0.0, 0.0, 0.0
    for group in groups:
        if len(group) == 0:
            continue
        last = last_by_epoch[int(group[-1])]
        seconds = float(last["seconds"]) - prev_seconds
        kimg = float(last.get("kimg", 0.0)) - prev_kimg
        # the epochs this time covers: from the previous row's last record to this one's (fractional;
        # not the number of epochs that happen to hold a logged step, which undercounts sparse logs)
        covered = float(last["epoch"]) - prev_epoch
        label = f"{group[0]}" if len(group) == 1 else f"{group[0]}–{group[-1]}"
        rows.append((label, seconds, seconds / covered if covered > 0 else None,
                     kimg * 1000 / seconds if seconds > 0 else None))
        prev_seconds, prev_kimg, prev_epoch = float(last["seconds"]), float(last.get("kimg", 0.0)), float(last["epoch"])
    last = steps[-1]
    out = _table(("epochs", "seconds", "s/epoch", "images/s"), rows)
    if _finite(last.get("seconds")) and _finite(last.get("kimg")) and last["seconds"] > 0:
        out += (f"<p>Total: <b>{_e(format_seconds(last['seconds']))}</b> for {_fmt(last['kimg'])} kimg "
                f"({1000 * last['kimg'] / last['seconds']:.1f} images/s overall).</p>")
    return out


def _results_section(method: str, records: Sequence[Mapping[str, Any]]) -> str:
    if method == "singan":
        ends = _plots.singan_scale_ends(records)
        if not ends:
            return _note("no scale has finished yet: the sK, size, amp table appears after s0.")
        rows = [(f"s{r['scale']}", _fmt_size(r.get("size")), r.get("amp"), r.get("psnr"), r.get("ssim"),
                 r.get("features")) for r in ends]
        return ("<p>Noise amplitude per scale and the fidelity of the fixed-noise reconstruction "
                "(PSNR in dB and SSIM against the real image at that scale).</p>"
                + _table(("scale", "size HxW", "amp", "PSNR (dB)", "SSIM", "features"), rows))
    if method == "stylegan2":
        evals = _plots.stylegan2_evals(records)
        steps = _plots.stylegan2_steps(records)
        parts = []
        if evals:
            rows = []
            for name in sorted({str(r["metric"]) for r in evals}):
                recs = [r for r in evals if str(r["metric"]) == name]
                best = min(recs, key=lambda r: r["value"])
                rows.append((name.upper(), best["value"], best.get("epoch"), best.get("kimg"), recs[-1]["value"], len(recs)))
            parts.append("<p>Best value of each selection metric (lower is better); the best weights are the "
                         "ones saved as best.</p>"
                         + _table(("metric", "best", "at epoch", "at kimg", "last", "evaluations"), rows))
        else:
            parts.append(_note("no evaluation during training yet (no FID/SWD/KID records)."))
        if steps:
            last = steps[-1]
            parts.append("<h3>Last logged step</h3>" + _kv_table(
                (k, last[k]) for k in STYLEGAN2_STEP_KEYS if k in last))
        return "".join(parts)
    return _note(f"no result tables for method {method!r}.")


# --------------------------------------------------------------------------- evaluation
def _read_eval(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"_error": f"{EVAL_FILE} is not valid JSON"}
    return payload if isinstance(payload, dict) else {"_error": f"{EVAL_FILE} is not a JSON object"}


def _eval_rows(evaluation: Mapping[str, Any]) -> list[tuple[Any, Any, Any, str]]:
    """Rows ``metric, value, floor, note`` of an ``eval.json``.

    :func:`fewgan.metrics.evaluate.evaluate` writes them ready as ``table`` (one row per number a
    user reads, skipped metrics with their reason); for other files the rows come from
    ``metrics``: ``{name: {"value": ..., "floor": {"value": ...}}}`` or ``{name: number}``.
    """
    table = evaluation.get("table")
    if isinstance(table, list) and all(isinstance(r, Mapping) for r in table):
        return [(r.get("metric", ""), r.get("value"), r.get("floor"), str(r.get("note") or "")) for r in table]
    rows: list[tuple[Any, Any, Any, str]] = []
    metrics = evaluation.get("metrics")
    if not isinstance(metrics, Mapping):
        return rows
    for name, entry in metrics.items():
        if isinstance(entry, Mapping):
            if "skipped" in entry:
                rows.append((name, None, None, f"skipped: {entry['skipped']}"))
                continue
            floor = entry.get("floor")
            floor = floor.get("value") if isinstance(floor, Mapping) else floor
            rows.append((name, entry.get("value"), floor if _finite(floor) else None, ""))
        elif _finite(entry):
            rows.append((name, entry, None, ""))
    return rows


def _without_eval(evaluation: Mapping[str, Any] | None, missing: str, unreadable: str = "") -> str | None:
    """What a section says when there is no ``eval.json`` (``missing``) or it cannot be read; ``None`` otherwise."""
    if evaluation is None:
        return _note(missing)
    if "_error" in evaluation:
        return f'<p class="warn">{_e(evaluation["_error"])}{_e(unreadable)}</p>'
    return None


def _evaluation_section(evaluation: Mapping[str, Any] | None) -> str:
    said = _without_eval(evaluation, f"no {EVAL_FILE} in the run folder: 'fewgan eval REAL RUN --json "
                                     f"RUN/{EVAL_FILE}' then 'fewgan report RUN' adds the evaluation here.")
    if said is not None:
        return said
    parts = []
    sides = []
    for role in ("real", "fake"):
        side = evaluation.get(role)
        if isinstance(side, Mapping):
            size = side.get("size")
            size = f", {size[0]}x{size[1]} px" if isinstance(size, list) and len(size) == 2 else ""
            sides.append((role, f"{side.get('source', '?')} ({side.get('n', '?')} image(s){size})"))
        elif isinstance(side, str):
            sides.append((role, side))
    if evaluation.get("mode"):
        sides.append(("mode", evaluation["mode"]))
    if evaluation.get("floor"):
        sides.append(("floor", evaluation["floor"]))
    if sides:
        parts.append(_kv_table(sides))
    rows = _eval_rows(evaluation)
    if rows:
        parts.append("<p>Each metric between the real and the generated images, beside its <i>floor</i>: the "
                     "same metric between two parts of the real data, i.e. what \"as good as real\" reads. "
                     "Lower is better for distances (FID, KID, SIFID, SWD, KS, W1); higher for PSNR, SSIM, "
                     "precision, recall, density, coverage.</p>")
        parts.append(_table(("metric", "value", "floor (real vs real)", "note"), rows))
    particles = (evaluation.get("metrics") or {}).get("particles") if isinstance(evaluation.get("metrics"), Mapping) \
        else None
    if isinstance(particles, Mapping) and isinstance(particles.get("table"), list):
        prow = []
        for r in particles["table"]:
            if not isinstance(r, Mapping):
                continue
            real, fake = r.get("real") or {}, r.get("fake") or {}
            prow.append((r.get("quantity"), r.get("unit", ""), real.get("n"), real.get("mean"), fake.get("n"),
                         fake.get("mean"), r.get("wasserstein"), r.get("ks"), r.get("ks_pvalue")))
        counts = particles.get("particles") or {}
        parts.append("<h3>Particle statistics</h3>"
                     + _note(f"particles detected: {counts.get('real', '?')} real, {counts.get('fake', '?')} generated; "
                             "n counts particles (images for count and density).")
                     + _table(("quantity", "unit", "n real", "mean real", "n generated", "mean generated",
                               "Wasserstein-1", "KS", "KS p-value"), prow))
    warnings = evaluation.get("warnings")
    if isinstance(warnings, list) and warnings:
        parts.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    return "".join(parts) or _note(f"{EVAL_FILE} holds no metric values.")


# --------------------------------------------------------------------------- verdict
_LEVEL_MARKS = {"good": "ok", "warn": "warn", "bad": "BAD", "unknown": "n/a"}


def _verdict_lines(evaluation: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The verdict lines of an ``eval.json``: its ``verdict`` list, else rebuilt from its metrics
    with ``fewgan.metrics.verdict.verdict_lines`` where that exists; ``None`` when there is none."""
    lines = evaluation.get("verdict")
    if isinstance(lines, list):
        return [line for line in lines if isinstance(line, Mapping) and "question" in line and "text" in line]
    if not isinstance(evaluation.get("metrics"), Mapping):
        return None
    try:
        from fewgan.metrics.verdict import verdict_lines
    except ImportError:
        return None
    try:
        return [line.to_dict() for line in verdict_lines(dict(evaluation))]
    except Exception:  # an eval.json of another version: the section says there is no verdict
        return None


def _verdict_section(evaluation: Mapping[str, Any] | None) -> str:
    """One line per question (fidelity, diversity, copying, labels, utility) with a coloured mark."""
    said = _without_eval(evaluation, f"no verdict yet: it comes from the evaluation ('fewgan eval REAL RUN "
                                     f"--json RUN/{EVAL_FILE}' then 'fewgan report RUN').", ": no verdict")
    if said is not None:
        return said
    lines = _verdict_lines(evaluation)
    if not lines:
        return _note(f"{EVAL_FILE} holds no verdict (written by an older fewgan): run 'fewgan eval' again for it; "
                     "the numbers are in the evaluation section.")
    items = []
    for line in lines:
        level = str(line.get("level", "unknown"))
        level = level if level in _LEVEL_MARKS else "unknown"
        items.append(f'<li><span class="level level-{level}">{_LEVEL_MARKS[level]}</span>'
                     f'<b>{_e(line["question"])}</b>: {_e(line["text"])}</li>')
    return (f'<ul class="verdict">{"".join(items)}</ul>'
            + _note("What the numbers mean, one line per question; every threshold behind these words is "
                    "documented in one place, fewgan.metrics.verdict.THRESHOLDS. The evaluation section below "
                    "has the numbers."))


# --------------------------------------------------------------------------- labels
_OVERLAYS_PER_FOLDER = 4  # generated images shown with their outlines, per folder of samples
_MAX_OVERLAYS = 12
_REAL_OVERLAYS = 3        # training images of a folder run


def _labels_section(run_dir: Path, cfg: Mapping[str, Any], method: str, samples: Sequence[Path],
                    evaluation: Mapping[str, Any] | None) -> str:
    """Real and generated images with their instance outlines, in one display window, counts in the captions.

    Real: a SinGAN run's :data:`fewgan.run.SINGAN_TRAINING_LABELS_FILE` (the labels as trained, at
    the trained size) over its training image; a StyleGAN2 run's first training images with their
    label files ('beside' or a folder). Generated: every sample image of the run folder with a
    ``NAME_masks.tif`` beside it (what sampling a labelled model writes).
    """
    config = cfg.get("config") if isinstance(cfg.get("config"), Mapping) else {}
    labelled = config.get("labels") not in (None, "none", "")
    items: list[tuple[str, np.ndarray, np.ndarray]] = []  # (caption, image in data units, instances)
    notes: list[str] = []
    if labelled:
        if method == "singan":
            items += _singan_real_overlay(run_dir, cfg, notes)
        elif method == "stylegan2":
            items += _folder_real_overlays(run_dir, cfg, str(config.get("labels")), notes)
    n_real = len(items)
    items += _generated_overlays(run_dir, samples, notes)
    if not labelled and len(items) == 0:
        return _note("this run was trained without labels (--labels PATH|beside|auto): no instance outlines "
                     "to show.")
    window = _arrays_window([image for _, image, _ in items])
    parts = [_note("Instance outlines (orange) over the images in their true gray values"
                   + (f", shown with one contrast window for all of them: {_fmt(window[0])} .. {_fmt(window[1])} "
                      "data units" if window is not None else "") + "; the count of instances is in each caption.")]
    parts += [f'<p class="warn">{_e(n)}</p>' for n in notes]
    for title, chosen in (("Real images and their labels", items[:n_real]),
                          ("Generated images and their labels", items[n_real:])):
        if not chosen:
            continue
        cells = []
        for caption, image, instances in chosen:
            cells.append(f"{_overlay_img(image, instances, window, caption)}<figcaption>{_e(caption)}</figcaption>"
                         "</figure>")
        parts.append(f"<h3>{_e(title)}</h3>" + '<div class="gallery">' + "".join(cells) + "</div>")
    if labelled and not items[n_real:]:
        parts.append(_note("no generated images with labels in the run folder yet: sampling a labelled model "
                           "writes NAME_masks.tif beside every image (fewgan singan sample / fewgan stylegan2 "
                           "generate, with --export for COCO and YOLO)."))
    parts.append(_label_consistency(evaluation))
    return "\n".join(p for p in parts if p)


def _read_instances(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """An instance image fewgan wrote (``[H, W]``, 0 background), as it is: an empty one is a
    sample without objects, not an error (user label files go through :func:`fewgan.data.labels.read_labels`)."""
    array = _read_display_array(path)
    if array.ndim == 3:
        array = array[..., 0]
    if array.dtype.kind not in "ui":
        raise FewganError(f"{path.name}: not an integer label image ({array.dtype})")
    if shape is not None and array.shape != tuple(shape):
        raise FewganError(f"{path.name}: {array.shape[0]}x{array.shape[1]} px, its image {shape[0]}x{shape[1]} px")
    return array.astype(np.int64)


def _overlay_img(image: np.ndarray, instances: np.ndarray, window: tuple[float, float] | None, alt: str) -> str:
    from PIL import Image

    shown = _display_values(image, window)
    if shown.ndim == 3 and shown.shape[2] == 4:
        shown = shown[..., :3]
    zoom = _plots.display_zoom(*instances.shape, max_side=_MAX_SIDE)
    im = Image.fromarray(_plots.outline_overlay(shown, instances, zoom=zoom))
    if max(im.size) > _MAX_SIDE:
        im.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.LANCZOS)
    return _img(_png_bytes(im), alt)


def _count_text(instances: np.ndarray) -> str:
    n = _plots.instance_count(instances)
    return f"{n} instance{'s' if n != 1 else ''}"


def _singan_real_overlay(run_dir: Path, cfg: Mapping[str, Any], notes: list[str]) -> list:
    from fewgan.model import recorded_data_path

    labels_path = run_dir / SINGAN_TRAINING_LABELS_FILE
    if not labels_path.is_file():
        notes.append(f"no {SINGAN_TRAINING_LABELS_FILE} in the run folder yet (a labelled SinGAN run writes its "
                     "training labels when it finishes).")
        return []
    image_path = recorded_data_path(dict(cfg), "singan")
    try:
        instances = _read_instances(labels_path)
        if image_path is None or not image_path.is_file():
            raise FewganError(f"the training image {image_path} is not there any more")
        image = _fit_display(_read_display_array(image_path), instances.shape)
    except Exception as exc:
        notes.append(f"the training image with its labels cannot be shown: {exc}")
        return []
    info = cfg.get("labels") if isinstance(cfg.get("labels"), Mapping) else {}
    h, w = instances.shape
    return [(f"training image {image_path.name} at the trained size {h}x{w} px, {_labels_how(info, cfg)}; "
             f"{_count_text(instances)}", image, instances)]


def _labels_how(info: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """Where a run's training labels came from, in words; ``--labels auto`` with the recorded
    threshold and particle parameters, so that the user can check them against the outlines."""
    source = info.get("source", (cfg.get("config") or {}).get("labels"))
    if source != "auto":
        return f"labels from {source}"
    threshold = info.get("threshold")
    if isinstance(threshold, Mapping):  # a folder run records find_threshold's dict
        threshold = threshold.get("threshold")
    params = info.get("particles") or {}
    return (f"labels from fewgan's particle analysis (--labels auto), threshold {_fmt(threshold)}"
            + (", " + ", ".join(f"{k} {_fmt(v)}" for k, v in params.items()) if isinstance(params, Mapping)
               else "") + ": check that they match the particles")


def _fit_display(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The training image resized (for display only) to the size its model was trained at."""
    if image.shape[:2] == tuple(shape):
        return image
    from skimage.transform import resize

    dtype = image.dtype
    out = resize(image.astype(np.float64), (*shape, image.shape[2]), order=1, anti_aliasing=True,
                 preserve_range=True)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.round(out), info.min, info.max).astype(dtype)
    return out.astype(dtype)


def _folder_real_overlays(run_dir: Path, cfg: Mapping[str, Any], spec: str, notes: list[str]) -> list:
    from fewgan.data.labels import labels_beside, read_labels

    as_trained = _as_trained_overlays(run_dir, cfg, notes)
    if as_trained:
        return as_trained
    if spec == "auto":
        notes.append(f"labels auto: no {STYLEGAN2_TRAINING_LABELS_DIR}/ in the run folder (runs before fewgan "
                     "stored them), so the training images' instances cannot be shown; the generated images below "
                     "show what the model learnt.")
        return []
    files = [Path(f) for f in ((cfg.get("data") or {}).get("files") or [])][:_REAL_OVERLAYS]
    out = []
    for f in files:
        if spec == "beside":
            mask = labels_beside(f)
        else:
            folder = Path(spec)
            mask = folder / f.name if (folder / f.name).is_file() else next(
                (q for q in sorted(folder.glob(f.stem + ".*")) if q.suffix.lower() in _IMAGE_SUFFIXES), None)
        try:
            if mask is None:
                raise FewganError(f"no label image for {f.name}")
            image = _read_display_array(f)
            instances = read_labels(mask, shape=image.shape[:2])
        except Exception as exc:
            notes.append(f"{f.name}: cannot be shown with its labels: {exc}")
            continue
        out.append((f"training image {f.name} as read (before fitting to the training resolution), labels "
                    f"{mask.name}; {_count_text(instances)}", image, instances))
    return out


def _as_trained_overlays(run_dir: Path, cfg: Mapping[str, Any], notes: list[str]) -> list:
    """A folder run's :data:`fewgan.run.STYLEGAN2_TRAINING_LABELS_DIR`: its first training images at
    the training resolution with the instances it trained on."""
    folder = run_dir / STYLEGAN2_TRAINING_LABELS_DIR
    if not folder.is_dir():
        return []
    info = (cfg.get("data") or {}).get("labels")
    how = _labels_how(info if isinstance(info, Mapping) else {}, cfg)
    out = []
    for mask in sorted(folder.glob("*_masks.tif")):
        image_path = folder / (mask.name[: -len("_masks.tif")] + ".tif")
        pair = _pair(image_path, mask, mask.name, notes)
        if pair is None:
            continue
        image, instances = pair
        h, w = instances.shape
        out.append((f"training image {image_path.stem} as trained ({h}x{w} px), {how}; {_count_text(instances)}",
                    image, instances))
    return out


def _generated_overlays(run_dir: Path, samples: Sequence[Path], notes: list[str]) -> list:
    from fewgan.data.labels import labels_beside

    by_folder: dict[Path, list[tuple[Path, Path]]] = {}
    for path in samples:
        mask = labels_beside(path)
        if mask is not None:
            by_folder.setdefault(path.parent, []).append((path, mask))
    out = []
    for pairs in by_folder.values():
        for path, mask in pairs[:_OVERLAYS_PER_FOLDER]:
            if len(out) >= _MAX_OVERLAYS:
                return out
            rel = path.relative_to(run_dir).as_posix()
            pair = _pair(path, mask, rel, notes)
            if pair is not None:
                out.append((f"{rel}: {_count_text(pair[1])}", *pair))
    return out


def _pair(image_path: Path, mask: Path, name: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """An image and its instance image, or None with a note saying why they cannot be shown."""
    try:
        image = _read_display_array(image_path)
        return image, _read_instances(mask, image.shape[:2])
    except Exception as exc:
        notes.append(f"{name}: cannot be shown with its labels: {exc}")
        return None


def _label_consistency(evaluation: Mapping[str, Any] | None) -> str:
    """The label-consistency metric of ``eval.json`` (generated vs real), when it was measured."""
    metrics = (evaluation or {}).get("metrics")
    entry = metrics.get("labels") if isinstance(metrics, Mapping) else None
    if not isinstance(entry, Mapping):
        return ""
    if "skipped" in entry:
        return _note(f"label consistency: skipped ({entry['skipped']}).")
    rows = []
    for side, name in (("generated", "generated images, their generated labels"),
                       ("real", "real image(s), their real labels (the reference)")):
        values = entry.get(side)
        if isinstance(values, Mapping):
            rows.append((name, values.get("f1"), values.get("mean_matched_iou")))
    if not rows:
        return ""
    return ("<h3>Label consistency</h3><p>fewgan's independent particle analysis of each image matched to its "
            "labels: F1 at IoU 0.5 and the mean IoU of the matched pairs.</p>"
            + _table(("images", "F1", "mean matched IoU"), rows))


def _particle_plot(run_dir: Path, evaluation: Mapping[str, Any] | None) -> Path | None:
    """Particle figure: per-particle histograms from ``particles.json`` and g(r) from ``eval.json``."""
    stats: dict[str, tuple[list, list]] = {}
    units: dict[str, str] = {}
    values = _read_json_object(run_dir / PARTICLES_FILE)
    if values and isinstance(values.get("real"), Mapping) and isinstance(values.get("fake"), Mapping):
        for name, real in values["real"].items():
            fake = values["fake"].get(name)
            if isinstance(real, list) and isinstance(fake, list):
                stats[name] = (real, fake)
        if isinstance(values.get("units"), Mapping):
            units = {str(k): str(v) for k, v in values["units"].items()}
    g_r = None
    metrics = (evaluation or {}).get("metrics")
    if isinstance(metrics, Mapping) and isinstance(metrics.get("particles"), Mapping):
        g = metrics["particles"].get("g_r")
        if isinstance(g, Mapping) and all(isinstance(g.get(k), list) for k in ("r", "real", "fake")):
            g_r = g
    path = run_dir / PLOTS_DIR / "particles.png"
    written = _plots.plot_particle_histograms(stats, path, units=units, pair_correlation=g_r)
    if written is None and path.exists():
        path.unlink()  # stale from an earlier report
    return written


def _read_json_object(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return payload if isinstance(payload, dict) else None


# --------------------------------------------------------------------------- figures, samples, log
def _figures_section(figures: Sequence[tuple[str, Path | bytes]]) -> str:
    if not figures:
        return _note("no figures yet: the run has logged no step.")
    parts = []
    for caption, src in figures:
        img = _img(src, caption, max_side=2 * _MAX_SIDE)  # plots are drawn at their display size
        if img.startswith("<figure"):
            parts.append(f"{img}<figcaption>{_e(caption)}</figcaption></figure>")
        else:
            parts.append(img)
    return '<div class="figs">' + "\n".join(parts) + "</div>"


_SAMPLING_RULES = {
    "standing": "standing statistics: the scale shown normalises with the mean of many samples' own BatchNorm "
                "statistics (the same for every sample), the frozen coarser scales use their running averages; "
                "the reconstruction normalises the scale shown by its own statistics, as in training",
    "as-trained": "as trained: the scale shown normalises each image by its own BatchNorm statistics and the "
                  "frozen coarser scales use their running averages, as in training",
    "running": "running averages: every scale's BatchNorm in eval mode",
    "own": "every scale normalises each image by its own BatchNorm statistics",
}


def _sampling_rule_note(method: str, records: Sequence[dict]) -> str | None:
    """One line naming the rule the SinGAN trainer drew its samples with (recorded per scale)."""
    if method != "singan":
        return None
    rules = {r.get("sampling_rule") for r in records if r.get("event") == "scale_end"}
    rules.discard(None)
    if len(rules) != 1:
        return ("SinGAN samples of this run: the sampling rule is not recorded (runs before issue 17 used "
                "BatchNorm running averages)") if not rules else None
    rule = next(iter(rules))
    from fewgan.singan.nets import SAMPLING_RULE

    if rule != SAMPLING_RULE:  # a run trained before the sampler's rule changed
        return (f"SinGAN samples: this run's training drew its per-scale samples with "
                f"{_SAMPLING_RULES.get(rule, rule)}; scales.png and 'fewgan singan sample' now use "
                f"{_SAMPLING_RULES.get(SAMPLING_RULE, SAMPLING_RULE)}.")
    return (f"SinGAN samples here, in scales.png and from 'fewgan singan sample' share one rule, "
            f"{_SAMPLING_RULES.get(rule, rule)}.")


CONTRAST_BOUNDS = {"mean": 0.15, "low": 0.7, "high": 1.3}
"""When :func:`_contrast_note` warns: the samples' mean contrast (intensity std over the real image's)
more than 15 % off (issue 17's bound), or any sample under 0.7x or over 1.3x (dull or blown out)."""


def _contrast_note(method: str, records: Sequence[dict]) -> str | None:
    """One line on the finest trained scale's sample contrast (:func:`fewgan.singan.outputs.sample_contrast`),
    with a warning where it leaves :data:`CONTRAST_BOUNDS`; None for other methods or older runs."""
    if method != "singan":
        return None
    found = [r for r in records if r.get("event") == "scale_end" and r.get("sample_contrast")]
    if not found:
        return None
    last = max(found, key=lambda r: r["scale"])
    lo, mean, hi = last["sample_contrast"]
    text = (f"Contrast of the samples in scale s{last['scale']}'s grid (each sample's intensity std over the "
            f"real image's): {lo:.2f}-{hi:.2f}x, mean {mean:.2f}x.")
    problems = []
    if abs(mean - 1) > CONTRAST_BOUNDS["mean"]:
        problems.append(f"the mean is {abs(mean - 1):.0%} {'above' if mean > 1 else 'below'} the real image's")
    if hi > CONTRAST_BOUNDS["high"]:
        problems.append(f"some samples are over {CONTRAST_BOUNDS['high']}x (blown out)")
    if lo < CONTRAST_BOUNDS["low"]:
        problems.append(f"some samples are under {CONTRAST_BOUNDS['low']}x (dull)")
    if problems:
        text += (" Warning: " + "; ".join(problems) + ". Such samples do not look like the training image (too "
                 "few steps, or a BatchNorm sampling rule that does not suit this model); compare them with it "
                 "('fewgan eval REAL.png SAMPLES/') before training a detector on them.")
    return text


def _samples_section(run_dir: Path, samples: Sequence[Path], max_images: int, rule_note: str | None = None,
                     contrast_note: str | None = None) -> str:
    if not samples:
        return _note("no sample images in the run folder yet.")
    by_folder: dict[str, list[Path]] = {}
    for path in samples:
        by_folder.setdefault(path.parent.relative_to(run_dir).as_posix(), []).append(path)
    per_folder = max(1, max_images // max(1, len(by_folder)))
    chosen: dict[str, list[Path]] = {}
    for folder, paths in by_folder.items():
        # evenly spaced picks, first and last included (the finest SinGAN scale comes last)
        picks = sorted({round(i * (len(paths) - 1) / max(1, per_folder - 1)) for i in range(per_folder)}) \
            if len(paths) > per_folder else range(len(paths))
        chosen[folder] = [paths[i] for i in picks]
    window = _common_window([p for shown in chosen.values() for p in shown])
    parts = [_note(note) for note in (rule_note, contrast_note) if note]
    if window is not None:
        parts.append(_note(f"16-bit and float images are shown in 8 bits with one contrast window for all of them: "
                           f"{_fmt(window[0])} .. {_fmt(window[1])} data units (0.1 and 99.9 percentiles of their "
                           "pooled pixels); 8-bit grids are shown as written."))
    for folder, paths in by_folder.items():
        shown = chosen[folder]
        title = "run folder" if folder == "." else f"{folder}/"
        parts.append(f"<h3>{_e(title)}</h3>")
        if len(paths) > len(shown):
            parts.append(_note(f"{len(shown)} of {len(paths)} images shown; the others are in {folder}/."))
        cells = []
        for path in shown:
            rel = path.relative_to(run_dir).as_posix()
            img = _img(path, rel, pixel=True, window=window)
            cells.append(f"{img}<figcaption>{_e(rel)}</figcaption></figure>" if img.startswith("<figure") else img)
        parts.append('<div class="gallery">' + "".join(cells) + "</div>")
    return "\n".join(parts)


def _log_section(run_dir: Path, lines: int) -> str:
    path = run_dir / LOG_FILE
    if not path.is_file():
        return _note("no log.txt in the run folder.")
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    head_n = min(len(text), max(1, lines // 3))
    tail_n = lines - head_n
    if len(text) <= lines:
        shown = "\n".join(text)
    else:
        shown = "\n".join(text[:head_n] + [f"... {len(text) - head_n - tail_n} lines ..."] + text[-tail_n:])
    return (f"<p class=\"muted\">{len(text)} lines in {LOG_FILE}; the first {head_n} and the last lines.</p>"
            f"<pre>{_e(shown)}</pre>")


# --------------------------------------------------------------------------- GPNN sample folders (issue 14)
def _run_record(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``config.json``; for a folder of ``fewgan gpnn`` samples (no ``config.json``), its
    ``gpnn.json``, which has the same shape where the page reads it (method, config, data with the
    image's size, pixel size and the note on the resolution GPNN worked at, created, environment)."""
    from fewgan.run import CONFIG_FILE, GPNN_RECORD_FILE, read_json

    if run_dir.is_dir() and not (run_dir / CONFIG_FILE).is_file() and (run_dir / GPNN_RECORD_FILE).is_file():
        return read_json(run_dir / GPNN_RECORD_FILE)
    return read_run_config(run_dir)
