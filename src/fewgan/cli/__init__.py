"""The ``fewgan`` command-line tool: parses arguments and calls :mod:`fewgan.api`, nothing else.

Each area registers its sub-commands from its own module (``fewgan.cli.singan``,
``fewgan.cli.stylegan2``, ...), so the people working on SinGAN and on StyleGAN2 do not
edit the same file. A :class:`fewgan.errors.FewganError` (or a bad option) is printed as
one line on stderr with exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fewgan import __version__
from fewgan.errors import FewganError

# (module, sub-command names): the order is the order of ``fewgan --help``.
_AREAS = ("data", "singan", "stylegan2", "evaluate", "weights", "report", "demo")


class _ArgumentError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become one line and exit status 2 (not usage + message)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise _ArgumentError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="fewgan",
        description=(
            "Generative models for one image or a few hundred: SinGAN on one image, "
            "data-efficient StyleGAN2 on a small folder, honest evaluation and reports."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fewgan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for area in _AREAS:
        module = importlib.import_module(f"fewgan.cli.{area}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fewgan`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FEWGAN_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            if getattr(args, "command", None):
                # a group such as ``fewgan singan`` without its action
                args._parser.print_help()
            else:
                parser.print_help()
            return 2
        result = args.func(args)
        return int(result or 0)
    except _ArgumentError as exc:
        print(f"fewgan: error: {exc}", file=sys.stderr)
        return 2
    except FewganError as exc:
        if debug:
            raise
        print(f"fewgan: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fewgan: interrupted", file=sys.stderr)
        return 130


def add_group(sub, name: str, help: str) -> tuple[ArgumentParser, argparse._SubParsersAction]:
    """A command with its own sub-commands (``fewgan singan train``): returns (parser, subparsers)."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(_parser=parser, func=None)
    return parser, parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", parser_class=ArgumentParser)
