#!/usr/bin/env python
"""Label quality of generated labelled data, SinGAN and StyleGAN2 (issue 13, point 5).

On ``fewgan synth`` data with exact instance labels: a generator is trained on images and their
labels jointly, samples are drawn with their decoded instances
(``sample_with_labels``: :func:`fewgan.data.labels.decode_instances`), and fewgan's independent
particle analysis of every generated image is matched to the generated instances
(:func:`fewgan.metrics.instances.label_consistency`: F1 at IoU 0.5 with Hungarian matching, mean
matched IoU). The reference is the same number on real images of a **held-out seed** with their
exact labels. The particle threshold is Otsu's on the training images, applied unchanged to the
held-out and the generated images (the rule of :mod:`fewgan.metrics.particles`). The target:
generated F1 at least 0.9 of the reference (``fewgan.metrics.verdict.THRESHOLDS['labels_good']``).

The data (every length in px of the image the generator trains on, nothing is resized):

* SinGAN: one ``--singan-size`` px micrograph (``fewgan synth``, 8-bit, ``--singan-density``
  particles per 10,000 px^2, median radius 6 px), trained at ``max_size`` = its size, so particles
  keep their radius, or with ``--singan-native`` at its own pixel size (``SinGANConfig.native``: the
  scales larger than ``--singan-crop`` train on aligned random crops, the micrograph's side sets
  nothing); held-out micrographs of seeds ``--test-seed`` ... for the reference.
* StyleGAN2: a folder of ``--s2-n`` crops of ``--s2-size`` px (``fewgan synth --mode folder``, 8-bit,
  median radius ``--s2-radius`` 4 px, ``--s2-density`` particles per 10,000 px^2), trained at that
  size; the reference on a held-out folder of another seed. The ``--s2-*`` training options set
  the few config fields named in :func:`stylegan2_options`; the rest keep the seed's defaults.
  Trained in chunks of ``--s2-kimg`` (a resume between chunks continues exactly), the checkpoint of
  each chunk end is kept, and the consistency of its EMA and of its raw generator is measured at
  each: the curve vs kimg.

Besides the target numbers it records what could explain a low score (``diagnostics``): the F1 with
a threshold fitted to the generated images themselves (is it the real set's threshold?), the pixel
IoU of the generated foreground channel with the particle analysis' mask (is it the instance
decoding or the pixels?), and the image contrast inside vs outside the generated foreground
against the same on real data (does the image show what the labels say?).

    .venv/bin/python bench/label_quality.py                  # the reported run (see bench/README.md)
    .venv/bin/python bench/label_quality.py --quick          # about a minute: structure only
    .venv/bin/python bench/label_quality.py --singan-run RUN --s2-run DIR   # re-measure trained runs

Writes ``--json`` (default ``bench/results/label_quality.json``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAPSHOT = "snapshot_kimg{:g}.pt"


# --------------------------------------------------------------------------- data
def singan_data(work: Path, args) -> dict:
    """The SinGAN training micrograph and the held-out ones: ``{'train': path, 'test': [paths]}``."""
    from fewgan import api

    common = dict(size=args.singan_size, density=args.singan_density, bit_depth=args.bit_depth,
                  format=args.singan_format)
    train = api.synth(work / "singan_train", seed=args.train_seed, **common)
    test = [api.synth(work / f"singan_test{s}", seed=s, **common)
            for s in range(args.test_seed, args.test_seed + args.test_images)]
    return {"train": train, "test": test}


def stylegan2_data(work: Path, args) -> dict:
    """The StyleGAN2 training folder and the held-out one: ``{'train': folder, 'test': folder}``."""
    from fewgan import api

    common = dict(mode="folder", size=args.s2_size, bit_depth=args.bit_depth)
    if args.s2_density is not None:
        common["density"] = args.s2_density
    if args.s2_radius is not None:
        common["radius"] = args.s2_radius
    return {"train": api.synth(work / "stylegan2_train", n=args.s2_n, seed=args.train_seed, **common),
            "test": api.synth(work / "stylegan2_test", n=args.s2_n, seed=args.test_seed, **common)}


def labelled_images(paths) -> tuple:
    """``([N, C, H, W] in [-1, 1], N instance label images)`` of images with labels beside them."""
    import torch

    from fewgan import api
    from fewgan.data.labels import labels_beside, read_labels

    images, labels = [], []
    for path in paths:
        image, _ = api.read_image(path)
        images.append(image)
        labels.append(read_labels(labels_beside(path), tuple(image.shape[1:])))
    return torch.stack(images), labels


def folder_images(folder: Path) -> list[Path]:
    from fewgan.data.labels import is_label_file

    return sorted(p for p in Path(folder).glob("*.png") if not is_label_file(p))


# --------------------------------------------------------------------------- training
def train_singan(image: Path, work: Path, args) -> Path:
    """A labelled SinGAN run on ``image``: at ``max_size`` = the micrograph's side, or with ``--singan-native``
    at its own pixel size with scales above ``--singan-crop`` trained on aligned random crops."""
    from fewgan import api

    native = dict(native=True, crop=args.singan_crop) if args.singan_native else {}
    return api.train_singan(image, results=work / "singan_runs", labels="beside", max_size=args.singan_size,
                            min_size=args.singan_min_size, steps=args.singan_steps, lr_decay_fraction=0.8,
                            seed=args.seed, quiet=True, **native)


def check_trained_on(run: Path, image: Path) -> None:
    """Stop unless ``run`` was trained on the pixels of ``image`` (a ``--singan-run`` of other data would
    make every number of the story meaningless)."""
    import torch

    from fewgan import api

    recorded = api.load(run).training_data()
    if recorded is None or not Path(recorded).is_file():
        raise SystemExit(f"{run}: its training image ({recorded}) is not there to compare with {image}")
    a, b = api.read_image(recorded)[0], api.read_image(image)[0]
    if a.shape != b.shape or not torch.equal(a, b):
        raise SystemExit(f"{run} was trained on {recorded}, whose pixels differ from the data's {image}: "
                         "give the data options the run was trained with")


def chunk_stops(ends_kimg: list[float], batch: int) -> list[int]:
    """The step at which each chunk ending at ``ends_kimg`` stops: the trainer's ``total_steps`` for a
    budget of that many kimg (``fewgan.stylegan2.train.Trainer.total_steps``)."""
    return [math.ceil(round(k * 1000) / batch) for k in ends_kimg]


def train_stylegan2(folder: Path, work: Path, args) -> tuple[Path, list[tuple[float, Path]]]:
    """Train in chunks ending at each of ``args.s2_kimg``; keep each chunk's last checkpoint.

    Without a learning-rate ramp each chunk's budget is its end (a resume extends it). With
    ``--s2-lr-rampdown`` the budget is the last end from the start, since the ramp is spread over the
    budget, and each chunk stops at its end's step (``max_steps``, checkpoints every ``gcd`` of them)."""
    from fewgan import api
    from fewgan.run import CHECKPOINT_DIR, STYLEGAN2_LAST_CHECKPOINT

    runtime = dict(eval_every=0, sample_every=0, checkpoint_every=0, quiet=True)
    ramp = args.s2_lr_rampdown > 0
    stops = chunk_stops(args.s2_kimg, args.s2_batch)
    if ramp:
        runtime["checkpoint_every_steps"] = math.gcd(*stops)
    run, snapshots, done = None, [], 0
    for kimg, stop in zip(args.s2_kimg, stops):
        budget = dict(kimg=args.s2_kimg[-1], max_steps=stop - done) if ramp else dict(kimg=kimg)
        if run is None:
            run = api.train_stylegan2(folder, results=work / "stylegan2_runs", labels="beside",
                                      resolution=args.s2_size, **stylegan2_options(args), seed=args.seed,
                                      **budget, **runtime)
        else:
            run = api.train_stylegan2(resume=run, **budget, **runtime)
        done = stop
        snap = run / SNAPSHOT.format(kimg)
        shutil.copyfile(run / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, snap)
        snapshots.append((kimg, snap))
    return run, snapshots


