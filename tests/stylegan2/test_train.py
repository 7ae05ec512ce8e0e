"""Trainer: lazy cadence, Adam rescaling, EMA rule, best-metric bookkeeping, exact resume (in-process and SIGKILL)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fewgan.errors import FewganError
from fewgan.run import load_checkpoint, read_metrics
from fewgan.stylegan2 import train as train_mod
from fewgan.stylegan2.config import StyleGAN2Config
from fewgan.stylegan2.train import InfiniteSampler, Trainer, train


def test_lazy_regularisation_cadence_and_adam_rescaling(tiny, images, monkeypatch):
    cfg = StyleGAN2Config.from_dict({**tiny, "g_reg_every": 4, "d_reg_every": 3, "diffaugment": "none"})
    calls = {"pl": [], "r1": [], "ema": 0}
    trainer = Trainer(cfg, images)
    real_pl, real_r1, real_ema = train_mod.path_lengths, train_mod.r1_penalty, train_mod.ema_update
    monkeypatch.setattr(train_mod, "path_lengths", lambda *a, **k: (calls["pl"].append(trainer.step), real_pl(*a, **k))[1])
    monkeypatch.setattr(train_mod, "r1_penalty", lambda *a, **k: (calls["r1"].append(trainer.step), real_r1(*a, **k))[1])

    def count_ema(*a, **k):
        calls["ema"] += 1
        return real_ema(*a, **k)

    monkeypatch.setattr(train_mod, "ema_update", count_ema)
    for _ in range(9):
        trainer.train_step()
    assert calls["pl"] == [0, 4, 8]
    assert calls["r1"] == [0, 3, 6]
    assert calls["ema"] == 9 + 3  # after every G step and after every path-length step
    g = trainer.opt_G.param_groups[0]
    assert math.isclose(g["lr"], 0.001 * 4 / 5) and math.isclose(g["betas"][1], 0.99 ** (4 / 5))
    d = trainer.opt_D.param_groups[0]
    assert math.isclose(d["lr"], 0.001 * 3 / 4) and math.isclose(d["betas"][1], 0.99 ** (3 / 4)) and d["betas"][0] == 0
    assert trainer.images_seen == 9 * 4


def test_r1_step_gradient_is_interval_times_the_penalty_gradient(tiny, images):
    """Lazy regularisation: the Dreg step's D gradient is k x grad(gamma/2 ||grad_x D(x)||^2)."""
    cfg = StyleGAN2Config.from_dict({**tiny, "d_reg_every": 8, "pl_weight": 0.0, "diffaugment": "none"})
    trainer = Trainer(cfg, images)
    reals, checks = [], []
    real_batch, real_step = trainer._real_batch, trainer.opt_D.step
    trainer._real_batch = lambda: (reals.append(real_batch()), reals[-1])[1]

    def spy():
        if len(checks) == 0:
            checks.append("Dmain")
        else:  # Dreg: recompute the penalty's gradient with the current (pre-step) D
            x = reals[0].detach().requires_grad_(True)
            r1 = train_mod.r1_penalty(trainer.D(x), x, 5.0)
            params = list(trainer.D.parameters())
            ref = torch.autograd.grad(r1, params, allow_unused=True)  # D's last bias has no x-gradient
            for p, g in zip(params, ref):
                if g is None:
                    assert p.grad is None or not p.grad.any()
                else:
                    assert torch.allclose(p.grad, 8 * g, rtol=1e-4, atol=1e-7)
            checks.append("Dreg")
        return real_step()

    trainer.opt_D.step = spy
    trainer.train_step()
    assert checks == ["Dmain", "Dreg"]


def test_ema_after_one_step_without_path_length(tiny, images):
    cfg = StyleGAN2Config.from_dict({**tiny, "pl_weight": 0.0, "diffaugment": "none"})
    trainer = Trainer(cfg, images)
    ema0 = [p.clone() for p in trainer.G_ema.parameters()]
    trainer.train_step()
    for e0, e1, g1 in zip(ema0, trainer.G_ema.parameters(), trainer.G.parameters()):
        assert torch.allclose(e1, e0 + (1 - 0.999) * (g1 - e0), atol=1e-7)
    assert torch.equal(trainer.G_ema.mapping.w_avg, trainer.G.mapping.w_avg)
    assert trainer.G.mapping.w_avg.abs().sum() > 0  # updated in the G step, then copied


