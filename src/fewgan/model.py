"""What a trained model is, for both methods; and what every network shares.

The method packages implement :class:`TrainedModel` (:class:`fewgan.singan.sample.SinGANModel`,
:class:`fewgan.stylegan2.generate.StyleGAN2Model`); everything above them (the images of a run
for evaluation, the demo, the API) uses a model only through it, never by probing it. The
contract follows the diffusers rule "a model is weights plus a config that travels with them":
a model loads from its run folder alone and says what data it came from.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from torch import nn

if TYPE_CHECKING:
    import torch

    from fewgan.data.images import ImageMeta


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (not buffers) of ``module``, as the public codes print it."""
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """A model's reconstruction of its training image and that image, both ``[1, C, H, W]`` in [-1, 1]."""

    image: "torch.Tensor"
    target: "torch.Tensor"


@runtime_checkable
class TrainedModel(Protocol):
    """A trained generator loaded from a run folder.

    Attributes
    ----------
    method : the ``method`` its run folder's ``config.json`` records ('singan', 'stylegan2').
    run : the run folder it was loaded from.
    meta : :class:`fewgan.data.images.ImageMeta` of the images it makes (format, dtype, data
        range, channels, size): what turns ``[-1, 1]`` back into the data's units.
    outputs : names of the extra outputs it makes beside the image (none yet; labels next).
    """

    method: ClassVar[str]
    run: Path | None

    @classmethod
    def load(cls, run: str | os.PathLike, device: str = "cpu") -> "TrainedModel":
        """Load the model of a finished run folder (:class:`fewgan.errors.FewganError` if it has none)."""
        ...

    @property
    def meta(self) -> "ImageMeta": ...

    @property
    def outputs(self) -> tuple[str, ...]: ...

    def sample_tensor(self, n: int, seed: int = 0) -> "torch.Tensor":
        """``n`` images ``[n, C, H, W]`` float32 on the CPU in the [-1, 1] convention (SinGAN clips to it;
        StyleGAN2 returns its network's output, which may overshoot, as NVlabs' code does); image ``i``
        depends only on ``(seed, i)``, never on the batch it was made in."""
        ...

    def training_data(self) -> Path | None:
        """The image or folder it was trained on, as its ``config.json`` records it (None if not recorded)."""
        ...

    def reconstruction(self) -> Reconstruction | None:
        """Its reconstruction of the training image (SinGAN's fixed-noise pass), or None when it has none."""
        ...


def recorded_data_path(payload: dict, method: str) -> Path | None:
    """The training data's path in a run's ``config.json`` payload (the key :data:`fewgan.run.DATA_PATH_KEYS` names)."""
    from fewgan.run import DATA_PATH_KEYS

    value = (payload.get("data") or {}).get(DATA_PATH_KEYS[method])
    return Path(value) if isinstance(value, str) and value else None