def stylegan2_options(args) -> dict:
    """The StyleGAN2 config fields the ``--s2-*`` options set (the rest keep the seed's defaults)."""
    return dict(cbase=args.s2_cbase, cmax=args.s2_cmax, ema_decay=args.s2_ema_decay, batch=args.s2_batch,
                lr_g=args.s2_lr, lr_d=args.s2_lr, r1_gamma=args.s2_r1_gamma, diffaugment=args.s2_diffaugment,
                pl_weight=args.s2_pl_weight, style_mixing=args.s2_style_mixing, label_head=args.s2_label_head,
                image_critic=args.s2_image_critic, lr_rampdown=args.s2_lr_rampdown)


def stylegan2_snapshots(run: Path) -> list[tuple[float, Path]]:
    out = []
    for path in Path(run).glob("snapshot_kimg*.pt"):
        out.append((float(path.stem[len("snapshot_kimg"):]), path))
    return sorted(out)


def stylegan2_model(run: Path, snapshot: Path, which: str):
    """The StyleGAN2 model of one snapshot, its EMA (``G_ema``) or raw (``G``) generator."""
    from fewgan.run import load_checkpoint, read_run_config
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.generate import StyleGAN2Model
    from fewgan.stylegan2.nets import METHOD, build_networks

    payload = read_run_config(run, method=METHOD)
    data = load_checkpoint(snapshot, map_location="cpu")
    cfg = StyleGAN2Config.from_stored(data.get("config", payload["config"]))
    # as StyleGAN2Model.load: the checkpoint's ``img_channels`` (what build_networks takes)
    channels = int(data.get("img_channels", payload["data"]["image"]["channels"]))
    G, _ = build_networks(cfg, channels)
    G.load_state_dict(data[which])
    return StyleGAN2Model(G, payload["data"]["image"], which, snapshot, run=run, label_channels=cfg.label_channels)


