"""Steady StyleGAN2 training speed (images per second) at the seed configuration.

Trains fewgan's StyleGAN2 on the peer harness's 64 x 64 grayscale coins set (400 PNGs, made by
``../shared/peers/make_stylegan_dataset.py``) with the seed's networks, batch 16, lazy R1 and
path-length regularisation every 8 steps (so a timed window of a multiple of 8 steps holds them
in their proportion), EMA after every G step, and prints steady img/s plus one JSON line.
Start-up and the first ``--warmup`` steps are excluded; the time of each window of
``--window`` steps is reported so that noise on a shared machine is visible.

The peer (NVlabs StyleGAN2, ``--match-fewgan --aug noaug``) ran at about 10.4 img/s on this
machine kind with 2 threads (``../shared/peers/README.md``).

  .venv/bin/python bench/stylegan2_speed.py --aug none        # augmentation off (vs the peer)
  .venv/bin/python bench/stylegan2_speed.py --aug diffaugment # DiffAugment color,translation,cutout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"


def make_dataset(out: Path) -> Path:
    if not (out / "crops.json").is_file():
        subprocess.run([sys.executable, str(PEERS / "make_stylegan_dataset.py"), "--out", str(out), "--n", "200",
                        "--seed", "0"], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/sg_bench/coins64", help="the harness's PNG folder (made if missing)")
    ap.add_argument("--aug", choices=("none", "diffaugment", "diffaugment+ada"), default="none")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=8, help="untimed steps first")
    ap.add_argument("--window", type=int, default=16, help="steps per timed window (a multiple of 8)")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--json", default=None, help="also write the result JSON here")
    a = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from fewgan.data.folder import load_folder
    from fewgan.run import atomic_write_json
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.nets import count_parameters
    from fewgan.stylegan2.train import Trainer

    data = make_dataset(Path(a.data)) if a.data == "/tmp/sg_bench/coins64" else Path(a.data)
    images, meta = load_folder(data, resolution=64, channels=1)
    cfg = StyleGAN2Config(
        resolution=64, batch=a.batch, classical="none", ada="ada" in a.aug,
        diffaugment="color,translation,cutout" if "diffaugment" in a.aug else "none",
        channels_last=a.channels_last, amp=a.amp,
    )
    t_start = time.perf_counter()
    trainer = Trainer(cfg, images, seed=0, device=a.device)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    for _ in range(a.warmup):
        trainer.train_step()
    sync()
    startup = time.perf_counter() - t_start
    windows = []
    cpu0 = time.process_time()
    for w in range(a.windows):
        t0 = time.perf_counter()
        for _ in range(a.window):
            trainer.train_step()
        sync()
        dt = time.perf_counter() - t0
        windows.append(dt)
        print(f"window {w}: {a.window} steps in {dt:.2f} s = {a.window * a.batch / dt:.2f} img/s", flush=True)
    cpu_s = time.process_time() - cpu0
    total = sum(windows)
    steps = a.window * a.windows
    img_s = steps * a.batch / total
    best = max(a.window * a.batch / dt for dt in windows)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    result = {
        "bench": "stylegan2_speed", "aug": a.aug, "device": a.device, "threads": a.threads, "batch": a.batch,
        "channels_last": a.channels_last, "amp": a.amp, "data": str(data), "n_images": int(images.shape[0]),
        "G_params": count_parameters(trainer.G), "D_params": count_parameters(trainer.D),
        "warmup_steps": a.warmup, "timed_steps": steps, "window_steps": a.window,
        "window_seconds": [round(x, 3) for x in windows], "img_per_s": round(img_s, 3),
        "img_per_s_best_window": round(best, 3), "sec_per_kimg": round(1000 / img_s, 2), "sec_per_step": round(total / steps, 4),
        "startup_and_warmup_s": round(startup, 2),
        # CPU seconds of this process per 1000 images: robust to other processes on a shared machine
        # (the peer's steady figure is about 95 s/kimg x 1.97 cores = 187 CPU-s/kimg)
        "cpu_s_per_kimg": round(cpu_s / (steps * a.batch) * 1000, 1), "peer_cpu_s_per_kimg": 187, "loadavg": load, "torch": torch.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "peer_img_per_s": 10.4, "ratio_to_peer": round(img_s / 10.4, 3),
    }
    if a.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    print(f"CPU time: {cpu_s / (steps * a.batch) * 1000:.0f} CPU-s/kimg (peer about 187 at 1.97 cores)")
    print(f"steady: {img_s:.2f} img/s ({1000 / img_s:.1f} s/kimg), best window {best:.2f} img/s; "
          f"peer (NVlabs, --match-fewgan --aug noaug) 10.4 img/s -> ratio {img_s / 10.4:.2f}")
    print(json.dumps(result))
    if a.json:
        atomic_write_json(a.json, result)


if __name__ == "__main__":
    main()
