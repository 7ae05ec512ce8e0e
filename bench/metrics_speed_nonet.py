"""Time of the metrics that need no network (SWD, particle statistics, memorisation) on N images.

Real and generated sets are synthetic particle micrographs (the ``fewgan synth --mode folder``
defaults: 64 px, 8 particles per 10^4 px^2, radius 4 px), two independent draws::

    OMP_NUM_THREADS=2 .venv/bin/python bench/metrics_speed_nonet.py --n 500 --size 64 [--device cuda]

Prints one Markdown table row per measurement: what is timed, N per set, wall and CPU seconds
(best of ``--repeat`` runs after one warm-up on a few images; CPU time counts every thread of
the process, and is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fewgan.data.synthetic import make_micrograph  # noqa: E402
from fewgan.metrics.evaluate import evaluate  # noqa: E402
from fewgan.metrics.memorisation import memorisation  # noqa: E402
from fewgan.metrics.particles import particle_statistics  # noqa: E402
from fewgan.metrics.swd import swd_levels  # noqa: E402


def micrographs(n: int, size: int, seed: int) -> torch.Tensor:
    images = [make_micrograph(seed=seed * 100_000 + i, size=size, density=8.0, radius=4.0, min_spacing=2.0)[0]
              for i in range(n)]
    return torch.from_numpy(np.stack(images).astype(np.float32) / 65535.0 * 2 - 1)[:, None]


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads of this process) over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    real = micrographs(args.n, args.size, seed=1)
    fake = micrographs(args.n, args.size, seed=2)
    swd_levels(real[:8], fake[:8], device=args.device)  # warm-up
    rows = [
        ("SWD, 3 pyramid levels, 128 patches per image and level, 4 x 128 directions",
         best_of(lambda: swd_levels(real, fake, device=args.device), args.repeat)),
        ("particle statistics (Otsu + watershed on every image, W1/KS, g(r))",
         best_of(lambda: particle_statistics(real, fake), args.repeat)),
        ("memorisation, pixel space (nearest training image, leave-one-out ratios)",
         best_of(lambda: memorisation(real, fake), args.repeat)),
        ("`evaluate` with swd, particles, memorisation and their real-vs-real floors",
         best_of(lambda: evaluate(real, fake, metrics=["swd", "particles", "memorisation"], device=args.device),
                 1)),
    ]
    threads = torch.get_num_threads()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s), "
          f"device {args.device}, {args.n} + {args.n} images of {args.size} px")
    print("| what | N per set | wall seconds | CPU seconds |")
    print("|---|---|---|---|")
    for what, (wall, cpu) in rows:
        print(f"| {what} | {args.n} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
