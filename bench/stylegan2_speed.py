"""Steady StyleGAN2 training speed (images per second) at the seed configuration, beside the peer.

Trains fewgan's StyleGAN2 on the peer harness's 64 x 64 grayscale coins set (400 PNGs, made by
``../shared/peers/make_stylegan_dataset.py``) with the seed's networks, batch 16, lazy R1 and
path-length regularisation every 8 steps (so a timed window of a multiple of 8 steps holds them
in their proportion), EMA after every G step, and prints steady img/s plus one JSON line.
Start-up and the first ``--warmup`` steps are excluded; the time of each window of
``--window`` steps is reported so that noise on a shared machine is visible.

With ``--peer TREE`` (an NVlabs/stylegan3 work tree made by ``../shared/peers/setup_stylegan_peer.sh``)
the peer is run through the harness ``../shared/peers/stylegan_peer.py`` (``--match-fewgan``)
*alternately* with fewgan in this one invocation: ``--rounds`` times, fewgan's timed windows, then one
peer run of ``--peer-kimg`` kimg. The ratio printed is fewgan's img/s over the peer's, both medians
over the rounds, measured under the same machine load. Without ``--peer`` no ratio is printed: a
figure recorded on another day is shown only labelled as recorded.

The peer has no DiffAugment. ``--aug none`` is compared with the peer's ``--aug noaug``,
``--aug diffaugment+ada`` with the peer's ``--aug ada``; ``--aug diffaugment`` with the peer's
``noaug`` (fewgan then pays for an augmentation the peer does not run; ``--peer-aug`` overrides).

  ../shared/peers/setup_stylegan_peer.sh <git dir of NVlabs/stylegan3> /tmp/peer_stylegan /tmp/peer-sg-venv /tmp/sg_bench
  .venv/bin/python bench/stylegan2_speed.py --aug none --peer /tmp/peer_stylegan --rounds 2
  .venv/bin/python bench/stylegan2_speed.py --aug diffaugment --peer /tmp/peer_stylegan --rounds 2
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


# The peer's steady figure recorded by the harness on 2026-11-24 (../shared/peers/README.md). Printed
# only labelled as recorded, never used as the ratio.
RECORDED_PEER = {"img_per_s": 10.4, "cpu_s_per_kimg": 187, "when": "2026-11-24, another machine state"}
PEER_AUG = {"none": "noaug", "diffaugment": "noaug", "diffaugment+ada": "ada"}


def make_dataset(out: Path) -> Path:
    if not (out / "crops.json").is_file():
        subprocess.run([sys.executable, str(PEERS / "make_stylegan_dataset.py"), "--out", str(out), "--n", "200",
                        "--seed", "0"], check=True)
    return out


def peer_zip(data: Path, a) -> Path:
    """The peer reads a dataset zip made by its own dataset_tool.py from the same PNG folder."""
    zipped = Path(a.peer_data) if a.peer_data else data.with_suffix(".zip")
    if not zipped.is_file():
        subprocess.run([a.peer_python, str(Path(a.peer) / "dataset_tool.py"), f"--source={data}",
                        f"--dest={zipped}"], check=True, cwd=a.peer)
    return zipped


def run_peer(a, data: Path, zipped: Path, round_index: int) -> dict:
    """One peer run through the harness; returns its steady img/s and CPU seconds per kimg."""
    out = Path(a.peer_out) / f"round{round_index}"
    js = out.parent / f"round{round_index}.json"
    cmd = [sys.executable, str(PEERS / "stylegan_peer.py"), "run", "--peer", a.peer, "--python", a.peer_python,
           "--data", str(zipped), "--images", str(data), "--kimg", str(a.peer_kimg), "--match-fewgan",
           "--aug", a.peer_aug or PEER_AUG[a.aug], "--threads", str(a.threads), "--batch", str(a.batch),
           "--out", str(out), "--json", str(js), "--force", "--quiet"]
    print("peer:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    d = json.loads(js.read_text())
    r, m = d["result"], d.get("machine", {})
    cpu = (m.get("cpu_user_s") or 0) + (m.get("cpu_sys_s") or 0)
    return {"img_per_s": r["img_per_s"], "sec_per_kimg": r["sec_per_kimg"], "json": str(js),
            "cpu_s_total": round(cpu, 1) if cpu else None}


def time_fewgan(trainer, a, sync) -> tuple[list[float], float]:
    windows = []
    cpu0 = time.process_time()
    for w in range(a.windows):
        t0 = time.perf_counter()
        for _ in range(a.window):
            trainer.train_step()
        sync()
        dt = time.perf_counter() - t0
        windows.append(dt)
        print(f"fewgan window {w}: {a.window} steps in {dt:.2f} s = {a.window * a.batch / dt:.2f} img/s", flush=True)
    return windows, time.process_time() - cpu0


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/sg_bench/coins64", help="the harness's PNG folder (made if missing)")
    ap.add_argument("--aug", choices=("none", "diffaugment", "diffaugment+ada"), default="none")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=8, help="untimed steps first")
    ap.add_argument("--window", type=int, default=16, help="steps per timed window (a multiple of 8)")
    ap.add_argument("--windows", type=int, default=4, help="timed windows per round")
    ap.add_argument("--rounds", type=int, default=1, help="fewgan/peer alternations (with --peer)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--peer", default=None, help="NVlabs/stylegan3 work tree: run the peer alternately")
    ap.add_argument("--peer-python", default="/tmp/peer-sg-venv/bin/python", help="python of the peer venv")
    ap.add_argument("--peer-data", default=None, help="the peer's dataset zip (default: DATA.zip, made if missing)")
    ap.add_argument("--peer-kimg", type=int, default=2, help="kimg per peer run (its first tick is excluded)")
    ap.add_argument("--peer-aug", choices=("noaug", "ada"), default=None, help="override the peer's augmentation")
    ap.add_argument("--peer-out", default="/tmp/sg_bench/runs/interleaved", help="the peer's run folders")
    ap.add_argument("--json", default=None, help="also write the result JSON here")
    a = ap.parse_args()
    if a.window % 8:
        ap.error("--window must be a multiple of 8 (the lazy regularisation interval)")

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from fewgan.data.folder import load_folder
    from fewgan.run import atomic_write_json
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.nets import count_parameters
    from fewgan.stylegan2.train import Trainer

    data = make_dataset(Path(a.data)) if a.data == "/tmp/sg_bench/coins64" else Path(a.data)
    zipped = peer_zip(data, a) if a.peer else None
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

    rounds = []
    for k in range(a.rounds if a.peer else 1):
        windows, cpu_s = time_fewgan(trainer, a, sync)
        steps = a.window * a.windows
        entry = {"fewgan_window_seconds": [round(x, 3) for x in windows],
                 "fewgan_img_per_s": round(steps * a.batch / sum(windows), 3),
                 "fewgan_cpu_s_per_kimg": round(cpu_s / (steps * a.batch) * 1000, 1)}
        if a.peer:
            entry["peer"] = run_peer(a, data, zipped, k)
            entry["ratio"] = round(entry["fewgan_img_per_s"] / entry["peer"]["img_per_s"], 3)
            print(f"round {k}: fewgan {entry['fewgan_img_per_s']:.2f} img/s, peer {entry['peer']['img_per_s']:.2f} "
                  f"img/s -> {entry['ratio']:.2f}x", flush=True)
        rounds.append(entry)

    fewgan_img_s = median([r["fewgan_img_per_s"] for r in rounds])
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    result = {
        "bench": "stylegan2_speed", "aug": a.aug, "device": a.device, "threads": a.threads, "batch": a.batch,
        "channels_last": a.channels_last, "amp": a.amp, "data": str(data), "n_images": int(images.shape[0]),
        "G_params": count_parameters(trainer.G), "D_params": count_parameters(trainer.D),
        "warmup_steps": a.warmup, "window_steps": a.window, "windows_per_round": a.windows,
        "startup_and_warmup_s": round(startup, 2), "rounds": rounds,
        "img_per_s": fewgan_img_s, "sec_per_kimg": round(1000 / fewgan_img_s, 2),
        "loadavg": load, "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "recorded_peer_not_a_ratio": RECORDED_PEER,
    }
    if a.peer:
        peer_img_s = median([r["peer"]["img_per_s"] for r in rounds])
        result.update({"peer_aug": a.peer_aug or PEER_AUG[a.aug], "peer_kimg_per_run": a.peer_kimg,
                       "peer_img_per_s": peer_img_s, "ratio_to_peer": round(fewgan_img_s / peer_img_s, 3)})
    if a.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    print(f"fewgan steady: {fewgan_img_s:.2f} img/s ({1000 / fewgan_img_s:.1f} s/kimg), median of {len(rounds)} round(s)")
    if a.peer:
        print(f"peer (NVlabs, --match-fewgan --aug {result['peer_aug']}), alternated: {result['peer_img_per_s']:.2f} img/s"
              f" -> fewgan / peer = {result['ratio_to_peer']:.2f}x")
    else:
        print(f"no peer run (pass --peer TREE for a ratio); recorded peer figure, not comparable: "
              f"{RECORDED_PEER['img_per_s']} img/s ({RECORDED_PEER['when']})")
    print(json.dumps(result))
    if a.json:
        atomic_write_json(a.json, result)


if __name__ == "__main__":
    main()
