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
#: ``each(j, y_in, noise_j, y_out)`` of :meth:`TrainedScales.coarse_to_fine` / :meth:`TrainedScales.tiled`.
EachFn = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]


def fixed_noise(noises: Sequence[torch.Tensor]) -> NoiseFn:
    """The run's fixed reconstruction noises (``[1, C, h, w]`` per scale), broadcast to the batch."""
    return lambda j, shape: noises[j].expand(shape)


def random_noise(generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> NoiseFn:
    """Fresh noise from ``generator`` (or the global RNG), drawn on the CPU scale by scale; s0's noise is
    one channel repeated on every channel (:func:`fewgan.singan.nets.make_noise`)."""
    return lambda j, shape: make_noise(tuple(shape), j == 0, generator=generator, device=device)


STANDING_SEED = 20190201
"""The noise stream of :meth:`TrainedScales.standing_statistics` (a constant: the statistics are the
model's, not a draw's)."""
#: pixels of samples that standing statistics average at least, and the fewest and most samples
STANDING_PIXELS, STANDING_MIN, STANDING_MAX = 1 << 18, 4, 16


def standing_count(size: tuple[int, int]) -> int:
    """Samples that standing statistics of a scale of ``size`` average: 16 up to 128 x 128 px, then
    fewer (at least 4) so that they cover about :data:`STANDING_PIXELS` pixels in all (a 2048 px scale:
    4 samples of 4 Mpx). Each sample's moments average all its pixels already; what the samples add is
    the spread of content between samples. At the end of every scale the trainer computes them once
    (16 passes of a 128 px image against its 300 training steps of several passes each)."""
    h, w = size
    return max(STANDING_MIN, min(STANDING_MAX, math.ceil(STANDING_PIXELS / max(1, h * w))))


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
    #: ``standing(k)``: scale k's standing statistics (:meth:`standing_statistics`), for the sampling
    #: rule ``'standing'``; the owner (the sampler's model, the trainer) computes and keeps them
    standing: Callable[[int], list] | None = None

    def _statistics(self, scale: int, last: int, rule: str) -> str | list:
        """:func:`fewgan.singan.nets.statistics_at`, with ``'standing'`` replaced by that scale's statistics."""
        stats = statistics_at(scale, last, rule)
        if stats == "standing":
            if self.standing is None:
                raise ValueError("the sampling rule 'standing' needs the scales' standing statistics")
            return self.standing(scale)
        return stats

    @torch.no_grad()
    def standing_statistics(self, k: int, *, channels: int | None = None, device: torch.device | str | None = None,
                            tile: int | None = None, count: int | None = None) -> list:
        """Scale ``k``'s standing statistics: per BatchNorm layer ``(mean, var)`` ``[1, F]``, the mean over
        random samples of each sample's own per-channel mean and biased variance at that layer.

        Each sample runs scales ``0..k-1`` on their running averages and scale ``k`` with its own
        statistics (the ``'as-trained'`` rule, whose moments :meth:`tiled` reports; it never asks
        :attr:`standing`, so an owner may compute them through its own scales), one image at a time,
        from noise drawn by a generator seeded with :data:`STANDING_SEED` (never the training stream:
        computing them changes no training). ``count`` samples, default :func:`standing_count` of scale
        ``k``'s size (fewer for large scales, whose every sample averages more pixels); ``tile``: the
        tile side of large scales (None: every scale in one piece). BigGAN's standing statistics
        (Brock et al., ICLR 2019); :data:`fewgan.singan.nets.SAMPLING_RULE` says why.
        """
        size = tuple(self.sizes[k])
        count = standing_count(size) if count is None else int(count)
        tile = tile or max(max(self.sizes[j]) for j in range(k + 1))
        sums = None
        for i in range(count):
            g = torch.Generator().manual_seed(STANDING_SEED * 1000 + i)
            found: list = []
            self.tiled(random_noise(g, device if device is not None else "cpu"), stop=k, tile=tile,
                       rule="as-trained", batch=1, channels=channels, device=device, statistics=found)
            moments = [(m.double(), v.double()) for m, v, _ in found[-1]]
            sums = moments if sums is None else [(a + m, b + v) for (a, b), (m, v) in zip(sums, moments)]
        dtype = next(self.generators[k].parameters()).dtype
        return [((a / count).to(dtype), (b / count).to(dtype)) for a, b in sums]

    def upsample(self, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return upsample(y, size, self.scale_factor)

    def _start_image(self, image, size, batch: int, channels: int | None, device) -> torch.Tensor:
        """``image``, or the zero image a pass starts from at its first scale (``[batch, C, *size]``)."""
        if image is not None:
            return image
        c = channels if channels is not None else self.generators[0].channels
        device = device if device is not None else next(self.generators[0].parameters()).device
        return torch.zeros((batch, c) + tuple(size), device=device)

    def coarse_to_fine(self, noise: NoiseFn, *, stop: int, start: int = 0, image: torch.Tensor | None = None,
                       batch: int = 1, channels: int | None = None, device: torch.device | str | None = None,
                       sizes: Sequence[tuple[int, int]] | None = None, to_next: bool = False,
                       rule: str | None = None, each: EachFn | None = None) -> torch.Tensor:
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
        each : called as ``each(j, y_in, noise_j, y_out)`` at every scale as it is made: its input
            (the previous scale's output, upsampled), its noise and its output (before upsampling). So a
            caller sees every scale of one pass (``scales.png``) without running the chain per scale;
            under a ``rule`` whose last scale differs from the others (``'as-trained'``), scale ``j``
            of a pass stopped at ``j`` is one more pass of that scale alone on ``y_in`` and ``noise_j``.

        Returns ``[N, C, h, w]``: scale ``stop``'s output (or its upsampled version with ``to_next``);
        runs with the caller's grad mode and the generators' train / eval modes.
        """
        sizes = self.sizes if sizes is None else sizes
        y = self._start_image(image, sizes[start], batch, channels, device)
        for j in range(start, stop + 1):
            n_j = noise(j, tuple(y.shape))
            z = y + self.amps[j] * n_j
            n_j = n_j if each is not None else None  # held only for ``each``
            out = self.generators[j](z, y) if rule is None else self.generators[j](z, y, self._statistics(j, stop, rule))
            del z
            if each is not None:
                each(j, y, n_j, out)
            y = out
            del n_j
            if j < stop or to_next:
                y = self.upsample(y, sizes[j + 1])
        return y

    # ---------------------------------------------------------------- regions: crops and tiles
    #: Both passes below run the generators of :meth:`coarse_to_fine` in the same order with the same
    #: rule; they compute a scale on a *window* ``(y0, y1, x0, x1)`` of it, which is exact because a
    #: generator's output pixel depends only on its input within ``pad`` px (its convolutions have no
    #: padding; the input is zero-padded once at the image border) and the upsampling between scales
    #: is a pair of fixed matrices (:func:`upsample_matrices`): a window of the output needs only the
    #: input columns its rows touch.

    def coarse_to_fine_window(self, noise: "WindowNoiseFn", *, stop: int, window: tuple[int, int, int, int],
                              start: int = 0, image: torch.Tensor | None = None, batch: int = 1,
                              channels: int | None = None, device: torch.device | str | None = None,
                              sizes: Sequence[tuple[int, int]] | None = None, to_next: bool = False,
                              rule: str | None = None) -> torch.Tensor:
        """:meth:`coarse_to_fine` computing only ``window`` of the result and what it needs (training crops).

        Parameters
        ----------
        noise : ``noise(j, shape, window)`` (:func:`window_noise`, :func:`fixed_noise_window`): the noise of
            scale ``j`` on ``window`` of it, ``[N, C, y1 - y0, x1 - x0]``.
        window : ``(y0, y1, x0, x1)`` of scale ``stop`` (of ``stop + 1`` with ``to_next``): the result's pixels.
        image : scale ``start``'s input on :meth:`input_windows` ``(...)[start]`` (the window with the
            margins the later scales need); zeros when not given.
        Others as :meth:`coarse_to_fine`.

        Working backwards from ``window``, each scale ``j`` runs on its needed output window grown by
        the generator's ``pad`` (clipped to the image; the coarse scales end up whole), so a 256 px crop
        of a 2048 px scale costs about a 256 px image per scale, not the whole pyramid. Exact (equal to
        :meth:`coarse_to_fine` cropped, up to float rounding) where BatchNorm is pointwise: generators
        in eval mode with ``rule`` None or ``'running'``; a generator that normalises by batch
        statistics (train mode, the current scale of a training step) sees the window it runs on.
        Returns ``[N, C, y1 - y0, x1 - x0]``.
        """
        sizes = self.sizes if sizes is None else sizes
        runs = self.input_windows(window, stop=stop, start=start, sizes=sizes, to_next=to_next)
        if image is None:
            c = channels if channels is not None else self.generators[0].channels
            device = device if device is not None else next(self.generators[0].parameters()).device
            y0, y1, x0, x1 = runs[start][0]
            image = torch.zeros((batch, c, y1 - y0, x1 - x0), device=device)
        y = image
        for j in range(start, stop + 1):
            grown, needed = runs[j]
            z = y + self.amps[j] * noise(j, tuple(y.shape), grown)
            gen = self.generators[j]
            y = gen(z, y) if rule is None else gen(z, y, self._statistics(j, stop, rule))
            y = y[..., needed[0] - grown[0]:needed[1] - grown[0], needed[2] - grown[2]:needed[3] - grown[2]]
            if j < stop or to_next:
                target = runs[j + 1][0] if j < stop else window
                y = upsample_window(y, needed, sizes[j], target, sizes[j + 1], self.scale_factor)
        return y

    def input_windows(self, window: tuple[int, int, int, int], *, stop: int, start: int = 0,
                      sizes: Sequence[tuple[int, int]] | None = None, to_next: bool = False) -> dict:
        """``{j: (grown, needed)}`` for scales ``start..stop`` of :meth:`coarse_to_fine_window`.

        ``needed``: the window of scale ``j``'s output that the result needs; ``grown``: that window
        with the generator's margin (``pad`` px, clipped to the scale), on which scale ``j`` runs (its
        input, noise and output). ``window`` is of scale ``stop`` (``stop + 1`` with ``to_next``).
        """
        sizes = self.sizes if sizes is None else sizes
        runs = {}
        needed = (upsample_needed(window, sizes[stop], sizes[stop + 1], self.scale_factor) if to_next
                  else tuple(window))
        for j in range(stop, start - 1, -1):
            pad = self.generators[j].pad
            h, w = sizes[j]
            grown = (max(0, needed[0] - pad), min(h, needed[1] + pad), max(0, needed[2] - pad), min(w, needed[3] + pad))
            runs[j] = (grown, needed)
            if j > start:
                needed = upsample_needed(grown, sizes[j - 1], sizes[j], self.scale_factor)
        return runs

    def whole(self, noise: NoiseFn, *, tile: int | None = None, **kwargs) -> torch.Tensor:
        """Whole images: :meth:`coarse_to_fine` (``tile`` None) or :meth:`tiled` with ``tile`` px tiles."""
        if tile:
            return self.tiled(noise, tile=tile, **kwargs)
        return self.coarse_to_fine(noise, **kwargs)

    def tiled(self, noise: NoiseFn, *, stop: int, tile: int, start: int = 0, image: torch.Tensor | None = None,
              batch: int = 1, channels: int | None = None, device: torch.device | str | None = None,
              sizes: Sequence[tuple[int, int]] | None = None, to_next: bool = False, rule: str | None = None,
              statistics: list | None = None, each: EachFn | None = None) -> torch.Tensor:
        """:meth:`coarse_to_fine` with every scale computed tile by tile (any output size in bounded memory).

        Each scale's whole image (``C`` channels) is kept; its generator runs on ``tile x tile`` tiles
        with ``pad`` px of overlap (the margin its convolutions read), so the wide feature maps never
        exceed a tile. ``noise`` is called once per scale with the whole scale's shape, in the order
        :meth:`coarse_to_fine` calls it, so the same noise gives the same image.

        BatchNorm: a scale that normalises by image statistics (``'own'`` under ``rule``: the last scale
        of the sampling rule) is normalised by the **whole image's** statistics, not the tile's: one
        pass over the tiles per BatchNorm layer sums that layer's input over the tiles' own pixels
        (:meth:`fewgan.singan.nets.Generator.layer_moments`; the tiles partition the layer's map), then
        a last pass normalises every tile with them. Hence the tiled image equals the untiled one up to
        float rounding, and there are no seams; the cost is ``1 + L / 2`` passes over that scale
        (the moments of layer ``i`` need its first ``i`` convolutions; ``L`` BatchNorm layers of ``L + 1``
        convolutions: 3 passes for the default 4) instead of one. With ``rule`` None a generator in
        train mode is treated the same way (its batch statistics are those of its one image:
        the caller passes one image, or copies of one); ``statistics`` (a list) receives, per scale
        run, the ``[(mean, var, count)]`` used, or None for a pointwise scale. ``each``: as in
        :meth:`coarse_to_fine`.

        When every scale fits in one tile this is :meth:`coarse_to_fine` itself (same pixels).
        Returns ``[N, C, h, w]``.
        """
        sizes = self.sizes if sizes is None else sizes
        last = stop + 1 if to_next else stop
        if all(max(sizes[j]) <= tile for j in range(start, last + 1)) and statistics is None:
            return self.coarse_to_fine(noise, stop=stop, start=start, image=image, batch=batch, channels=channels,
                                       device=device, sizes=sizes, to_next=to_next, rule=rule, each=each)
        y = self._start_image(image, sizes[start], batch, channels, device)
        for j in range(start, stop + 1):
            gen = self.generators[j]
            n_j = noise(j, tuple(y.shape))
            z = y + self.amps[j] * n_j
            n_j = n_j if each is not None else None  # held only for ``each``
            own = (statistics_at(j, stop, rule) == "own") if rule is not None else gen.training
            moments = _whole_moments(gen, z, tuple(sizes[j]), tile) if own else None
            if statistics is not None:
                statistics.append(moments)
            args = [(m, v) for m, v, _ in moments] if own else ("module" if rule is None else
                                                                  self._statistics(j, stop, rule))
            out = None
            for t in tiles(sizes[j], tile):
                grown = _grow(t, gen.pad, sizes[j])
                sl = (..., slice(grown[0], grown[1]), slice(grown[2], grown[3]))
                o = gen(z[sl], y[sl], args)
                if out is None:
                    out = o.new_empty(tuple(y.shape))
                out[..., t[0]:t[1], t[2]:t[3]] = o[..., t[0] - grown[0]:t[1] - grown[0], t[2] - grown[2]:t[3] - grown[2]]
            del z  # before ``each``, which may run a pass of its own
            if each is not None:
                each(j, y, n_j, out)
            y = out
            del n_j
            if j < stop or to_next:
                y = upsample_tiled(y, sizes[j + 1], self.scale_factor, tile)
        return y


#: ``noise(j, shape, window) -> [N, C, y1 - y0, x1 - x0]``: noise of scale ``j`` on ``window`` of it
WindowNoiseFn = Callable[[int, tuple[int, ...], tuple[int, int, int, int]], torch.Tensor]


def window_noise(noise: NoiseFn) -> WindowNoiseFn:
    """A :data:`NoiseFn` drawing fresh noise (:func:`random_noise`) used on windows: the window's shape is drawn."""
    return lambda j, shape, window: noise(j, shape)


def fixed_noise_window(noises: Sequence[torch.Tensor]) -> WindowNoiseFn:
    """The run's fixed noises (``[1, C, h, w]`` per scale) on a window, broadcast to the batch."""
    return lambda j, shape, w: noises[j][..., w[0]:w[1], w[2]:w[3]].expand(shape)


def tiles(size: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """The ``tile x tile`` windows ``(y0, y1, x0, x1)`` that partition an image of ``size`` (row-major)."""
    h, w = size
    return [(y, min(h, y + tile), x, min(w, x + tile)) for y in range(0, h, tile) for x in range(0, w, tile)]


def _grow(window, pad: int, size) -> tuple[int, int, int, int]:
    y0, y1, x0, x1 = window
    return max(0, y0 - pad), min(size[0], y1 + pad), max(0, x0 - pad), min(size[1], x1 + pad)


def _whole_moments(gen, z: torch.Tensor, size: tuple[int, int], tile: int) -> list:
    """Per-image ``(mean, biased var, count)`` ``[N, F]`` of every BatchNorm layer's input over the whole image.

    Layer ``i`` (0-based) of the untiled generator sees a map of ``size + 2 * (pad - (i + 1) * r)`` px
    (``r = kernel_size // 2``: the zero padding, less what each convolution trims); every tile adds
    the part of that map it owns (its own pixels, and at the image border the padding's share too),
    normalising the layers before ``i`` by the moments already found.
    """
    h, w = size
    r = gen.kernel_size // 2
    found: list = []
    for layer in range(len(gen.features)):
        trim = gen.pad - (layer + 1) * r  # the map spans [-trim, h + trim) in image coordinates
        s1 = s2 = 0
        for t in tiles(size, tile):
            g = _grow(t, gen.pad, size)
            origin_y, origin_x = g[0] - trim, g[2] - trim  # image coordinate of the tile's map at (0, 0)
            lo_y = t[0] if t[0] > 0 else -trim
            hi_y = t[1] if t[1] < h else h + trim
            lo_x = t[2] if t[2] > 0 else -trim
            hi_x = t[3] if t[3] < w else w + trim
            region = (lo_y - origin_y, hi_y - origin_y, lo_x - origin_x, hi_x - origin_x)
            a, b = gen.layer_moments(z[..., g[0]:g[1], g[2]:g[3]], layer, [(m, v) for m, v, _ in found], region)
            s1, s2 = s1 + a, s2 + b
        count = (h + 2 * trim) * (w + 2 * trim)
        mean = s1 / count
        var = (s2 / count - mean * mean).clamp_min(0)
        found.append((mean, var, count))  # float64; cast where used
    return found


def upsample_matrices(in_size: tuple[int, int], size: tuple[int, int], scale_factor: float):
    """The ``([H, h], [W, w])`` float64 matrices of :func:`fewgan.singan.nets.upsample` from ``in_size`` to ``size``."""
    from fewgan.ops.imresize import _resize_matrix_np

    (h, w), (oh, ow) = in_size, size
    uh, uw = scaled_size(h, 1 / scale_factor), scaled_size(w, 1 / scale_factor)
    if uh < oh or uw < ow:
        return _resize_matrix_np(h, oh, True) if h != oh else _eye(h), _resize_matrix_np(w, ow, True) if w != ow else _eye(w)
    mh = _resize_matrix_np(h, uh, True) if h != uh else _eye(h)
    mw = _resize_matrix_np(w, uw, True) if w != uw else _eye(w)
    return mh[:oh], mw[:ow]


def _eye(n: int):
    import numpy as np

    return np.eye(n)


def _columns(matrix, lo: int, hi: int) -> tuple[int, int]:
    import numpy as np

    used = np.flatnonzero(np.any(matrix[lo:hi] != 0, axis=0))
    return int(used[0]), int(used[-1]) + 1


def upsample_needed(window, in_size, size, scale_factor: float) -> tuple[int, int, int, int]:
    """The window of the ``in_size`` image that :func:`upsample_window` needs to make ``window`` of ``size``."""
    mh, mw = upsample_matrices(tuple(in_size), tuple(size), scale_factor)
    return _columns(mh, window[0], window[1]) + _columns(mw, window[2], window[3])


def upsample_window(y: torch.Tensor, in_window, in_size, window, size, scale_factor: float) -> torch.Tensor:
    """``window`` of :func:`fewgan.singan.nets.upsample` of an ``in_size`` image of which ``y`` is ``in_window``.

    ``y`` ``[N, C, h, w]`` must cover :func:`upsample_needed` of ``window``; returns ``[N, C, y1 - y0, x1 - x0]``,
    equal to the whole upsample cropped up to float rounding (the same weights, fewer zero terms).
    """
    mh, mw = upsample_matrices(tuple(in_size), tuple(size), scale_factor)
    a = torch.as_tensor(mh[window[0]:window[1], in_window[0]:in_window[1]], dtype=y.dtype, device=y.device)
    b = torch.as_tensor(mw[window[2]:window[3], in_window[2]:in_window[3]], dtype=y.dtype, device=y.device)
    return torch.matmul(torch.matmul(a, y), b.t())


def upsample_tiled(y: torch.Tensor, size, scale_factor: float, tile: int) -> torch.Tensor:
    """:func:`fewgan.singan.nets.upsample` of the whole ``y`` ``[N, C, h, w]`` to ``size``, one output tile at a time."""
    in_size = tuple(y.shape[-2:])
    out = y.new_empty(tuple(y.shape[:-2]) + tuple(size))
    for t in tiles(size, tile):
        n = upsample_needed(t, in_size, size, scale_factor)
        out[..., t[0]:t[1], t[2]:t[3]] = upsample_window(y[..., n[0]:n[1], n[2]:n[3]], n, in_size, t, size,
                                                          scale_factor)
    return out