# --------------------------------------------------------------------------- measuring
def consistency(images, labels, threshold) -> dict:
    """Label consistency (F1 at IoU 0.5, mean matched IoU, counts) and the diagnostics of a low score."""
    import numpy as np

    from fewgan.metrics.instances import label_consistency
    from fewgan.metrics.particles import _luminance, find_threshold, measure_set

    fixed = label_consistency(images, labels, threshold=threshold)
    own = label_consistency(images, labels, threshold=find_threshold(images))
    detected = measure_set(images, threshold=threshold, keep_labels=True)["labels"]
    inter = sum(int(((d > 0) & (lab > 0)).sum()) for d, lab in zip(detected, labels))
    union = sum(int(((d > 0) | (lab > 0)).sum()) for d, lab in zip(detected, labels))
    lum = _luminance(images)
    inside = np.concatenate([im[lab > 0] for im, lab in zip(lum, labels)])
    outside = np.concatenate([im[lab == 0] for im, lab in zip(lum, labels)])
    keys = ("f1", "mean_matched_iou", "precision", "recall", "relative_count_error", "n_pred", "n_ref", "images")
    out = {k: _clean(fixed[k]) for k in keys}
    out["spread"] = spread(images, labels)
    out["diagnostics"] = {
        "f1_own_threshold": _clean(own["f1"]),
        "foreground_pixel_iou": inter / union if union else float("nan"),
        "contrast_in_minus_out": _clean(float(inside.mean() - outside.mean())) if inside.size and outside.size else None,
        "labelled_fraction": float(inside.size / (inside.size + outside.size)),
    }
    return out


def spread(images, labels) -> dict:
    """Across-sample pixel spread: the standard deviation over the N images at each pixel, averaged
    over pixels, of the image channels and of the foreground (instances > 0 as -1 / +1, the range of
    the foreground label channel). Near 0 when every image shows the same layout (mode collapse);
    ``fewgan synth`` crops of 32 px: about 0.24 (image) and 0.57 (foreground)."""
    import numpy as np

    x = np.asarray(images, np.float64)
    fg = np.stack([np.where(lab > 0, 1.0, -1.0) for lab in labels])
    return {"image": round(float(x.std(axis=0).mean()), 4), "foreground": round(float(fg.std(axis=0).mean()), 4)}


