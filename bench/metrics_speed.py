"""Time per metric on N images (default 500 at 64 px), CPU or GPU, with seeded random Inception weights.

Random weights cost exactly what the real ones cost (same network), so this runs offline::

    OMP_NUM_THREADS=2 .venv/bin/python bench/metrics_speed.py --n 500 --size 64 [--device cuda]

Prints one Markdown table row per metric: what is timed, N, wall seconds and CPU seconds of
the process, after one warm-up batch. On a shared machine the CPU time is the steadier figure;
CPU seconds divided by the thread count is a lower bound of the wall time on an idle machine.
Feature extraction dominates (the FID Inception is 5.71 GMAC per 299 px image); of the metrics
on features only FID's ``sqrtm`` of the 2048 x 2048 product is slow (``method="svd"`` gives the
same value in seconds). Other metric timings can be added to ``BENCHES`` below.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fewgan.metrics import features  # noqa: E402
from fewgan.metrics.fid import fid_from_features  # noqa: E402
from fewgan.metrics.inception import InceptionV3FID  # noqa: E402
from fewgan.metrics.kid import kid_from_features  # noqa: E402
from fewgan.metrics.prdc import prdc, precision_recall  # noqa: E402
from fewgan.metrics.sifid import pixel_diversity, sifid  # noqa: E402


_CPU: list[float] = []  # CPU seconds of the last timed call (the steadier figure on a shared machine)


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    _CPU.append(time.process_time() - c0)
    return time.perf_counter() - t0, out


def bench_inception(ctx):
    rows = []
    cache = Path(ctx["tmp"]) / "cache"
    # warm-up: load the network, one batch
    features.extract_features(ctx["real"][:ctx["batch"]], weights=ctx["weights"], device=ctx["device"],
                              batch_size=ctx["batch"], progress=False)
    s, ctx["features"] = _timed(lambda: features.extract_features(
        ctx["real"], weights=ctx["weights"], resize="clean", device=ctx["device"], batch_size=ctx["batch"],
        progress=False, cache=cache))
    rows.append(("Inception pool3 features, resize clean (one set, written to the cache)", ctx["n"], s))
    s, ctx["fake_features"] = _timed(lambda: features.extract_features(
        ctx["fake"], weights=ctx["weights"], resize="tf1", device=ctx["device"], batch_size=ctx["batch"],
        progress=False))
    rows.append(("Inception pool3 features, resize tf1 (one set)", ctx["n"], s))
    s, _ = _timed(lambda: features.extract_features(ctx["real"], weights=ctx["weights"], device=ctx["device"],
                                                    progress=False, cache=cache))
    rows.append(("the same real set again, from the cache (hash + load)", ctx["n"], s))
    return rows


def bench_on_features(ctx):
    r, f = ctx["features"], ctx["fake_features"]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s, _ = _timed(lambda: fid_from_features(r, f))
        rows.append(("FID from features, method sqrtm (scipy.linalg.sqrtm of 2048 x 2048)", ctx["n"], s))
        s, _ = _timed(lambda: fid_from_features(r, f, method="svd"))
        rows.append(("FID from features, method svd (nuclear norm, same value)", ctx["n"], s))
    s, _ = _timed(lambda: kid_from_features(r, f))
    rows.append(("KID from features (100 subsets)", ctx["n"], s))
    s, _ = _timed(lambda: prdc(r, f, k=5))
    rows.append(("precision/recall/density/coverage (k=5)", ctx["n"], s))
    s, _ = _timed(lambda: precision_recall(r, f, k=3))
    rows.append(("improved precision/recall (k=3)", ctx["n"], s))
    return rows


def bench_sifid(ctx):
    real = ctx["real"][0]
    sifid(real, ctx["fake"][:2], weights=ctx["weights"], device=ctx["device"])  # warm-up
    s, _ = _timed(lambda: sifid(real, ctx["fake"], weights=ctx["weights"], device=ctx["device"]))
    rows = [("SIFID, both taps, native resolution (vs one real)", ctx["n"], s)]
    s, _ = _timed(lambda: pixel_diversity(ctx["fake"], real))
    rows.append(("pixel diversity", ctx["n"], s))
    return rows


BENCHES = {"inception": bench_inception, "on_features": bench_on_features, "sifid": bench_sifid}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", default=list(BENCHES), choices=list(BENCHES))
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / "random-inception.pth"
        torch.save(InceptionV3FID().state_dict(), weights)
        ctx = {
            "n": args.n, "batch": args.batch, "device": args.device, "weights": weights, "tmp": tmp,
            "real": torch.rand(args.n, args.channels, args.size, args.size, generator=g) * 2 - 1,
            "fake": torch.rand(args.n, args.channels, args.size, args.size, generator=g) * 2 - 1,
        }
        warnings.simplefilter("ignore")  # the random weights are not the reference: known
        print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {args.device}, N {args.n}, {args.size} px, "
              f"{args.channels} channels, batch {args.batch}")
        print("| what | N | wall seconds | CPU seconds |")
        print("|---|---|---|---|")
        if "on_features" in args.only and "inception" not in args.only:
            rng = np.random.default_rng(0)
            ctx["features"] = rng.random((args.n, 2048)).astype(np.float32)
            ctx["fake_features"] = rng.random((args.n, 2048)).astype(np.float32)
        for name in args.only:
            _CPU.clear()
            for (what, n, s), cpu in zip(BENCHES[name](ctx), list(_CPU)):
                print(f"| {what} | {n} | {s:.2f} | {cpu:.2f} |", flush=True)
        print(f"# load average after the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
