"""``fewgan demo``: synthetic data -> training -> samples -> evaluation -> report, in a few minutes.

The demo is a user of the API, so it lives above it (:mod:`fewgan.api` never imports it):
every step below is one :mod:`fewgan.api` call.

The README's first command. Everything it needs is made on the spot, so it runs on a fresh
checkout without data, network or model weights:

1. a synthetic particle micrograph with ground truth and its exact instance labels
   (``NAME_masks.tif`` beside it: :func:`fewgan.data.synthetic.synth`);
2. a small SinGAN preset (Shaham, Dekel and Michaeli, ICCV 2019) sized to finish in about five
   minutes on a 2-core CPU (:data:`SINGAN_PRESETS`), trained on the image and its labels jointly
   (``labels='beside'``; SinGAN-Seg: Thambawita et al., PLOS ONE 2022);
3. samples at the original size and at a larger field of view (1.5 x the trained size: SinGAN
   is fully convolutional, so a larger noise map gives a larger image of the same texture), each
   with its generated instance labels (``NAME_masks.tif``), and one export of the original-size
   samples for detectors and segmenters (:data:`DEMO_EXPORT`: Cellpose masks, ``coco.json``,
   ``yolo/dataset.yaml``, in ``samples_demo/``);
4. evaluation (:func:`fewgan.metrics.evaluate.evaluate`) with the metrics of
   :data:`DEMO_SINGLE_METRICS` (sliced Wasserstein patch distance, particle statistics, pixel
   diversity, PSNR/SSIM of the reconstruction), and SIFID only when the Inception weights are
   installed (it says so otherwise); ``eval.json`` carries the verdict;
5. the run's ``report.html`` (the verdict on top, the instance outlines of real and generated
   images), whose path is printed last.

``fewgan demo stylegan2`` does the same for a folder of small synthetic particle images with
their labels and the data-efficient StyleGAN2 (Karras et al., CVPR 2020, with DiffAugment: Zhao
et al., NeurIPS 2020), trained on images and labels together.
A tiny mode (``--tiny`` or ``FEWGAN_DEMO_TINY=1``) shrinks every size and step count so the whole
pipeline runs in seconds, for tests.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

from fewgan.errors import FewganError

KINDS = ("singan", "stylegan2", "gpnn")
TINY_ENV = "FEWGAN_DEMO_TINY"
#: Metrics of the SinGAN demo's evaluation (SIFID is added when the Inception weights are installed).
DEMO_SINGLE_METRICS = ("swd", "particles", "diversity", "psnr", "ssim", "labels", "copying")
#: The label formats the SinGAN demo exports beside its original-size samples (one export).
DEMO_EXPORT = "all"
#: The folder of the run that holds the original-size samples, their labels and the export.
DEMO_SAMPLES_DIR = "samples_demo"
#: Metrics of the GPNN demo: its samples are near-copies of patches by design, so the copy measures matter.
DEMO_GPNN_METRICS = ("swd", "particles", "diversity", "labels", "copying")


@dataclasses.dataclass(frozen=True)
class SinGANDemo:
    """Sizes of the SinGAN demo. The micrograph is made at the training size (``max_size``) so
    that samples, reconstruction and the real image compare pixel for pixel."""

    size: int            # micrograph side, px (= max_size)
    min_size: int        # coarsest scale, px
    steps: int           # training steps per scale
    log_every: int
    radius: float        # median particle radius, px
    density: float       # particles per 10,000 px^2
    samples: int         # samples at the original size (evaluation uses them)
    large_samples: int   # samples at the larger field of view
    large_scale: str     # field of view factor
    sample_count: int    # per-scale grid size during training
    max_features: int    # feature cap (the seed doubles 32 -> 64 -> 128 every 4 scales; 32 keeps it fast)


@dataclasses.dataclass(frozen=True)
class StyleGAN2Demo:
    """Sizes of the StyleGAN2 demo."""

    images: int          # synthetic training images
    resolution: int      # px, power of two
    kimg: float          # training budget, thousands of images shown
    batch: int
    eval_every: int      # epochs between selection-metric evaluations
    eval_images: int
    samples: int         # generated images for the evaluation
    log_every: int
    radius: float
    density: float


SINGAN_PRESETS = {
    # 7 scales 17..64 px, 301 steps each, 32 features at every scale. The cost of a step grows with
    # pixels x features^2: the seed's 64 features from s4 on made a 96 px demo take >15 min on a
    # busy 2-core machine. Measured 2026-11-24 on the 2-core machine shared with other jobs (load
    # average 6-7): `fewgan demo` as the README runs it, 221 s end to end (training 204 s, per scale
    # 11, 11, 14, 20, 27, 44, 78 s); an earlier run at a higher load took 299 s. Idle is faster.
    "demo": SinGANDemo(size=64, min_size=16, steps=300, log_every=50, radius=3.5, density=20.0,
                       samples=16, large_samples=4, large_scale="1.5", sample_count=4, max_features=32),
    "tiny": SinGANDemo(size=32, min_size=16, steps=12, log_every=4, radius=3.0, density=30.0,
                       samples=4, large_samples=2, large_scale="1.5", sample_count=2, max_features=32),
}
STYLEGAN2_PRESETS = {
    # 150 steps of batch 16 at 32 px (the seed's networks, ~0.5 steps/s with 1 thread on the busy
    # 2-core machine): the pipeline in minutes, not a trained model (that takes hundreds of kimg)
    "demo": StyleGAN2Demo(images=200, resolution=32, kimg=2.4, batch=16, eval_every=4, eval_images=100,
                          samples=200, log_every=25, radius=3.0, density=20.0),
    "tiny": StyleGAN2Demo(images=16, resolution=16, kimg=0.064, batch=8, eval_every=1, eval_images=16,
                          samples=16, log_every=2, radius=2.0, density=40.0),
}


def tiny_from_env() -> bool:
    """``FEWGAN_DEMO_TINY=1`` (or true/yes) asks for the tiny demo."""
    return os.environ.get(TINY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def run_demo(kind: str = "singan", *, tiny: bool | None = None, out: str | os.PathLike = "results",
             seed: int = 0, device: str = "cpu", quiet: bool = False, threads: int | None = None,
             say: Callable[[str], None] | None = None) -> Path:
    """Run the demo of ``kind`` ('singan', 'stylegan2' or 'gpnn'); returns the path of its ``report.html``.

    Parameters
    ----------
    tiny : the tiny preset (seconds, for tests); default from ``FEWGAN_DEMO_TINY``.
    out : parent folder of the synthetic data (``out/demo_data/...``) and of the run folder.
    seed : seed of the synthetic data, the training and the samples.
    device : 'cpu', 'cuda' or 'auto'.
    quiet : no training progress on the terminal (the demo's own step lines still print).
    threads : CPU threads for torch; default 1 on the CPU (torch's own choice on a GPU). On the
        2-core machine shared with other jobs, 1 thread trained the tiny demo 8x faster than 2
        (9.7 vs 1.2 steps/s): the demo's small convolutions gain little from a second thread and
        lose much when it waits for a busy core.
    say : where the demo's step lines go (default ``print``).
    """
    if kind not in KINDS:
        raise FewganError(f"unknown demo {kind!r}: choose {' or '.join(KINDS)}")
    if device == "auto":  # resolved here so that the thread rule below sees the real device
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if threads is None and str(device) == "cpu":
        threads = 1
    if threads is not None:
        if threads < 1:
            raise FewganError(f"--threads {threads}: give 1 or more")
        import torch

        torch.set_num_threads(int(threads))
    tiny = tiny_from_env() if tiny is None else bool(tiny)
    say = say or (lambda line: print(line, flush=True))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FewganError(f"{out}: exists and is not a folder; give another --out")
    t0 = time.perf_counter()
    if kind == "singan":
        report = _singan(SINGAN_PRESETS["tiny" if tiny else "demo"], out, seed, device, quiet, say, tiny)
    elif kind == "gpnn":
        report = _gpnn(GPNN_PRESETS["tiny" if tiny else "demo"], out, seed, quiet, say, tiny)
    else:
        report = _stylegan2(STYLEGAN2_PRESETS["tiny" if tiny else "demo"], out, seed, device, quiet, say, tiny)
    say(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return report


def _inception_available() -> tuple[bool, str]:
    """Whether the Inception weights are installed (FID/KID/SIFID need them), and the message if not."""
    try:
        from fewgan.metrics.features import find_weights

        find_weights()
        return True, ""
    except FewganError as exc:
        return False, str(exc)


def _singan(p: SinGANDemo, out: Path, seed: int, device: str, quiet: bool, say, tiny: bool) -> Path:
    from fewgan import api
    from fewgan.report.plots import write_particle_values
    from fewgan.run import EVAL_FILE

    label = "tiny " if tiny else ""
    say(f"fewgan demo: {label}SinGAN on a synthetic particle micrograph, device {device}")
    # 1. data
    data_dir = out / "demo_data" / f"singan_{'tiny' if tiny else 'demo'}_seed{seed}"
    image = api.synth(data_dir, mode="micrograph", size=p.size, seed=seed, radius=p.radius, density=p.density)
    from fewgan.data.labels import mask_path

    say(f"[1/5] synthetic micrograph: {image} ({p.size}x{p.size} px, 16-bit, ground truth in "
        f"{image.with_suffix('.json').name}, instance labels in {mask_path(image).name})")
    # 2. training, on the image and its labels
    say(f"[2/5] training SinGAN with labels: scales {p.min_size}..{p.size} px, {p.steps + 1} steps per scale, "
        f"{p.max_features} features")
    run = api.train_singan(image, results=out, steps=p.steps, min_size=p.min_size, max_size=p.size,
                           log_every=p.log_every, sample_count=p.sample_count, max_features=p.max_features,
                           labels="beside", seed=seed, device=device, quiet=quiet)
    # 3. samples with labels: original size (exported for detectors) and a larger field of view
    samples = api.sample(run, run / DEMO_SAMPLES_DIR, n=p.samples, seed=seed, reconstruct=True, device=device,
                         export=DEMO_EXPORT)
    large = api.sample(run, run / f"{DEMO_SAMPLES_DIR}_x{p.large_scale}", n=p.large_samples, seed=seed,
                       scale=p.large_scale, device=device)
    say(f"[3/5] samples with labels: {p.samples} at {p.size}x{p.size} px in {samples}, {p.large_samples} at "
        f"{p.large_scale} x the field of view in {large}; each has its instance labels beside it "
        f"(NAME_masks.tif)")
    say(f"      export for detectors in {samples}: Cellpose masks (NAME_masks.tif), coco.json, "
        f"yolo/dataset.yaml")
    # 4. evaluation
    have_weights, why = _inception_available()
    metrics = list(DEMO_SINGLE_METRICS) + (["sifid"] if have_weights else [])
    say(f"[4/5] evaluating: {', '.join(metrics)}"
        + ("" if have_weights else "; SIFID/FID skipped: Inception weights not installed "
           "(fewgan weights import FILE, or fewgan weights fetch)"))
    try:
        result = api.evaluate(image, run, metrics=metrics, n=p.samples, seed=seed, device=device,
                              json_path=run / EVAL_FILE)
    except (ValueError, RuntimeError) as exc:  # keep the demo going; the scale table has PSNR/SSIM too
        say(f"      PSNR/SSIM in the evaluation failed ({type(exc).__name__}: {exc}); evaluating without them "
            "(the report's scale table gives the reconstruction's PSNR/SSIM per scale)")
        metrics = [m for m in metrics if m not in ("psnr", "ssim")]
        result = api.evaluate(image, run, metrics=metrics, n=p.samples, seed=seed, device=device,
                              json_path=run / EVAL_FILE)
    real, meta = api.read_image(image)
    fake = api.load(run, device=device).sample_tensor(p.samples, seed=seed)
    write_particle_values(run, real[None], fake, meta=meta)
    _print_verdict(result, say, _print_table(result, say))
    # 5. report
    report = api.report(run)
    say(f"[5/5] report: {report}")
    return report


def _stylegan2(p: StyleGAN2Demo, out: Path, seed: int, device: str, quiet: bool, say, tiny: bool) -> Path:
    from fewgan import api
    from fewgan.report.plots import write_particle_values
    from fewgan.run import EVAL_FILE

    label = "tiny " if tiny else ""
    say(f"fewgan demo: {label}StyleGAN2 on a folder of synthetic particle images, device {device}")
    data_dir = out / "demo_data" / f"stylegan2_{'tiny' if tiny else 'demo'}_seed{seed}"
    folder = api.synth(data_dir, mode="folder", n=p.images, size=p.resolution, seed=seed, radius=p.radius,
                       density=p.density)
    say(f"[1/5] synthetic particle images: {p.images} of {p.resolution}x{p.resolution} px in {folder}, each with "
        "its instance labels (NAME_masks.tif)")
    say(f"[2/5] training StyleGAN2 with labels (DiffAugment, EMA): {p.kimg:g} kimg, batch {p.batch}")
    run = api.train_stylegan2(folder, results=out, resolution=p.resolution, kimg=p.kimg, batch=p.batch,
                              eval_every=p.eval_every, eval_images=p.eval_images, log_every=p.log_every,
                              sample_every=max(1, p.eval_every), labels="beside", seed=seed, device=device,
                              quiet=quiet)
    samples = api.generate(run, run / DEMO_SAMPLES_DIR, n=min(p.samples, 64), export=DEMO_EXPORT)
    say(f"[3/5] samples with labels: {min(p.samples, 64)} images in {samples}, each with its instance labels "
        "(NAME_masks.tif); export for detectors there: coco.json, yolo/dataset.yaml")
    have_weights, why = _inception_available()
    metrics = ["swd", "particles", "memorisation"] + (["fid", "kid"] if have_weights else [])
    say(f"[4/5] evaluating: {', '.join(metrics)}"
        + ("" if have_weights else "; FID/KID skipped: Inception weights not installed "
           "(fewgan weights import FILE, or fewgan weights fetch)"))
    result = api.evaluate(folder, run, metrics=metrics, n=p.samples, seed=seed, device=device,
                          json_path=run / EVAL_FILE)
    real, folder_meta = api.load_folder(folder, resolution=p.resolution)
    fake = api.load(run, device=device).sample_tensor(p.samples, seed=seed)
    write_particle_values(run, real, fake, meta=folder_meta.image)
    _print_verdict(result, say, _print_table(result, say))
    report = api.report(run)
    say(f"[5/5] report: {report}")
    return report


@dataclasses.dataclass(frozen=True)
class GPNNDemo:
    """Sizes of the GPNN demo: nothing is trained, so the micrograph can be larger than SinGAN's."""

    size: int            # micrograph side, px (GPNN works at it: nothing is resized)
    samples: int
    iterations: int      # nearest-neighbour iterations per scale (the paper's 10 in the demo)
    radius: float
    density: float
    pixel_size: float    # um per px, recorded in the TIFF and carried into every sample


GPNN_PRESETS = {
    # measured 2026-12-04 22:36 on the shared 2-core machine (load 3-6, 1 thread): `fewgan demo gpnn`
    # 41 s end to end (8 samples with labels at 256 px, evaluation, report), 29 CPU-seconds
    "demo": GPNNDemo(size=256, samples=8, iterations=10, radius=4.0, density=15.0, pixel_size=0.1),
    "tiny": GPNNDemo(size=48, samples=2, iterations=2, radius=3.0, density=25.0, pixel_size=0.1),
}


def _gpnn(p: GPNNDemo, out: Path, seed: int, quiet: bool, say, tiny: bool) -> Path:
    """synth -> GPNN samples with labels -> evaluate (swd, particles, diversity) -> the folder's report.

    Granot et al., "Drop the GAN: In Defense of Patches Nearest Neighbors as Single Image Generative
    Models", CVPR 2022: training-free, so it runs on the CPU in seconds to a minute.
    """
    from fewgan import api
    from fewgan.report.plots import write_particle_values
    from fewgan.run import EVAL_FILE

    name = f"{'tiny' if tiny else 'demo'}_seed{seed}"
    say(f"fewgan demo: {'tiny ' if tiny else ''}GPNN (training-free patch nearest neighbours) on a synthetic "
        "particle micrograph, CPU")
    image = api.synth(out / "demo_data" / f"gpnn_{name}", mode="micrograph", size=p.size, seed=seed, format="tiff",
                      radius=p.radius, density=p.density, pixel_size=p.pixel_size, pixel_unit="um")
    say(f"[1/4] synthetic micrograph: {image} ({p.size}x{p.size} px, 16-bit, {p.pixel_size} um/px, exact labels in "
        f"{image.stem}_masks.tif)")
    folder = out / f"gpnn_{name}"
    api.gpnn(image, folder, n=p.samples, seed=seed, labels="beside", iterations=p.iterations, quiet=quiet)
    say(f"[2/4] {p.samples} samples with labels at the image's own resolution ({p.size}x{p.size} px, "
        f"{p.pixel_size} um/px) in {folder}")
    metrics = list(DEMO_GPNN_METRICS)
    say(f"[3/4] evaluating: {', '.join(metrics)}")
    result = api.evaluate(image, folder, metrics=metrics, seed=seed, json_path=folder / EVAL_FILE)
    real, meta = api.read_image(image)
    fake, _ = api.load_folder(folder)
    write_particle_values(folder, real[None], fake, meta=meta)
    _print_verdict(result, say, _print_table(result, say))
    report = api.report(folder)
    say(f"[4/4] report: {report}")
    return report


def _print_verdict(result: dict[str, Any], say, printed: str = "") -> None:
    """The evaluation's verdict lines (``result['verdict']``), when the evaluation wrote one and
    the table just ``printed`` does not already hold them."""
    lines = result.get("verdict")
    if not isinstance(lines, list) or not lines:
        return
    first = lines[0].get("text") if isinstance(lines[0], dict) else None
    if first and first in printed:
        return
    from fewgan.metrics.verdict import Line

    say("      verdict:")
    for line in lines:
        try:
            say("      " + str(Line(**line) if isinstance(line, dict) else line))
        except (TypeError, KeyError):
            say(f"      {line}")


def _print_table(result: dict[str, Any], say) -> str:
    """Print the evaluation's table; returns its text."""
    from fewgan.metrics.evaluate import format_table

    text = format_table(result)
    for line in text.splitlines():
        say("      " + line)
    return text
