"""The Python API: one function per thing a user does; the CLI calls exactly these.

Each function delegates to the package that owns the method (``fewgan.singan``,
``fewgan.stylegan2``, ``fewgan.metrics``, ``fewgan.report``, ``fewgan.data``); imports are
local so that ``import fewgan`` stays fast.

Examples
--------
>>> import fewgan
>>> run = fewgan.train_singan("micrograph.tif", steps=2000)      # doctest: +SKIP
>>> images = fewgan.load(run).sample(16, seed=0)                   # doctest: +SKIP
>>> fewgan.evaluate("real/", "fake/", metrics=["swd", "particles"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


PathLike = str | os.PathLike


# --------------------------------------------------------------------------- data
def read_image(path: PathLike, **options: Any):
    """Read one image to ``([C, H, W] float tensor in [-1, 1], ImageMeta)``; see :func:`fewgan.data.images.read_image`."""
    from fewgan.data.images import read_image as _read

    return _read(path, **options)


def write_image(path: PathLike, image, meta, **options: Any) -> Path:
    """Write a ``[C, H, W]`` image in [-1, 1] back in ``meta``'s format and bit depth."""
    from fewgan.data.images import write_image as _write

    return _write(path, image, meta, **options)


def load_folder(path: PathLike, **options: Any):
    """Load a folder of images as one ``[N, C, R, R]`` tensor; see :func:`fewgan.data.folder.load_folder`."""
    from fewgan.data.folder import load_folder as _load

    return _load(path, **options)


def synth(out: PathLike, **options: Any) -> Path:
    """Make synthetic particle micrographs with ground truth; see :func:`fewgan.data.synthetic.synth`."""
    from fewgan.data.synthetic import synth as _synth

    return _synth(out, **options)


# --------------------------------------------------------------------------- training
def train_singan(image: PathLike, **options: Any) -> Path:
    """Train SinGAN on one image; returns the run folder. See :func:`fewgan.singan.train.train`."""
    from fewgan.singan.train import train

    return train(image, **options)


def train_stylegan2(folder: PathLike, **options: Any) -> Path:
    """Train StyleGAN2 on a folder of images; returns the run folder. See :func:`fewgan.stylegan2.train.train`."""
    from fewgan.stylegan2.train import train

    return train(folder, **options)


# --------------------------------------------------------------------------- trained runs
def load(run: PathLike, **options: Any):
    """Load a trained run as a :class:`fewgan.model.TrainedModel` (``.sample(n, seed=...)``).

    Dispatches on the ``method`` recorded in the run folder's ``config.json``.
    """
    from fewgan import trained

    return trained.load(run, **options)


def sample(run: PathLike, out: PathLike, **options: Any) -> Path:
    """Write samples of a SinGAN run into ``out``; see :func:`fewgan.singan.sample.sample_to_folder`."""
    from fewgan.singan.sample import sample_to_folder

    return sample_to_folder(run, out, **options)


def generate(run: PathLike, out: PathLike, **options: Any) -> Path:
    """Write images of a StyleGAN2 run into ``out``; see :func:`fewgan.stylegan2.generate.generate_to_folder`."""
    from fewgan.stylegan2.generate import generate_to_folder

    return generate_to_folder(run, out, **options)


# --------------------------------------------------------------------------- evaluation and reports
def evaluate(real: PathLike, fake: PathLike, **options: Any) -> dict[str, Any]:
    """Compare real and generated images; see :func:`fewgan.metrics.evaluate.evaluate`."""
    from fewgan import trained
    from fewgan.metrics.evaluate import evaluate as _evaluate

    return _evaluate(real, fake, run_loader=trained.run_image_set, **options)


def weights_status(path: PathLike | None = None) -> dict[str, Any]:
    """Where the Inception weights are looked for and what is found; see :func:`fewgan.metrics.features.weights_status`."""
    from fewgan.metrics.features import weights_status as _status

    return _status(path)


def import_weights(file: PathLike, dest_dir: PathLike | None = None) -> Path:
    """Check the Inception weights' SHA-256 and copy them into torch's hub cache; see :func:`fewgan.metrics.features.import_weights`."""
    from fewgan.metrics.features import import_weights as _import

    return _import(file, dest_dir)


def fetch_weights(url: str | None = None, dest_dir: PathLike | None = None) -> Path:
    """Download, check and install the Inception weights (needs internet); see :func:`fewgan.metrics.features.fetch_weights`."""
    from fewgan.metrics.features import fetch_weights as _fetch

    return _fetch(url, dest_dir)


def report(run: PathLike, **options: Any) -> Path:
    """Write ``report.html`` (and its plots) for a run folder; returns its path."""
    from fewgan.report.html import write_report

    return write_report(run, **options)

