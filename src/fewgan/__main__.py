"""``python -m fewgan`` (and ``torchrun -m fewgan``) runs the command-line tool."""

from fewgan.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