def test_infinite_sampler_covers_a_set_smaller_than_the_batch():
    sampler = InfiniteSampler(3, torch.Generator().manual_seed(0))
    idx = sampler.next(8)
    assert idx.shape == (8,)
    counts = torch.bincount(torch.cat([idx, sampler.next(1)]), minlength=3)
    assert counts.tolist() == [3, 3, 3]  # three full passes


def test_best_metric_bookkeeping_with_a_stand_in_metric(tmp_path, tiny, images):
    values = iter([5.0, 3.0, 4.0, 1.0, 2.0])
    seen_steps = []

    def metric(fake):
        assert fake.shape == (8, 1, 16, 16)
        seen_steps.append(None)
        return next(values)

    opts = {**tiny, "eval_every": 2, "eval_images": 8, "kimg": 0.048, "diffaugment": "none"}  # 12 steps, 8 epochs
    run = train(images=images, results=tmp_path, metric_fn=metric, metric_name="stand-in", quiet=True, **opts)
    evals = [r for r in read_metrics(run) if r.get("event") == "eval"]
    assert [r["value"] for r in evals] == [5.0, 3.0, 4.0, 1.0]
    assert [r["best"] for r in evals] == [True, True, False, True]
    assert all(r["metric"] == "stand-in" for r in evals)
    info = json.loads((run / "checkpoints" / "best_info.json").read_text())
    assert info["metric"] == "stand-in" and info["value"] == 1.0 and info["ema"] is True
    assert info["diffaugment"] is False and info["epoch"] == pytest.approx(evals[3]["epoch"])
    best = load_checkpoint(run / "checkpoints" / "best_G_ema.pt")
    assert best["step"] == evals[3]["step"]
    for name in ("best_G.pt", "best_D.pt"):
        assert load_checkpoint(run / "checkpoints" / name)["step"] == evals[3]["step"]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["best"]["value"] == 1.0 and last["step"] == 12
    log = (run / "log.txt").read_text()
    assert "DiffAugment: off" in log and "EMA: on" in log and "selection metric: stand-in" in log


def _weights(path):
    ck = load_checkpoint(path)
    return {k: ck[k] for k in ("G", "G_ema", "D")}, ck