def foreground_overlap(labels, other=None) -> float | None:
    """Mean foreground IoU (instances > 0) of every pair of ``labels`` (``other`` None: how alike the
    layouts of different samples are; near 1 under mode collapse, about 0.15 for real 32 px crops),
    or of ``labels[i]`` with ``other[i]`` (the same latents in the previous snapshot: near 1 when the
    layouts stay, near 0 when they hop). Pairs without any foreground are left out; None if none is left."""
    import itertools

    import numpy as np

    if other is None:
        pairs = itertools.combinations(labels, 2)
    elif len(other) != len(labels):
        return None
    else:
        pairs = zip(labels, other)
    ious = []
    for a, b in pairs:
        a, b = np.asarray(a) > 0, np.asarray(b) > 0
        union = int((a | b).sum())
        if union:
            ious.append(int((a & b).sum()) / union)
    return round(float(np.mean(ious)), 4) if ious else None


def _clean(x):
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        x = float(x) if isinstance(x, float) else int(x)
        return None if isinstance(x, float) and not math.isfinite(x) else (round(x, 4) if isinstance(x, float) else x)
    return x


def ratio(generated: dict, real: dict) -> float | None:
    g, r = generated.get("f1"), real.get("f1")
    return round(g / r, 4) if g is not None and r else None


def measure_singan(run: Path, data: dict, args) -> dict:
    from fewgan import api
    from fewgan.metrics.particles import find_threshold

    train_images, train_labels = labelled_images([data["train"]])
    threshold = find_threshold(train_images)
    test_images, test_labels = labelled_images(data["test"])
    model = api.load(run)
    t0 = time.perf_counter()
    images, labels = model.sample_with_labels(args.samples, seed=args.sample_seed)
    sampling = time.perf_counter() - t0
    real = consistency(test_images, test_labels, threshold)
    generated = consistency(images, labels, threshold)
    return {"run": str(run), "threshold": threshold, "sample_size": list(images.shape[2:]),
            "sampling_seconds": round(sampling, 1),
            "real_training_image": consistency(train_images, train_labels, threshold),
            "real_reference": real, "generated": generated, "ratio": ratio(generated, real)}


def measure_stylegan2(run: Path, data: dict, args) -> dict:
    from fewgan.metrics.particles import find_threshold

    train_images, train_labels = labelled_images(folder_images(data["train"]))
    threshold = find_threshold(train_images)
    test_images, test_labels = labelled_images(folder_images(data["test"]))
    real = consistency(test_images, test_labels, threshold)
    # the spread of as many real crops as generated images are measured (a std over 16 is lower than over 100)
    real["spread_of_first_samples"] = spread(test_images[:args.samples], test_labels[:args.samples])
    real["layouts"] = {"between_samples": foreground_overlap(test_labels[:args.samples])}
    curve, previous = [], {}
    for kimg, snap in stylegan2_snapshots(run):
        point = {"kimg": kimg}
        for which in ("G_ema", "G"):
            images, labels = stylegan2_model(run, snap, which).sample_with_labels(args.samples, seed=args.sample_seed,
                                                                                  psi=args.s2_psi)
            point[which] = consistency(images, labels, threshold)
            point[which]["layouts"] = {"between_samples": foreground_overlap(labels),
                                       "same_latent_previous_snapshot":
                                           foreground_overlap(labels, previous[which]) if which in previous else None}
            previous[which] = labels
        curve.append(point)
    last = curve[-1]["G_ema"] if curve else {}
    # how the run was trained (its config.json): with --s2-run the options above are the measuring call's
    from fewgan.run import read_run_config
    from fewgan.stylegan2.nets import METHOD

    return {"run": str(run), "run_config": read_run_config(run, method=METHOD)["config"], "threshold": threshold, "real_training_images": consistency(train_images, train_labels, threshold),
            "real_reference": real, "curve": curve, "generated": last, "ratio": ratio(last, real)}


