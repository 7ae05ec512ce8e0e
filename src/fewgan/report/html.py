"""``report.html``: one self-contained page per run, rendered from the files of its run folder only.

The page reads ``config.json``, ``metrics.jsonl``, ``log.txt``, ``eval.json`` (when ``fewgan eval``
ran on the run) and the images the trainer wrote, draws the plots of :mod:`fewgan.report.plots`
into ``plots/`` and embeds every figure and image as a base64 ``data:`` URI, with its CSS
inline: the file can be mailed to a colleague and opened without network access. It is written
atomically, so a report being rewritten at the end of a run is never seen half-written.

Every section is always there, what a reader looks at first on top (``summary``, ``results``,
``evaluation``, ``figures``, ``samples``, ``timings``, ``config``, ``environment``, ``log``); a
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
    STYLEGAN2_STEP_KEYS,
    TB_DIR,
    atomic_write_text,
    format_seconds,
    read_metrics,
    read_run_config,
)

#: The ids of the report's sections in page order, results first and reference material last
#: (tests check that each one is present).
SECTIONS = ("summary", "results", "evaluation", "figures", "samples", "timings", "config", "environment", "log")
_SECTION_TITLES = {
    "summary": "Summary", "config": "Configuration", "environment": "Environment", "timings": "Timings",
    "results": "Results", "evaluation": "Evaluation", "figures": "Figures", "samples": "Samples", "log": "Log",
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Folders that hold no images a reader should see in the report.
_SKIP_DIRS = {PLOTS_DIR, TB_DIR, CHECKPOINT_DIR}
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
        "summary": _summary(run_dir, cfg, method, records),
        "config": _config_section(cfg),
        "environment": _environment_section(cfg),
        "timings": _timings_section(method, records),
        "results": _results_section(method, records),
        "evaluation": _evaluation_section(evaluation),
        "figures": _figures_section(figures),
        "samples": _samples_section(run_dir, samples, max_images, _sampling_rule_note(method, records)),
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

    array = _read_display_array(path)
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
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 2:  # gray + alpha
        array = array[:, :, 0]
    im = Image.fromarray(array)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


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
        if len(rel.parts) == 1 and rel.name in FIGURE_FILES:
            figures.append(path)
        else:
            samples.append(path)
    return figures, samples


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
    pooled = []
    for path in paths:
        try:
            array = _read_display_array(path)
        except Exception:
            continue
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


def _evaluation_section(evaluation: Mapping[str, Any] | None) -> str:
    if evaluation is None:
        return _note(f"no {EVAL_FILE} in the run folder: 'fewgan eval REAL RUN --json RUN/{EVAL_FILE}' "
                     "then 'fewgan report RUN' adds the evaluation here.")
    if "_error" in evaluation:
        return f'<p class="warn">{_e(evaluation["_error"])}</p>'
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
    return (f"SinGAN samples here, in scales.png and from 'fewgan singan sample' share one rule, "
            f"{_SAMPLING_RULES.get(rule, rule)}.")


def _samples_section(run_dir: Path, samples: Sequence[Path], max_images: int, rule_note: str | None = None) -> str:
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
    parts = [_note(rule_note)] if rule_note else []
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