def _assert_same(a, b):
    for net in ("G", "G_ema", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"


def test_resume_is_exact_in_process(tmp_path, tiny, images, one_thread):
    opts = {**tiny, "kimg": 0.028, "checkpoint_every_steps": 3, "ada": True, "ada_interval": 2,
            "diffaugment": "color,translation,cutout", "eval_every": 1, "eval_images": 4}
    metric = lambda fake: float(fake.mean())  # noqa: E731
    full = train(images=images, results=tmp_path / "a", metric_fn=metric, quiet=True, **opts)
    part = train(images=images, results=tmp_path / "b", metric_fn=metric, quiet=True, max_steps=4, **opts)
    assert load_checkpoint(part / "checkpoints" / "last.pt")["step"] == 3
    resumed = train(images=images, resume=part, metric_fn=metric, quiet=True)
    wa, ca = _weights(full / "checkpoints" / "last.pt")
    wb, cb = _weights(resumed / "checkpoints" / "last.pt")
    assert ca["step"] == cb["step"] == 7
    _assert_same(wa, wb)
    assert torch.equal(ca["ada"]["p"], cb["ada"]["p"]) and torch.equal(ca["pl_mean"], cb["pl_mean"])
    assert ca["best"] == cb["best"]
    steps = [r["step"] for r in read_metrics(resumed) if "loss_G" in r]
    assert steps == sorted(set(steps))  # records after the checkpoint were not duplicated


def test_resume_rejects_changing_the_model(tmp_path, tiny, images):
    from fewgan.errors import FewganError

    run = train(images=images, results=tmp_path, quiet=True, **{**tiny, "kimg": 0.008, "diffaugment": "none"})
    with pytest.raises(FewganError, match="cannot change"):
        train(images=images, resume=run, quiet=True, z_dim=8)


@pytest.mark.slow
def test_resume_after_sigkill_of_a_real_training_process(tmp_path, tiny, images, one_thread):
    torch.save(images, tmp_path / "images.pt")
    opts = {**tiny, "kimg": 0.12, "checkpoint_every_steps": 2, "diffaugment": "color,translation,cutout",
            "log_every": 1}
    code = (
        "import sys, torch; from fewgan.stylegan2.train import train; "
        f"train(images=torch.load(r'{tmp_path / 'images.pt'}', weights_only=True), results=r'{tmp_path / 'killed'}', quiet=True, **{opts!r})"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        ckpt = None
        while time.time() < deadline:
            found = list((tmp_path / "killed").glob("*/checkpoints/last.pt"))
            if found:
                ckpt = found[0]
                step = load_checkpoint(ckpt)["step"]
                if step >= 2:
                    break
            if proc.poll() is not None:
                pytest.fail(f"training ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL and ckpt is not None
    stopped_at = load_checkpoint(ckpt)["step"]
    assert stopped_at < 30, "the run finished before the kill"
    run = ckpt.parent.parent
    resumed = train(images=images, resume=run, quiet=True)
    full = train(images=images, results=tmp_path / "full", quiet=True, **opts)
    wa, ca = _weights(full / "checkpoints" / "last.pt")
    wb, cb = _weights(resumed / "checkpoints" / "last.pt")
    assert ca["step"] == cb["step"] == 30
    _assert_same(wa, wb)
    # the logs hold exactly the records and lines of the uninterrupted run (plus one 'resumed' line)
    records = lambda r: [(x.get("event"), x.get("step"), x.get("loss_G")) for x in read_metrics(r)]  # noqa: E731
    assert len(records(full)) == 30 and records(resumed) == records(full)
    full_lines = (full / "log.txt").read_text().splitlines()
    lines = (resumed / "log.txt").read_text().splitlines()
    assert sum(line.startswith("resumed from") for line in lines) == 1
    assert len(lines) == len(full_lines) + 1
    steps = lambda ls: [x.rsplit(" ", 1)[0] for x in ls if x.startswith("step ")]  # noqa: E731 (seconds differ)
    assert len(steps(full_lines)) == 30 and steps(lines) == steps(full_lines)


def test_channels_last_gives_the_same_training_as_the_default_layout(tiny, images, one_thread):
    """The GPU option also runs on the CPU: same weights after two iterations, to float rounding."""
    out = []
    for cl in (False, True):
        trainer = Trainer(StyleGAN2Config.from_dict({**tiny, "channels_last": cl, "diffaugment": "none"}), images)
        for _ in range(2):
            trainer.train_step()
        out.append(trainer.state_dict())
    for net in ("G", "D", "G_ema"):
        for k, v in out[0][net].items():
            assert torch.allclose(v, out[1][net][k], atol=1e-5), f"{net}.{k}"


def test_a_data_set_smaller_than_the_batch_trains(tmp_path, tiny, images):
    run = train(images=images[:3], results=tmp_path, quiet=True, **{**tiny, "batch": 8, "kimg": 0.016,
                                                                     "diffaugment": "none"})
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["images_seen"] == 16
    assert all(torch.isfinite(v).all() for v in last["G_ema"].values())


def test_a_non_finite_loss_stops_the_run_and_the_last_checkpoint_resumes(tmp_path, tiny, images, monkeypatch, one_thread):
    from fewgan.errors import FewganError

    real_step = Trainer.train_step

    def poisoned(self):
        real_step(self)
        if self.step == 3:
            self.last["loss_D"] = torch.tensor(float("inf"))

    opts = {**tiny, "kimg": 0.024, "checkpoint_every_steps": 2, "diffaugment": "none"}  # 6 steps
    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(FewganError, match=r"non-finite loss at step 3 \(loss_D=inf\): the run stopped") as info:
        train(images=images, results=tmp_path, quiet=True, **opts)
    (run,) = tmp_path.iterdir()
    assert f"fewgan stylegan2 train --resume {run}" in str(info.value)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    monkeypatch.setattr(Trainer, "train_step", real_step)
    resumed = train(images=images, resume=run, quiet=True)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["step"] == 6


def test_evaluation_needs_a_selection_metric_from_the_caller(tmp_path, tiny, images):
    """The trainer builds no metric: with eval_every > 0 and none given it refuses before making a run folder."""
    with pytest.raises(FewganError, match="needs a selection metric"):
        train(images=images, results=tmp_path / "runs", quiet=True, **{**tiny, "eval_every": 1})
    assert not (tmp_path / "runs").exists()


def test_resume_with_a_new_log_every_logs_at_the_new_cadence(tmp_path, tiny, images):
    """--log-every is a run-time setting: a resume applies it from the resumed step on."""
    opts = {**tiny, "kimg": 0.024, "diffaugment": "none", "checkpoint_every_steps": 1}  # 6 steps of 4 images
    def logged_steps(run):  # the log's step lines (metrics.jsonl after a resume: issue 12's "logs surviving resume")
        return [int(line.split()[1]) for line in (run / "log.txt").read_text().splitlines() if line.startswith("step ")]

    run = train(images=images, results=tmp_path, quiet=True, max_steps=2, **opts)
    assert logged_steps(run) == [1]  # log_every 1000: only the first step
    train(images=images, resume=run, quiet=True, log_every=1)
    assert logged_steps(run) == [1, 3, 4, 5, 6]
    with pytest.raises(FewganError, match=r"cannot change z_dim \(stored 16, requested 8\)"):
        train(images=images, resume=run, quiet=True, z_dim=8, log_every=2)


def test_lr_multiplier_is_one_before_the_ramp_then_a_half_cosine_to_zero():
    from fewgan.stylegan2.train import lr_multiplier

    assert lr_multiplier(0.0, 0.0) == lr_multiplier(0.99, 0.0) == 1.0  # no ramp: constant
    assert lr_multiplier(0.0, 0.3) == lr_multiplier(0.7, 0.3) == 1.0  # exactly 1 up to the ramp's start
    assert lr_multiplier(0.85, 0.3) == pytest.approx(0.5)
    assert lr_multiplier(0.775, 0.3) == pytest.approx(0.5 + 0.5 * math.sqrt(0.5))  # a quarter into the ramp
    assert lr_multiplier(1.0, 0.3) == 0.0
    ramp = [lr_multiplier(t / 100, 0.3) for t in range(70, 101)]
    assert all(a > b for a, b in zip(ramp, ramp[1:]))


def test_lr_rampdown_scales_both_optimisers_and_leaves_the_steps_before_it_unchanged(tmp_path, tiny, images, one_thread):
    from fewgan.stylegan2.train import lr_multiplier

    opts = {**tiny, "kimg": 0.032, "diffaugment": "none"}  # 8 steps of 4 images
    const = train(images=images, results=tmp_path / "const", quiet=True, max_steps=4, checkpoint_every_steps=4, **opts)
    ramped = train(images=images, results=tmp_path / "ramp", quiet=True, max_steps=4, checkpoint_every_steps=4,
                   lr_rampdown=0.5, **opts)
    _assert_same(_weights(const / "checkpoints" / "last.pt")[0], _weights(ramped / "checkpoints" / "last.pt")[0])
    cfg = StyleGAN2Config.from_dict({**opts, "lr_rampdown": 0.5})
    trainer = Trainer(cfg, images)
    base = {id(o): [g["lr"] for g in o.param_groups] for o in (trainer.opt_G, trainer.opt_D)}
    for step in range(8):
        trainer.train_step()
        want = lr_multiplier(step / 8, 0.5)
        assert want == (1.0 if step <= 4 else pytest.approx(0.5 - 0.5 * math.cos(math.pi * (8 - step) / 4)))
        for opt in (trainer.opt_G, trainer.opt_D):
            assert [g["lr"] for g in opt.param_groups] == [b * want for b in base[id(opt)]]
    assert math.isclose(base[id(trainer.opt_G)][0], 0.001 * 2 / 3)  # the lazy-regularisation rate is the base
    with pytest.raises(FewganError, match="--lr-rampdown 1"):
        StyleGAN2Config.from_dict({**opts, "lr_rampdown": 1.0})


def test_resume_inside_the_lr_ramp_is_exact_and_logs_the_ramped_rate(tmp_path, tiny, images, one_thread):
    opts = {**tiny, "kimg": 0.032, "checkpoint_every_steps": 5, "lr_rampdown": 0.6, "diffaugment": "none",
            "log_every": 1}
    full = train(images=images, results=tmp_path / "a", quiet=True, **opts)
    part = train(images=images, results=tmp_path / "b", quiet=True, max_steps=6, **opts)
    assert load_checkpoint(part / "checkpoints" / "last.pt")["step"] == 5  # inside the ramp (from step 3.2)
    resumed = train(images=images, resume=part, quiet=True)
    _assert_same(_weights(full / "checkpoints" / "last.pt")[0], _weights(resumed / "checkpoints" / "last.pt")[0])
    lrs = [r["lr"] for r in read_metrics(resumed) if "loss_G" in r]
    assert lrs[0] == pytest.approx(0.001) and lrs[-1] == 0.0 and lrs == sorted(lrs, reverse=True)
    assert "falling to 0 along a half cosine over the last 60% of the budget, from 0.0 kimg" in (resumed / "log.txt").read_text()
