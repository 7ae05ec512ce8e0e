"""Run folders: unique names, atomic files, plain-data checkpoints, RNG states, logs."""

from __future__ import annotations

import datetime as dt
import json
import platform
import random

import numpy as np
import pytest
import torch

from fewgan.errors import FewganError
from fewgan.run import (
    RunLogger, atomic_write_json, create_run_dir, get_rng_state, load_checkpoint, read_metrics,
    read_run_config, save_checkpoint, set_rng_state, truncate_metrics, write_run_config,
)


def test_run_dirs_are_unique_within_one_second(tmp_path):
    now = dt.datetime(2025, 3, 18, 10, 9, 16)
    a = create_run_dir(tmp_path, now=now)
    b = create_run_dir(tmp_path, now=now)
    assert a.name == "2025-03-18_10-09-16" and b.name == "2025-03-18_10-09-16-2"


def test_atomic_write_replaces_and_leaves_nothing_else(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    atomic_write_json(tmp_path / "x.json", {"a": 2})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_checkpoint_is_plain_data_and_loads_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "step": 7, "name": "s0"})
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["step"] == 7 and torch.equal(state["model"]["weight"], model.weight.detach())
    # a pickled module (code on load) is refused
    torch.save({"model": model}, tmp_path / "bad.pt")
    with pytest.raises(FewganError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FewganError):
        load_checkpoint(tmp_path / "torn.pt")


def test_rng_state_round_trip_through_checkpoint(tmp_path):
    torch.manual_seed(1); np.random.seed(2); random.seed(3)
    save_checkpoint(tmp_path / "r.pt", {"rng": get_rng_state()})
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_run_config_and_method_check(tmp_path):
    write_run_config(tmp_path, "singan", {"steps": 10}, data={"bit_depth": 16})
    cfg = read_run_config(tmp_path, method="singan")
    assert cfg["config"] == {"steps": 10} and cfg["environment"]["torch"] == torch.__version__
    with pytest.raises(FewganError, match="is a singan run, not a stylegan2 run"):
        read_run_config(tmp_path, method="stylegan2")
    with pytest.raises(FewganError, match="not a fewgan run folder"):
        read_run_config(tmp_path / "..")


def test_logger_files_and_plain_progress_without_control_characters(tmp_path, capsys):
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.info("[s0] Iteration 0 D: 1.0")
        log.metrics({"scale": 0, "step": 0, "D": torch.tensor(1.5)})
        log.metrics({"scale": 0, "step": 10, "D": 0.5})
        bar = log.progress(3, desc="s0", every_s=0.0)
        for _ in range(3):
            bar.update(1)
        bar.close()
    out = capsys.readouterr()
    assert "Iteration 0" in out.out
    assert "\r" not in out.err and "\x1b" not in out.err and "s0: 3/3 steps (100%)" in out.err
    assert (tmp_path / "log.txt").read_text().strip() == "[s0] Iteration 0 D: 1.0"
    assert [r["D"] for r in read_metrics(tmp_path)] == [1.5, 0.5]
    truncate_metrics(tmp_path, lambda r: r["step"] < 10)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0]


def test_quiet_and_non_rank0_loggers(tmp_path, capsys):
    with RunLogger(tmp_path / "q", quiet=True, tensorboard=False) as log:
        log.info("hidden")
    with RunLogger(tmp_path / "r1", enabled=False) as log:
        log.info("rank 1")
    out = capsys.readouterr()
    assert out.out == "" and (tmp_path / "q" / "log.txt").read_text() == "hidden\n"
    assert not (tmp_path / "r1").exists()


def test_stale_temp_files_of_killed_writes_are_removed(tmp_path):
    from fewgan.run import remove_stale_temps

    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / ".config.json.abc123.tmp", tmp_path / "checkpoints" / ".last.pt.x1y2.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 100)
    keep = [tmp_path / "config.json", tmp_path / "checkpoints" / "last.pt", tmp_path / "notes.tmp"]
    for p in keep:
        p.write_bytes(b"1")
    assert sorted(remove_stale_temps(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_check_writable_refuses_a_file_in_the_way(tmp_path):
    from fewgan.errors import FewganError
    from fewgan.run import check_writable

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FewganError, match=r"--results .*file: is a file, not a folder"):
        check_writable(blocker, "--results")
    with pytest.raises(FewganError, match=r"is a file, not a folder"):
        check_writable(blocker / "sub" / "deeper", "--out")
    with pytest.raises(FewganError, match="is a folder, not a file name"):
        check_writable(tmp_path, "--json", kind="file")
    assert check_writable(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_log_offsets_cut_the_logs_in_place(tmp_path):
    from fewgan.run import RunLogger, log_offsets, truncate_logs

    logger = RunLogger(tmp_path, quiet=True, tensorboard=False)
    logger.info("one")
    logger.metrics({"step": 1})
    marks = log_offsets(tmp_path)
    logger.info("two")
    logger.metrics({"step": 2})
    truncate_logs(tmp_path, marks)
    logger.info("two again")  # the open handle writes after the cut (same file, not a replaced one)
    logger.metrics({"step": 2})
    logger.close()
    assert (tmp_path / "log.txt").read_text() == "one\ntwo again\n"
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 2}\n'


def test_progress_never_passes_100_percent():
    from fewgan.run import Progress, RunLogger

    p = Progress(50, desc="stylegan2", unit="img", initial=0, logger=RunLogger(None, quiet=True), every_s=1e9)
    p.update(32)
    p.update(32)  # a last batch past the budget
    line = p.status_line()
    assert p.n == 50 and "50/50 imgs (100%)" in line and "ETA 0:00" in line


def _glibc() -> bool:
    import platform

    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not _glibc(), reason="malloc_trim and /proc/self/statm are glibc / Linux's")
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="release_memory trims glibc's heap; elsewhere it is a no-op (the next test)")
def test_release_memory_gives_back_freed_heap_blocks():
    """Freed tensors between live ones stay resident in glibc's heap until release_memory trims it.

    1,600 blocks of 64 KiB (below glibc's smallest mmap threshold: always heap), every other one kept
    alive, so that the freed ones cannot merge with each other or into the heap's top (which free()
    itself would trim), whatever holes earlier tests left in this process's heap.
    """
    from fewgan.run import release_memory

    mib = 2**20
    blocks = [torch.ones(16 * 1024) for _ in range(1600)]  # 64 KiB each, written: resident
    keep, freed = blocks[1::2], blocks[0::2]
    del blocks
    del freed  # 50 MiB
    before = _rss_bytes()
    assert release_memory() is True
    after = _rss_bytes()
    assert before - after > 40 * mib, (before / mib, after / mib)
    assert sum(float(t.sum()) for t in keep) == 800 * 16 * 1024  # the live tensors are untouched


def test_release_memory_is_a_no_op_without_glibc(monkeypatch):
    from fewgan import run

    monkeypatch.setattr(run, "_malloc_trim", lambda: None)
    assert run.release_memory() is False
