"""Config dataclasses: round trips, unknown keys rejected, CLI options derived from fields."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from fewgan.config import Config, add_config_arguments, config_from_args
from fewgan.errors import FewganError


@dataclasses.dataclass(frozen=True)
class Inner(Config):
    k: int = 3


@dataclasses.dataclass(frozen=True)
class Demo(Config):
    lr: float = 4e-4
    steps: int = 2000
    sizes: tuple[int, ...] = (16, 200)
    name: str | None = None
    flag: bool = False
    window: tuple[float, float] | None = None
    inner: Inner = Inner()


def test_round_trip_and_unknown_keys():
    cfg = Demo(lr=1e-3, sizes=(8, 64), inner=Inner(k=5))
    assert Demo.from_dict(cfg.to_dict()) == cfg
    assert Demo.from_dict({"lr": 1}).lr == 1.0 and isinstance(Demo.from_dict({"lr": 1}).lr, float)
    with pytest.raises(FewganError, match="unknown option.*stepz"):
        Demo.from_dict({"stepz": 3})
    assert cfg.replace(steps=5).steps == 5


def test_cli_options_only_override_what_was_given():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Demo, skip=("inner",))
    args = parser.parse_args(["--steps", "10", "--sizes", "4", "32", "--flag"])
    cfg = config_from_args(Demo, args)
    assert cfg.steps == 10 and cfg.sizes == (4, 32) and cfg.flag is True and cfg.lr == 4e-4
    assert config_from_args(Demo, parser.parse_args(["--window", "0", "4095"])).window == (0.0, 4095.0)
    args = parser.parse_args(["--no-flag"])
    assert config_from_args(Demo, args, base=Demo(flag=True)).flag is False
