"""Fake run folders in the format the trainers write (config.json, metrics.jsonl, log.txt, images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewgan.run import SINGAN_FIGURE_FILE, write_run_config


def _write_jsonl(path: Path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def singan_records(scales: int = 4, steps: int = 40, every: int = 10) -> list[dict]:
    rng = np.random.default_rng(0)
    records, seconds = [], 0.0
    for k in range(scales):
        amp = 1.0 if k == 0 else 0.1 / (k + 1)
        for i in range(0, steps + 1, every):
            seconds += 0.5
            D_r, D_f, D_gp = -float(rng.normal(1, 0.1)), float(rng.normal(0.5, 0.1)), float(rng.random())
            G_recon, G_adv = float(0.1 / (i + 1)), float(rng.normal(-0.5, 0.1))
            records.append({"scale": k, "step": i, "D": D_r + D_f + 0.1 * D_gp, "D_r": D_r, "D_f": D_f,
                            "D_gp": D_gp, "G": 10 * G_recon + G_adv, "G_recon": G_recon, "G_adv": G_adv,
                            "amp": amp, "lr": 4e-4, "seconds": seconds})
        records.append({"event": "scale_end", "scale": k, "size": [16 + 8 * k, 20 + 10 * k], "amp": amp,
                        "psnr": 20.0 + k, "ssim": 0.5 + 0.1 * k, "seconds_scale": 2.5 + k, "features": 32})
    return records


def stylegan2_records(epochs: int = 6) -> list[dict]:
    records, step = [], 0
    for epoch in range(epochs):
        for _ in range(3):
            step += 1
            records.append({"kimg": step * 0.016, "epoch": epoch, "step": step, "loss_G": 1.0 - 0.01 * step,
                            "loss_D": 1.2 + 0.01 * step, "r1": 0.05, "pl": 0.3, "ada_p": 0.01 * step,
                            "lr": 1e-3, "seconds": 2.0 * step})
        records.append({"event": "eval", "epoch": epoch, "kimg": step * 0.016, "metric": "swd",
                        "value": 10.0 / (epoch + 1) + (3 if epoch == 4 else 0), "best": epoch != 4})
    return records


def _png8(path: Path, size=(24, 32), rgb=False, seed=0) -> None:
    rng = np.random.default_rng(seed)
    shape = (*size, 3) if rgb else size
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)


def _png16(path: Path, size=(24, 32)) -> None:
    array = (np.arange(size[0] * size[1]).reshape(size) * 50).astype(np.uint16)
    Image.fromarray(array).save(path)


def make_singan_run(root: Path) -> Path:
    run = root / "2026-01-01_00-00-00"
    run.mkdir()
    write_run_config(run, "singan", {"steps": 40, "max_size": 64, "min_size": 16, "lr": 4e-4},
                     data={"path": "micrograph.png", "height": 48, "width": 64, "channels": 1,
                           "dtype": "uint16", "bit_depth": 16, "format": "png"})
    _write_jsonl(run / "metrics.jsonl", singan_records())
    (run / "log.txt").write_text("\n".join(f"line {i} <b>&" for i in range(100)) + "\n", encoding="utf-8")
    _png8(run / SINGAN_FIGURE_FILE, (80, 120))
    (run / "samples").mkdir()
    for i in range(3):
        _png16(run / "samples" / f"sample_{i:03d}.png")
    import tifffile

    tifffile.imwrite(run / "samples" / "large_000.tif", np.linspace(0, 1, 48 * 40, dtype=np.float32).reshape(48, 40))
    _png8(run / "recon_s3.png", (24, 32), rgb=True)
    # outputs that must never be shown as samples
    (run / "checkpoints").mkdir()
    _png8(run / "checkpoints" / "not_a_sample.png")
    (run / "tb").mkdir()
    return run


def make_stylegan2_run(root: Path) -> Path:
    run = root / "sg2run"
    run.mkdir()
    write_run_config(run, "stylegan2", {"epochs": 6, "batch": 16, "resolution": 16},
                     data={"root": "particles/", "count": 40, "resolution": 16,
                           "image": {"height": 16, "width": 16, "channels": 1, "dtype": "uint8"}})
    _write_jsonl(run / "metrics.jsonl", stylegan2_records())
    (run / "log.txt").write_text("epoch 0\n", encoding="utf-8")
    _png8(run / "fakes_epoch0005.png", (34, 34))
    return run


@pytest.fixture
def singan_run(tmp_path) -> Path:
    return make_singan_run(tmp_path)


@pytest.fixture
def stylegan2_run(tmp_path) -> Path:
    return make_stylegan2_run(tmp_path)


@pytest.fixture
def eval_json() -> dict:
    return make_eval_json()


def make_eval_json() -> dict:
    """An eval.json in the layout of fewgan.metrics.evaluate.evaluate (a few metrics, one skipped)."""
    return {
        "mode": "single-image",
        "real": {"source": "micrograph.png", "kind": "image", "n": 1, "size": [48, 64]},
        "fake": {"source": "run", "kind": "run", "n": 8, "size": [48, 64]},
        "metrics": {
            "swd": {"value": 12.5, "levels": [2.0, 3.0], "floor": {"value": 3.25, "levels": [1.0, 1.5]}},
            "psnr": {"value": 24.1, "pairing": "the run's fixed-noise reconstruction against the real image"},
            "sifid": {"skipped": "Inception weights missing: fewgan weights import FILE", "seconds": 0.0},
            "particles": {
                "table": [{"quantity": "diameter", "unit": "px", "real": {"n": 3, "mean": 8.0},
                           "fake": {"n": 5, "mean": 9.0}, "wasserstein": 1.0, "ks": 0.2, "ks_pvalue": 0.9}],
                "g_r": {"r": [1.0, 2.0, 3.0], "unit": "px", "real": [0.0, 1.0, 1.1], "fake": [0.0, None, 0.9]},
                "particles": {"real": 3, "fake": 5},
            },
        },
        "table": [
            {"metric": "swd", "value": 12.5, "floor": 3.25, "note": "levels 2, 3"},
            {"metric": "psnr", "value": 24.1, "floor": None, "note": "reconstruction"},
            {"metric": "sifid", "value": None, "floor": None, "note": "skipped: Inception weights missing: fewgan weights import FILE"},
            {"metric": "particles diameter KS", "value": 0.2, "floor": None, "note": "W1 1 px"},
        ],
        "floor": "two halves of the real image",
        "warnings": ["swd: <few patches>"],
    }


def make_particles_json() -> dict:
    return {"real": {"diameter": [7.0, 8.0, 9.0], "count": [3]}, "fake": {"diameter": [8.5, 9.0, 9.5], "count": [5]},
            "units": {"diameter": "px", "count": "per image"}}


@pytest.fixture
def fake():
    """This module: its builders (``singan_records``, ``make_singan_run``, ...) for tests to call."""
    import sys

    return sys.modules[__name__]
