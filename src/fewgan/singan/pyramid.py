"""The SinGAN scale pyramid: which sizes the scales s0..sN have, and the trained scales' one
coarse-to-fine pass (:class:`TrainedScales`).

The rule is the public kligvasser/SinGAN one (``generation/trainer.py``, ``_adjust_scales``)
that the seed run used, quirk included (SPEC.md, steps 1-6), with two repairs:

1. the public rule counts scales on the *original* image but builds them on the image
   resized to ``max_size``; for an input much larger than ``max_size`` the coarsest scale
   falls below the discriminator's receptive field (11 px) and the public code crashes.
   Where the rule's coarsest scale is smaller than the receptive field on its short side,
   fewgan counts the scales on the resized image instead (and says so);
2. the resize to ``max_size`` rounds up (``ceil``), so e.g. a 265 px side becomes 201 px;
   fewgan caps the finest scale's long side at ``max_size``.

Shumer, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural
Image", ICCV 2019 (the multi-scale pyramid).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import torch

from fewgan.errors import FewganError
from fewgan.ops.imresize import imresize, scaled_size
from fewgan.singan.nets import make_noise, statistics_at, upsample


@dataclasses.dataclass(frozen=True)
class Pyramid:
    """The resolved pyramid.

    Attributes
    ----------
    sizes : ``(h, w)`` of scales s0..sN, coarse to fine.
    scale_factor : ratio between consecutive scales (< 1).
    scale_one : factor that took the input to the finest scale's image (<= 1).
    resized : ``(h, w)`` of the input after the ``scale_one`` resize (the finest scale).
    num_scales, stop_scale : the public rule's counts (``len(sizes) == stop_scale + 1``).
    repaired : notes on where fewgan departs from the public rule (empty for the seed case).
    """

    sizes: tuple[tuple[int, int], ...]
    scale_factor: float
    scale_one: float
    resized: tuple[int, int]
    num_scales: int
    stop_scale: int
    repaired: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"sizes": [list(s) for s in self.sizes], "scale_factor": self.scale_factor,
                "scale_one": self.scale_one, "resized": list(self.resized), "num_scales": self.num_scales,
                "stop_scale": self.stop_scale, "repaired": list(self.repaired)}

    @classmethod
    def from_dict(cls, d: dict) -> "Pyramid":
        return cls(sizes=tuple(tuple(int(v) for v in s) for s in d["sizes"]), scale_factor=float(d["scale_factor"]),
                   scale_one=float(d["scale_one"]), resized=tuple(int(v) for v in d["resized"]),
                   num_scales=int(d["num_scales"]), stop_scale=int(d["stop_scale"]),
                   repaired=tuple(d.get("repaired", ())))


def _rule(h: int, w: int, min_size: int, max_size: int, base: float, resized: tuple[int, int]):
    """Steps 1-6 of SPEC.md, with the scale count taken on ``(h, w)`` and the scales built on ``resized``."""
    num_scales = math.ceil(math.log(min_size / min(h, w), base)) + 1
    scale_to_stop = math.ceil(math.log(min(max_size, max(h, w)) / max(h, w), base))
    stop_scale = num_scales - scale_to_stop
    rh, rw = resized
    if stop_scale < 1:
        raise FewganError(f"image {h}x{w} gives no pyramid at min size {min_size}: "
                          f"use a larger image or a smaller --min-size")
    scale_factor = math.pow(min_size / min(rh, rw), 1 / stop_scale)
    scale_to_stop = math.ceil(math.log(min(max_size, max(rh, rw)) / max(rh, rw), base))
    stop_scale = num_scales - scale_to_stop
    sizes = []
    for i in range(stop_scale + 1):
        s = math.pow(scale_factor, stop_scale - i)
        sizes.append((scaled_size(rh, s), scaled_size(rw, s)))
    return num_scales, stop_scale, scale_factor, tuple(sizes)


def plan_pyramid(height: int, width: int, min_size: int = 16, max_size: int = 200,
                 scale_factor_init: float = 0.75, receptive_field: int = 11) -> Pyramid:
    """Scale sizes for an input of ``height x width`` (see the module docstring).

    >>> p = plan_pyramid(250, 200)                     # the seed's table
    >>> [max(s) for s in p.sizes]
    [16, 21, 26, 34, 44, 56, 72, 93, 120, 155, 200]

    Raises :class:`FewganError` for an image smaller than ``min_size`` or ``min_size > max_size``.
    """
    h, w = int(height), int(width)
    if min_size > max_size:
        raise FewganError(f"--min-size {min_size} is larger than --max-size {max_size}; "
                          "choose a min size at most the max size")
    if min(h, w) < receptive_field:
        raise FewganError(f"image is {h}x{w} px; SinGAN needs at least {receptive_field} px on the short side "
                          f"(the discriminator's receptive field); use a larger image")
    if min(h, w) < min_size:
        raise FewganError(f"image is {h}x{w} px, smaller than --min-size {min_size} on its short side; "
                          f"use a larger image or --min-size {min(h, w)} (at least {receptive_field})")
    scale_one = min(max_size / max(h, w), 1)
    rh, rw = scaled_size(h, scale_one), scaled_size(w, scale_one)
    notes = []
    if max(rh, rw) > max_size:  # repair 2: ceil rounding would exceed max size
        notes.append(f"the resize to max size rounds {h}x{w} up to {rh}x{rw}; capped at {max_size} px")
        if rh >= rw:
            rh, rw = max_size, min(rw, max_size)
        else:
            rh, rw = min(rh, max_size), max_size
    num_scales, stop_scale, scale_factor, sizes = _rule(h, w, min_size, max_size, scale_factor_init, (rh, rw))
    if min(sizes[0]) < receptive_field:  # repair 1: count the scales on the resized image
        old = sizes[0]
        num_scales, stop_scale, scale_factor, sizes = _rule(rh, rw, min_size, max_size, scale_factor_init, (rh, rw))
        notes.append(f"the public rule gives a coarsest scale of {old[0]}x{old[1]} px, below the "
                     f"discriminator's {receptive_field} px; scales counted on the resized {rh}x{rw} image instead")
    return Pyramid(sizes=sizes, scale_factor=scale_factor, scale_one=scale_one, resized=(rh, rw),
                   num_scales=num_scales, stop_scale=stop_scale, repaired=tuple(notes))


def build_reals(image: torch.Tensor, pyramid: Pyramid) -> list[torch.Tensor]:
    """The real image at every scale.

    Parameters
    ----------
    image : ``[1, C, H, W]`` (or ``[C, H, W]``) in [-1, 1], the input at its original size.

    Returns a list of ``[1, C, h_k, w_k]`` tensors, s0 first: the input resized to
    ``pyramid.resized`` then by ``scale_factor ** (N - k)`` (each from the resized image).
    """
    if image.dim() == 3:
        image = image[None]
    resized = imresize(image, size=pyramid.resized)
    reals = []
    for k, (h, w) in enumerate(pyramid.sizes):
        reals.append(resized if (h, w) == tuple(resized.shape[-2:]) else imresize(resized, size=(h, w)))
    return reals


# --------------------------------------------------------------------------- the trained scales
#: ``noise(j, shape) -> [N, C, h, w]`` noise for scale ``j`` (called once per scale, coarse to fine)
NoiseFn = Callable[[int, tuple[int, ...]], torch.Tensor]


def fixed_noise(noises: Sequence[torch.Tensor]) -> NoiseFn:
    """The run's fixed reconstruction noises (``[1, C, h, w]`` per scale), broadcast to the batch."""
    return lambda j, shape: noises[j].expand(shape)


def random_noise(generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> NoiseFn:
    """Fresh noise from ``generator`` (or the global RNG), drawn on the CPU scale by scale; s0's noise is
    one channel repeated on every channel (:func:`fewgan.singan.nets.make_noise`)."""
    return lambda j, shape: make_noise(tuple(shape), j == 0, generator=generator, device=device)


@dataclasses.dataclass
class TrainedScales:
    """The trained scales of a SinGAN: generators s0..sk, their noise amplitudes, the scale sizes and
    the rule that brings one scale's image to the next (:func:`fewgan.singan.nets.upsample`).

    Training (the previous image from fixed or fresh noise, the amplitude of a new scale, the
    current scale's fake and reconstruction), sampling at any size, injection of a real image and
    evaluation all run :meth:`coarse_to_fine`; nothing else chains the generators.
    """

    generators: list
    amps: list[float]
    sizes: Sequence[tuple[int, int]]
    scale_factor: float

    def upsample(self, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return upsample(y, size, self.scale_factor)

    def coarse_to_fine(self, noise: NoiseFn, *, stop: int, start: int = 0, image: torch.Tensor | None = None,
                       batch: int = 1, channels: int | None = None, device: torch.device | str | None = None,
                       sizes: Sequence[tuple[int, int]] | None = None, to_next: bool = False,
                       rule: str | None = None) -> torch.Tensor:
        """Run scales ``start..stop``: ``y <- G_j(y + amp_j * noise_j, y)``, upsampled between scales.

        Parameters
        ----------
        noise : :data:`NoiseFn` (:func:`fixed_noise`, :func:`random_noise`, or precomputed noises).
        stop : the last scale to run (``start - 1`` runs none and returns the starting image).
        start : the first scale to run; ``image`` is its input (``[N, C, h, w]`` at ``sizes[start]``),
            zeros of ``batch`` images when not given (the coarsest scale's input; SinGAN injects a
            real image by giving it at a later start).
        channels, device : of the zeros (default: the first generator's).
        sizes : the scale sizes to run at (default: the trained ones; sampling at another size or
            aspect passes its own).
        to_next : also bring the result to scale ``stop + 1`` (the image that scale starts from).
        rule : BatchNorm statistics of a sampling pass (:data:`fewgan.singan.nets.SAMPLING_RULES`,
            :func:`fewgan.singan.nets.statistics_at` with ``stop`` as the last scale); None (training):
            every generator as its train / eval mode says.

        Returns ``[N, C, h, w]``: scale ``stop``'s output (or its upsampled version with ``to_next``);
        runs with the caller's grad mode and the generators' train / eval modes.
        """
        sizes = self.sizes if sizes is None else sizes
        if image is None:
            c = channels if channels is not None else self.generators[0].channels
            device = device if device is not None else next(self.generators[0].parameters()).device
            image = torch.zeros((batch, c) + tuple(sizes[start]), device=device)
        y = image
        for j in range(start, stop + 1):
            z = y + self.amps[j] * noise(j, tuple(y.shape))
            y = self.generators[j](z, y) if rule is None else self.generators[j](z, y, statistics_at(j, stop, rule))
            if j < stop or to_next:
                y = self.upsample(y, sizes[j + 1])
        return y
