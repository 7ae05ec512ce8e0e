#!/usr/bin/env python
"""Direct (oneDNN) vs Winograd (NNPACK) time of one valid 3x3 convolution, per shape: the data behind
``fewgan.ops.winograd``'s ``auto`` rule.

    OMP_NUM_THREADS=2 .venv/bin/python bench/conv_kernels.py --threads 2 --json bench/results/conv_kernels.json

Prints, for the channel counts SinGAN uses and output sizes across its pyramid, the median time
of each kernel over ``--repeats`` calls (after two warm-up calls), their ratio, and the relative
RMS error of each against a float64 reference. Batch size 1, as SinGAN trains.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from fewgan.ops import winograd
    from fewgan.run import atomic_write_json

    torch.set_num_threads(args.threads)
    if not winograd.available():
        print("this PyTorch build has no NNPACK: nothing to compare")
        return 0

    def median_time(fn):
        fn()
        fn()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    rows = []
    channel_pairs = [(3, 32), (32, 32), (64, 64), (128, 128), (64, 128), (128, 1), (128, 3)]
    sizes = [(16, 13), (34, 27), (44, 35), (56, 45), (72, 58), (93, 75), (120, 96), (155, 124), (200, 160)]
    torch.manual_seed(0)
    print(f"{'in':>4} {'out':>4} {'output':>9} {'direct ms':>10} {'winograd ms':>12} {'ratio':>6}  rel. RMS error "
          "direct / winograd", flush=True)
    for ci, co in channel_pairs:
        for h, w in sizes:
            x = torch.randn(1, ci, h + 2, w + 2)
            wt = torch.randn(co, ci, 3, 3) * (2.0 / (9 * ci)) ** 0.5
            b = torch.zeros(co)
            with winograd.mode("winograd"):
                t_w = median_time(lambda: winograd.conv3x3(x, wt, b))
                y_w = winograd.conv3x3(x, wt, b)
            t_d = median_time(lambda: F.conv2d(x, wt, b))
            y_d = F.conv2d(x, wt, b)
            ref = F.conv2d(x.double(), wt.double(), b.double())
            err = lambda y: float((y.double() - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
            with winograd.mode("auto"):
                auto = winograd.use_winograd(x, wt)
            row = {"c_in": ci, "c_out": co, "out_hw": [h, w], "out_pixels": h * w, "direct_ms": round(t_d * 1e3, 3),
                   "winograd_ms": round(t_w * 1e3, 3), "ratio": round(t_w / t_d, 3),
                   "rel_rms_err_direct": err(y_d), "rel_rms_err_winograd": err(y_w), "auto_picks_winograd": auto}
            rows.append(row)
            print(f"{ci:>4} {co:>4} {h:>4}x{w:<4} {row['direct_ms']:>10.2f} {row['winograd_ms']:>12.2f} "
                  f"{row['ratio']:>6.2f}  {row['rel_rms_err_direct']:.1e} / {row['rel_rms_err_winograd']:.1e}"
                  f"{'  <- auto' if auto else ''}", flush=True)
    if args.json:
        result = {"tool": "bench/conv_kernels.py", "argv": sys.argv, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "machine": {"python": platform.python_version(), "platform": platform.platform(),
                              "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()},
                  "rows": rows}
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
