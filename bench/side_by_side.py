#!/usr/bin/env python
"""Side by side on one held-out micrograph (issue 14, point 5): GPNN, SinGAN at the seed defaults, SinGAN native.

The image is ``fewgan synth --size SIZE --seed SEED --format tiff`` (16-bit gray, exact labels beside
it); the independent real image (the real-vs-real reference of the layout measure) is seed
SEED + 1000. Three ways to make ``--n`` labelled samples of it:

* **GPNN** (``fewgan gpnn --labels beside``, training-free; :func:`gpnn_speed.run_gpnn`), at the
  image's own size.
* **SinGAN, seed defaults** (``fewgan singan train --labels beside``: ``max_size`` 200). The image is
  downscaled to 200 px and the model samples 200 px images, so one model pixel is SIZE / 200 image
  pixels. It is compared **at the model's own pixel size**: the real image and the independent one
  are resized exactly as the pyramid resizes the training image (:func:`fewgan.singan.pyramid.build_reals`:
  ``imresize`` to ``pyramid.resized``, then to the finest size if that differs) and written as 16-bit
  TIFFs beside the samples; every measure then runs on those.
* **SinGAN, native** (``--native --crop C``): the image's own pixel size; scales larger than C px train
  on aligned random crops (Shaham, Dekel, Michaeli, "SinGAN", ICCV 2019, with fewgan's crops).

Both SinGAN runs use ``--steps S --lr-decay-fraction 0.8`` (the CPU budget; the seed runs 2000 steps
per scale: the JSON holds the projection to 2000 from each run's own seconds per scale). Training and
sampling run as a user runs them, under ``/usr/bin/time -v``: wall time, CPU seconds, peak RSS. A
trained run can be given instead (``--default-run RUN --default-time FILE``: the file holds the
``/usr/bin/time -v`` report of its training), and columns of earlier results can be taken as they are
(``--reuse``: to run the columns as separate jobs, or to take the GPNN column of ``bench/gpnn_speed.py``). Measures (:func:`gpnn_speed.measure`, the same for all
three): SWD against the real image with its real-vs-real floor, particle statistics, pixel diversity,
layout copying (objects within 2 px, in the compared image's pixels, of a training object, against
chance and the independent real image) and patch copying (``single_image_copying``), and the labels
of the samples against particle detection.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 .venv/bin/python bench/side_by_side.py --size 512 --seed 901 \\
        --n 2 --steps 60 --crop 128 --work /tmp/story/side --json bench/results/side_by_side_512.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpnn_speed  # noqa: E402  (timed runs, /usr/bin/time -v parsing and the measures of the GPNN column)

SEED_STEPS = 2000  # the seed's steps per scale (steps 0..2000)
SINGAN_OPTIONS = {"default": [], "native": ["--native", "--crop", "{crop}"]}


def train_singan(image: Path, work: Path, name: str, args) -> tuple[Path, dict]:
    """A labelled SinGAN run (``name`` 'default' or 'native') on ``image`` and its timing: the given
    ``--NAME-run`` with its ``--NAME-time`` report, else a training run now under ``/usr/bin/time -v``."""
    extra = [o.format(crop=args.crop) for o in SINGAN_OPTIONS[name]]
    results = work / f"runs_{name}"
    cmd = [sys.executable, "-m", "fewgan", "singan", "train", str(image), "--labels", "beside", "--steps",
           str(args.steps), "--lr-decay-fraction", "0.8", "--seed", "0", "--quiet", "--device", "cpu",
           "--results", str(results), *extra]
    run = getattr(args, f"{name}_run")
    if run is not None:
        report = getattr(args, f"{name}_time")
        timing = gpnn_speed.time_v(Path(report).read_text()) if report else {}
        return Path(run), {"command": "(given run) " + " ".join(cmd[1:]), **timing}
    timing = gpnn_speed.timed(cmd)
    return max(p for p in results.iterdir() if p.is_dir()), timing


def scale_seconds(run: Path) -> list[dict]:
    """Each scale's size, features and seconds (the run's ``scale_end`` records: steps and set-up passes)."""
    from fewgan.run import METRICS_FILE

    out = []
    for line in (run / METRICS_FILE).read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "scale_end":
            out.append({k: record[k] for k in ("scale", "size", "features", "seconds_scale")})
    return out


def projection(run: Path, timing: dict) -> dict:
    """The run's time at the seed's 2000 steps per scale: each scale's seconds x 2001 / (steps + 1)
    (the set-up passes scaled too: an upper bound by their share), wall as measured and in CPU
    seconds (x the run's CPU / wall)."""
    from fewgan.run import read_run_config

    steps = int(read_run_config(run)["config"]["steps"])
    scales = scale_seconds(run)
    wall = sum(s["seconds_scale"] for s in scales)
    factor = (SEED_STEPS + 1) / (steps + 1)
    cpu_per_wall = timing["cpu_s"] / timing["time_wall_s"] if timing.get("time_wall_s") else None
    return {"steps": steps, "scales_wall_s": round(wall, 1), "full_budget_wall_s": round(wall * factor),
            "full_budget_cpu_s": round(wall * factor * cpu_per_wall) if cpu_per_wall else None,
            "cpu_per_wall": round(cpu_per_wall, 3) if cpu_per_wall else None}


def resized_alike(image: Path, model, out: Path) -> Path:
    """``image`` resized as the model's pyramid resized its training image, written as a TIFF at ``out``."""
    from fewgan.data.images import read_image, write_image
    from fewgan.ops.imresize import imresize

    tensor, _ = read_image(image)
    pyramid = model.pyramid
    x = imresize(tensor[None], size=tuple(pyramid.resized))
    if tuple(pyramid.sizes[-1]) != tuple(x.shape[-2:]):
        x = imresize(x, size=tuple(pyramid.sizes[-1]))
    return write_image(out, x[0].clamp(-1, 1), model.meta, format="tiff")


def singan_column(image: Path, other: Path, work: Path, name: str, args) -> dict:
    from fewgan import api

    run, training = train_singan(image, work, name, args)
    model = api.load(run)
    out = work / f"singan_{name}_samples"
    sampling = gpnn_speed.timed([sys.executable, "-m", "fewgan", "singan", "sample", str(run), "--out", str(out),
                                 "--n", str(args.n), "--seed", "0", "--device", "cpu"])
    h, w = model.size
    real_h = api.read_image(image)[0].shape[-2]
    row = {"run": str(run), "training": training, "projection": projection(run, training), "sampling": sampling,
           "model_size": [h, w], "image_px_per_model_px": round(real_h / h, 4),
           "scales": [list(s) for s in model.pyramid.sizes], "crop": model.config.crop if model.config.native else None}
    if (h, w) != tuple(api.read_image(image)[0].shape[-2:]):
        image = resized_alike(image, model, out.parent / f"{name}_real_resized.tif")
        other = resized_alike(other, model, out.parent / f"{name}_other_resized.tif")
        row["compared_at"] = f"the model's pixel size: real and other resized alike to {h} x {w}"
    else:
        row["compared_at"] = f"the image's own pixel size, {h} x {w}"
    row.update(gpnn_speed.measure(image, other, out))
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=901, help="held-out seed of the micrograph (the tests use < 100)")
    p.add_argument("--n", type=int, default=2, help="samples per method")
    p.add_argument("--steps", type=int, default=60, help="SinGAN steps per scale (both runs)")
    p.add_argument("--crop", type=int, default=128, help="crop side of the native run")
    p.add_argument("--methods", nargs="*", default=["gpnn", "default", "native"], choices=["gpnn", "default", "native"])
    for name in ("default", "native"):
        p.add_argument(f"--{name}-run", type=Path, help=f"the trained {name} run instead of training one")
        p.add_argument(f"--{name}-time", type=Path, help="the /usr/bin/time -v report of that run's training")
    p.add_argument("--reuse", type=Path, nargs="*", default=[],
                   help="earlier results of this script (or of bench/gpnn_speed.py for the GPNN column) with the same "
                        "--size, --seed and --n: the columns found there are taken as they are, not re-run")
    p.add_argument("--work", type=Path, default=Path("/tmp/side_by_side"))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    from fewgan import api

    work = args.work
    image = api.synth(work / f"real_{args.size}_s{args.seed}", size=args.size, seed=args.seed, format="tiff")
    other = api.synth(work / f"other_{args.size}_s{args.seed + 1000}", size=args.size, seed=args.seed + 1000,
                      format="tiff")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": os.getloadavg(),
              "omp_threads": os.environ.get("OMP_NUM_THREADS"), "torch_threads": torch.get_num_threads(),
              "image": str(image), "other": str(other), "options": {k: str(v) for k, v in vars(args).items()}}
    earlier = reused(args.reuse, args.size)
    if "gpnn" in args.methods and "gpnn" in earlier:
        result["gpnn"] = earlier["gpnn"]
    elif "gpnn" in args.methods:
        out = work / "gpnn_samples"
        row = gpnn_speed.run_gpnn(image, out, args.n, 0, [])
        row.update(gpnn_speed.measure(image, other, out),
                   compared_at=f"the image's own pixel size, {args.size} x {args.size}")
        result["gpnn"] = row
    for name in ("default", "native"):
        if name in args.methods:
            key = f"singan_{name}"
            result[key] = earlier.get(key) or singan_column(image, other, work, name, args)
    result["load_end"] = os.getloadavg()
    if args.json:
        gpnn_speed.write_json(args.json, result)
    print(table(result))
    return result


