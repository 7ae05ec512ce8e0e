"""Training runs end to end: files, quality rising with steps, exact resume (in process and after SIGKILL),
grayscale and 16-bit inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fewgan.run import load_checkpoint, read_metrics
from fewgan.singan.train import train

from .conftest import TINY, blobs, write_png


def _weights(run: Path) -> dict:
    return load_checkpoint(Path(run) / "generator.pt")


def _assert_same_model(a: Path, b: Path) -> None:
    ma, mb = _weights(a), _weights(b)
    assert ma["amps"] == mb["amps"]
    assert len(ma["generators"]) == len(mb["generators"])
    for ga, gb in zip(ma["generators"], mb["generators"]):
        assert ga.keys() == gb.keys()
        for key in ga:
            assert torch.equal(ga[key], gb[key]), key


def _losses(run: Path) -> list:
    return [{k: v for k, v in r.items() if k not in ("seconds", "seconds_scale")} for r in read_metrics(run)]


def test_run_folder_contents(tiny_run):
    run = Path(tiny_run)
    for name in ("config.json", "log.txt", "metrics.jsonl", "generator.pt", "amps.json", "scales.png",
                 "checkpoints/resume.pt", "checkpoints/s0.pt", "checkpoints/s3.pt",
                 "samples/s0_recon.png", "samples/s3_samples.png"):
        assert (run / name).is_file(), name
    log = (run / "log.txt").read_text()
    assert "Number of parameters in generator: 29763" in log
    assert "Number of parameters in discriminator: 29185" in log
    assert "Iteration 5, D: " in log and ", G_adv: " in log
    assert "s3, size: 24x22, amp: " in log
    records = read_metrics(run)
    steps = [r for r in records if "step" in r]
    assert {"scale", "step", "D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv", "amp", "lr", "seconds"} <= set(steps[0])
    ends = [r for r in records if r.get("event") == "scale_end"]
    assert [r["scale"] for r in ends] == [0, 1, 2, 3]
    assert ends[0]["amp"] == 1.0 and all(0 < r["amp"] < 1 for r in ends[1:])
    assert all(np.isfinite(r["psnr"]) and -1 <= r["ssim"] <= 1 for r in ends)
    assert ends[-1]["size"] == [24, 22]


def test_reconstruction_psnr_rises_with_steps(tmp_path, rgb_image):
    def finest_psnr(steps):
        run = train(rgb_image, results=tmp_path / str(steps), quiet=True, **{**TINY, "steps": steps})
        return [r for r in read_metrics(run) if r.get("event") == "scale_end"][-1]["psnr"]

    short, long = finest_psnr(2), finest_psnr(40)
    assert long > short + 1.0, (short, long)


def test_resume_in_process_is_exact(tmp_path, rgb_image):
    full = train(rgb_image, results=tmp_path / "full", quiet=True, **TINY)
    # 11 steps per scale, checkpoints every 4: stop at s1 step 6 (last checkpoint: s1, step 4)
    cut = train(rgb_image, results=tmp_path / "cut", quiet=True, stop_after=18, **TINY)
    assert not (cut / "generator.pt").exists()
    ckpt = load_checkpoint(cut / "checkpoints" / "resume.pt")
    assert (ckpt["scale"], ckpt["step"], ckpt["begun"]) == (1, 4, True)
    resumed = train(resume=cut, quiet=True)
    assert resumed == cut
    _assert_same_model(full, cut)
    assert _losses(full) == _losses(cut)


def test_resume_rejects_changed_options(tmp_path, tiny_run):
    from fewgan.errors import FewganError

    with pytest.raises(FewganError, match="cannot change steps"):
        train(resume=tiny_run, steps=99, quiet=True)


def _cli(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fewgan", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    image = write_png(tmp_path / "img.png", blobs(26, 24, 3, seed=3))
    args = ["singan", "train", image, "--steps", "40", "--checkpoint-every", "5", "--log-every", "20",
            "--sample-count", "1", "--quiet"]
    ref = _cli(args + ["--results", str(tmp_path / "ref")])
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    (ref_run,) = (tmp_path / "ref").iterdir()

    proc = _cli(args + ["--results", str(tmp_path / "killed")])
    deadline = time.time() + 300
    run = None
    while time.time() < deadline and proc.poll() is None:
        runs = list((tmp_path / "killed").glob("*")) if (tmp_path / "killed").exists() else []
        if runs:
            run = runs[0]
            ends = [r for r in read_metrics(run) if r.get("event") == "scale_end"]
            if ends and (run / "checkpoints" / "resume.pt").exists():
                time.sleep(0.3)  # land somewhere inside scale 1
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "generator.pt").exists()

    resumed = _cli(["singan", "train", "--resume", str(run), "--quiet"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    _assert_same_model(ref_run, run)
    assert _losses(ref_run) == _losses(run)
    # log.txt: the uninterrupted run's lines once each, plus one 'resumed from' line
    ref_lines = (ref_run / "log.txt").read_text().splitlines()
    lines = (run / "log.txt").read_text().splitlines()
    assert sum(line.startswith("resumed from") for line in lines) == 1
    assert len(lines) == len(ref_lines) + 1
    losses = lambda ls: [x for x in ls if x.startswith("Iteration")]  # noqa: E731
    assert len(losses(ref_lines)) > 4 and losses(lines) == losses(ref_lines)
    assert sorted(p.name for p in (run / "samples").iterdir()) == sorted(p.name for p in (ref_run / "samples").iterdir())


def test_grayscale_in_gray_out(tmp_path):
    from PIL import Image

    from fewgan.singan.sample import SinGANModel, sample_to_folder

    image = write_png(tmp_path / "gray.png", blobs(22, 20, 1, seed=1))
    run = train(image, results=tmp_path / "runs", quiet=True, **{**TINY, "steps": 3})
    model = SinGANModel.load(run)
    # trained as three identical channels (the seed's RGB networks, issue 17), given back gray
    assert model.channels == 3 and model.generators[0].channels == 3 and model.meta.channels == 1
    assert torch.equal(model.reals[-1][:, 0], model.reals[-1][:, 2])
    three = model._sample_all(2, 0, None, None, None, 16)
    assert torch.allclose(model.sample_tensor(2, seed=0), three.mean(1, keepdim=True), atol=1e-6)
    assert float((three[:, 0] - three[:, 1]).abs().max()) > 1e-4  # the channels are trained apart
    assert model.sample(2, seed=0).shape == (2, 22, 20, 1)
    assert model.reconstruction().image.shape == (1, 1, 22, 20)
    one = SinGANModel.load(train(image, results=tmp_path / "runs1", quiet=True, channels=1, **{**TINY, "steps": 3}))
    assert one.channels == 1 and one.generators[0].channels == 1 and one.sample(2, seed=0).shape == (2, 22, 20, 1)
    out = sample_to_folder(run, tmp_path / "out", n=2)
    with Image.open(out / "sample_00000.png") as im:
        assert im.mode == "L" and im.size == (20, 22)


def test_16bit_in_16bit_out(tmp_path):
    import tifffile

    from fewgan.singan.sample import SinGANModel, sample_to_folder

    array = np.rint(blobs(22, 20, 1, seed=2, peak=60000.0)[..., 0]).astype(np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, array)
    run = train(path, results=tmp_path / "runs", quiet=True, **{**TINY, "steps": 3})
    samples = SinGANModel.load(run).sample(2, seed=0)
    assert samples.dtype == np.uint16 and samples.shape == (2, 22, 20, 1)
    out = sample_to_folder(run, tmp_path / "out", n=1, reconstruct=True)
    written = tifffile.imread(out / "sample_00000.tif")
    assert written.dtype == np.uint16 and written.shape == (22, 20)
    assert int(written.max()) > 255  # real 16-bit values, not 8-bit scaled
    assert tifffile.imread(out / "reconstruction.tif").dtype == np.uint16


@pytest.mark.parametrize("critic_norm", ["none", "batch"])
def test_concurrent_halves_match_serial_and_resume_exactly(tmp_path, rgb_image, critic_norm):
    """With 2 threads the two halves of each update run concurrently: same losses as the serial
    pass up to rounding, and still deterministic (exact resume); with either critic normalisation."""
    torch.set_num_threads(2)
    try:
        opts = {**TINY, "steps": 6, "checkpoint_every": 3, "concurrent": True, "critic_norm": critic_norm}
        conc = train(rgb_image, results=tmp_path / "conc", quiet=True, **opts)
        serial = train(rgb_image, results=tmp_path / "serial", quiet=True, **{**opts, "concurrent": False})
        cut = train(rgb_image, results=tmp_path / "cut", quiet=True, stop_after=12, **opts)
        train(resume=cut, quiet=True)
    finally:
        torch.set_num_threads(1)
    _assert_same_model(conc, cut)
    first = lambda run: [r for r in read_metrics(run) if r.get("step") == 0 and r.get("scale") == 0][0]
    for key in ("D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv"):
        assert first(conc)[key] == pytest.approx(first(serial)[key], rel=1e-4, abs=1e-6), key
    # the option is the run's: recorded, and a resumed critic is built the same way (no BatchNorm keys)
    assert json.loads((Path(conc) / "config.json").read_text())["config"]["critic_norm"] == critic_norm
    critic = load_checkpoint(Path(cut) / "checkpoints" / "resume.pt")["discriminator"]
    assert any("norm" in key for key in critic) == (critic_norm == "batch")


def test_a_run_stored_before_critic_norm_existed_reads_it_as_batchnorm():
    """Runs made before the option have no ``critic_norm`` in their config: they trained with BatchNorm."""
    from fewgan.singan.config import SinGANConfig

    assert SinGANConfig.from_stored({"steps": 3}).critic_norm == "batch" == SinGANConfig().critic_norm


@pytest.mark.skipif(not __import__("fewgan.ops.winograd", fromlist=["available"]).available(),
                    reason="this PyTorch build has no NNPACK")
def test_winograd_kernels_train_the_same_model_and_resume_exactly(tmp_path, rgb_image):
    """--conv winograd (every 3x3 convolution through NNPACK, even the tiny ones here): the first
    step's losses equal the direct kernels' up to rounding, and the run is still exactly resumable."""
    opts = {**TINY, "steps": 6, "checkpoint_every": 3, "conv": "winograd"}
    wino = train(rgb_image, results=tmp_path / "wino", quiet=True, **opts)
    direct = train(rgb_image, results=tmp_path / "direct", quiet=True, **{**opts, "conv": "direct"})
    cut = train(rgb_image, results=tmp_path / "cut", quiet=True, stop_after=12, **opts)
    train(resume=cut, quiet=True)
    _assert_same_model(wino, cut)
    first = lambda run: [r for r in read_metrics(run) if r.get("step") == 0 and r.get("scale") == 0][0]
    for key in ("D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv"):
        assert first(wino)[key] == pytest.approx(first(direct)[key], rel=1e-4, abs=1e-6), key
    # and the kernels really differ (rounding): the final weights are not bit-identical
    key = "features.1.conv.weight"
    assert not torch.equal(_weights(wino)["generators"][-1][key], _weights(direct)["generators"][-1][key])


def test_resume_with_a_new_log_every_logs_at_the_new_cadence(tmp_path, rgb_image):
    """--log-every is a run-time setting (SinGANConfig.RUNTIME_FIELDS): a resume applies it from the
    checkpoint on; a changed model option is refused naming its stored and requested values."""
    cut = train(rgb_image, results=tmp_path / "cut", quiet=True, stop_after=18, **TINY)  # checkpoint: s1, step 4
    train(resume=cut, quiet=True, log_every=1)
    steps = {}
    for r in read_metrics(cut):
        if "event" not in r:
            steps.setdefault(r["scale"], []).append(r["step"])
    assert steps[0] == [0, 5, 10]                      # before the cut: every 5 steps
    assert steps[1] == [0] + list(range(4, 11))        # from the checkpoint on: every step
    assert steps[2] == steps[3] == list(range(11))
    assert "Iteration 7, D: " in (cut / "log.txt").read_text()
    from fewgan.errors import FewganError

    with pytest.raises(FewganError, match=r"cannot change steps \(stored 10, requested 99\)"):
        train(resume=cut, steps=99, log_every=2, quiet=True)
