"""Recall of PatchMatch as GPNN uses it: at every PatchMatch scale of one sample, the last iteration's
matches against exact nearest neighbours (chunked matrix products) of ``--check`` random query patches.

A match counts when its distance is within 1 % (and, separately, 10 %) of the exact one. Plain
distances: PatchMatch does not use the completeness normalisation (module docstring of fewgan.gpnn).

    OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python bench/gpnn_recall.py --size 256
"""

from __future__ import annotations

import argparse
import json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=901)
    p.add_argument("--check", type=int, default=2000)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    import numpy as np
    import torch

    import fewgan.gpnn as gpnn
    from fewgan.data.synthetic import make_micrograph

    x, _ = make_micrograph(seed=args.seed, size=(args.size, args.size), bit_depth=16)
    image = torch.from_numpy(x.astype(np.float32) / 32767.5 - 1.0)[None]
    calls = []
    original = gpnn.patchmatch

    def recording(query, keys, init, rounds, gen, jump=False):
        field = original(query, keys, init, rounds, gen, jump)
        calls.append((query, keys, field))
        return field

    gpnn.patchmatch = recording
    gpnn.generate(image, seed=0)
    gpnn.patchmatch = original
    config = gpnn.GPNNConfig()
    rows, rng = [], np.random.default_rng(0)
    for k in range(config.iterations - 1, len(calls), config.iterations):  # the last iteration of each scale
        query, keys, field = calls[k]
        hq, wq, d = query.shape
        wk = keys.shape[1]
        q, kf = query.reshape(-1, d), keys.reshape(-1, d)
        pick = torch.from_numpy(rng.choice(q.shape[0], min(args.check, q.shape[0]), replace=False))
        exact = gpnn._exact_nearest(q[pick], kf, None)
        d_exact = ((q[pick] - kf[exact]) ** 2).sum(1)
        found = (field[..., 0] * wk + field[..., 1]).reshape(-1)[pick]
        d_found = ((q[pick] - kf[found]) ** 2).sum(1)
        rows.append({"query grid": [hq, wq], "key grid": list(keys.shape[:2]),
                     "within 1 %": round(float((d_found <= d_exact * 1.01 + 1e-7).float().mean()), 3),
                     "within 10 %": round(float((d_found <= d_exact * 1.1 + 1e-7).float().mean()), 3),
                     "median ratio": round(float((d_found / d_exact.clamp_min(1e-12)).median()), 3)})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"size": args.size, "seed": args.seed, "scales": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
