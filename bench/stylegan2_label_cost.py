#!/usr/bin/env python
"""What a labelled StyleGAN2 step costs beside an unlabelled one, and what the image-only critic adds.

Three trainers on the same ``fewgan synth`` crops (32 px by default, the configuration of issue
13.5's label runs: cbase 1024, cmax 128, batch 16, DiffAugment color,translation,cutout, lazy R1 and
path length every 8 steps): ``plain`` (no labels), ``one_critic`` (labels, linear head, one critic:
labelled runs before the image critic) and ``levers`` (labels, tanh head, image-only critic: today's
default). Their timed windows of ``--window`` steps (a multiple of 8, so each window holds its share
of the lazy regularisation) are **interleaved** round by round, so machine load hits all three alike;
the medians over rounds and their ratios go to one JSON line.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/stylegan2_label_cost.py --json bench/results/stylegan2_label_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ARMS = {"plain": dict(labels="none"),
        "one_critic": dict(labels="beside", label_head="linear", image_critic=False),
        "levers": dict(labels="beside", label_head="tanh", image_critic=True)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--n", type=int, default=64, help="training crops")
    ap.add_argument("--window", type=int, default=16, help="steps per timed window (a multiple of 8)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import torch

    from fewgan import api
    from fewgan.data.folder import load_folder, load_folder_labels
    from fewgan.model import count_parameters
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.train import Trainer

    folder = api.synth(Path(tempfile.mkdtemp()) / "crops", n=a.n, seed=1, mode="folder", size=a.size, bit_depth=8,
                       density=30.0)
    images, meta = load_folder(folder, resolution=a.size)
    labels = load_folder_labels(meta.files, "beside", a.size)
    base = dict(resolution=a.size, cbase=1024, cmax=128, batch=16, eval_every=0, sample_every=0, checkpoint_every=0)
    trainers = {}
    for name, over in ARMS.items():
        cfg = StyleGAN2Config.from_dict({**base, **over})
        trainers[name] = Trainer(cfg, images if cfg.labels == "none" else torch.cat([images, labels], 1))
        for _ in range(a.warmup):
            trainers[name].train_step()
    rates = {name: [] for name in ARMS}
    for _ in range(a.rounds):
        for name, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(a.window):
                t.train_step()
            rates[name].append(a.window * base["batch"] / (time.perf_counter() - t0))
    med = {name: statistics.median(r) for name, r in rates.items()}
    record = {"img_per_s": {k: round(v, 2) for k, v in med.items()},
              "rounds": {k: [round(x, 2) for x in v] for k, v in rates.items()},
              "levers_over_one_critic_time": round(med["one_critic"] / med["levers"], 3),
              "levers_over_plain_time": round(med["plain"] / med["levers"], 3),
              "D_parameters": {k: count_parameters(t.D) for k, t in trainers.items()},
              "size": a.size, "window": a.window, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "load": os.getloadavg()[0]}
    print(json.dumps(record))
    if a.json:
        from fewgan.run import atomic_write_json

        atomic_write_json(a.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
