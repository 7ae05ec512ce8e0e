"""Run folders: creation, atomic files, plain-data checkpoints, RNG states, logging, progress.

A run folder is ``results/<YYYY-MM-DD_HH-MM-SS>[-N]/`` and holds

- ``config.json``: ``{"method": ..., "config": {...}, "data": {...}, "fewgan_version": ...,
  "environment": {...}}``, written before the first step;
- ``log.txt``: the human log (every line printed, seed-format loss lines included);
- ``metrics.jsonl``: one JSON object per logged step;
- ``checkpoints/``: ``torch.save`` files of plain data (state dicts, tensors, numbers,
  strings), loaded with ``torch.load(..., weights_only=True)`` so that no code runs on load;
- ``tb/``: TensorBoard event files (only when the ``tensorboard`` package is installed);
- images, plots and ``report.html`` written by the methods and :mod:`fewgan.report`.

Every file is written to a temporary name in the same folder and renamed into place, so a
killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import io
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewgan.errors import FewganError

# --------------------------------------------------------------------------- names
# Every file of a run folder and every key of its records is named here, once: the trainers
# write through these names, evaluation and the report read through them (no guessing).
CONFIG_FILE = "config.json"
LOG_FILE = "log.txt"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
TB_DIR = "tb"
SAMPLES_DIR = "samples"
PLOTS_DIR = "plots"
REPORT_FILE = "report.html"
EVAL_FILE = "eval.json"
PARTICLES_FILE = "particles.json"

# SinGAN
GPNN_RECORD_FILE = "gpnn.json"            # what made a folder of GPNN samples (written last)
SINGAN_RESUME_FILE = "resume.pt"          # in CHECKPOINT_DIR: everything a resume needs
SINGAN_MODEL_FILE = "generator.pt"        # the finished pyramid (what sampling loads)
SINGAN_AMPS_FILE = "amps.json"
SINGAN_FIGURE_FILE = "scales.png"         # real | reconstruction | samples, one row per scale
SINGAN_TRAINING_LABELS_FILE = "training_masks.tif"  # a labelled run's real instances at the trained size
SINGAN_LOSS_KEYS = ("D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv")
SINGAN_STEP_KEYS = ("scale", "step", *SINGAN_LOSS_KEYS, "amp", "lr", "seconds")
SINGAN_SCALE_END_KEYS = ("event", "scale", "size", "amp", "psnr", "ssim", "seconds_scale", "features")


def singan_scale_checkpoint(k: int) -> str:
    """File name (in ``CHECKPOINT_DIR``) of scale ``k``'s networks: ``s<k>.pt``."""
    return f"s{int(k)}.pt"


def singan_scale_images(k: int, suffix: str) -> tuple[str, str]:
    """``(reconstruction, sample grid)`` file names (in ``SAMPLES_DIR``) of scale ``k``."""
    return f"s{int(k)}_recon{suffix}", f"s{int(k)}_samples.png"


# StyleGAN2
STYLEGAN2_TRAINING_LABELS_DIR = "training_labels"  # a labelled run's first training images + instances, as trained
STYLEGAN2_TRAINING_LABELS_COUNT = 3
STYLEGAN2_LAST_CHECKPOINT = "last.pt"     # in CHECKPOINT_DIR: everything a resume needs
STYLEGAN2_BEST_FILES = {"G_ema": "best_G_ema.pt", "G": "best_G.pt", "D": "best_D.pt"}
STYLEGAN2_BEST_INFO = "best_info.json"
STYLEGAN2_STEP_KEYS = ("kimg", "epoch", "step", "loss_G", "loss_D", "r1", "pl", "ada_p", "lr", "seconds")
STYLEGAN2_EVAL_KEYS = ("event", "epoch", "kimg", "metric", "value", "best")


def stylegan2_sample_grid(step: int) -> str:
    """File name (in ``SAMPLES_DIR``) of the sample grid written at ``step``."""
    return f"fakes_step{int(step):07d}.png"


