#!/usr/bin/env python
"""SinGAN training speed: steady seconds per step at every scale, projected total, JSON.

Trains fewgan's SinGAN on one image with a given config for ``--steps`` steps per scale
(the real trainer, in process, no files written) and times every training step. Per scale
it reports the steady seconds per step (mean over the steps after ``--skip``, the way the
peer harness in ``../shared/peers/`` measures between its log lines), the scale's fixed
overhead (set-up, amp, end-of-scale evaluation), the reconstruction PSNR/SSIM, and the
projection to 2000 steps per scale (steady x 2001 + overhead, summed, + start-up).

    OMP_NUM_THREADS=2 .venv/bin/python bench/singan_speed.py --steps 100 --threads 2 \\
        --json bench/results/singan_hubble_s100.json \\
        --peer-json ../shared/peers/results/a_hubble_s100.json

The default image is the peer harness's ``hubble.png`` (``skimage.data.hubble_deep_field()``
rows 0:250, columns 250:450, RGB 250 x 200); ``--image`` takes any file. With
``--peer-json`` the per-scale ratio fewgan / peer is printed too. Run one benchmark at a
time and alternate with the peer: on a shared 2-core machine timings move by +-10 % or more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

FULL_STEPS = 2000


def hubble() -> "tuple":
    import numpy as np
    import torch
    from skimage import data

    from fewgan.data.images import ImageMeta

    rgb = data.hubble_deep_field()[0:250, 250:450]
    tensor = torch.from_numpy(rgb.astype(np.float64) / 127.5 - 1.0).permute(2, 0, 1).float().contiguous()
    meta = ImageMeta(format="png", dtype="uint8", bit_depth=8, channels=3, source_channels=3,
                     data_range=(0.0, 255.0), height=250, width=200, path="skimage hubble_deep_field[0:250, 250:450]")
    return tensor, meta


class PeerSteps:
    """The public kligvasser/SinGAN trainer's own step, driven scale by scale in this process.

    Nothing of the peer is copied: its ``generation/`` folder is put on ``sys.path`` and its
    ``Trainer`` is called (``_init_global``, ``_init_local``, ``_train_iteration`` and the
    two scheduler steps: exactly what its ``_train_single_scale`` does per step, without
    the periodic evaluation). ``tensorboardX`` (imported by the peer, unused without
    ``--use-tb``) is stubbed; ``torchvision`` comes from the harness's shims.
    """

    def __init__(self, args, tensor):
        import types

        import numpy as np
        from PIL import Image

        gen = Path(args.peer) / "generation"
        if not (gen / "trainer.py").is_file():
            raise SystemExit(f"--peer {args.peer}: no generation/trainer.py there")
        self.rev = (Path(args.peer) / ".peer_rev").read_text().strip() if (Path(args.peer) / ".peer_rev").exists() else None
        sys.path[:0] = [args.peer_shims, str(gen)]
        if "tensorboardX" not in sys.modules:
            stub = types.ModuleType("tensorboardX")
            stub.SummaryWriter = object
            sys.modules["tensorboardX"] = stub
        import tempfile

        import torch

        self.tmp = tempfile.mkdtemp(prefix="peer_steps_")
        image = args.image
        if image is None:
            image = os.path.join(self.tmp, "hubble.png")
            arr = ((tensor.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
            Image.fromarray(arr).save(image)
        argv0 = sys.argv
        sys.argv = ["main.py", "--device", "cpu", "--root", image, "--min-size", str(args.min_size),
                    "--max-size", str(args.max_size), "--num-steps", str(args.steps), "--lr", repr(args.lr),
                    "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--results-dir", self.tmp,
                    "--save", "run", "--print-every", str(10**9), "--eval-every", str(10**9)]
        try:
            import main as peer_main
            from data import get_loader
            from trainer import Trainer

            self.args = peer_main.get_arguments()
        finally:
            sys.argv = argv0
        self.args.device_ids = None
        self.trainer = Trainer(self.args)
        self.loader = get_loader(self.args)
        self.trainer._init_global(self.loader)
        torch.set_num_threads(args.threads)

    def begin_scale(self, k: int) -> None:
        self.trainer.scale = k
        self.trainer._init_local(self.loader)

    def step(self, t: int) -> None:
        tr = self.trainer
        tr.step = t
        tr._train_iteration(self.loader)
        tr.g_scheduler.step(epoch=t)
        tr.d_scheduler.step(epoch=t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default=None, help="image file (default: the peer harness's hubble crop)")
    ap.add_argument("--min-size", type=int, default=16)
    ap.add_argument("--max-size", type=int, default=200)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="steps per scale to run (0..N, like the peer)")
    ap.add_argument("--skip", type=int, default=None, help="first steps of a scale left out of the steady mean "
                                                           "(default: a quarter of --steps, as the peer harness)")
    ap.add_argument("--scales", default=None, help="comma-separated scale indices to time (others are set up only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--concurrent", action="store_true",
                    help="run the two halves of each update on two single-threaded workers (concurrent=True)")
    ap.add_argument("--conv", choices=("auto", "winograd", "direct"), default="auto",
                    help="CPU kernels of the wide 3x3 convolutions (SinGANConfig.conv; default auto)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--peer-json", default=None, help="a peer result JSON to compare with, scale by scale")
    ap.add_argument("--peer", default=None, metavar="TREE",
                    help="kligvasser/SinGAN work tree (see ../shared/peers/setup_peer.sh): time its training step "
                         "in this process, interleaved step by step with fewgan's, same image and config")
    ap.add_argument("--peer-shims", default=str(Path(__file__).resolve().parents[1].parent / "shared/peers/shims"),
                    help="folder with the torchvision stand-in the peer imports")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from fewgan.run import RunLogger, atomic_write_json, resolve_device
    from fewgan.singan import outputs
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import SinGANTrainer, prepare
    from fewgan.singan.pyramid import plan_pyramid

    t_start = time.perf_counter()
    cfg = SinGANConfig(min_size=args.min_size, max_size=args.max_size, lr=args.lr, steps=args.steps,
                       batch_size=args.batch_size, seed=args.seed, log_every=10**9, checkpoint_every=10**9,
                       concurrent=args.concurrent, conv=args.conv)
    if args.image:
        tensor, meta, pyramid = prepare(args.image, cfg)
    else:
        tensor, meta = hubble()
        pyramid = plan_pyramid(250, 200, cfg.min_size, cfg.max_size, cfg.scale_factor_init, cfg.receptive_field)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    trainer = SinGANTrainer(cfg, pyramid, meta.to_dict(), None, device, RunLogger(None, quiet=True))
    trainer.start(tensor)
    timed = set(range(len(pyramid.sizes))) if args.scales is None else {int(s) for s in args.scales.split(",")}
    skip = args.skip if args.skip is not None else max(1, args.steps // 4)
    startup = time.perf_counter() - t_start
    print(f"fewgan SinGAN speed: {len(pyramid.sizes)} scales, {args.steps} steps/scale, {args.threads} threads, "
          f"device {device}, torch {torch.__version__}", flush=True)

    peer = PeerSteps(args, tensor) if args.peer else None
    per_scale = []
    st = trainer.state
    for k, (h, w) in enumerate(pyramid.sizes):
        t0 = time.perf_counter()
        trainer._begin_scale(k)
        sync()
        setup_s = time.perf_counter() - t0
        if peer is not None:
            peer.begin_scale(k)
        if k not in timed:
            continue
        times, cpu, peer_times, peer_cpu = [], [], [], []
        for t in range(args.steps + 1):
            st.step = t
            a, c = time.perf_counter(), time.process_time()
            values = trainer.train_step()
            sync()
            times.append(time.perf_counter() - a)
            cpu.append(time.process_time() - c)
            if peer is not None:
                a, c = time.perf_counter(), time.process_time()
                peer.step(t)
                peer_times.append(time.perf_counter() - a)
                peer_cpu.append(time.process_time() - c)
        st.last.update(values)
        t1 = time.perf_counter()
        rec = outputs.end_of_scale(trainer, k)
        end_s = time.perf_counter() - t1
        steady = sum(times[skip:]) / max(1, len(times[skip:]))
        row = {"scale": f"s{k}", "size_hw": f"{h}x{w}", "features": cfg.features_at(k), "amp": st.amps[k],
               "sec_per_step_steady": round(steady, 5), "sec_per_step_all": round(sum(times) / len(times), 5),
               "steady_window_steps": len(times[skip:]), "setup_s": round(setup_s, 4), "end_s": round(end_s, 4),
               "overhead_s": round(setup_s + end_s + sum(times[:skip]) - skip * steady, 4),
               "psnr": rec["psnr"], "ssim": rec["ssim"],
               "cpu_sec_per_step_steady": round(sum(cpu[skip:]) / max(1, len(cpu[skip:])), 5),
               "last_losses": {key: round(float(v), 6) for key, v in values.items()}}
        if peer is not None:
            pw = sum(peer_times[skip:]) / max(1, len(peer_times[skip:]))
            pc = sum(peer_cpu[skip:]) / max(1, len(peer_cpu[skip:]))
            row["peer_interleaved"] = {"sec_per_step_steady": round(pw, 5), "cpu_sec_per_step_steady": round(pc, 5),
                                       "ratio_wall": round(steady / pw, 3),
                                       "ratio_cpu": round(row["cpu_sec_per_step_steady"] / pc, 3)}
            print(f"      interleaved peer: {pw:.4f} s/step wall, ratio {steady / pw:.3f}; "
                  f"cpu ratio {row['peer_interleaved']['ratio_cpu']:.3f}",
                  flush=True)
        per_scale.append(row)
        print(f"s{k:<2d} {h:>4d}x{w:<4d} {row['features']:>3d} feat  steady {steady:.4f} s/step  "
              f"overhead {row['overhead_s']:.2f} s  psnr {rec['psnr']:.2f} dB  ssim {rec['ssim']:.3f}", flush=True)

    steady_total = sum(r["sec_per_step_steady"] * (FULL_STEPS + 1) for r in per_scale)
    overhead_total = sum(r["overhead_s"] for r in per_scale)
    projection = startup + steady_total + overhead_total
    print(f"projected total for {FULL_STEPS} steps/scale: {projection:.0f} s ({projection / 3600:.2f} h); "
          f"measured wall {time.perf_counter() - t_start:.0f} s", flush=True)

    result = {
        "tool": "bench/singan_speed.py", "argv": sys.argv, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "device": str(device),
                    "loadavg": os.getloadavg()},
        "config": cfg.to_dict(), "pyramid": pyramid.to_dict(), "startup_s": round(startup, 3),
        "per_scale": per_scale,
        "projection_2000_steps_per_scale_s": round(projection, 1),
        "finest": {"psnr": per_scale[-1]["psnr"], "ssim": per_scale[-1]["ssim"]} if per_scale else None,
    }
    if peer is not None:
        rows = [r for r in per_scale if "peer_interleaved" in r]
        few = sum(r["sec_per_step_steady"] for r in rows)
        few_cpu = sum(r["cpu_sec_per_step_steady"] for r in rows)
        pw = sum(r["peer_interleaved"]["sec_per_step_steady"] for r in rows)
        pc = sum(r["peer_interleaved"]["cpu_sec_per_step_steady"] for r in rows)
        result["peer_interleaved"] = {"tree": args.peer, "rev": peer.rev, "sum_steady_ratio_wall": round(few / pw, 3),
                                      "sum_steady_ratio_cpu": round(few_cpu / pc, 3)}
        print(f"interleaved, summed over scales (= projected steady total): wall ratio {few / pw:.3f}, "
              f"cpu ratio {few_cpu / pc:.3f}")
    if args.peer_json:
        peer = json.loads(Path(args.peer_json).read_text())
        by_size = {s["size_hw"]: s for s in peer["per_scale"]}
        ratios = []
        for r in per_scale:
            p = by_size.get(r["size_hw"])
            if p:
                ratio = r["sec_per_step_steady"] / p["sec_per_step_steady"]
                ratios.append({"size_hw": r["size_hw"], "fewgan": r["sec_per_step_steady"],
                               "peer": p["sec_per_step_steady"], "ratio": round(ratio, 3)})
                print(f"  {r['size_hw']:>8s}: fewgan {r['sec_per_step_steady']:.4f} / peer "
                      f"{p['sec_per_step_steady']:.4f} = {ratio:.3f}")
        peer_proj = peer.get("projection_2000_steps_per_scale_s", {})
        peer_total = peer_proj.get("steady_plus_overhead") if isinstance(peer_proj, dict) else None
        result["peer"] = {"json": args.peer_json, "per_scale": ratios, "projection_s": peer_total}
        if peer_total:
            result["peer"]["projection_ratio"] = round(projection / peer_total, 3)
            print(f"projected total ratio fewgan / peer: {projection / peer_total:.3f}")
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
