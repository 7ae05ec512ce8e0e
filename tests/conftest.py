"""Fixtures every test folder shares."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench_script(name: str):
    """``bench/<name>.py`` as a module, loaded with ``bench/`` on ``sys.path`` (for the scripts that import
    their neighbours, e.g. ``side_by_side`` imports ``gpnn_speed``); the path is restored afterwards."""
    path = BENCH / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(path)
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture
def bench_script():
    """``bench_script("singan_quality")``: the bench script ``bench/singan_quality.py`` as a module."""
    return load_bench_script
