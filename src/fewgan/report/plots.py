"""Figures of a run, drawn from the files of its run folder only (``metrics.jsonl``, ``eval.json``).

Every function takes plain records (the dicts of :func:`fewgan.run.read_metrics`) or arrays,
draws with matplotlib's object API on an Agg canvas (no display, no global ``pyplot`` state,
so it works on a headless node and from several threads) and writes one PNG atomically.
A function returns the path it wrote, or ``None`` when the records hold nothing to draw
(a run killed before its first logged step, a run without evaluations): a report shows what
exists and says what does not.

SinGAN (Shaham, Dekel and Michaeli, "SinGAN: Learning a Generative Model from a Single Natural
Image", ICCV 2019): loss curves per scale, noise amplitude per scale, reconstruction PSNR/SSIM
per scale. StyleGAN2 (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN",
CVPR 2020; ADA: Karras et al., "Training Generative Adversarial Networks with Limited Data",
NeurIPS 2020): losses, R1 / path-length penalties, augmentation probability p, selection
metric (FID, SWD or KID) over epochs. Both: particle-statistics histograms real vs generated.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fewgan.run import PLOTS_DIR, atomic_write_bytes, release_memory

_DPI = 100
_COLORS = {"D": "#1f77b4", "D_r": "#6baed6", "D_f": "#9ecae1", "D_gp": "#17becf",
           "G": "#d62728", "G_adv": "#ff7f0e", "G_recon": "#2ca02c",
           "loss_G": "#d62728", "loss_D": "#1f77b4", "r1": "#9467bd", "pl": "#8c564b",
           "real": "#1f77b4", "fake": "#ff7f0e"}


# --------------------------------------------------------------------------- records
def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def singan_steps(records: Iterable[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """SinGAN step records grouped by scale: ``{scale: [record, ...]}`` in file order."""
    out: dict[int, list[Mapping[str, Any]]] = {}
    for r in records:
        if "event" not in r and "scale" in r and "step" in r:
            out.setdefault(int(r["scale"]), []).append(r)
    return dict(sorted(out.items()))


def singan_scale_ends(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``scale_end`` records, one per finished scale (the last one wins after a resume)."""
    ends: dict[int, Mapping[str, Any]] = {}
    for r in records:
        if r.get("event") == "scale_end" and "scale" in r:
            ends[int(r["scale"])] = r
    return [ends[k] for k in sorted(ends)]


