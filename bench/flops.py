#!/usr/bin/env python
"""Where the time goes: GFLOP per training step, achieved GFLOP/s and the share of the CPU's peak.

Two steps are measured, each at the seed configuration:

* **SinGAN, the finest scale** (the scale that dominates a run): the peer harness's hubble crop
  (250 x 200 RGB) with min size 16 and max size 200, so the finest scale is 200 x 160 with the
  seed's 128 features, batch 1, one full ``train_step`` (the critic steps with the gradient
  penalty's double backward, then the generator steps with the reconstruction loss). The
  coarser scales are only set up (their generators are untrained: the cost of a step does not
  depend on the weights).
* **StyleGAN2** at 64 px gray, the seed's networks, batch 16, over one lazy-regularisation cycle
  (``g_reg_every`` = ``d_reg_every`` = 8 steps, so R1 and the path-length penalty are in their
  proportion) on random images (the cost does not depend on the pixels), no augmentation.

How the FLOPs are counted: torch's own FLOP formulas (``torch.utils.flop_counter``) applied to
every operation of the real step, which counts the matrix products and convolutions of the
forward and of every backward pass
(the elementwise work, BatchNorm and activations are left out: they are memory-bound and a few
percent of the arithmetic). SinGAN's step is counted with the direct convolution kernels
(``conv='direct'``): its default on AVX2 machines runs the wide 3x3 convolutions on Winograd
kernels, which do fewer multiplications for the same result, so the counted figure is the
*nominal* (direct-convolution) FLOPs, the usual convention, and the achieved rate of the
Winograd path can exceed what direct arithmetic could reach.

How the time is taken: the mean of ``--steps`` steps after ``--warmup``, wall clock and process
CPU time. On a shared machine the wall-clock rate moves with the load; the rate per CPU-second
(nominal FLOPs / CPU seconds of the process) is compared with one core's peak and is the steadier
figure.

How the peak is computed: cores x clock x FLOP per cycle per core, with FLOP per cycle from the
vector instructions the CPU reports (``/proc/cpuinfo`` flags): AVX-512 F: 16 float32 lanes x 2
(fused multiply-add) x 2 FMA units = 64; AVX2 with FMA: 8 x 2 x 2 = 32 (AMD Zen 2/3/4 and Intel
since Haswell have two 256-bit FMA pipes); otherwise SSE: 4 x 2 x 2 = 16. The clock is the
``cpu MHz`` the kernel reports (on a virtual machine the nominal clock; boost clocks make the true
peak higher, so the share is an upper bound). ``--ghz`` and ``--flop-per-cycle`` override both.

    OMP_NUM_THREADS=2 .venv/bin/python bench/flops.py --threads 2 --json bench/results/flops.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path


def cpu_peak(ghz: float | None = None, flop_per_cycle: int | None = None) -> dict:
    """The CPU's float32 peak per core and for ``os.cpu_count()`` cores (see the module docstring)."""
    flags: set[str] = set()
    mhz = None
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "flags" and not flags:
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
            elif key == "model name":
                model = value.strip()
    except OSError:
        pass
    if flop_per_cycle is None:
        if "avx512f" in flags:
            flop_per_cycle, isa = 64, "AVX-512 F (16 lanes x FMA x 2 units)"
        elif "avx2" in flags and "fma" in flags:
            flop_per_cycle, isa = 32, "AVX2 + FMA (8 lanes x FMA x 2 units)"
        else:
            flop_per_cycle, isa = 16, "SSE (4 lanes x FMA-equivalent x 2 units)"
    else:
        isa = "given with --flop-per-cycle"
    clock = ghz if ghz is not None else (mhz / 1000.0 if mhz else None)
    if clock is None:
        raise SystemExit("the CPU clock is unknown here; pass --ghz")
    per_core = clock * flop_per_cycle
    return {"model": model, "isa": isa, "ghz": round(clock, 3), "flop_per_cycle_per_core": flop_per_cycle,
            "peak_gflops_per_core": round(per_core, 1), "cores": os.cpu_count(),
            "peak_gflops_all_cores": round(per_core * (os.cpu_count() or 1), 1),
            "amx": "amx_tile" in flags, "avx512_bf16": "avx512_bf16" in flags}


def count_flops(step) -> int:
    """Matrix-product and convolution FLOPs of ``step()`` (forward and every backward pass).

    A dispatch mode over torch's own FLOP formulas (``torch.utils.flop_counter.flop_registry``):
    ``FlopCounterMode`` itself cannot be used because its module tracker refuses the gradient
    penalty's ``autograd.grad`` in torch 2.13.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    total = [0]

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                total[0] += int(formula(*args, **kwargs, out_val=out))
            return out

    with Counter():
        step()
    return total[0]


def time_steps(step, warmup: int, steps: int) -> tuple[float, float]:
    for _ in range(warmup):
        step()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - wall0) / steps, (time.process_time() - cpu0) / steps


def singan_finest(conv: str):
    """A SinGAN trainer of the seed configuration set up at its finest scale; returns (step, size)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from singan_speed import hubble

    from fewgan.run import RunLogger
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.pyramid import plan_pyramid
    from fewgan.singan.train import SinGANTrainer

    cfg = SinGANConfig(min_size=16, max_size=200, lr=4e-4, steps=10, seed=0, log_every=10**9,
                       checkpoint_every=10**9, conv=conv)
    tensor, meta = hubble()
    pyramid = plan_pyramid(250, 200, cfg.min_size, cfg.max_size, cfg.scale_factor_init, cfg.receptive_field)
    import torch

    trainer = SinGANTrainer(cfg, pyramid, meta.to_dict(), None, torch.device("cpu"), RunLogger(None, quiet=True))
    trainer.start(tensor)
    for k in range(len(pyramid.sizes)):
        trainer._begin_scale(k)
    state = trainer.state

    def step():
        state.step += 1
        trainer.train_step()

    state.step = 0
    return step, pyramid.sizes[-1], cfg.features_at(len(pyramid.sizes) - 1)


