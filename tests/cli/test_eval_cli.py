"""``fewgan eval``: a table on the terminal, every number in JSON, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fewgan.cli import main
from fewgan.data.images import write_array


@pytest.fixture(autouse=True)
def no_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("FEWGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    from fewgan.data.synthetic import make_micrograph

    root = tmp_path_factory.mktemp("cli-eval")
    for name, seed, n in (("real", 1, 12), ("fake", 2, 8)):
        (root / name).mkdir()
        for i in range(n):
            image, _ = make_micrograph(seed=seed * 100 + i, size=32, density=8.0, radius=3.0, min_spacing=2.0,
                                       bit_depth=8)
            write_array(root / name / f"{i}.png", image[:, :, None], "png")
    (root / "empty").mkdir()
    return root


def test_eval_prints_a_table_and_writes_every_number(sets, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", str(sets / "real"), str(sets / "fake"), "--json", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "metric" in stdout and "floor" in stdout and "swd" in stdout
    assert "particle statistics" in stdout and "near-copies (pixel)" in stdout
    assert "network metrics skipped" in stdout and "fewgan weights import" in stdout
    data = json.loads(out.read_text())
    swd_row = next(r for r in data["table"] if r["metric"] == "swd")
    assert f"{swd_row['value']:.4g}" in stdout and f"{swd_row['floor']:.4g}" in stdout
    assert data["metrics"]["fid"]["weights_missing"] is True


def test_eval_options_reach_the_metrics(sets, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", str(sets / "real"), str(sets / "fake"), "--metrics", "swd", "particles",
                 "--no-floors", "--seed", "4", "--smooth-sigma", "0.5", "--min-area", "3",
                 "--near-copy-threshold", "0.3", "--json", str(out), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert list(data["metrics"]) == ["swd", "particles"]
    assert data["metrics"]["swd"]["seed"] == 4 and "floor" not in data["metrics"]["swd"]
    assert data["metrics"]["particles"]["config"]["smooth_sigma"] == 0.5
    assert data["metrics"]["particles"]["config"]["min_area"] == 3


@pytest.mark.parametrize("args,needle", [
    (["{real}", "{empty}"], "no PNG, TIFF or JPEG images"),
    (["{real}", "{fake}", "--metrics", "fid", "kid"], "Inception weights"),
    (["{real}", "{fake}", "--metrics", "bogus"], "unknown metric 'bogus'"),
    (["{real}", "{fake}", "--metrics", "prdc", "--n", "3"], None),  # --n only matters for run folders
])
def test_eval_errors_are_one_line_exit_2(sets, capsys, args, needle):
    argv = ["eval"] + [a.format(real=sets / "real", fake=sets / "fake", empty=sets / "empty") for a in args]
    code = main(argv + ["--quiet"])
    err = capsys.readouterr().err
    if needle is None:  # prdc without weights: only network metrics asked for -> the weights line
        assert code == 2 and "Inception weights" in err
        return
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("fewgan: error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


def test_eval_is_listed_in_help_and_runs_as_a_command(sets):
    proc = subprocess.run([sys.executable, "-m", "fewgan", "eval", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--metrics" in proc.stdout and "--json" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "fewgan", "eval", str(sets / "real"), str(sets / "fake") + "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_a_full_disk_while_writing_the_json_loses_no_result(sets, tmp_path, capsys, monkeypatch):
    import errno

    import fewgan.run

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fewgan.run, "atomic_write_json", full)
    out = tmp_path / "eval.json"
    code = main(["eval", str(sets / "real"), str(sets / "fake"), "--metrics", "swd", "--no-floors",
                 "--json", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and not out.exists()
    assert "swd" in captured.out and "metric" in captured.out  # the table was printed before the write
    assert captured.err.count("\n") == 1 and "No space left on device" in captured.err and str(out) in captured.err


def test_eval_prints_the_verdict_above_the_table(sets, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", str(sets / "real"), str(sets / "fake"), "--metrics", "swd", "memorisation", "particles",
                 "--json", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out
    data = json.loads(out.read_text())
    questions = [line["question"] for line in data["verdict"]]
    assert questions[:2] == ["fidelity", "copying (set)"]
    assert all(set(line) == {"question", "level", "text"} for line in data["verdict"])
    assert stdout.index("verdict:") < stdout.index("[") < stdout.index("metric ")
    swd = data["metrics"]["swd"]
    ratio = swd["value"] / swd["floor"]["value"]
    assert f"({ratio:.2f}x)" in stdout.split("metric ")[0]
    assert "particle statistics (real vs generated):" in stdout  # 12 real images: no too-few mark


def test_one_real_image_marks_the_particle_table(labelled, capsys):
    code = main(["eval", str(labelled / "plain.png"), str(labelled / "fake"), "--metrics", "particles",
                 "--no-floors", "--quiet"])
    stdout = capsys.readouterr().out
    assert code == 0 and "particle statistics (real vs generated) (1 real image: too few to judge" in stdout
    assert "[n/a ] statistics: particle statistics rest on 1 real image(s)" in stdout


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    from fewgan.data.labels import mask_path
    from fewgan.data.synthetic import instance_labels, make_micrograph

    root = tmp_path_factory.mktemp("cli-labels")
    for sub in ("fake", "bare", "test"):
        (root / sub).mkdir()
    for name, seed, size in (("plain.png", 1, 64), ("labelled.png", 1, 64), ("fake/a.png", 2, 64),
                             ("fake/b.png", 3, 64), ("bare/c.png", 4, 64), ("other48.png", 5, 48)):
        image, truth = make_micrograph(seed=seed, size=size, density=14.0, radius=3.0, bit_depth=8)
        write_array(root / name, image[:, :, None], "png")
        if name not in ("plain.png", "other48.png") and not name.startswith("bare"):
            write_array(mask_path(root / name), instance_labels(truth)[:, :, None], "tiff")
    write_array(root / "small_masks.tif", np.ones((32, 32, 1), np.uint16), "tiff")
    return root


@pytest.mark.parametrize("args,needle", [
    (["{r}/plain.png", "{r}/fake", "--metrics", "labels"], "real images have no labels"),
    (["{r}/plain.png", "{r}/fake", "--metrics", "labels", "--real-labels", "{r}/small_masks.tif"],
     "labels are 32 x 32 px but the image is 64 x 64 px"),
    (["{r}/labelled.png", "{r}/fake", "--metrics", "utility", "--test", "{r}/bare"], "no labels beside"),
    (["{r}/labelled.png", "{r}/fake", "--metrics", "utility"], "pass --test"),
    (["{r}/labelled.png", "{r}/fake", "--metrics", "utility", "--test", "{r}/labelled.png"], "is the training data"),
    (["{r}/labelled.png", "{r}/fake", "--metrics", "copying", "--second-real", "{r}/other48.png"],
     "of the same size"),
])
def test_label_copying_and_utility_errors_are_one_line_exit_2(labelled, capsys, args, needle):
    code = main(["eval"] + [a.format(r=labelled) for a in args] + ["--quiet", "--utility-steps", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fewgan: error:")]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
