"""fewgan: generative models for people who have one image or a few hundred.

SinGAN on one image, data-efficient StyleGAN2 on a small folder, honest evaluation
and a report of every run. The Python API lives in :mod:`fewgan.api`; the names
below are re-exported lazily so that ``import fewgan`` stays cheap.
"""

__version__ = "0.1.0"

_API = (
    "train_singan", "train_stylegan2", "load", "sample", "generate", "evaluate",
    "report", "demo", "synth", "read_image", "write_image", "load_folder",
)

__all__ = ["__version__", "FewganError", *_API]

from fewgan.errors import FewganError  # noqa: E402


def __getattr__(name):
    if name == "demo":  # the demo pipeline lives above the API (fewgan.pipeline)
        from fewgan.pipeline import run_demo

        return run_demo
    if name in _API:
        from fewgan import api

        return getattr(api, name)
    if name in ("singan", "stylegan2", "metrics", "data", "augment"):
        import importlib

        return importlib.import_module(f"fewgan.{name}")
    raise AttributeError(f"module 'fewgan' has no attribute {name!r}")
