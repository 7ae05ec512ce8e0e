"""The README's test command is what CI runs, word for word."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    lines = (ROOT / "README.md").read_text().splitlines()
    command = lines[lines.index(next(l for l in lines if l.startswith("# 2. "))) + 1].strip()
    assert command.endswith("python -m pytest -q") and "torch==2.13.0" in command
    ci = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci
