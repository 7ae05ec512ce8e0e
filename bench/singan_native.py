#!/usr/bin/env python
"""SinGAN at native resolution (issue 14, point 3): seconds per step per scale, peak memory, tiled sampling.

Three measurements, each meant to run under ``/usr/bin/time -v`` (its "Maximum resident set size"
is the peak RSS that bench/README.md reports):

``steps``
    fewgan's real trainer (:class:`fewgan.singan.train.SinGANTrainer`, ``--native``, the default
    256 px crop) on a ``fewgan synth`` micrograph (16-bit gray, ``--size`` px square, seed 11: held
    out from the tests' seeds). Every scale's networks are built as a run builds them, but the scale
    set-up passes (noise amplitude, fixed reconstruction) are not run: the amplitudes are set to
    0.1 and the fixed reconstruction input to the upsampled real image, which changes no shape and
    no cost of a step. Then ``--steps`` training steps are timed at each scale of ``--scales``
    (default: the finest, one in the middle, the largest whole one), after ``--skip`` warm-up steps.
    The projection is ``s/step x 2001`` per scale (measured scales; the others from the nearest
    measured one of the same kind: cropped scales all cost one 256 px crop plus a small chain,
    whole scales scale with their pixels) plus the scale set-up and end passes, projected from
    the tiled pass's seconds per tile (``sample --probe-tiles``).
``sample``
    a random 4096 x 4096 sample (``--out-size``) from a model of a native ``--size`` run's shape
    (untrained generators: the cost and memory of a pass do not depend on the weights), through
    :meth:`fewgan.singan.pyramid.TrainedScales.tiled` with ``--tile`` px tiles. ``--probe-tiles N``
    runs only the first N tiles of each scale (every allocation of the full pass is made: the
    whole per-scale images, noises and resize matrices; the activations are those of one tile)
    and projects the full time from the seconds per tile: a memory probe for machines where the
    full pass takes too long. Without it the whole sample is made.
``column``
    the side-by-side table's measures (issue 14 point 5) for folders of samples that any method made
    of the same real image: SWD against the real image (its own real-halves floor, and the SWD of
    an independent real image, ``--other``, as the real-vs-real reference), particle statistics,
    pixel diversity (:func:`fewgan.api.evaluate`) and the copy measures of
    :func:`fewgan.metrics.copying.single_image_copying`; with the wall time, CPU time and peak RSS
    parsed from the ``/usr/bin/time -v`` output of the commands that made them. Samples smaller
    than the real image (SinGAN at the seed defaults trains a downscaled copy) are compared with the
    real and the other image resized alike (:func:`fewgan.ops.imresize.imresize`, as the pyramid
    resizes), at the samples' own pixel size.
``run``
    prints the full ``fewgan singan train`` command of the issue (``--native --steps N``), for a
    machine with the time to run it.

    /usr/bin/time -v env OMP_NUM_THREADS=1 PYTHONPATH=src python bench/singan_native.py steps --size 2048 \\
        --json bench/results/singan_native_steps_2048.json
    /usr/bin/time -v env OMP_NUM_THREADS=1 PYTHONPATH=src python bench/singan_native.py sample --size 2048 \\
        --out-size 4096 --probe-tiles 2 --json bench/results/singan_native_sample_4096_probe.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

FULL_STEPS = 2000


def _machine() -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_before": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _image(size: int, folder: Path) -> Path:
    from fewgan.data.synthetic import synth

    return synth(folder, size=size, seed=11, format="tiff")


def _trainer(size: int, folder: Path, **options):
    """A native-size trainer with every scale's networks built (set-up passes skipped, see the module docstring)."""
    import torch

    from fewgan.ops.imresize import imresize
    from fewgan.run import resolve_device
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import SinGANTrainer, prepare

    cfg = SinGANConfig.from_dict({"native": True, **options})
    tensor, meta, pyramid = prepare(_image(size, folder), cfg)
    trainer = SinGANTrainer(cfg, pyramid, meta.to_dict(), None, resolve_device("cpu"))
    trainer.start(tensor)
    st = trainer.state
    for k in range(len(pyramid.sizes)):
        st.amps = st.amps[:k] + [1.0 if k == 0 else 0.1]
        gen = trainer._new_generator(cfg.features_at(k))
        if k:
            st.generators[-1].eval().requires_grad_(False)
        st.generators = st.generators[:k] + [gen]
    return trainer, pyramid, cfg, imresize, torch