def stylegan2_cycle():
    """A StyleGAN2 trainer of the seed configuration; returns (one lazy cycle of steps, steps per cycle)."""
    import torch

    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.train import Trainer

    cfg = StyleGAN2Config(resolution=64, batch=16, classical="none", ada=False, diffaugment="none", seed=0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 64, 64, generator=gen) * 2 - 1
    trainer = Trainer(cfg, images, device="cpu")
    cycle = max(cfg.g_reg_every, cfg.d_reg_every)

    def steps():
        for _ in range(cycle):
            trainer.train_step()

    return steps, cycle, cfg.batch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (SinGAN) / cycles (StyleGAN2) first")
    ap.add_argument("--steps", type=int, default=6, help="timed SinGAN steps")
    ap.add_argument("--cycles", type=int, default=2, help="timed StyleGAN2 lazy cycles (8 steps each)")
    ap.add_argument("--only", choices=("singan", "stylegan2"), default=None)
    ap.add_argument("--ghz", type=float, default=None, help="CPU clock for the peak (default: /proc/cpuinfo)")
    ap.add_argument("--flop-per-cycle", type=int, default=None, help="float32 FLOP per cycle per core")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    from fewgan.run import atomic_write_json

    peak = cpu_peak(a.ghz, a.flop_per_cycle)
    used_peak = peak["peak_gflops_per_core"] * min(a.threads, peak["cores"] or a.threads)
    print(f"CPU: {peak['model']}, {peak['isa']}, {peak['ghz']} GHz: peak {peak['peak_gflops_per_core']} GFLOP/s "
          f"per core, {used_peak:.1f} for {a.threads} thread(s); torch {torch.__version__}", flush=True)
    result = {"tool": "bench/flops.py", "argv": sys.argv, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "loadavg": os.getloadavg(), "threads": a.threads, "torch": torch.__version__, "cpu": peak}

    def rates(gflop: float, wall: float, cpu: float) -> dict:
        return {"gflop_per_step": round(gflop, 2), "wall_s_per_step": round(wall, 4), "cpu_s_per_step": round(cpu, 4),
                "gflops_wall": round(gflop / wall, 1), "gflops_per_cpu_second": round(gflop / cpu, 1),
                "share_of_peak_wall": round(gflop / wall / used_peak, 3),
                "share_of_one_core_peak_per_cpu_second": round(gflop / cpu / peak["peak_gflops_per_core"], 3)}

    if a.only in (None, "singan"):
        step, size, features = singan_finest("direct")
        gflop = count_flops(step) / 1e9
        del step
        entry = {"scale": f"{size[0]}x{size[1]}", "features": features}
        for conv in ("direct", "auto"):
            step, _, _ = singan_finest(conv)
            wall, cpu = time_steps(step, a.warmup, a.steps)
            entry[conv] = rates(gflop, wall, cpu)
            del step
            print(f"SinGAN finest {entry['scale']} ({features} features), conv {conv}: {gflop:.1f} nominal GFLOP/step, "
                  f"{wall:.3f} s/step wall, {cpu:.3f} CPU s/step -> {gflop / wall:.1f} GFLOP/s "
                  f"({100 * gflop / wall / used_peak:.0f} % of peak), {gflop / cpu:.1f} GFLOP per CPU second "
                  f"({100 * gflop / cpu / peak['peak_gflops_per_core']:.0f} % of one core)", flush=True)
        result["singan_finest"] = entry
    if a.only in (None, "stylegan2"):
        cycle, n, batch = stylegan2_cycle()
        gflop = count_flops(cycle) / 1e9 / n
        wall, cpu = time_steps(cycle, a.warmup, a.cycles)
        result["stylegan2_step"] = {"batch": batch, "steps_per_cycle": n, **rates(gflop, wall / n, cpu / n),
                                    "img_per_s": round(batch * n / wall, 2)}
        print(f"StyleGAN2 64 px gray, batch {batch}, mean over a lazy cycle of {n} steps: {gflop:.1f} GFLOP/step, "
              f"{wall / n:.3f} s/step wall, {cpu / n:.3f} CPU s/step -> {gflop * n / wall:.1f} GFLOP/s "
              f"({100 * gflop * n / wall / used_peak:.0f} % of peak), {gflop * n / cpu:.1f} GFLOP per CPU second "
              f"({100 * gflop * n / cpu / peak['peak_gflops_per_core']:.0f} % of one core)", flush=True)
    if a.json:
        atomic_write_json(a.json, result)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
