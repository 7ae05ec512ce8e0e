"""Augmentation for training GANs on few images: DiffAugment, ADA and classical augmentation.

Three independent tools, each an ``nn.Module`` on ``[N, C, H, W]`` images in ``[-1, 1]`` with
C = 1 or 3, keeping shape, dtype and device, and each splitting ``sample_params(x, generator)``
from ``apply(x, params)`` so a draw can be replayed (tests) or shared (DDP ranks):

* :class:`~fewgan.augment.diffaugment.DiffAugment` (Zhao et al., NeurIPS 2020): colour,
  translation, cutout; differentiable; applied to real and fake images in the D step and to
  fake images in the G step.
* :class:`~fewgan.augment.ada.ADA` (Karras et al., NeurIPS 2020): flips, 90-degree rotations,
  integer translation, scaling, rotation, anisotropy, fractional translation, brightness,
  contrast (plus luma flip, hue and saturation on RGB), each applied with probability ``p``,
  which a controller moves towards ``E[sign(D(real))] = 0.6``; differentiable; same places
  as DiffAugment.
* :class:`~fewgan.augment.classical.ClassicalAugment`: the seed document's torchvision-style
  augmentation of the *real images only*, before the discriminator pipeline. Non-invertible
  parts leak into the generator; by default only flips are on.

How they combine (:class:`Augmentations`): a real batch goes through ``classical`` once (it
defines what "real" means), then whatever D sees, real or fake, goes through
``diffaugment(ada(x))`` (:meth:`Augmentations.for_discriminator`). R1 is taken on the real
batch after ``classical`` and before ``ada`` / ``diffaugment``, with gradients through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fewgan.augment.ada import ADA
from fewgan.augment.classical import ClassicalAugment
from fewgan.augment.diffaugment import DEFAULT_POLICY, DiffAugment, parse_policy
from fewgan.errors import FewganError

__all__ = [
    "ADA",
    "Augmentations",
    "ClassicalAugment",
    "DEFAULT_POLICY",
    "DiffAugment",
    "build",
]


@dataclass
class Augmentations:
    """The augmentation objects of one training run; each is None when switched off."""

    diffaugment: DiffAugment | None = None
    ada: ADA | None = None
    classical: ClassicalAugment | None = None

    def for_real_data(self, real: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Classical augmentation of a real batch (identity when off)."""
        if self.classical is None:
            return real
        return self.classical(real, generator)

    def for_discriminator(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """What D sees: ``diffaugment(ada(x))`` for real or fake batches (identity when both off).

        With a ``generator``, ADA draws from it first, then DiffAugment.
        """
        if self.ada is not None:
            x = self.ada(x, generator)
        if self.diffaugment is not None:
            x = self.diffaugment(x, generator)
        return x

    @property
    def leaks(self) -> tuple[str, ...]:
        """Leaking parts of the classical augmentation (DiffAugment and ADA do not leak)."""
        return self.classical.leaks if self.classical is not None else ()

    def leak_warning(self) -> str | None:
        """One-line warning when a leaking classical augmentation is on, else None."""
        return self.classical.leak_warning() if self.classical is not None else None

    def describe(self) -> list[str]:
        """Start-up lines saying what is on, e.g. ``"DiffAugment: on (color,translation,cutout)"``."""
        da = self.diffaugment
        lines = [
            f"DiffAugment: on ({','.join(da.policy)})" if da is not None else "DiffAugment: off",
            (
                f"ADA: on (p={float(self.ada.p):.3f}, target {self.ada.target}, "
                f"adjust over {self.ada.adjust_kimg:g} kimg)"
            )
            if self.ada is not None
            else "ADA: off",
            f"Classical augmentation of reals: {','.join(self.classical.parts)}"
            if self.classical is not None
            else "Classical augmentation of reals: off",
        ]
        return lines


def build(
    diffaugment: str | None = DEFAULT_POLICY,
    ada: bool = False,
    classical: str | None = "default",
    channels: int = 3,
    *,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    ada_target: float = 0.6,
    ada_kimg: float = 500.0,
    ada_interval: int = 4,
    ada_p: float = 0.0,
    label_channels: int = 0,
) -> Augmentations:
    """Build the augmentations from CLI-style options.

    ``diffaugment``: a policy such as ``"color,translation,cutout"``, or None / ``"none"``.
    ``ada``: on or off (its options: ``ada_target``, ``ada_kimg``, ``ada_interval``, ``ada_p``).
    ``classical``: ``"seed"``, ``"default"`` (flips), ``"none"`` / None, or a comma list of
    :data:`fewgan.augment.classical.PARTS`. ``channels``: 1 or 3. Bad values raise
    :class:`FewganError`. ``label_channels``: label channels after the image channels
    (:mod:`fewgan.data.labels`), moved with every geometric op and never colour-changed.
    """
    if channels not in (1, 3):
        raise FewganError(f"augmentation works on 1 or 3 channels, got {channels}")
    policy = parse_policy(diffaugment)
    return Augmentations(
        diffaugment=DiffAugment(",".join(policy), translation_ratio, cutout_ratio, label_channels)
        if policy else None,
        ada=ADA(channels=channels, p=ada_p, target=ada_target, adjust_kimg=ada_kimg, interval=ada_interval,
                label_channels=label_channels)
        if ada
        else None,
        classical=ClassicalAugment.from_spec(classical, label_channels),
    )