#: figures a trainer writes at the top of a run folder (the report shows them as figures)
FIGURE_FILES = (SINGAN_FIGURE_FILE,)
#: the key of ``config.json``'s ``data`` that holds the training data's path, per method
DATA_PATH_KEYS = {"singan": "path", "stylegan2": "root"}


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block on ``n`` torch CPU threads; the previous count is restored after, also on error."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where there is no glibc (macOS, Windows, musl)."""
    import ctypes

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim(0)``); False where there is no glibc.

    PyTorch's CPU tensors are plain ``malloc`` blocks. glibc keeps the blocks a phase frees in its
    heap (its mmap threshold rises to each freed block's size, up to 32 MB, so most feature maps land
    there), and a later phase with other shapes cannot always reuse them: the heap then grows while
    the pages of its free blocks stay resident. A SinGAN run at 2048 px grew that way to 3.75 GB of
    heap with 1.47 GB in use, and past 4 GiB of RSS (bench/README.md, "SinGAN at native
    resolution"). Called between the phases of a run (after a scale's set-up passes, after its end
    passes, before the figures), it bounds the resident set by what one phase uses; the pages come
    back on demand, so the only cost is the time to fault them in again (milliseconds per phase).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available) -> ``torch.device``; the one resolver.

    A device that does not exist here is a :class:`FewganError` naming the fix.
    """
    name = str(device or "cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if not (name == "cpu" or name.startswith("cuda")):
        raise FewganError(f"--device {name!r} is not a device (use cpu, cuda, cuda:N or auto)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FewganError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FewganError(f"--device {name!r} is not a device (use cpu, cuda, cuda:N or auto)") from None


# --------------------------------------------------------------------------- files
def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the usual permissions (0666 less the umask) so that a
        # report or a run folder can be shared like any file the user writes
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or corrupt file is a :class:`FewganError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FewganError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FewganError(f"{path}: not valid JSON ({exc})") from None


TEMP_SUFFIX = ".tmp"


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of killed atomic writes (``.NAME.XXXX.tmp``) under ``folder``.

    :func:`atomic_write_bytes` removes its temporary file on any Python exception, but a
    SIGKILL (or a power cut) leaves it; a run calls this when it starts or resumes, when no
    other writer of the folder is alive. Returns the files removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.rglob(f".*{TEMP_SUFFIX}"):
        if path.is_file():
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def check_writable(path: str | os.PathLike, what: str, kind: str = "dir") -> Path:
    """Fail early, before any compute, when ``path`` cannot be written.

    ``kind='dir'``: ``path`` is (or will be created as) a folder; ``kind='file'``: a file whose
    folder must be writable. Raises :class:`FewganError` naming ``what`` (the option, e.g.
    ``--results``) when a file stands where a folder is needed (or the reverse), or when
    the nearest existing folder refuses a test file (read-only, no permission, disk full).
    Creates nothing that stays.
    """
    path = Path(path)
    if kind == "dir" and path.exists() and not path.is_dir():
        raise FewganError(f"{what} {path}: is a file, not a folder; give a folder name")
    if kind == "file" and path.is_dir():
        raise FewganError(f"{what} {path}: is a folder, not a file name")
    probe = path if kind == "dir" else path.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise FewganError(f"{what} {path}: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fewgan-write-test.", suffix=TEMP_SUFFIX, dir=probe)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise FewganError(f"{what} {path}: cannot write in {probe} ({exc.strerror or exc}); "
                          "choose another location or free some space") from None
    return path


# --------------------------------------------------------------------------- run folders
def create_run_dir(root: str | os.PathLike = "results", now: _dt.datetime | None = None) -> Path:
    """Create ``root/<YYYY-MM-DD_HH-MM-SS>``; a ``-2``, ``-3``... suffix keeps it unique.

    ``mkdir`` without ``exist_ok`` is atomic, so two runs started in the same second (even
    in two processes) never share a folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or _dt.datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    for i in range(1, 10_000):
        path = root / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FewganError(f"{root}: could not create a unique run folder for {stamp}")


def discard_failed_start(run_dir: str | os.PathLike | None) -> bool:
    """Remove a run folder whose start failed before its first checkpoint; returns whether it did.

    A folder with a checkpoint holds work that a resume can continue, so it is kept; one
    without (the start failed while building networks, say) would only be an empty run for
    the user to wonder about.
    """
    if run_dir is None:
        return False
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or any((run_dir / CHECKPOINT_DIR).glob("*.pt")):
        return False
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    if _ACTIVE_RUN and _ACTIVE_RUN[-1] == run_dir:
        _ACTIVE_RUN.clear()
    return not run_dir.exists()