def steps(args) -> dict:
    from fewgan.singan.train import Discriminator

    with tempfile.TemporaryDirectory() as tmp:
        trainer, pyramid, cfg, imresize, torch = _trainer(args.size, Path(tmp))
    st = trainer.state
    n = len(pyramid.sizes)
    cropped = [k for k, s in enumerate(pyramid.sizes) if max(s) > cfg.crop]
    scales = ([int(v) % n for v in args.scales.split(",")] if args.scales else
              sorted({n - 1, cropped[len(cropped) // 2], cropped[0] - 1}))
    out = {"size": args.size, "crop": cfg.crop, "sizes": [list(s) for s in pyramid.sizes], "cropped": cropped,
           "features": [cfg.features_at(k) for k in range(n)], "machine": _machine(), "scales": {}}
    for k in scales:
        gens = st.generators
        for j, g in enumerate(gens):
            (g.train().requires_grad_(True) if j == k else g.eval().requires_grad_(False))
        st.scale, st.step = k, 0
        st.discriminator = Discriminator(trainer.channels, cfg.features_at(k), cfg.num_blocks, cfg.kernel_size,
                                         conv=cfg.conv, norm=cfg.critic_norm).train()
        st.fixed_prev = imresize(st.reals[k - 1], size=pyramid.sizes[k]) if k else torch.zeros_like(st.reals[0])
        st.g_opt = torch.optim.Adam(gens[k].parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        st.d_opt = torch.optim.Adam(st.discriminator.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        times, cpu = [], []
        for t in range(args.skip + args.steps):
            st.step = t
            t0, c0 = time.perf_counter(), time.process_time()
            trainer.train_step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        steady = sum(times[args.skip:]) / max(1, len(times) - args.skip)
        steady_cpu = sum(cpu[args.skip:]) / max(1, len(cpu) - args.skip)
        out["scales"][k] = {"size": list(pyramid.sizes[k]), "cropped": k in cropped, "seconds": times,
                            "cpu_seconds": cpu, "s_per_step": steady, "cpu_s_per_step": steady_cpu,
                            "projected_steps_s": steady * (FULL_STEPS + 1),
                            "projected_steps_cpu_s": steady_cpu * (FULL_STEPS + 1)}
        print(f"s{k} {pyramid.sizes[k][0]}x{pyramid.sizes[k][1]} ({'crop' if k in cropped else 'whole'}, "
              f"{cfg.features_at(k)} features): {steady:.2f} s/step wall, {steady_cpu:.2f} CPU s/step "
              f"({', '.join(f'{v:.2f}' for v in times)})", flush=True)
    out["machine"]["load_after"] = os.getloadavg()
    return out


def sample(args) -> dict:
    import torch

    from fewgan.singan import pyramid as pyr
    from fewgan.singan.nets import SAMPLING_RULE, make_noise
    from fewgan.singan.pyramid import TrainedScales

    with tempfile.TemporaryDirectory() as tmp:
        trainer, pyramid, cfg, _, _ = _trainer(args.size, Path(tmp))
    gens = trainer.state.generators
    for g in gens:
        g.eval().requires_grad_(False)
    scales = TrainedScales(gens, trainer.state.amps, pyramid.sizes, pyramid.scale_factor)
    sy = args.out_size / pyramid.sizes[-1][0]
    sizes = [(max(1, round(h * sy)), max(1, round(w * sy))) for h, w in pyramid.sizes]
    sizes[-1] = (args.out_size, args.out_size)
    counts = {"tiles": 0}
    real_tiles = pyr.tiles
    if args.probe_tiles:
        def probe(size, tile):
            every = real_tiles(size, tile)
            counts["tiles"] += len(every)
            return every[:args.probe_tiles]
        pyr.tiles = probe
    g = torch.Generator().manual_seed(0)
    noises = {j: make_noise((1, trainer.channels) + tuple(s), j == 0, generator=g) for j, s in enumerate(sizes)}
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        y = scales.tiled(lambda j, shape: noises[j], stop=len(sizes) - 1, tile=args.tile, channels=trainer.channels,
                         sizes=sizes, rule=SAMPLING_RULE)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    pyr.tiles = real_tiles
    # seconds per tile of the finest scale's generator (one full pass over a tile with its margin)
    pad = gens[-1].pad
    x = torch.randn(1, trainer.channels, args.tile + 2 * pad, args.tile + 2 * pad)
    with torch.no_grad():
        gens[-1](x, x)
        t1, c1 = time.perf_counter(), time.process_time()
        gens[-1](x, x)
        per_tile, per_tile_cpu = time.perf_counter() - t1, time.process_time() - c1
    finest_tiles = len(real_tiles(sizes[-1], args.tile))
    out = {"train_size": args.size, "out_size": args.out_size, "tile": args.tile, "probe_tiles": args.probe_tiles,
           "shape": list(y.shape), "seconds": seconds, "cpu_seconds": cpu_seconds, "finest_tile_pass_s": per_tile,
           "finest_tile_pass_cpu_s": per_tile_cpu,
           "finest_tiles": finest_tiles, "machine": _machine()}
    # the finest scale costs 3 passes (1 + L / 2, L = 4 BatchNorm layers), the coarser ones 1 pass each;
    # their pixels add up to sum((h * w) / finest) of the finest scale's
    coarser = sum(h * w for h, w in sizes[:-1]) / (sizes[-1][0] * sizes[-1][1])
    out["projected_full_s"] = per_tile * finest_tiles * (3 + coarser)
    out["projected_full_cpu_s"] = per_tile_cpu * finest_tiles * (3 + coarser)
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}), flush=True)
    return out


def _plain(o):
    """numpy scalars and arrays in JSON."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def time_v(path: str | Path) -> dict:
    """Wall seconds, CPU seconds (user + system) and peak RSS of a ``/usr/bin/time -v`` report."""
    import re

    text = Path(path).read_text()
    get = lambda pattern: re.search(pattern, text).group(1)  # noqa: E731
    clock = [float(v) for v in get(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)").split(":")]
    wall = sum(v * 60 ** i for i, v in enumerate(reversed(clock)))
    rss_kb = int(get(r"Maximum resident set size \(kbytes\): (\d+)"))
    cpu = float(get(r"User time \(seconds\): ([0-9.]+)")) + float(get(r"System time \(seconds\): ([0-9.]+)"))
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_kb": rss_kb,
            "peak_rss_gib": round(rss_kb / 2**20, 3), "command": get(r'Command being timed: "(.*)"')}


def column(args) -> dict:
    import torch

    from fewgan import api
    from fewgan.data.images import read_image
    from fewgan.metrics.copying import single_image_copying
    from fewgan.ops.imresize import imresize

    real, _ = read_image(args.real)
    other, _ = read_image(args.other)
    out = {"real": args.real, "other": args.other, "machine": _machine(), "rows": {}}
    for spec in args.rows:  # a folder of same-size samples is evaluated as a folder, as bench/gpnn_speed.py does
        name, _, rest = spec.partition("=")
        folder, _, timings = rest.partition("@")
        paths = sorted(q for q in Path(folder).glob("*.tif") if not q.stem.endswith("_masks"))
        samples = torch.stack([read_image(q)[0] for q in paths])
        size = tuple(samples.shape[-2:])
        same = size == tuple(real.shape[-2:])
        resize = (lambda x: x) if same else (lambda x: imresize(x[None], size=size)[0].clamp(-1, 1))  # noqa: E731
        r, o = resize(real), resize(other)
        row = {"samples": [str(q) for q in paths], "size": list(size),
               "compared_at": "native" if same else f"{size[0]}x{size[1]} (real and other resized alike)"}
        if timings:
            row["time"] = [time_v(t) for t in timings.split(",")]
        metrics = ["swd", "particles"] + (["diversity"] if len(paths) > 1 else [])  # diversity needs two samples
        ev = api.evaluate(args.real if same else r[None], folder if same else samples, metrics=metrics, seed=0)
        row["evaluate"] = ev["metrics"]
        row["swd_other_real"] = api.evaluate(args.real if same else r[None], o[None], metrics=["swd"], seed=0,
                                             floors=False)["metrics"]["swd"]["value"]
        row["copying"] = single_image_copying(r, samples, other_real=o)
        out["rows"][name] = row
        table = {t["quantity"]: (t["real"]["median"], t["fake"]["median"], t.get("ks"))
                 for t in ev["metrics"]["particles"]["table"]}
        swd = ev["metrics"]["swd"]
        print(json.dumps({name: {"swd": swd["value"], "swd_floor": swd["floor"]["value"],
                                 "swd_other_real": row["swd_other_real"], "particles": table,
                                 "copying": row["copying"], "time": row.get("time")}}, default=_plain), flush=True)
    out["machine"]["load_after"] = os.getloadavg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--size", type=int, default=2048)
    s.add_argument("--steps", type=int, default=2)
    s.add_argument("--skip", type=int, default=1)
    s.add_argument("--scales", default=None, help="comma-separated scale indices (negative from the finest)")
    s.add_argument("--json", default=None)
    m = sub.add_parser("sample")
    m.add_argument("--size", type=int, default=2048, help="the native training size the model has the shape of")
    m.add_argument("--out-size", type=int, default=4096)
    m.add_argument("--tile", type=int, default=512)
    m.add_argument("--probe-tiles", type=int, default=0)
    m.add_argument("--json", default=None)
    c = sub.add_parser("column")
    c.add_argument("--real", required=True, help="the real image the samples were made from")
    c.add_argument("--other", required=True, help="an independent real image of the same size (seed + 1000)")
    c.add_argument("--json", default=None)
    c.add_argument("rows", nargs="+", help="NAME=FOLDER[@TIME_V_FILE[,TIME_V_FILE...]]: samples (*.tif) and the "
                   "/usr/bin/time -v reports of the commands that made them")
    r = sub.add_parser("run")
    r.add_argument("--size", type=int, default=2048)
    r.add_argument("--steps", type=int, default=2)
    args = p.parse_args()
    if args.what == "run":
        print(f"fewgan synth /tmp/native{args.size} --size {args.size} --seed 11 --format tiff && "
              f"/usr/bin/time -v fewgan singan train /tmp/native{args.size}/micrograph.tif --native "
              f"--steps {args.steps} --sample-count 1 --log-every 1 --results /tmp/native_runs")
        return
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = {"steps": steps, "sample": sample, "column": column}[args.what](args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=_plain) + "\n")


if __name__ == "__main__":
    main()
