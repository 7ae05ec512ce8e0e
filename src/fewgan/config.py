"""One source of configuration truth: frozen dataclasses with checked round trips.

Every component's options are a frozen dataclass deriving from :class:`Config`. Defaults
are written once, in the dataclass. ``to_dict`` / ``from_dict`` round-trip through JSON
(the run folder's ``config.json``), and ``from_dict`` rejects unknown keys so that a typo
in a config file is an error, not a silently ignored option. The command-line tool
derives its options from the same fields (:func:`add_config_arguments`).

Each method keeps its own dataclasses in its package (``fewgan.singan.config``,
``fewgan.stylegan2.config``) so that a person working on one method finds all of it in
one folder; this module holds what they share.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, TypeVar

from fewgan.errors import FewganError

T = TypeVar("T", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every configuration dataclass (subclasses are frozen dataclasses).

    Subclasses validate in ``__post_init__`` (raising :class:`FewganError`), so that no invalid
    config can exist, and name in :attr:`RUNTIME_FIELDS` the settings of a run (cadences,
    kernels, stop-after) that a resume may change; every other field is the model and stays.
    """

    #: fields that are settings of the run, not of the model: :meth:`resume_with` may change them
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: fields added after runs were made, each with the value that reproduces those runs (their
    #: stored configs lack the key; :meth:`from_stored` fills it, so an old run means what it meant)
    ADDED_FIELDS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data (JSON-ready) copy; nested configs become nested dicts, tuples lists."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
        """Build from a dict; unknown keys raise :class:`FewganError`, missing keys take defaults."""
        data = dict(data or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise FewganError(
                f"unknown option(s) for {cls.__name__}: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(names))})"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in data.items():
            kwargs[key] = _coerce(hints.get(key), value)
            check_finite(key, kwargs[key])
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise FewganError(f"invalid {cls.__name__}: {exc}") from exc

    @classmethod
    def from_stored(cls: type[T], data: dict[str, Any] | None) -> T:
        """A config stored by a run (``config.json``, a checkpoint): like :meth:`from_dict`, but a
        field of :attr:`ADDED_FIELDS` missing from ``data`` takes its value from before it existed,
        not today's default (a new default never changes what an old run's model is)."""
        return cls.from_dict({**cls.ADDED_FIELDS, **dict(data or {})})

    def resume_with(self: T, requested: dict[str, Any], *, run: Any = None) -> T:
        """The one resume rule: this (stored) config with the requested run-time settings applied.

        ``requested`` holds the options given to the resume (``None``: not given). A given field
        of :attr:`RUNTIME_FIELDS` replaces the stored value; any other given field whose value
        (after validation, e.g. ``[0.5, 0.9]`` == ``(0.5, 0.9)``) differs from the stored one is
        refused with one :class:`FewganError` line naming each such field, its stored and its
        requested value.
        """
        stored = self.to_dict()
        given = {k: v for k, v in requested.items() if v is not None}
        merged = type(self).from_dict({**stored, **given})  # unknown names and bad values: one line
        resolved = merged.to_dict()
        refused = [f"{k} (stored {stored[k]!r}, requested {given[k]!r})" for k in given
                   if resolved[k] != stored[k] and k not in self.RUNTIME_FIELDS]
        if refused:
            where = f"--resume {run}: " if run is not None else ""
            raise FewganError(f"{where}a resume continues the run with its own options; cannot change "
                              f"{', '.join(refused)}; a resume may change only {', '.join(self.RUNTIME_FIELDS)}")
        return merged

    def replace(self: T, **changes: Any) -> T:
        """A copy with some fields changed (unknown names raise :class:`FewganError`)."""
        merged = self.to_dict()
        merged.update(changes)
        return type(self).from_dict(merged)


def check_finite(name: str, value: Any) -> None:
    """Raise :class:`FewganError` if ``value`` (a number, or a tuple/list of them) is NaN or infinite.

    Every config field goes through this in :meth:`Config.from_dict`, so ``--lr inf`` or
    ``--noise-weight nan`` is a one-line error before a run folder exists, never a NaN model.
    """
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise FewganError(f"--{name.replace('_', '-')} {value if len(values) > 1 else v}: "
                              "must be a finite number (not nan or inf)")


def _coerce(hint: Any, value: Any) -> Any:
    """Turn JSON values back into the declared type (lists -> tuples, dicts -> configs)."""
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return _coerce(args[0], value)
        return value
    if isinstance(hint, type) and issubclass(hint, Config) and isinstance(value, dict):
        return hint.from_dict(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _unwrap_optional(hint: Any) -> Any:
    """``X | None`` -> ``X`` (other unions are left alone)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _arg_type(hint: Any):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _arg_type(args[0]) if len(args) == 1 else str
    if origin is tuple:
        inner = typing.get_args(hint)
        return inner[0] if inner else str
    return hint if hint in (int, float, str) else str


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type[Config],
    *,
    skip: tuple[str, ...] = (),
    help: dict[str, str] | None = None,
) -> None:
    """Add one ``--option`` per field of ``cls`` (``snake_case`` -> ``--snake-case``).

    Defaults are *not* set on the parser (``argparse.SUPPRESS``) so that only the options
    the user typed override the dataclass defaults (see :func:`config_from_args`). Booleans
    become ``--name`` / ``--no-name`` pairs; tuples take several values.
    """
    help = help or {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        text = help.get(f.name, "")
        if "(default" in text:  # the help text states its default itself
            pass
        elif text:
            text = f"{text} (default: {default})"
        else:
            text = f"default: {default}"
        if hint is bool or hint == "bool":
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS, help=text,
            )
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(
                flag, dest=f.name, nargs="+", type=_arg_type(hint),
                default=argparse.SUPPRESS, help=text,
            )
        else:
            parser.add_argument(
                flag, dest=f.name, type=_arg_type(hint), default=argparse.SUPPRESS,
                help=text,
            )


def config_from_args(cls: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """The config ``cls`` (or ``base``) with every field the user gave on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    start = base.to_dict() if base is not None else {}
    start.update(given)
    return cls.from_dict(start)
