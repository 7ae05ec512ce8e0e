"""``python -m fewgan`` (and ``torchrun -m fewgan``) runs the command-line tool."""

import os
import sys

from fewgan.cli import main

if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun worker: its run has written and closed its files and left its process group
        # (fewgan.stylegan2.train.DistInfo.close). It leaves without the interpreter's teardown, in
        # which a gloo / TCPStore thread aborted the process ("terminate called without an active
        # exception", SIGABRT) after a finished run: twice in fresh-clone CI runs of
        # tests/stylegan2/test_ddp.py on 2026-12-05, the barrier before leaving the group notwithstanding.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