def stylegan2_steps(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """StyleGAN2 step records (those with ``kimg`` and no ``event``)."""
    return [r for r in records if "event" not in r and "kimg" in r]


def stylegan2_evals(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """StyleGAN2 evaluation records (``event == "eval"``)."""
    return [r for r in records if r.get("event") == "eval" and _finite(r.get("value"))]


def _series(records: Sequence[Mapping[str, Any]], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r[x], r[y]) for r in records if _finite(r.get(x)) and _finite(r.get(y))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pts, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


# --------------------------------------------------------------------------- figure plumbing
def _figure(width: float, height: float, margins: tuple[float, float, float, float] = (1.0, 0.25, 0.55, 0.4),
            wspace: float = 0.3, hspace: float = 0.45):
    """A figure ``width`` x ``height`` inches with fixed margins (left, right, bottom, top, inches).

    Figure + Agg canvas directly: no pyplot, so no global backend switch and no GUI. Fixed
    margins instead of matplotlib's constrained/tight layout, which measures every tick label
    and took most of a report's time on a busy 2-core machine (5 s of 6 for one figure).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    left, right, bottom, top = margins
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wspace, hspace=hspace)
    return fig


def _panel_grid(n: int, max_cols: int, panel: tuple[float, float]):
    """A figure with ``n`` panels in rows of at most ``max_cols``; returns (figure, the n axes)."""
    ncols = min(max_cols, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(panel[0] * ncols, panel[1] * nrows + 0.4, margins=(0.55, 0.2, 0.55, 0.55), wspace=0.35,
                  hspace=0.55)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _save(fig, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return atomic_write_bytes(path, buffer.getvalue())


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Centred running mean over ``n`` points (edges use the points that exist)."""
    if n <= 1 or y.size < 3:
        return y
    n = min(n, y.size)
    kernel = np.ones(n)
    num = np.convolve(y, kernel, mode="same")
    den = np.convolve(np.ones_like(y), kernel, mode="same")
    return num / den


def _plot_line(ax, x, y, key: str, label: str | None = None, smooth: bool = True) -> None:
    color = _COLORS.get(key)
    if smooth and y.size > 50:
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, _smooth(y, max(3, y.size // 25)), color=color, linewidth=1.4, label=label or key)
    else:
        ax.plot(x, y, color=color, linewidth=1.2, marker="." if y.size < 30 else None, label=label or key)


# --------------------------------------------------------------------------- SinGAN
def plot_singan_losses(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Loss curves of every scale side by side: ``D``, ``G_adv`` (top) and ``G_recon`` (bottom, log).

    The x axis runs through the scales in training order (each scale's steps in its own band,
    labelled ``sK``), so an 11-scale run reads as one figure. ``G_recon`` (an MSE, typically
    1e-4..1e-1) has its own logarithmic panel because it lives orders of magnitude below the
    Wasserstein terms.
    """
    per_scale = singan_steps(records)
    if not per_scale:
        return None
    scales = list(per_scale)
    span = max(max(r["step"] for r in recs if _finite(r.get("step"))) for recs in per_scale.values()) + 1
    width = min(14.0, max(6.0, 1.1 * len(scales) + 2.0))
    fig = _figure(width, 5.2, margins=(0.8, 0.2, 0.5, 0.45), hspace=0.12)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i, scale in enumerate(scales):
        recs = per_scale[scale]
        offset = i * span
        for key, ax in (("D", top), ("G_adv", top), ("G_recon", bottom)):
            x, y = _series(recs, "step", key)
            if key == "G_recon":
                keep = y > 0
                x, y = x[keep], y[keep]
            if y.size:
                _plot_line(ax, x + offset, y, key, label=key if i == 0 else "_nolegend_")
        for ax in (top, bottom):
            if i:
                ax.axvline(offset - 0.5, color="#bbbbbb", linewidth=0.8)
        top.text(offset + span / 2, 1.02, f"s{scale}", transform=top.get_xaxis_transform(), ha="center",
                 va="bottom", fontsize=8)
    if bottom.lines:
        bottom.set_yscale("log")
    top.set_ylabel("D, G_adv", fontsize=9)
    bottom.set_ylabel("G_recon (MSE)", fontsize=9)
    top.legend(fontsize=8, loc="upper right", ncols=2)
    bottom.set_xlabel("scales in training order (each band: steps 0..N of that scale)", fontsize=9)
    bottom.set_xticks([])
    for ax in (top, bottom):
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.set_xlim(-0.5, len(scales) * span - 0.5)
    return _save(fig, path)


def _scale_labels(ends: Sequence[Mapping[str, Any]]) -> list[str]:
    labels = []
    for r in ends:
        size = r.get("size")
        if isinstance(size, (list, tuple)) and len(size) == 2:
            labels.append(f"s{r['scale']}\n{size[0]}x{size[1]}")
        else:
            labels.append(f"s{r['scale']}")
    return labels


def plot_singan_amp(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Noise amplitude per scale (log axis): ``amp(s0) = 1``, then 0.1 x RMSE of the upsampled recon."""
    ends = [r for r in singan_scale_ends(records) if _finite(r.get("amp"))]
    if not ends:
        # a run killed before its first scale end: take each scale's amp from its step records
        ends = [{"scale": s, "amp": recs[-1]["amp"]} for s, recs in singan_steps(records).items()
                if _finite(recs[-1].get("amp"))]
    if not ends:
        return None
    fig = _figure(max(4.0, 0.55 * len(ends) + 2), 3.4, margins=(0.75, 0.25, 0.7, 0.4))
    ax = fig.subplots()
    x = np.array([r["scale"] for r in ends], dtype=float)
    y = np.array([r["amp"] for r in ends], dtype=float)
    ax.plot(x, y, marker="o", color="#444444")
    if np.all(y > 0):
        ax.set_yscale("log")
    ax.set_xticks(x, _scale_labels(ends), fontsize=8)
    ax.set_ylabel("noise amplitude")
    ax.set_title("Noise amplitude per scale", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_singan_fidelity(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Reconstruction PSNR (dB, left axis) and SSIM (right axis) of the fixed-noise reconstruction per scale."""
    ends = [r for r in singan_scale_ends(records) if _finite(r.get("psnr")) or _finite(r.get("ssim"))]
    if not ends:
        return None
    fig = _figure(max(4.0, 0.55 * len(ends) + 2.5), 3.4, margins=(0.75, 0.75, 0.7, 0.4))
    ax = fig.subplots()
    x = np.array([r["scale"] for r in ends], dtype=float)
    psnr = np.array([r.get("psnr") if _finite(r.get("psnr")) else np.nan for r in ends], dtype=float)
    ssim = np.array([r.get("ssim") if _finite(r.get("ssim")) else np.nan for r in ends], dtype=float)
    ax.plot(x, psnr, marker="o", color="#1f77b4", label="PSNR")
    ax.set_ylabel("PSNR (dB)", color="#1f77b4")
    ax.set_xticks(x, _scale_labels(ends), fontsize=8)
    ax.grid(alpha=0.3)
    if np.isfinite(ssim).any():
        ax2 = ax.twinx()
        ax2.plot(x, ssim, marker="s", color="#d62728", label="SSIM")
        ax2.set_ylabel("SSIM", color="#d62728")
        ax2.set_ylim(min(0.0, float(np.nanmin(ssim))), 1.0)
    ax.set_title("Reconstruction fidelity per scale", fontsize=10)
    return _save(fig, path)


# --------------------------------------------------------------------------- StyleGAN2
def plot_stylegan2_losses(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Generator and discriminator losses (non-saturating logistic) over training images (kimg)."""
    steps = stylegan2_steps(records)
    fig_data = [(key, *_series(steps, "kimg", key)) for key in ("loss_G", "loss_D")]
    if not any(y.size for _, _, y in fig_data):
        return None
    fig = _figure(5.1, 3.2)
    ax = fig.subplots()
    for key, x, y in fig_data:
        if y.size:
            _plot_line(ax, x, y, key)
    ax.set_xlabel("kimg")
    ax.set_ylabel("loss")
    ax.set_title("Losses", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_stylegan2_regularisers(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """R1 penalty and path-length penalty over kimg (two panels: their scales differ)."""
    steps = stylegan2_steps(records)
    data = [(key, *_series(steps, "kimg", key)) for key in ("r1", "pl")]
    data = [d for d in data if d[2].size]
    if not data:
        return None
    fig = _figure(5.1, 2.4 * len(data) + 0.3)
    axes = fig.subplots(len(data), 1, squeeze=False, sharex=True)
    for ax, (key, x, y) in zip(axes[:, 0], data):
        _plot_line(ax, x, y, key)
        ax.set_ylabel({"r1": "R1", "pl": "path length"}[key])
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("kimg")
    axes[0, 0].set_title("Regularisers", fontsize=10)
    return _save(fig, path)


def plot_stylegan2_ada(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Adaptive augmentation probability p over kimg (absent or constant 0 when ADA is off)."""
    x, y = _series(stylegan2_steps(records), "kimg", "ada_p")
    if not y.size:
        return None
    fig = _figure(5.1, 2.8)
    ax = fig.subplots()
    ax.plot(x, y, color="#9467bd")
    ax.set_ylim(0, max(0.05, float(y.max()) * 1.1))
    ax.set_xlabel("kimg")
    ax.set_ylabel("augmentation p")
    ax.set_title("Adaptive augmentation probability", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_stylegan2_metric(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Selection metric(s) (FID, SWD, KID) over epochs; the best value of each is ringed."""
    evals = stylegan2_evals(records)
    if not evals:
        return None
    names = sorted({str(r["metric"]) for r in evals})
    fig = _figure(5.1, 2.6 * len(names) + 0.3)
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], names):
        recs = [r for r in evals if str(r["metric"]) == name]
        xkey = "epoch" if all(_finite(r.get("epoch")) for r in recs) else "kimg"
        x, y = _series(recs, xkey, "value")
        ax.plot(x, y, marker="o", markersize=3, color="#444444")
        i = int(np.argmin(y))  # every selection metric here is lower-is-better
        ax.plot([x[i]], [y[i]], marker="o", markersize=11, markerfacecolor="none", color="#d62728",
                label=f"best {y[i]:.4g} at {xkey} {x[i]:g}")
        ax.set_ylabel(name.upper())
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel(xkey)
    axes[0, 0].set_title("Selection metric", fontsize=10)
    return _save(fig, path)


# --------------------------------------------------------------------------- particles
def plot_particle_histograms(
    stats: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    units: Mapping[str, str] | None = None,
    labels: tuple[str, str] = ("real", "generated"),
    pair_correlation: Mapping[str, Any] | None = None,
) -> Path | None:
    """Histograms of particle statistics, real vs generated, one panel per statistic (+ g(r)).

    Parameters
    ----------
    stats : ``{name: (real_values, fake_values)}``, e.g. ``{"diameter": ([...], [...])}``;
        statistics with no values on either side are left out.
    units : optional ``{name: unit}`` for the axis labels (``"px"``, ``"nm"``).
    pair_correlation : optional ``{"r": [...], "real": [...], "fake": [...], "unit": ...}`` (the
        ``g_r`` of :func:`fewgan.metrics.particles.particle_statistics`), drawn as a last panel.

    Both histograms of a panel share bins and are normalised to densities, so sets of different
    sizes compare directly.
    """
    units = dict(units or {})
    items = []
    for name, pair in stats.items():
        real = np.asarray(pair[0], dtype=np.float64).ravel()
        fake = np.asarray(pair[1], dtype=np.float64).ravel()
        real, fake = real[np.isfinite(real)], fake[np.isfinite(fake)]
        if real.size or fake.size:
            items.append((name, real, fake))
    g = None
    if pair_correlation is not None:
        r = np.asarray(pair_correlation.get("r") or [], dtype=np.float64)
        gr = [np.asarray([np.nan if v is None else v for v in pair_correlation.get(k) or []], dtype=np.float64)
              for k in ("real", "fake")]
        if r.size and all(v.shape == r.shape for v in gr) and any(np.isfinite(v).any() for v in gr):
            g = (r, gr[0], gr[1], pair_correlation.get("unit") or "px")
    if not items and g is None:
        return None
    fig, axes = _panel_grid(len(items) + (g is not None), max_cols=3, panel=(3.4, 2.6))
    for ax, (name, real, fake) in zip(axes, items):
        both = np.concatenate([real, fake])
        lo, hi = float(both.min()), float(both.max())
        if hi <= lo:
            hi = lo + 1.0
        integer = np.all(both == np.round(both)) and hi - lo <= 60
        bins = np.arange(lo - 0.5, hi + 1.5) if integer else np.linspace(lo, hi, 25)
        for values, key, label in ((real, "real", labels[0]), (fake, "fake", labels[1])):
            if values.size:
                ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.35,
                        color=_COLORS[key], edgecolor=_COLORS[key], label=f"{label} (n={values.size})")
        unit = units.get(name)
        ax.set_xlabel(f"{name} ({unit})" if unit else name, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    if g is not None:
        ax = axes[-1]
        r, g_real, g_fake, unit = g
        ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
        ax.plot(r, g_real, color=_COLORS["real"], label=labels[0])
        ax.plot(r, g_fake, color=_COLORS["fake"], label=labels[1])
        ax.set_xlabel(f"r ({unit})", fontsize=9)
        ax.set_ylabel("g(r)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("Particle statistics: real vs generated", fontsize=10)
    return _save(fig, path)


def particle_values(real, fake, *, config=None, meta=None) -> dict[str, Any]:
    """Per-particle values of real and generated images, for the histograms of a report.

    ``real``, ``fake``: ``[N, C, H, W]`` in [-1, 1]. Detection is that of
    :func:`fewgan.metrics.particles.particle_statistics` (one threshold from the real set, applied
    to both), so the histograms show the distributions its Wasserstein/KS numbers compare.
    ``meta`` (an :class:`fewgan.data.images.ImageMeta` or its dict): lengths in its pixel size
    and unit, intensities in its data range; without it, px and [-1, 1]. Returns
    ``{"real": {quantity: [...]}, "fake": {...}, "units": {quantity: unit}}`` (count per image).
    """
    from fewgan.metrics import particles as _particles

    get = (lambda k: meta.get(k)) if isinstance(meta, Mapping) else (lambda k: getattr(meta, k, None))
    pixel_size, pixel_unit, data_range = get("pixel_size"), get("pixel_unit"), get("data_range")
    length = float(pixel_size) if pixel_size else 1.0
    length_unit = str(pixel_unit or "unit") if pixel_size else "px"
    lo, hi = (float(data_range[0]), float(data_range[1])) if data_range is not None else (-1.0, 1.0)
    scale = {"diameter": length, "spacing": length, "intensity": (hi - lo) / 2.0, "circularity": 1.0, "count": 1.0}
    shift = {"intensity": lo + (hi - lo) / 2.0}
    config = config or _particles.ParticleConfig()
    threshold = _particles.find_threshold(real, config)
    out: dict[str, Any] = {"units": {"diameter": length_unit, "spacing": length_unit,
                                     "intensity": "data units" if data_range is not None else "[-1, 1]",
                                     "count": "per image", "circularity": ""}}
    for role, images in (("real", real), ("fake", fake)):
        measured = _particles.measure_set(images, config, threshold=threshold)
        out[role] = {k: [float(v * scale[k] + shift.get(k, 0.0)) for v in np.asarray(measured[k], dtype=np.float64)
                         if np.isfinite(v)]
                     for k in ("diameter", "spacing", "intensity", "circularity", "count")}
    return out


def write_particle_values(run_dir: str | os.PathLike, real, fake, **options: Any) -> Path:
    """Write :func:`particle_values` as ``run_dir/particles.json`` (the report draws it)."""
    from fewgan.run import atomic_write_json

    return atomic_write_json(Path(run_dir) / "particles.json", particle_values(real, fake, **options))


# --------------------------------------------------------------------------- all of a run
def write_run_plots(run_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]] | None = None,
                    method: str | None = None) -> dict[str, Path]:
    """Draw every plot the run's ``metrics.jsonl`` supports into ``run_dir/plots/``.

    Returns ``{name: path}`` for the plots written, in report order; names are stable
    (``singan_losses``, ``singan_amp``, ``singan_fidelity``, ``stylegan2_losses``,
    ``stylegan2_regularisers``, ``stylegan2_ada``, ``stylegan2_metric``). Plots whose data are
    missing are skipped (and a stale file of that name from an earlier report is removed).
    """
    from fewgan.run import read_metrics

    run_dir = Path(run_dir)
    if records is None:
        records = read_metrics(run_dir)
    out_dir = run_dir / PLOTS_DIR
    jobs: list[tuple[str, Any]] = []
    if method in (None, "singan"):
        jobs += [("singan_losses", plot_singan_losses), ("singan_amp", plot_singan_amp),
                 ("singan_fidelity", plot_singan_fidelity)]
    if method in (None, "stylegan2"):
        jobs += [("stylegan2_losses", plot_stylegan2_losses), ("stylegan2_regularisers", plot_stylegan2_regularisers),
                 ("stylegan2_ada", plot_stylegan2_ada), ("stylegan2_metric", plot_stylegan2_metric)]
    written: dict[str, Path] = {}
    for name, fn in jobs:
        path = out_dir / f"{name}.png"
        try:
            result = fn(records, path)
        except Exception as exc:  # a figure must never cost the report (odd records, a matplotlib quirk)
            warnings.warn(f"plot {name} failed: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            # keep the file of an earlier report: a plot that could not be drawn or written (a full
            # disk) must not cost the one that exists
            if path.exists():
                written[name] = path
            continue
        if result is not None:
            written[name] = result
        elif path.exists():
            path.unlink()  # no data for this plot any more: the old one would mislead
    return written


# --------------------------------------------------------------------------- SinGAN's scales
#: Longest side of a ``scales.png`` panel as drawn: a panel is ~2 inches (200 px at :data:`_DPI`), so a
#: 2048 px scale is shown area-averaged to this size (the same picture, a fraction of the memory).
SCALES_PANEL_MAX = 512


def singan_scale_panels(model, seed: int | None = None, max_side: int = SCALES_PANEL_MAX) -> list[list]:
    """The panels of ``scales.png``: per scale ``[real, reconstruction, sample, sample]`` as
    ``[C, h, w]`` float tensors in [-1, 1] (image channels only), area-averaged to at most
    ``max_side`` px.

    Row ``k`` is what a pass stopped at scale ``k`` gives: the reconstruction from the fixed noise
    (:data:`fewgan.singan.nets.RECONSTRUCTION_RULE`: scale ``k`` with the image's own statistics), and,
    under the one sampling rule (:data:`fewgan.singan.nets.SAMPLING_RULE`, as ``fewgan singan sample``
    and the report's samples: scale ``k`` normalised by its standing statistics, the coarser scales by
    their running averages), two random samples from a generator
    seeded with ``seed * 1000 + 999`` (default: the run's seed; never the training stream), so row
    ``k`` shows scale ``k`` of the same two samples. One pass to the finest scale makes every row:
    at each scale :meth:`~fewgan.singan.pyramid.TrainedScales.coarse_to_fine`'s ``each`` hands over
    the scale's input and noise, and that scale alone runs once more with the last scale's statistics
    (the finest row is the pass's own output). So the reconstruction and the samples cost about two passes
    each instead of a pass per row (a 2048 px model's figure drawn row by row ran 24 min without
    finishing, bench/README.md). A native-size model's large scales run in tiles.
    """
    import torch
    import torch.nn.functional as F

    from fewgan.singan.nets import RECONSTRUCTION_RULE, SAMPLING_RULE
    from fewgan.singan.pyramid import fixed_noise, random_noise

    # a labelled model's label channels are not drawn here (model.image keeps the image channels)
    scales, sizes = model.scales, model.pyramid.sizes
    n = len(sizes)

    def shown(img):  # [C, h, w] -> display size
        img = img.detach().float().cpu()
        f = max(img.shape[-2:]) / max_side
        if f > 1:
            size = (max(1, round(img.shape[-2] / f)), max(1, round(img.shape[-1] / f)))
            img = F.interpolate(img[None], size=size, mode="area")[0]
        return img

    rows: list[list] = [[shown(model.image(model.reals[k][0]))] for k in range(n)]
    tile = model.tile_for([tuple(s) for s in sizes], None, batch=2)
    common = dict(channels=model.channels, device=model.device, tile=tile)

    def keeper(rule: str):
        """``each`` of a pass under ``rule``: every scale's images into its row."""
        def keep(j, y_in, noise_j, y_out):
            if j < n - 1:  # scale j as the last scale of a pass: the statistics the rule gives the last scale
                y_out = scales.whole(lambda i, shape: noise_j, start=j, stop=j, image=y_in, batch=y_in.shape[0],
                                     rule=rule, **common)
            rows[j].extend(shown(model.image(im)) for im in y_out)
            if j < n - 1 and tile and max(sizes[j]) > tile:  # a tiled extra pass
                del y_out
                release_memory()  # that extra pass's freed blocks, before the chain's next scale (2048 px: 4 GiB)
        return keep

    g = torch.Generator().manual_seed((model.config.seed if seed is None else seed) * 1000 + 999)
    with torch.no_grad():
        scales.whole(fixed_noise(model.fixed_noises), stop=n - 1, each=keeper(RECONSTRUCTION_RULE),
                     rule=RECONSTRUCTION_RULE, **common)
        release_memory()  # the pass's whole-scale images, before the next pass allocates its own
        scales.whole(random_noise(g, model.device), stop=n - 1, batch=2, each=keeper(SAMPLING_RULE),
                     rule=SAMPLING_RULE, **common)
        release_memory()
    return rows


def plot_singan_scales(model, path: str | os.PathLike) -> Path:
    """``scales.png`` of a trained SinGAN: one row per scale, real | reconstruction | two random samples
    (:func:`singan_scale_panels`). 16-bit and float data often fill a small part of their range: one
    display window from the finest real image's 0.5-99.5 percentiles, the same for every panel
    (8-bit: the full range).
    """
    import torch

    sizes = model.pyramid.sizes
    n = len(sizes)
    fig = _figure(8, 2 * n, margins=(0.45, 0.1, 0.1, 0.35))
    axes = fig.subplots(n, 4, squeeze=False)
    lo, hi = -1.0, 1.0
    ci = model.image_channels
    if str(model.meta.dtype) != "uint8":
        q = torch.quantile(model.reals[-1][:, :ci].float().flatten().cpu(), torch.tensor([0.005, 0.995]))
        if float(q[1]) > float(q[0]):
            lo, hi = float(q[0]), float(q[1])
    for k, row in enumerate(singan_scale_panels(model)):
        for col, (img, title) in enumerate(zip(row, ("real", "reconstruction", "sample", "sample"))):
            arr = ((img - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy()
            ax = axes[k, col]
            ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest" if max(arr.shape[:2]) < SCALES_PANEL_MAX else "antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(title, fontsize=9)
            if col == 0:
                h, w = sizes[k]
                ax.set_ylabel(f"s{k}\n{h}x{w}", fontsize=8)
    if (lo, hi) != (-1.0, 1.0):
        fig.suptitle("display window: 0.5-99.5 percentiles of the real image", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- instance outlines
#: Outline colour of instance overlays: orange of the Okabe-Ito palette (Okabe and Ito, "Color
#: Universal Design", 2008), readable on gray and by colour-blind readers.
OUTLINE_COLOUR = (230, 159, 0)


def display_zoom(height: int, width: int, target: int = 192, max_side: int = 1024) -> int:
    """The integer zoom (1..8) that shows a small image with a short side of about ``target`` px."""
    short = max(1, min(height, width))
    return int(max(1, min(8, target // short, max_side // max(1, height, width))))


def outline_overlay(image: np.ndarray, labels: np.ndarray, zoom: int = 1,
                    colour: tuple[int, int, int] = OUTLINE_COLOUR) -> np.ndarray:
    """Instance outlines drawn over an 8-bit image: ``[H * zoom, W * zoom, 3]`` uint8.

    Parameters
    ----------
    image : ``[H, W]`` or ``[H, W, 1|3]`` uint8, already mapped to display values (the report's
        common window for 16-bit and float data): gray stays gray, only outline pixels change.
    labels : ``[H, W]`` integers, 0 background, 1..N instances.
    zoom : nearest-neighbour enlargement applied to image and labels *before* the outlines are
        drawn, so an outline is one display pixel wide and never hides a small particle.
    colour : RGB of the outlines.

    The outline of an instance is its inner boundary: its pixels with a 4-neighbour outside the
    instance (background, another instance or the image edge), so touching particles each keep
    their own line.
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.dtype != np.uint8:
        raise ValueError(f"outline_overlay needs a uint8 image, got {image.dtype}")
    if image.ndim == 3:
        image = image[..., 0] if image.shape[2] == 1 else image[..., :3]
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    zoom = max(1, int(zoom))
    if zoom > 1:
        image = image.repeat(zoom, 0).repeat(zoom, 1)
        labels = labels.repeat(zoom, 0).repeat(zoom, 1)
    rgb = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image.copy()
    padded = np.pad(labels, 1, mode="constant", constant_values=0)
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= neighbour != centre
    rgb[edge & (centre > 0)] = colour
    return rgb


def instance_count(labels: np.ndarray) -> int:
    """Number of distinct instances (non-zero ids) in a label image."""
    ids = np.unique(np.asarray(labels))
    return int((ids != 0).sum())