def resize_ceiling(work: Path, side: int, max_sizes: list[int], seed: int) -> list[dict]:
    """What a perfect SinGAN could score when it trains a ``side`` px micrograph at ``max_size``.

    A default ``fewgan synth`` micrograph (median particle radius 6 px) and its encoded labels are
    resized together to the finest scale exactly as SinGAN's pyramid does
    (:func:`fewgan.singan.pyramid.build_reals`: bicubic ``imresize`` of image + label channels),
    the label channels are decoded by :func:`fewgan.data.labels.decode_instances`, and the label
    consistency of the resized real image with those labels is measured (its own Otsu threshold).
    No generator is involved: this is the ceiling that the resize alone sets.
    """
    import torch

    import numpy as np

    from fewgan import api
    from fewgan.data.labels import decode_instances, encode_instances
    from fewgan.metrics.particles import find_threshold
    from fewgan.singan.pyramid import build_reals, plan_pyramid

    path = api.synth(work / f"ceiling_{side}", size=side, seed=seed)
    images, labels = labelled_images([path])
    both = torch.cat([images[0], torch.from_numpy(encode_instances(labels[0]))])[None]
    out = []
    for max_size in max_sizes:
        pyramid = plan_pyramid(side, side, max_size=max_size)
        finest = build_reals(both, pyramid)[-1] if max_size < side else both
        image = finest[:, :images.shape[1]]
        decoded = decode_instances(finest[0, images.shape[1]:].numpy())
        entry = consistency(image, [decoded], find_threshold(image))
        area = np.bincount(decoded.ravel())[1:]
        out.append({"side": side, "max_size": max_size, "trained_size": list(image.shape[2:]),
                    "median_radius_px": round(float(np.sqrt(np.median(area) / np.pi)), 2) if area.size else None,
                    "f1": entry["f1"], "mean_matched_iou": entry["mean_matched_iou"], "n_pred": entry["n_pred"],
                    "n_ref": entry["n_ref"]})
    return out


# --------------------------------------------------------------------------- the whole run
def parser(description: str, json_name: str) -> argparse.ArgumentParser:
    """The options of the data and the two trainings (``bench/utility_story.py`` adds its own)."""
    from fewgan.singan.config import SinGANConfig
    from fewgan.stylegan2.config import LABEL_HEADS, StyleGAN2Config

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--methods", nargs="*", default=["singan", "stylegan2"], choices=["singan", "stylegan2", "gpnn"])
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "fewgan_label_quality",
                    help="data and runs go here")
    ap.add_argument("--json", type=Path, default=HERE / "results" / json_name)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budgets (about a minute): structure only")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--train-seed", type=int, default=1, help="seed of the training data")
    ap.add_argument("--test-seed", type=int, default=2, help="first held-out seed")
    ap.add_argument("--test-images", type=int, default=2, help="held-out SinGAN micrographs")
    ap.add_argument("--bit-depth", type=int, default=8, choices=[8, 16])
    ap.add_argument("--samples", type=int, default=16, help="generated images measured")
    ap.add_argument("--sample-seed", type=int, default=1000)
    ap.add_argument("--singan-size", type=int, default=128, help="micrograph side = SinGAN max_size, px")
    ap.add_argument("--singan-min-size", type=int, default=16)
    ap.add_argument("--singan-density", type=float, default=20.0, help="particles per 10,000 px^2")
    ap.add_argument("--singan-steps", type=int, default=60, help="steps per scale")
    ap.add_argument("--singan-format", default="png", choices=["png", "tiff"], help="file format of the micrographs")
    ap.add_argument("--singan-native", action="store_true",
                    help="train at the micrograph's own pixel size (SinGANConfig.native), large scales on crops")
    ap.add_argument("--singan-crop", type=int, default=SinGANConfig.crop,
                    help="crop side of --singan-native (SinGANConfig.crop)")
    ap.add_argument("--singan-run", type=Path, help="measure this trained run instead of training one")
    ap.add_argument("--s2-n", type=int, default=100, help="training crops (and held-out crops)")
    ap.add_argument("--s2-size", type=int, default=64, help="crop side, px = StyleGAN2 resolution")
    ap.add_argument("--s2-density", type=float, default=None,
                    help="particles per 10,000 px^2 (default: fewgan synth's folder default, 8)")
    ap.add_argument("--s2-radius", type=float, default=None,
                    help="median particle radius, px (default: fewgan synth's folder default, 4)")
    ap.add_argument("--s2-kimg", type=lambda s: [float(x) for x in s.split(",")],
                    default=[1, 2, 4, 6, 8, 10], help="chunk ends, kimg (the curve's points)")
    ap.add_argument("--s2-cbase", type=int, default=512)
    ap.add_argument("--s2-cmax", type=int, default=128)
    ap.add_argument("--s2-ema-decay", type=float, default=0.995)
    ap.add_argument("--s2-batch", type=int, default=16)
    ap.add_argument("--s2-lr", type=float, default=0.001, help="lr of G and D")
    ap.add_argument("--s2-lr-rampdown", type=float, default=0.0,
                    help="fraction of the budget (the last --s2-kimg) over which the lrs fall to 0 (0: constant)")
    ap.add_argument("--s2-r1-gamma", type=float, default=5.0)
    ap.add_argument("--s2-pl-weight", type=float, default=1.0, help="path-length weight (0: off)")
    ap.add_argument("--s2-style-mixing", type=float, default=StyleGAN2Config.style_mixing,
                    help="style-mixing probability (0: off)")
    ap.add_argument("--s2-label-head", default=StyleGAN2Config.label_head, choices=LABEL_HEADS,
                    help="G's label head (the first to fourth attempts in bench/README.md ran 'linear')")
    ap.add_argument("--s2-image-critic", default=StyleGAN2Config.image_critic, action=argparse.BooleanOptionalAction,
                    help="the image-only critic beside the joint one (the first to fourth attempts: off)")
    ap.add_argument("--s2-diffaugment", default="color,translation,cutout", help="DiffAugment policy ('none': off)")
    ap.add_argument("--s2-psi", type=float, default=1.0,
                    help="truncation psi of the StyleGAN2 samples (fewgan stylegan2 generate --trunc; 1: none)")
    ap.add_argument("--s2-run", type=Path, help="measure this trained run (with its snapshot_kimg*.pt) instead")
    ap.add_argument("--ceiling", type=lambda s: [int(x) for x in s.split(",") if x], default=[512, 256, 200, 128],
                    help="max sizes at which the resize ceiling of a 512 px micrograph is measured ('' to skip)")
    return ap


