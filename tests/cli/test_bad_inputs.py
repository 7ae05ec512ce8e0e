"""A bad-input suite: the ``fewgan`` command, driven through subprocesses, over many user mistakes.

Every case must exit with status 2, print exactly one line on stderr (``fewgan: error: ...``),
never a traceback, leave every existing file byte for byte as it was, and create no file.
To keep the suite fast, one subprocess runs the cases one after another through
``fewgan.cli.main`` (one import of torch instead of one per case); a few cases also run as
their own ``python -m fewgan`` process, the way a user starts it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

_DRIVER = r"""
import contextlib, io, json, sys, warnings
from fewgan.cli import main
from fewgan.data import images
results = []
for argv in json.load(sys.stdin):
    images._limits.clear()  # --max-pixels / --nonfinite are process-wide: one case must not leak into the next
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException as exc:  # a bug: report it like the interpreter would
            import traceback
            traceback.print_exc(file=err)
            rc = 1
    results.append({"argv": argv, "rc": rc, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "ok.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "small5.png")
    nan = np.linspace(0.1, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    nan[3, 4], nan[10, 10] = np.nan, np.inf
    tifffile.imwrite(root / "nan.tif", nan)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 255, 200, dtype=np.uint8)))
    ok_bytes = (root / "ok.png").read_bytes()
    (root / "truncated.png").write_bytes(ok_bytes[: len(ok_bytes) // 2])
    (root / "fake.png").write_text("not an image at all")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("some notes")
    (root / "blocker").write_text("a file where a folder is expected")
    (root / "folder.png").mkdir()
    (root / "folder.png" / "keep.txt").write_text("x")
    imgs = root / "imgs"
    imgs.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(imgs / f"{i}.png")
    mixed = root / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mixed / "a.png")
    tifffile.imwrite(mixed / "b.tif", np.zeros((16, 16), np.uint16))
    sizes = root / "sizes"
    sizes.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(sizes / "a.png")
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(sizes / "b.png")
    (root / "emptydir").mkdir()
    for method in ("singan", "stylegan2"):  # run folders without any checkpoint
        run = root / f"{method}_run"
        (run / "checkpoints").mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"method": method, "config": {}, "data": {}}))
    (root / "broken_run").mkdir()
    (root / "broken_run" / "config.json").write_text("{not json")
    metrics_run = root / "binary_metrics_run"
    metrics_run.mkdir()
    (metrics_run / "config.json").write_text(json.dumps({"method": "singan", "config": {}}))
    (metrics_run / "metrics.jsonl").write_bytes(b'{"scale": 0, "step": 0, "D": 1.0}\n\xff\xfe garbage\n')
    return root


