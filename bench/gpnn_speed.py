"""GPNN patch baseline on `fewgan synth` micrographs of held-out seeds: time, memory, quality, copying.

For every size: a 16-bit synthetic micrograph (held-out seed; its exact labels beside it) and an
independent one (seed + 1000, the real-vs-real reference of the layout measure); then

* ``fewgan gpnn IMAGE OUT --labels beside`` as a user runs it, under ``/usr/bin/time -v``: wall time,
  peak resident memory, seconds per sample (``gpnn.json``);
* ``fewgan.api.evaluate``: SWD against the real image with its real-vs-real floor, particle
  statistics, pixel diversity;
* ``fewgan.metrics.copying.single_image_copying``: layout copying (particles in place vs chance) and
  patch copying (vs the image's own quantile);
* ``fewgan.metrics.instances.label_consistency``: the carried labels against particle detection.

    OMP_NUM_THREADS=2 .venv/bin/python bench/gpnn_speed.py --sizes 512 2048 --n 2 1 \
        --work /tmp/gpnn_bench --json bench/results/gpnn_speed.json

The SinGAN columns of the side-by-side table (issue 14 point 5) are measured by bench/side_by_side.py
with the same images and these functions (``--work`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall seconds, peak resident memory and CPU seconds
    (:func:`time_v`); stops with the command's error output when it fails."""
    cmd = ["/usr/bin/time", "-v", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed: {proc.stderr[-2000:]}")
    return {"command": " ".join(cmd[2:]), "wall_s": round(wall, 1), **time_v(proc.stderr)}


def time_v(text: str) -> dict:
    """Peak RSS (GiB), CPU seconds (user + system) and wall seconds from the report of ``/usr/bin/time -v``."""
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", text).group(1)) for kind in ("User", "System"))
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", text).group(1)
    wall = sum(float(part) * 60 ** i for i, part in enumerate(reversed(clock.split(":"))))
    return {"peak_rss_gib": round(rss_kb / 2**20, 3), "cpu_s": round(cpu, 1), "time_wall_s": round(wall, 1)}


def run_gpnn(image: Path, out: Path, n: int, seed: int, extra: list[str]) -> dict:
    row = timed([sys.executable, "-m", "fewgan", "gpnn", str(image), str(out), "--n", str(n), "--seed", str(seed),
                 "--labels", "beside", "--quiet", *extra])
    record = json.loads((out / "gpnn.json").read_text())
    return {**row, "seconds_per_sample": record["seconds"], "threads": record["environment"]["threads"]}


def measure(image: Path, other: Path, out: Path) -> dict:
    """The quality and copy measures of the samples in ``out`` (``sample_*.tif`` with ``_masks.tif`` beside)
    against the real ``image``, ``other`` an independent real image of its size: SWD with its
    real-vs-real floor, particle statistics and pixel diversity (``fewgan.api.evaluate``), layout and
    patch copying (``single_image_copying``), the samples' labels against particle detection."""
    import tifffile
    import torch

    from fewgan import api
    from fewgan.data.images import read_image
    from fewgan.metrics.copying import single_image_copying
    from fewgan.metrics.instances import label_consistency

    ev = api.evaluate(image, out, metrics=["swd", "particles", "diversity"], seed=0)
    real, _ = read_image(image)
    other_real, _ = read_image(other)
    paths = sorted(q for q in out.glob("sample_*.tif") if not q.stem.endswith("_masks"))
    samples = torch.stack([read_image(q)[0] for q in paths])
    masks = [tifffile.imread(q.with_name(q.stem + "_masks.tif")) for q in paths]
    return {"evaluate": dict(ev["metrics"]), "copying": single_image_copying(real, samples, other_real=other_real),
            "label_consistency": label_consistency(samples, masks)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--n", type=int, nargs="+", default=[2, 1], help="samples per size (one value per size)")
    p.add_argument("--seed", type=int, default=901, help="held-out seed of the micrographs (the tests use < 100)")
    p.add_argument("--work", default="/tmp/gpnn_bench")
    p.add_argument("--json", default=None)
    p.add_argument("--no-eval", action="store_true", help="time only")
    p.add_argument("gpnn_options", nargs="*", help="after --: more options of fewgan gpnn")
    args = p.parse_args(argv)
    from fewgan import api

    work = Path(args.work)
    results = {"load_before": os.getloadavg(), "omp_threads": os.environ.get("OMP_NUM_THREADS"), "sizes": {}}
    counts = args.n + [args.n[-1]] * (len(args.sizes) - len(args.n))
    for size, n in zip(args.sizes, counts):
        image = api.synth(work / f"real_{size}_s{args.seed}", size=size, seed=args.seed, format="tiff")
        other = api.synth(work / f"other_{size}_s{args.seed + 1000}", size=size, seed=args.seed + 1000, format="tiff")
        out = work / f"gpnn_{size}_s{args.seed}"
        row = {"load_start": os.getloadavg()}
        row.update(run_gpnn(image, out, n, 0, args.gpnn_options))
        row["load_end"] = os.getloadavg()
        print(json.dumps({size: row}), flush=True)
        if not args.no_eval:
            row.update(measure(image, other, out))
            print(json.dumps({size: {k: row[k] for k in ("copying", "label_consistency")}}, default=float), flush=True)
        results["sizes"][str(size)] = row
    if args.json:
        write_json(args.json, results)
    return 0


def write_json(path, data: dict) -> None:
    """``data`` as JSON at ``path`` (numpy scalars as numbers), written to a temporary name and renamed."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=lambda o: float(o) if np.isscalar(o) else str(o)) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
