"""Two gloo processes with a global batch of 8 end with the same G, D and G_ema as one process.

What makes them equal (see fewgan.stylegan2.train): latents, style-mixing cut-offs, noise maps,
path-length noise and image indices are drawn for the *global* batch from one generator seeded
alike on every rank, each rank keeping its contiguous slice; minibatch-stddev groups are
consecutive samples (so rank 0's samples 0-3 and rank 1's 4-7 form the groups one process
forms); gradients are averaged over ranks (the mean over the global batch, as losses are
per-sample means); the path-length mean and the w_avg update use all-reduced batch means.
parameters that get no gradient in a phase (toRGB biases in the path-length step) stay
``None`` on every rank, so Adam skips them as it does in one process. Augmentation is off (it
draws per process). Tolerance: float32 reduction order differs (sums per rank, then across
ranks), so parameters agree to 1e-5 absolute after 3 iterations (measured: 3.6e-7).
"""

import os
import socket
import subprocess
import sys

import pytest
import torch

from fewgan.run import load_checkpoint, torch_threads
from fewgan.stylegan2.train import train

OPTS = dict(resolution=16, batch=8, z_dim=16, w_dim=32, cbase=256, cmax=32, classical="none", diffaugment="none",
            g_reg_every=2, d_reg_every=2, kimg=0.024, eval_every=0, sample_every=0)  # 3 steps


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    """``torchrun --nproc_per_node 2 -m fewgan stylegan2 train`` (gloo) vs ``train()`` in this process."""
    import fewgan

    data = fewgan.synth(tmp_path / "data", mode="folder", n=10, size=16, seed=0)
    flags = []
    for k, v in OPTS.items():
        flags += [f"--{k.replace('_', '-')}", str(v)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "fewgan", "stylegan2", "train", str(data), "--results", str(tmp_path / "ddp"), "--quiet", *flags]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr  # each rank left its gloo group before exiting
    runs = list((tmp_path / "ddp").iterdir())
    assert len(runs) == 1  # rank 0 made the one run folder
    ddp = load_checkpoint(runs[0] / "checkpoints" / "last.pt")
    with torch_threads(1):
        single_run = train(data, results=tmp_path / "one", quiet=True, **OPTS)
    ref = load_checkpoint(single_run / "checkpoints" / "last.pt")
    assert ddp["step"] == ref["step"] == 3
    worst = 0.0
    for net in ("G", "D", "G_ema"):
        for k, v in ref[net].items():
            worst = max(worst, (ddp[net][k].float() - v.float()).abs().max().item())
    print(f"max |2 processes - 1 process| = {worst:.3g}")
    assert worst < 1e-5
    assert torch.allclose(ddp["pl_mean"], ref["pl_mean"], atol=1e-6)
    # the runs really trained: weights moved away from the initialisation
    assert (ref["G"]["synthesis.blocks.0.conv1.weight"] - ref["G_ema"]["synthesis.blocks.0.conv1.weight"]).abs().max() > 1e-5


def test_a_run_leaves_only_the_process_group_it_joined(monkeypatch):
    """``DistInfo.close`` destroys a group that ``dist_from_env`` created (a live gloo group at
    exit can abort the process: pytorch/pytorch#190489) and leaves one the caller made."""
    import torch.distributed as dist

    from fewgan.stylegan2.train import DistInfo, dist_from_env

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    dist.init_process_group(backend="gloo", rank=0, world_size=1)
    try:
        DistInfo(world=2, owns_group=False).close()  # the caller's group: kept
        assert dist.is_initialized()
        waits = []
        monkeypatch.setattr(dist, "barrier", lambda *a, **k: waits.append(dist.is_initialized()))
        info = DistInfo(world=2, owns_group=True)
        info.close()
        assert not dist.is_initialized() and waits == [True]  # the ranks met before leaving
        info.close()  # a second close is harmless
        assert waits == [True]
        # after an error: left without a barrier (the other ranks may be stuck in a collective)
        dist.init_process_group(backend="gloo", rank=0, world_size=1)
        with pytest.raises(RuntimeError, match="boom"):
            with DistInfo(world=2, owns_group=True).joined():
                raise RuntimeError("boom")
        assert not dist.is_initialized() and waits == [True]
        dist.init_process_group(backend="gloo", rank=0, world_size=1)
        with DistInfo(world=2, owns_group=True).joined():
            pass
        assert not dist.is_initialized() and waits == [True, True]
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # one process without torchrun joins nothing, so there is nothing to leave
    info, device = dist_from_env("cpu")
    assert (info.world, info.owns_group, device) == (1, False, "cpu")