def _cases(root: Path) -> list[tuple[list[str], str]]:
    """(argv, a fragment the one stderr line must contain)."""
    r = str(root)
    ok, imgs, res = f"{r}/ok.png", f"{r}/imgs", f"{r}/results"
    sg, s2 = f"{r}/singan_run", f"{r}/stylegan2_run"
    train = ["singan", "train"]
    return [
        # SinGAN training inputs
        (train + [f"{r}/missing.png", "--results", res], "not found"),
        (train + [f"{r}/folder.png", "--results", res], "is a folder"),
        (train + [f"{r}/corrupt.png", "--results", res], "cannot read image"),
        (train + [f"{r}/truncated.png", "--results", res], "cannot read image"),
        (train + [f"{r}/fake.png", "--results", res], "cannot read image (FormatError: PNG file has invalid"),
        (train + [f"{r}/empty.png", "--results", res], "cannot read image"),
        (train + [f"{r}/notes.txt", "--results", res], "unsupported file type"),
        (train + [f"{r}/small5.png", "--results", res], "at least 11 px"),
        (train + [f"{r}/nan.tif", "--results", res], "1 NaN, 1 +inf"),
        (train + [ok, "--results", res, "--max-pixels", "1000"], "--max-pixels 1600"),
        (train + [ok, "--results", res, "--lr", "nan"], "--lr nan: must be a finite number"),
        (train + [ok, "--results", res, "--lr", "inf"], "--lr inf: must be a finite number"),
        (train + [ok, "--results", res, "--noise-weight", "nan"], "--noise-weight nan"),
        (train + [ok, "--results", res, "--lr", "-1"], "--lr must be positive"),
        (train + [ok, "--results", res, "--lr", "abc"], "invalid float value"),
        (train + [ok, "--results", res, "--steps", "-1"], "--steps must be >= 0"),
        (train + [ok, "--results", res, "--betas", "0.5", "2"], "--betas"),
        (train + [ok, "--results", res, "--min-size", "30", "--max-size", "20"], "--min-size 30 is larger"),
        (train + [ok, "--results", res, "--channels", "2"], "--channels"),
        (train + [ok, "--results", res, "--critic-norm", "layer"], "--critic-norm must be one of batch, none"),
        (train + [ok, "--results", res, "--crop", "64"], "--crop 64 is larger than the image the model trains on (40x40"),
        (train + [ok, "--results", res, "--native", "--crop", "5"], "--crop 5 is below the discriminator's receptive"),
        (train + [ok, "--results", res, "--crop", "-1"], "--crop -1 is below"),
        (train + [ok, "--results", res, "--device", "tpu"], "tpu"),
        (train + [ok, "--results", f"{r}/blocker"], "is a file, not a folder"),
        (train + [ok, "--results", f"{r}/blocker/sub"], "is a file, not a folder"),
        (train, "no image given"),
        (train + ["--resume", f"{r}/emptydir"], "not a fewgan run folder"),
        (train + ["--resume", sg], "no checkpoint to resume from"),
        # SinGAN sampling
        (["singan", "sample", f"{r}/emptydir"], "not a fewgan run folder"),
        (["singan", "sample", f"{r}/broken_run"], "not valid JSON"),
        (["singan", "sample", s2], "not a singan run"),
        (["singan", "sample", sg, "--n", "0"], "--n"),
        (["singan", "sample", sg, "--n", "-1"], "--n"),
        (["singan", "sample", sg, "--batch", "0"], "--batch"),
        (["singan", "sample", sg, "--tile", "0"], "--tile"),
        (["singan", "sample", sg, "--out", f"{r}/blocker"], "is a file, not a folder"),
        # StyleGAN2
        (["stylegan2", "train", f"{r}/nowhere", "--results", res], "folder not found"),
        (["stylegan2", "train", f"{r}/emptydir", "--results", res], "no PNG, TIFF or JPEG"),
        (["stylegan2", "train", f"{r}/mixed", "--results", res], "mixed bit depths"),
        (["stylegan2", "train", imgs, "--results", res, "--resolution", "12"], "power of two"),
        (["stylegan2", "train", imgs, "--results", res, "--batch", "0"], "--batch 0"),
        (["stylegan2", "train", imgs, "--results", res, "--lr-g", "nan"], "--lr-g nan"),
        (["stylegan2", "train", imgs, "--results", res, "--kimg", "-1"], "--kimg"),
        (["stylegan2", "train", imgs, "--results", res, "--beta2", "1.5"], "--beta2"),
        (["stylegan2", "train", imgs, "--results", f"{r}/blocker"], "is a file, not a folder"),
        (["stylegan2", "train"], "give an image FOLDER"),
        (["stylegan2", "generate", s2], "no generator checkpoint"),
        (["stylegan2", "generate", s2, "--trunc", "nan"], "--trunc"),
        (["stylegan2", "generate", s2, "--n", "0"], "--n"),
        (["stylegan2", "generate", s2, "--batch", "0"], "--batch"),
        (["stylegan2", "generate", s2, "--out", f"{r}/blocker"], "is a file, not a folder"),
        # evaluation
        (["eval", f"{r}/missing.png", ok], "no such file or folder"),
        (["eval", ok, f"{r}/nan.tif", "--metrics", "swd"], "1 NaN, 1 +inf"),
        (["eval", imgs, imgs, "--json", f"{r}/imgs"], "is a folder, not a file name"),
        (["eval", imgs, imgs, "--json", f"{r}/blocker/x.json"], "is a file, not a folder"),
        (["eval", ok, ok, "--batch-size", "0"], "--batch-size"),
        (["eval", imgs, imgs, "--n", "-3"], "--n"),
        (["eval", f"{r}/sizes", imgs, "--metrics", "swd"], "--resolution"),
        # data, reports, the tool itself
        (["synth", f"{r}/blocker"], "is a file, not a folder"),
        (["synth", f"{r}/synth_out", "--n", "0"], "--n"),
        (["synth", f"{r}/synth_out", "--density", "nan"], "--density"),
        (["report", f"{r}/emptydir"], "not a fewgan run folder"),
        (["report", sg, "--max-images", "-1"], "--max-images"),
        (["report", sg, "--out", f"{r}/imgs"], "is a folder, not a file name"),
        (["demo", "--tiny", "--out", f"{r}/blocker"], "is a file, not a folder"),
        (["stylegan2", "generate", s2, "--trunc", "inf"], "--trunc"),
        (["--nonfinite", "drop", "synth", f"{r}/synth_out"], "invalid choice"),
        (["--max-pixels", "0", "synth", f"{r}/synth_out"], "--max-pixels"),
        (["nosuchcommand"], "invalid choice"),
    ]


