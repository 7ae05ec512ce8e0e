"""The command-line tool: version, help, one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fewgan
from fewgan.cli import build_parser, main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fewgan", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help_list_every_command():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fewgan {fewgan.__version__}"
    proc = run_cli("--help")
    assert proc.returncode == 0
    choices = build_parser()._subparsers._group_actions[0].choices
    for name in choices:
        assert name in proc.stdout
    assert {"synth", "singan", "stylegan2"} <= set(choices)


@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["synth", "OUT", "--bit-depth", "12"], "invalid choice"),
])
def test_bad_options_are_one_line_exit_2(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_user_errors_are_one_line_and_debug_shows_traceback(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    proc = run_cli("synth", str(target))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("fewgan: error:") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    proc = run_cli("--debug", "synth", str(target))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_synth_command_writes_a_micrograph(tmp_path):
    proc = run_cli("synth", str(tmp_path / "d"), "--size", "64", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d" / "micrograph.png").exists() and (tmp_path / "d" / "micrograph.json").exists()
    # it says what it wrote (the files of the folder, not of the image path synth returns)
    assert proc.stdout.strip() == (f"wrote 4 file(s) to {tmp_path / 'd'}: micrograph.json, micrograph.png, "
                                   "micrograph_masks.tif, synth.json")


def test_import_fewgan_exposes_api():
    assert callable(fewgan.train_singan) and callable(fewgan.load) and callable(fewgan.evaluate)
    assert fewgan.FewganError.exit_code == 2
