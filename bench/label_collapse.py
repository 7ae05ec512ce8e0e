#!/usr/bin/env python
"""Where StyleGAN2's layout collapse comes from with labels (issue 13 point 5): one arm per call.

Trains the 32 px configuration of ``bench/label_quality.py``'s third attempt (100 ``fewgan synth``
crops of 32 px, density 30, training-data seed 1; cbase 1024, cmax 128, EMA 0.99, batch 16, lr
0.001, R1 5, path length 1, style mixing 0.9, DiffAugment color,translation,cutout; training seed
0) with one change per arm, and measures each ``--kimg`` point's raw and EMA generator on 16
samples of seed 1000 **from the image channel**: fewgan's particle analysis at the training
folder's Otsu threshold, then the mean foreground IoU over pairs of samples (``img_iou``: near 1
when every sample shows one layout, 0.13 for 16 real crops), the per-pixel spread over samples
(``img_spread``) and the particles found (``n_det``); for a labelled arm also the same IoU of the
decoded labels (``lab_iou``) and the label consistency F1 of ``bench/label_quality.py``. Measured
from the image, runs with and without labels compare.

Arms are ``key=value`` overrides of the StyleGAN2 config (``labels=none``, ``lr_g=0.0005``,
``mbstd_group=16``, ...; every arm starts from the fourth attempt's linear label head and single critic,
``label_head=linear image_critic=False``, so the arms recorded then mean what they meant) and two
diagnostics that patch the trainer in this process only (not options of fewgan): ``dscale=S`` multiplies
the label channels by S where the critic sees them (real and fake alike); ``smooth=T`` encodes the
foreground channel as ``tanh(signed distance / T)`` (same sign, so the same decoded foreground) instead
of +-1. Two more arms name the levers fewgan adopted: ``squash=1`` is ``label_head=tanh`` (G's label
channels through tanh) and ``twod=1`` is ``image_critic=True`` (a second critic on the image channels
alone; Li et al., "Semantic Segmentation with Generative Models", CVPR 2021). The fourth attempt's
``twod`` arms ran a bench patch that penalised the gradient of the two critics' summed logits with R1;
fewgan penalises each critic's own gradient (``fewgan.stylegan2.losses.r1_penalty``).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/label_collapse.py ref 4,8
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/label_collapse.py nolab 4,8 labels=none
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import label_quality as lq  # noqa: E402

BASE = dict(cbase=1024, cmax=128, ema_decay=0.99, batch=16, lr_g=0.001, lr_d=0.001, r1_gamma=5.0,
            diffaugment="color,translation,cutout", pl_weight=1.0, style_mixing=0.9, label_head="linear",
            image_critic=False)


def _value(v: str):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def patch_dscale(scale: float) -> None:
    from fewgan.stylegan2 import train as t

    original = t.Trainer._D

    def _D(self, x, _o=original):
        c = x.shape[1] - (self.cfg.label_channels or 0)
        return _o(self, torch.cat([x[:, :c], x[:, c:] * scale], 1))

    t.Trainer._D = _D


def patch_smooth(width: float) -> None:
    import fewgan.data.labels as L
    from scipy import ndimage

    original = L.encode_instances

    def encode_instances(labels, _o=original):
        out = _o(labels)
        fg = np.asarray(labels) > 0
        signed = np.where(fg, ndimage.distance_transform_edt(fg), 1.0 - ndimage.distance_transform_edt(~fg)) - 0.5
        out[0] = np.tanh(signed / width).astype(np.float32)
        return out

    L.encode_instances = encode_instances


def training_folder(work: Path) -> Path:
    """The third attempt's 100 training crops (``fewgan synth --mode folder``, 32 px, density 30, seed 1)."""
    from fewgan import api

    folder = work / "stylegan2_train"
    if not folder.is_dir():
        api.synth(folder, n=100, seed=1, mode="folder", size=32, bit_depth=8, density=30.0)
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("kimg", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("overrides", nargs="*", help="key=value (config fields, or dscale / smooth / squash / twod)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fewgan_label_collapse"))
    ap.add_argument("--json", type=Path, default=HERE / "results" / "label_collapse_32px.json")
    ap.add_argument("--resume", type=Path, help="continue this arm's run folder (same overrides) to the --kimg points")
    a = ap.parse_args(argv)
    from fewgan import api
    from fewgan.metrics.particles import find_threshold, measure_set
    from fewgan.run import CHECKPOINT_DIR, STYLEGAN2_LAST_CHECKPOINT

    over = {k: _value(v) for k, v in (kv.split("=", 1) for kv in a.overrides)}
    labels = over.pop("labels", "beside")
    if "dscale" in over:
        patch_dscale(float(over.pop("dscale")))
    if "smooth" in over:
        patch_smooth(float(over.pop("smooth")))
    if int(over.pop("squash", 0)):
        over["label_head"] = "tanh"
    if int(over.pop("twod", 0)):
        over["image_critic"] = True
    folder = training_folder(a.work)
    images, _ = lq.labelled_images(lq.folder_images(folder))
    threshold = find_threshold(images)
    real = measure_set(images[:16], threshold=threshold, keep_labels=True)["labels"]
    record = {"arm": a.name, "overrides": a.overrides, "real_img_iou": lq.foreground_overlap(real), "points": []}
    runtime = dict(eval_every=0, sample_every=0, checkpoint_every=0, quiet=True)
    run, t0 = a.resume, time.time()
    for kimg in a.kimg:
        if run is None:
            run = api.train_stylegan2(folder, results=a.work / a.name, labels=labels, kimg=kimg, resolution=32, seed=0,
                                      **{**BASE, **over}, **runtime)
        else:
            run = api.train_stylegan2(resume=run, kimg=kimg, **runtime)
        snap = Path(run) / f"snapshot_kimg{kimg:g}.pt"
        shutil.copyfile(Path(run) / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, snap)
        point = {"kimg": kimg, "wall_s": round(time.time() - t0)}
        for which in ("G", "G_ema"):
            model = lq.stylegan2_model(run, snap, which)
            # one draw: sample_with_labels gives the same image pixels as sample_tensor, plus the labels
            x, decoded = model.sample_with_labels(16, seed=1000) if model.label_channels else \
                (model.sample_tensor(16, seed=1000), None)
            found = measure_set(x, threshold=threshold, keep_labels=True)["labels"]
            point[which] = {"img_iou": lq.foreground_overlap(found), "img_spread": round(float(x.std(0).mean()), 3),
                            "n_det": int(sum(int(f.max()) for f in found))}
            if decoded is not None:
                point[which].update(lab_iou=lq.foreground_overlap(decoded),
                                    f1=lq.consistency(x, decoded, threshold)["f1"])
        record["points"].append(point)
        print(json.dumps({"arm": a.name, **point}), flush=True)
    results = json.loads(a.json.read_text()) if a.json.is_file() else {}
    if a.resume is not None and a.name in results:  # a continuation adds its points to the arm's
        record["points"] = results[a.name]["points"] + record["points"]
    results[a.name] = record
    from fewgan.run import atomic_write_json
    atomic_write_json(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