def test_every_bad_input_is_one_line_exit_2_and_changes_no_file(workspace):
    cases = _cases(workspace)
    assert len(cases) >= 40
    before = _snapshot(workspace)
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps([argv for argv, _ in cases]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failures = []
    for (argv, needle), got in zip(cases, results):
        err = got["stderr"]
        ok = (got["rc"] == 2 and err.count("\n") == 1 and err.startswith("fewgan: error: ")
              and "Traceback" not in err and needle in err)
        if not ok:
            failures.append(f"{' '.join(argv)} -> rc {got['rc']}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    after = _snapshot(workspace)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))


@pytest.mark.parametrize("args,needle", [
    (["singan", "train", "{r}/nan.tif", "--results", "{r}/results"], "1 NaN, 1 +inf"),
    (["stylegan2", "generate", "{r}/stylegan2_run", "--n", "-1"], "--n"),
    (["eval", "{r}/ok.png", "{r}/ok.png", "--json", "{r}/blocker/x.json"], "is a file, not a folder"),
])
def test_as_its_own_process(workspace, args, needle):
    before = _snapshot(workspace)
    argv = [a.format(r=workspace) for a in args]
    proc = subprocess.run([sys.executable, "-m", "fewgan", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and _snapshot(workspace) == before


def test_report_survives_non_utf8_bytes_in_metrics(workspace):
    from fewgan.run import read_metrics

    records = read_metrics(workspace / "binary_metrics_run")
    assert records == [{"scale": 0, "step": 0, "D": 1.0}]


@pytest.mark.parametrize("sig,status,word", [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted")])
def test_a_stopped_training_names_its_run_folder_and_the_resume_command(workspace, tmp_path, sig, status, word):
    import os
    import signal
    import time

    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "fewgan", "singan", "train", str(workspace / "ok.png"), "--results",
                             str(results), "--steps", "400", "--checkpoint-every", "2", "--quiet", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            # a suite started in the background (`cmd &`) passes SIGINT on as ignored, and
                            # Python then installs no handler for it: give the child the default, as a terminal does
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(results.glob("*/checkpoints/resume.pt")):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = results.iterdir()
    assert proc.returncode == status, err
    last = err.strip().splitlines()[-1]
    assert last == f"fewgan: {word}; run folder {run}; continue with: fewgan singan train --resume {run}"
    assert "Traceback" not in err