def quick(args: argparse.Namespace) -> argparse.Namespace:
    """``--quick``: tiny sizes and budgets."""
    if args.quick:
        args.singan_size, args.singan_min_size, args.singan_steps, args.singan_density = 32, 16, 2, 60.0
        args.s2_n, args.s2_kimg, args.s2_cbase, args.s2_cmax = 16, [0.032], 64, 32
        args.samples, args.test_images = 2, 1
        args.ceiling = [64]
    return args


def write_json(path: Path, result: dict) -> None:
    """``result`` as JSON at ``path``, written to a temporary name and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp.replace(path)


def header(args: argparse.Namespace) -> dict:
    """Date, machine, threads, load and options of a benchmark run."""
    import torch

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_start": os.getloadavg()[0],
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}


def main(argv=None) -> dict:
    args = quick(parser(__doc__.split("\n\n")[0], "label_quality.json").parse_args(argv))
    args.work.mkdir(parents=True, exist_ok=True)
    result = header(args)
    if args.ceiling:
        result["resize_ceiling"] = resize_ceiling(args.work, 128 if args.quick else 512, args.ceiling, args.test_seed)
    if "singan" in args.methods:
        data = singan_data(args.work, args)
        t0 = time.perf_counter()
        run = args.singan_run or train_singan(data["train"], args.work, args)
        check_trained_on(run, data["train"])
        result["singan"] = {"train_seconds": round(time.perf_counter() - t0, 1) if not args.singan_run else None,
                            **measure_singan(run, data, args)}
    if "stylegan2" in args.methods:
        data = stylegan2_data(args.work, args)
        t0 = time.perf_counter()
        run = args.s2_run or train_stylegan2(data["train"], args.work, args)[0]
        result["stylegan2"] = {"train_seconds": round(time.perf_counter() - t0, 1) if not args.s2_run else None,
                               **measure_stylegan2(run, data, args)}
    result["load_end"] = os.getloadavg()[0]
    write_json(args.json, result)
    print(table(result))
    return result


def table(result: dict) -> str:
    rows = ["| method | real F1 | real mIoU | generated F1 | generated mIoU | ratio (target 0.9) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for method in ("singan", "stylegan2"):
        if method in result:
            r = result[method]
            rows.append(f"| {method} | {r['real_reference']['f1']} | {r['real_reference']['mean_matched_iou']} | "
                        f"{r['generated'].get('f1')} | {r['generated'].get('mean_matched_iou')} | {r['ratio']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