def environment_info(device: str | torch.device | None = None) -> dict[str, Any]:
    """Versions, device and threads: what a report needs to say where a number came from."""
    from fewgan import __version__

    info = {
        "fewgan": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(device) if device is not None else "cpu",
        "cuda_available": torch.cuda.is_available(),
        "argv": list(sys.argv),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_run_config(
    run_dir: str | os.PathLike,
    method: str,
    config: dict[str, Any],
    data: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` (method, resolved config, data metadata, environment)."""
    from fewgan import __version__

    payload = {
        "method": method,
        "fewgan_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "config": config,
        "data": data or {},
        "environment": environment_info(device),
    }
    if extra:
        payload.update(extra)
    return atomic_write_json(Path(run_dir) / CONFIG_FILE, payload)


def read_run_config(run_dir: str | os.PathLike, method: str | None = None) -> dict[str, Any]:
    """Read a run folder's ``config.json``; checks the method when one is given."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FewganError(f"{run_dir}: run folder not found")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FewganError(f"{run_dir}: not a fewgan run folder (no {CONFIG_FILE})")
    payload = read_json(path)
    if method is not None and payload.get("method") != method:
        raise FewganError(
            f"{run_dir}: is a {payload.get('method', 'unknown')!s} run, not a {method} run"
        )
    return payload


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any]) -> Path:
    """``torch.save`` plain data atomically (tensors, state dicts, numbers, strings, lists)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise FewganError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a plain-data checkpoint
        raise FewganError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})".splitlines()[0]) from None


# --------------------------------------------------------------------------- RNG states
def get_rng_state(device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Every RNG state as tensors (loadable with ``weights_only=True``)."""
    state = {"torch": torch.get_rng_state()}
    np_state = np.random.get_state()
    state["numpy_keys"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    state["numpy_meta"] = torch.tensor([np_state[2], np_state[3]], dtype=torch.float64)
    state["numpy_gauss"] = torch.tensor([np_state[4]], dtype=torch.float64)
    py_state = random.getstate()
    state["python"] = torch.tensor(list(py_state[1]), dtype=torch.int64)
    state["python_version"] = torch.tensor([py_state[0]], dtype=torch.int64)
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: str | torch.device | None = None) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    meta = state["numpy_meta"].tolist()
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), int(meta[0]), int(meta[1]),
         float(state["numpy_gauss"][0]))
    )
    random.setstate((int(state["python_version"][0]), tuple(int(x) for x in state["python"].tolist()), None))
    if "cuda" in state and device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu(), torch.device(device))


def generator_state(gen: torch.Generator) -> torch.Tensor:
    """State of a ``torch.Generator`` as a tensor (CPU generators; CUDA ones too)."""
    return gen.get_state().clone()


# --------------------------------------------------------------------------- training guards
def nonfinite_loss_error(values: dict[str, Any], where: str, run_dir: str | os.PathLike | None,
                         method: str) -> FewganError | None:
    """A :class:`FewganError` if any scalar in ``values`` (losses of one step) is NaN or infinite, else None.

    The trainers call this after every step and raise what it returns *before* the step can
    be checkpointed, so the last checkpoint on disk is the last good one and stays resumable.
    ``where`` names the step (``'scale 2, step 17'``).
    """
    scalars = {k: v for k, v in values.items()
               if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)}
    if not scalars:
        return None
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().cpu().reshape(())
                           for v in scalars.values()])
    if bool(torch.isfinite(stacked).all()):
        return None
    bad = ", ".join(f"{k}={float(v)}" for k, v in zip(scalars, stacked.tolist()) if not math.isfinite(v))
    where_run = (f"; the last good checkpoint is kept in {Path(run_dir) / CHECKPOINT_DIR} "
                 f"(fewgan {method} train --resume {run_dir} continues from it)") if run_dir is not None else ""
    return FewganError(f"non-finite loss at {where} ({bad}): the run stopped{where_run}; training diverged, "
                       "start again with a lower learning rate")


# --------------------------------------------------------------------------- logging
_ACTIVE_RUN: list[Path] = []


def active_run() -> Path | None:
    """The run folder a :class:`RunLogger` of this process last opened (what Ctrl-C should name)."""
    return _ACTIVE_RUN[-1] if _ACTIVE_RUN else None


class RunLogger:
    """Prints, writes ``log.txt``, ``metrics.jsonl`` and TensorBoard events for one run.

    Only the process with ``enabled=True`` (rank 0 under torchrun) prints or writes.
    ``quiet`` silences the terminal but never the files. Progress bars (:meth:`progress`)
    are tqdm bars with rate and ETA on a terminal; when stderr is not a terminal (CI, a
    job scheduler, a file) or ``quiet`` is set, they print plain periodic lines instead,
    without control characters.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        *,
        quiet: bool = False,
        enabled: bool = True,
        tensorboard: bool = True,
        stream=None,
    ):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.quiet = quiet
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self._log_fh = None
        self._metrics_fh = None
        self._tb = None
        self._tb_tried = not tensorboard
        if self.enabled and self.run_dir is not None:
            _ACTIVE_RUN[:] = [self.run_dir]
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._log_fh = open(self.run_dir / LOG_FILE, "a", encoding="utf-8")
            self._metrics_fh = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")

    # -- text
    def info(self, message: str, *, console: bool = True) -> None:
        """Print ``message`` (unless quiet) and append it to ``log.txt``."""
        if not self.enabled:
            return
        if console and not self.quiet:
            _write_above_bars(message, self.stream)
        if self._log_fh is not None:
            self._log_fh.write(message + "\n")
            self._log_fh.flush()

    def warning(self, message: str) -> None:
        """A warning line, always shown (also when quiet) on stderr and in the log."""
        if not self.enabled:
            return
        _write_above_bars(f"warning: {message}", sys.stderr)
        if self._log_fh is not None:
            self._log_fh.write(f"warning: {message}\n")
            self._log_fh.flush()

    # -- numbers
    def metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON object to ``metrics.jsonl`` (numbers, strings; tensors become floats)."""
        if not self.enabled or self._metrics_fh is None:
            return
        clean = {k: (float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v) for k, v in record.items()}
        self._metrics_fh.write(json.dumps(clean, default=_json_default) + "\n")
        self._metrics_fh.flush()

    def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        """TensorBoard scalars (no-op without the ``tensorboard`` package)."""
        writer = self._writer()
        if writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
                writer.add_scalar(f"{prefix}{key}", float(value), step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """TensorBoard image: ``[C, H, W]`` in [-1, 1] (no-op without ``tensorboard``)."""
        writer = self._writer()
        if writer is None:
            return
        img = ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2)
        writer.add_image(tag, img, step)

    def _writer(self):
        if not self.enabled or self.run_dir is None:
            return None
        if not self._tb_tried:
            self._tb_tried = True
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir / TB_DIR))
            except Exception:  # tensorboard not installed: event files are optional
                self._tb = None
        return self._tb

    @property
    def tensorboard_active(self) -> bool:
        return self._writer() is not None

    # -- progress
    def progress(self, total: int, desc: str = "", unit: str = "step", initial: int = 0, every_s: float = 30.0):
        """A progress bar with rate and ETA; plain lines when not on a terminal or quiet."""
        return Progress(total, desc=desc, unit=unit, initial=initial, logger=self, every_s=every_s)

    def close(self) -> None:
        for fh in (self._log_fh, self._metrics_fh):
            if fh is not None:
                fh.close()
        self._log_fh = self._metrics_fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_ACTIVE_BARS: list = []


def _write_above_bars(message: str, stream) -> None:
    if _ACTIVE_BARS:
        from tqdm import tqdm

        tqdm.write(message, file=stream)
    else:
        print(message, file=stream, flush=True)


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal a bar can redraw on.

    A terminal that reports zero columns (a pseudo-terminal whose size was never set, as some
    schedulers and containers create) counts as not a terminal: tqdm would draw nothing there.
    """
    stream = stream if stream is not None else sys.stderr
    try:
        if not stream.isatty() or os.environ.get("TERM") == "dumb":
            return False
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """tqdm on a terminal; otherwise a plain ``desc: n/total (pct) rate, ETA`` line every ``every_s``."""

    def __init__(self, total: int, desc: str, unit: str, initial: int, logger: RunLogger, every_s: float):
        self.total = int(total)
        self.n = int(initial)
        self.desc = desc
        self.unit = unit
        self.logger = logger
        self.every_s = every_s
        self._t0 = time.perf_counter()
        self._n0 = self.n
        self._last = self._t0
        self._bar = None
        self._postfix: dict[str, Any] = {}
        if logger.enabled and not logger.quiet and is_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.n, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
            _ACTIVE_BARS.append(self._bar)

    def update(self, n: int = 1, **postfix: Any) -> None:
        # a last batch may overshoot the budget (64 images of a 50-image budget): never past 100 %
        n = max(0, min(int(n), self.total - self.n))
        self.n += n
        if postfix:
            self._postfix = postfix
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = time.perf_counter()
        # quiet: no bar, but the plain periodic lines still say where the run is (docstring above)
        # quiet: only the periodic status line, not one more line each time a bar (a scale) completes
        done_now = self.n >= self.total and n > 0 and not self.logger.quiet
        if self.logger.enabled and (now - self._last >= self.every_s or done_now):
            self._last = now
            print(self.status_line(now), file=sys.stderr, flush=True)

    def status_line(self, now: float | None = None) -> str:
        now = now if now is not None else time.perf_counter()
        done = self.n - self._n0
        elapsed = max(now - self._t0, 1e-9)
        rate = done / elapsed
        left = max(self.total - self.n, 0) / rate if rate > 0 else float("nan")
        pct = min(100.0, 100.0 * self.n / max(self.total, 1))
        return (
            f"{self.desc}: {self.n}/{self.total} {self.unit}s ({pct:.0f}%), "
            f"{rate:.2f} {self.unit}/s, elapsed {format_seconds(elapsed)}, ETA {format_seconds(left)}"
            + "".join(f", {k}={_short(v)}" for k, v in self._postfix.items())
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            if self._bar in _ACTIVE_BARS:
                _ACTIVE_BARS.remove(self._bar)
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(value: Any) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_seconds(seconds: float) -> str:
    """``3725 -> '1:02:05'``; ``nan -> '?'``."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a run's ``metrics.jsonl`` (a torn last line from a kill is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    # errors="replace": a stray non-UTF-8 byte (a disk error, a foreign tool) costs its line, not the report
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run_dir: str | os.PathLike, keep) -> None:
    """On resume: cut ``metrics.jsonl`` down to the records for which ``keep(record)`` is true.

    Records logged after the checkpoint a run resumes from would otherwise appear twice. The
    file is cut in place (same inode), never replaced, so a :class:`RunLogger` that already
    holds it open in append mode keeps writing into the file the reader sees. Checkpoints that
    carry :func:`log_offsets` are resumed with :func:`truncate_logs` instead (exact).
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return
    data = path.read_bytes()
    kept, offset, prefix = [], 0, True
    for raw in data.splitlines(keepends=True):
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if record is not None and keep(record):
            kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
            if prefix:
                offset += len(raw)
        elif raw.strip():
            prefix = False
    if prefix and (offset == 0 or data[offset - 1:offset] == b"\n"):
        os.truncate(path, offset)
        return
    with open(path, "r+b") as fh:
        fh.write(b"".join(kept))
        fh.truncate()
        fh.flush()
        os.fsync(fh.fileno())


def log_offsets(run_dir: str | os.PathLike) -> dict[str, int]:
    """Byte sizes of ``log.txt`` and ``metrics.jsonl`` now: store them in a resume checkpoint.

    :class:`RunLogger` flushes every line, so the sizes on disk are what was logged up to
    the checkpoint; :func:`truncate_logs` cuts both files back to them on resume, so that after
    any number of kills and resumes the files hold exactly the lines of an uninterrupted run.
    """
    run_dir = Path(run_dir)
    return {name: (run_dir / name).stat().st_size if (run_dir / name).is_file() else 0
            for name in (LOG_FILE, METRICS_FILE)}


def truncate_logs(run_dir: str | os.PathLike, offsets: dict[str, Any]) -> None:
    """Cut ``log.txt`` and ``metrics.jsonl`` back to the sizes :func:`log_offsets` recorded.

    In place (``os.truncate``: same inode, one system call), so a logger that has the files
    open in append mode writes after the cut. A file shorter than its offset is left alone.
    """
    run_dir = Path(run_dir)
    for name in (LOG_FILE, METRICS_FILE):
        path = run_dir / name
        size = int(offsets.get(name, -1)) if isinstance(offsets, dict) else -1
        if size >= 0 and path.is_file() and path.stat().st_size > size:
            os.truncate(path, size)
