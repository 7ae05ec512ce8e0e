"""Progress and logs (issue "Show the work", points 1 and 2): bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap

import pytest

from fewgan.run import RunLogger, format_seconds, read_metrics

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # everything but \t and \n: \r, ESC, backspace, ...


def test_non_terminal_progress_prints_plain_lines(tmp_path, capsys):
    with RunLogger(tmp_path) as log:
        bar = log.progress(total=5, desc="s0", unit="step", every_s=0.0)
        for i in range(5):
            log.info(f"[s0] step {i}: D 0.1 G 0.2")
            bar.update(1, D=0.123456, G=-1.0)
        bar.close()
    out, err = capsys.readouterr()
    assert not CONTROL.search(out) and not CONTROL.search(err)
    lines = err.splitlines()
    assert len(lines) == 5  # every_s=0: one line per update
    assert lines[-1].startswith("s0: 5/5 steps (100%), ") and "step/s" in lines[-1] and "ETA 0:00" in lines[-1]
    assert lines[-1].endswith(", D=0.1235, G=-1")
    assert out.splitlines() == [f"[s0] step {i}: D 0.1 G 0.2" for i in range(5)]
    assert (tmp_path / "log.txt").read_text().splitlines() == out.splitlines()


def test_plain_lines_are_periodic(tmp_path, capsys):
    with RunLogger(tmp_path) as log:
        bar = log.progress(total=1000, desc="epochs", unit="epoch", every_s=3600.0)
        for _ in range(1000):
            bar.update(1)
    err = capsys.readouterr().err
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith("epochs: 1000/1000")  # only the last


def test_quiet_keeps_files_and_plain_progress(tmp_path, capsys):
    with RunLogger(tmp_path, quiet=True) as log:
        log.info("[s0] step 0: D 0.1")
        log.metrics({"scale": 0, "step": 0, "D": 0.1})
        bar = log.progress(total=2, desc="s0", every_s=0.0)
        bar.update(2)
        bar.close()
        log.warning("careful")
    out, err = capsys.readouterr()
    assert out == ""  # loss lines go to log.txt only
    assert err.splitlines()[0].startswith("s0: 2/2 steps") and "warning: careful" in err
    assert not CONTROL.search(err)
    assert "[s0] step 0: D 0.1" in (tmp_path / "log.txt").read_text()
    assert read_metrics(tmp_path) == [{"scale": 0, "step": 0, "D": 0.1}]


def test_only_rank_zero_prints_or_writes(tmp_path, capsys):
    with RunLogger(tmp_path / "rank1", enabled=False) as log:
        log.info("hello")
        log.warning("w")
        log.metrics({"step": 1})
        log.scalars(1, {"x": 1.0})
        bar = log.progress(total=3, every_s=0.0)
        bar.update(3)
        bar.close()
    out, err = capsys.readouterr()
    assert out == err == ""
    assert not (tmp_path / "rank1").exists()


def test_metrics_and_tensorboard(tmp_path):
    import torch

    with RunLogger(tmp_path, quiet=True) as log:
        log.metrics({"scale": 0, "step": 0, "D": torch.tensor(0.5), "amp": 1.0})
        log.scalars(0, {"D": 0.5})
        log.image("samples", torch.zeros(1, 8, 8), 0)
        active = log.tensorboard_active
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"scale": 0, "step": 0, "D": 0.5, "amp": 1.0}
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert not active
    else:
        assert active and list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_format_seconds():
    assert format_seconds(3725) == "1:02:05"
    assert format_seconds(59.6) == "1:00"
    assert format_seconds(float("nan")) == "?"


def _run_on_pty(script: str, columns: int) -> tuple[int, str]:
    """Run ``python -c script`` with stdin/stdout/stderr on a pseudo-terminal ``columns`` wide."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, TERM="xterm")
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=follower, stdout=follower, stderr=follower,
                            env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_gets_a_tqdm_bar_with_rate_and_eta(tmp_path):
    """On a (pseudo-)terminal the progress is a tqdm bar: carriage returns, rate, elapsed<remaining."""
    script = textwrap.dedent(f"""
        import time
        from fewgan.run import RunLogger
        with RunLogger({str(tmp_path)!r}) as log:
            bar = log.progress(total=20, desc="s3", unit="step")
            for i in range(20):
                if i == 10:
                    log.info("[s3] step 10: D 0.1")
                bar.update(1, D=0.5)
                time.sleep(0.01)
            bar.close()
    """)
    returncode, text = _run_on_pty(script, columns=120)
    assert returncode == 0, text
    assert "\r" in text.replace("\r\n", "\n")  # the bar redraws in place
    assert re.search(r"s3: +\d+%", text) and "step/s" in text and re.search(r"\d\d:\d\d<\d\d:\d\d", text)
    assert "[s3] step 10: D 0.1" in text  # log lines are written above the bar
    assert "D=0.5" in text
    # a terminal that reports zero columns gets the plain lines (tqdm would draw nothing there)
    returncode, text = _run_on_pty(script, columns=0)
    assert returncode == 0, text
    assert "s3: 20/20 steps (100%)" in text and "\r" not in text.replace("\r\n", "\n")


def test_atomic_files_get_the_usual_permissions(tmp_path):
    """mkstemp's 0600 would make a report unreadable to the colleague it is shared with."""
    import stat

    from fewgan.run import _UMASK, atomic_write_text

    path = atomic_write_text(tmp_path / "report.html", "<html></html>")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_UMASK