def reused(paths: list[Path], size: int) -> dict:
    """The columns of earlier results (``{'gpnn': row, 'singan_default': row, ...}``), each marked with its file."""
    out = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if "sizes" in data:  # bench/gpnn_speed.py's layout
            data = {"gpnn": {**data["sizes"][str(size)], "compared_at": f"the image's own pixel size, {size} x {size}"}}
        for key in ("gpnn", "singan_default", "singan_native"):
            if key in data:
                out[key] = {**data[key], "from": str(path)}
    return out


def _particle(row: dict, quantity: str, key: str):
    for entry in row["evaluate"]["particles"].get("table", []):
        if entry["quantity"] == quantity:
            return entry[key]
    return None


def table(result: dict) -> str:
    """The side-by-side table of bench/README.md (markdown)."""
    columns = [(k, label) for k, label in (("gpnn", "GPNN"), ("singan_default", "SinGAN, seed defaults"),
                                           ("singan_native", "SinGAN, native")) if k in result]

    def cells(fn):
        out = []
        for key, _ in columns:
            try:
                out.append(fn(result[key]))
            except (KeyError, TypeError, ZeroDivisionError):
                out.append("-")
        return " | ".join(out)

    def f(x, d=3):
        return f"{x:.{d}f}"

    rows = [
        ("compared at", lambda r: r["compared_at"]),
        ("training: wall / CPU / peak RSS",
         lambda r: f"{r['training']['time_wall_s']:.0f} s / {r['training']['cpu_s']:.0f} s / "
                   f"{r['training']['peak_rss_gib']:.2f} GiB" if "training" in r else "none (training-free)"),
        ("sampling (n samples): wall / CPU / peak RSS",
         lambda r: (lambda t: f"{t['wall_s']:.0f} s / {t['cpu_s']:.0f} s / {t['peak_rss_gib']:.2f} GiB")(
             r.get("sampling", r))),
        ("SWD (floor: real vs real)", lambda r: f"{f(r['evaluate']['swd']['value'])} ({f(r['evaluate']['swd']['floor']['value'])})"),
        ("pixel diversity (real halves)",
         lambda r: f"{f(r['evaluate']['diversity']['value'])} ({f(r['evaluate']['diversity']['floor']['value'])})"),
        ("particles per image, median (real)",
         lambda r: f"{_particle(r, 'count', 'fake')['median']:.0f} ({_particle(r, 'count', 'real')['median']:.0f})"),
        ("diameter KS / intensity KS / circularity KS",
         lambda r: " / ".join(f(_particle(r, q, "ks")) for q in ("diameter", "intensity", "circularity"))),
        ("layout copying: in place / chance / other real",
         lambda r: (lambda c: f"{100 * c['fraction']:.1f} % / {100 * c['chance']:.1f} % / "
                              f"{100 * c['real_fraction']:.1f} %")(r["copying"]["layout"])),
        ("patch copying: share / chance",
         lambda r: (lambda c: f"{100 * c['share']:.1f} % / {100 * c['chance']:.0f} %")(r["copying"]["patches"])),
        ("labels vs particle detection: F1 / mean IoU",
         lambda r: f"{f(r['label_consistency']['f1'], 2)} / {f(r['label_consistency']['mean_matched_iou'])}"),
    ]
    out = ["| measure | " + " | ".join(label for _, label in columns) + " |",
           "| --- |" + " --- |" * len(columns)]
    out += [f"| {name} | {cells(fn)} |" for name, fn in rows]
    return "\n".join(out)


if __name__ == "__main__":
    main()
