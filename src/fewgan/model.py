"""What a trained model is, for both methods; and what every network shares.

The method packages (:mod:`fewgan.singan`, :mod:`fewgan.stylegan2`) implement the contract;
everything above them (evaluation of a run, the report, the demo, the API) uses a model only
through it.
"""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (not buffers) of ``module``, as the public codes print it."""
    return sum(p.numel() for p in module.parameters())
