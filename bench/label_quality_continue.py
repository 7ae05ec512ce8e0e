#!/usr/bin/env python
"""Continue a ``bench/label_quality.py`` StyleGAN2 run from one of its snapshots with changed options
(a diagnostic of issue 13 point 5; bench/README.md, "StyleGAN2 at 32 px: the EMA's decay").

A resume refuses to change a model option (``Config.resume_with``); this script copies the run
folder, writes the changes into the copy's ``config.json`` and into the snapshot's checkpoint, and
resumes the copy in chunks, keeping ``snapshot_kimg<K>.pt`` at each chunk end, which
``label_quality.py --s2-run COPY`` then measures.

* ``ema_decay=D``: the raw generator does not depend on the EMA (it never feeds back into
  training), so the copy trains the same raw generator; after ``k`` EMA updates the state the EMA
  started from weighs ``D**k`` (0.95 over 2 kimg at batch 16: < 0.001), so from there on the copy's
  EMA is that of a run trained with ``D`` from the start.
* ``lr=L``: ``lr_g`` and ``lr_d`` (and Adam's stored learning rates, scaled by the same factor).
* any other StyleGAN2 config field, e.g. ``lr_rampdown=0.3`` (the copy's budget is the last chunk end,
  so a ramp over the budget's last 30 % ends there).

The copy is trained once to the last chunk end, stopping at each chunk end (``max_steps``) to keep
its checkpoint, so the budget, and with it any learning-rate ramp, is the whole run's at every chunk.

    python bench/label_quality_continue.py RUN 36 ema_decay=0.95 COPY 38,40
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_quality import chunk_stops  # noqa: E402  (the chunk ends' steps, as label_quality.py trains them)


def main(argv=None) -> Path:
    from fewgan.run import CHECKPOINT_DIR, STYLEGAN2_LAST_CHECKPOINT, load_checkpoint, save_checkpoint
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.train import train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a label_quality.py StyleGAN2 run folder with snapshot_kimg*.pt")
    ap.add_argument("kimg", help="the snapshot to continue from (snapshot_kimg<KIMG>.pt)")
    ap.add_argument("changes", help="comma-separated field=value: ema_decay=0.95, lr=0.0002")
    ap.add_argument("dest", type=Path, help="the copy (replaced if it exists)")
    ap.add_argument("ends", type=lambda s: [float(x) for x in s.split(",")], help="chunk ends, kimg")
    args = ap.parse_args(argv)
    changes = {k: float(v) for k, v in (kv.split("=") for kv in args.changes.split(","))}

    def apply(config: dict) -> None:
        for key, value in changes.items():
            if key == "lr":
                config["lr_g"] = config["lr_d"] = value
            elif key in config or key in {f.name for f in dataclasses.fields(StyleGAN2Config)}:
                config[key] = value
            else:
                raise SystemExit(f"{key}: not a StyleGAN2 config field")

    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    for name in ("log.txt", "metrics.jsonl", "training_labels"):
        path = args.run / name
        if path.is_dir():
            shutil.copytree(path, args.dest / name)
        elif path.is_file():
            shutil.copyfile(path, args.dest / name)
    payload = json.loads((args.run / "config.json").read_text())
    apply(payload["config"])
    (args.dest / "config.json").write_text(json.dumps(payload, indent=1))
    state = load_checkpoint(args.run / f"snapshot_kimg{args.kimg}.pt")
    old_lr = state["config"]["lr_g"]
    apply(state["config"])
    if "lr" in changes:  # Adam keeps its (lazy-regularisation scaled) lr in its state
        for opt in ("opt_G", "opt_D"):
            for group in state[opt]["param_groups"]:
                group["lr"] = group["lr"] * changes["lr"] / old_lr
    (args.dest / CHECKPOINT_DIR).mkdir()
    save_checkpoint(args.dest / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, state)
    shutil.copyfile(args.run / f"snapshot_kimg{args.kimg}.pt", args.dest / f"snapshot_kimg{args.kimg}.pt")
    batch = int(state["config"]["batch"])
    done = int(state["step"])
    stops = chunk_stops(args.ends, batch)
    if stops != sorted(stops) or stops[0] <= done:
        raise SystemExit(f"chunk ends {args.ends}: must rise, after the snapshot's {args.kimg} kimg")
    every = math.gcd(done, *stops)  # the trainer checkpoints at steps divisible by it
    runtime = dict(eval_every=0, sample_every=0, checkpoint_every=0, checkpoint_every_steps=every, quiet=True)
    for kimg, stop in zip(args.ends, stops):
        train(resume=args.dest, kimg=args.ends[-1], max_steps=stop - done, **runtime)
        done = stop
        shutil.copyfile(args.dest / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, args.dest / f"snapshot_kimg{kimg:g}.pt")
    return args.dest


if __name__ == "__main__":
    main()
