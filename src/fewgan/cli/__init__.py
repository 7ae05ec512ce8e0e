"""The ``fewgan`` command-line tool: parses arguments and calls :mod:`fewgan.api`, nothing else.

Each area registers its sub-commands from its own module (``fewgan.cli.singan``,
``fewgan.cli.stylegan2``, ...), so the people working on SinGAN and on StyleGAN2 do not
edit the same file. A :class:`fewgan.errors.FewganError` (or a bad option) is printed as
one line on stderr with exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import signal
import sys

from fewgan import __version__
from fewgan.errors import FewganError

# (module, sub-command names): the order is the order of ``fewgan --help``.
_AREAS = ("data", "singan", "stylegan2", "gpnn", "evaluate", "weights", "report", "demo")


DEVICE_HELP = ("auto (default: the GPU when PyTorch sees one, else the CPU), cpu, cuda or cuda:N; "
               "the device used is printed in the first lines")


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
    parser.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                        help="largest image read, in pixels (width x height), checked from the file header before "
                             "decoding (default: 64000000; also FEWGAN_MAX_PIXELS); may also follow the command")
    parser.add_argument("--nonfinite", choices=("error", "replace"), default=None,
                        help="NaN or infinite pixels in a float image: error (default: one line naming the file and "
                             "the counts) or replace (NaN and -inf by the lowest finite value, +inf by the highest; "
                             "recorded in the image notes and the report); may also follow the command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for area in _AREAS:
        module = importlib.import_module(f"fewgan.cli.{area}")
        module.register(sub)
    return parser


# options of the whole tool that may stand anywhere on the line (before or after the command)
_GLOBAL_OPTIONS = ("--max-pixels", "--nonfinite")


def _hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--max-pixels N`` / ``--nonfinite X`` (or ``--opt=value``) to the front, where argparse wants them."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_OPTIONS:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(argv[i:i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, ``kill``): handled like Ctrl-C, with exit status 143."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal API
    raise _Terminated()


def _interrupted_message(exc: BaseException) -> str:
    """What a user needs after Ctrl-C / SIGTERM: the run folder and the exact resume command."""
    from fewgan.run import CHECKPOINT_DIR, active_run, read_json

    what = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted"
    run = active_run()
    if run is None:
        return f"fewgan: {what}"
    try:
        method = read_json(run / "config.json").get("method")
    except FewganError:
        method = None
    if method in ("singan", "stylegan2") and any((run / CHECKPOINT_DIR).glob("*.pt")):
        return f"fewgan: {what}; run folder {run}; continue with: fewgan {method} train --resume {run}"
    return f"fewgan: {what}; run folder {run} (no checkpoint yet: nothing to resume, start again)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fewgan`` command; returns the exit status."""
    argv = _hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv or os.environ.get("FEWGAN_DEBUG") == "1"
    previous_term = None
    try:
        previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding application): leave SIGTERM alone
        pass
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.max_pixels is not None or args.nonfinite is not None:
            from fewgan.data.images import set_read_options

            set_read_options(max_pixels=args.max_pixels, nonfinite=args.nonfinite)
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
    except OSError as exc:  # a disk full, a read-only folder, a file in the way: the user can fix it
        if debug:
            raise
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"fewgan: error: cannot write or read{where}: {exc.strerror or exc} (files written before are kept; "
              "free space or choose another location)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(_interrupted_message(exc), file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        if previous_term is not None:
            try:
                signal.signal(signal.SIGTERM, previous_term)
            except ValueError:
                pass


def _whole_number_at_least(text: str, lowest: int, words: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"{value}: must be {words}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--n 0`` is an error, not an empty output)."""
    return _whole_number_at_least(text, 1, "at least 1")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _whole_number_at_least(text, 0, "0 or more")


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` are errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number (not nan or inf)")
    return value


def add_group(sub, name: str, help: str) -> tuple[ArgumentParser, argparse._SubParsersAction]:
    """A command with its own sub-commands (``fewgan singan train``): returns (parser, subparsers)."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(_parser=parser, func=None)
    return parser, parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", parser_class=ArgumentParser)
