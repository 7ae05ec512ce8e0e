"""A training-free single-image generator: coarse-to-fine patch nearest neighbours (GPNN).

Granot, Feinstein, Shocher, Bagon and Irani, "Drop the GAN: In Defense of Patches Nearest
Neighbors as Single Image Generative Models", CVPR 2022. Written from the paper's description:

1. a pyramid of the real image ``x`` with scale factor ``scale_factor`` (0.75) down to a coarsest
   scale whose shorter side is at least ``min_size`` px, each level by MATLAB-style bicubic resizing
   (:mod:`fewgan.ops.imresize`, the resize of the SinGAN pyramid);
2. at the coarsest scale the first query is the real image plus Gaussian noise of standard deviation
   ``noise_std`` (0.75, the paper's, in the [-1, 1] units of the image), resized to the output's
   coarsest size: the only randomness, so a seed fixes a sample. Measured on a 128 px synthetic
   micrograph (intensity standard deviation 0.06): noise scaled to the image's own spread instead
   (0.75 x 0.06) reproduces the training layout (93 % of particles in place, chance 1 %); the
   paper's absolute 0.75 leaves 18 % in place (two seeds). GPNN's samples stay close to the training
   image by design; ``fewgan eval`` says how close;
3. at every scale, ``iterations`` (10) times: every ``patch`` x ``patch`` (7) patch of the query is
   replaced by the value patch of its nearest *key* patch, where keys are the patches of the real
   image at this scale blurred like the query (downscaled by ``scale_factor`` and upscaled back), and
   values the patches of the real image at that scale; overlapping value patches are averaged
   (fold); the result is the next query. The nearest neighbour uses the paper's normalised distance
   ``D(q, k) / (alpha + min_q' D(q', k))`` (``alpha`` = 0.005), which favours keys that no query uses
   yet and so spreads the output over the whole image (its "completeness"); the output is then
   upsampled to the next scale's size and refined there.

Labels travel in the value patches only (:mod:`fewgan.data.labels` channels): the label channels of
the output are assembled from the same source patches as its image channels, so they align by
construction, and are decoded to instances by the documented rule.

Nearest neighbours are exact (chunked matrix products in float32) up to ``exact_limit`` query x key
pairs; beyond it, approximate by PatchMatch (Barnes, Shechtman, Finkelstein and Goldman, "PatchMatch:
A Randomized Correspondence Algorithm for Structural Image Editing", SIGGRAPH 2009), vectorised:
the field of matches starts from the previous iteration's (or the coarser scale's, scaled up) and
improves by ``patchmatch_rounds`` rounds of propagation from the four neighbours and random search
in halving windows, with plain (not normalised) distances. Its cost is linear in the number of
patches, where exact search is quadratic; its recall against exact search is measured in ``bench/``.
A general-purpose index (faiss' inverted files) was tried first: slower here than PatchMatch, which
uses what an image's matches know about their neighbours, and one more compiled dependency.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from fewgan.config import Config
from fewgan.errors import FewganError
from fewgan.ops.imresize import imresize


@dataclasses.dataclass(frozen=True)
class GPNNConfig(Config):
    """Options of the patch nearest-neighbour generator (defaults: the paper's)."""

    patch: int = 7
    scale_factor: float = 0.75
    min_size: int = 21
    noise_std: float = 0.75
    alpha: float = 0.005
    iterations: int = 10
    exact_limit: float = 2e7
    patchmatch_rounds: int = 3

    def __post_init__(self):
        if self.patch < 3 or self.patch % 2 == 0:
            raise FewganError(f"gpnn: the patch size must be odd and >= 3, not {self.patch}")
        if not 0.3 <= self.scale_factor < 1:
            raise FewganError(f"gpnn: the scale factor must lie in [0.3, 1), not {self.scale_factor}")
        if self.min_size < self.patch or self.iterations < 1 or self.noise_std < 0 or self.alpha <= 0:
            raise FewganError("gpnn: min_size >= patch, iterations >= 1, noise_std >= 0 and alpha > 0")


def pyramid_sizes(height: int, width: int, config: GPNNConfig) -> list[tuple[int, int]]:
    """Sizes from coarsest to ``(height, width)``: each ``scale_factor`` times the next, shorter side >= min_size."""
    levels = 0
    while min(height, width) * config.scale_factor ** (levels + 1) >= config.min_size:
        levels += 1
    return [(max(1, math.ceil(height * config.scale_factor ** k)), max(1, math.ceil(width * config.scale_factor ** k)))
            for k in range(levels, -1, -1)]


def _unfold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``[C, H, W]`` -> ``[P, C*patch*patch]`` (all positions, stride 1, no padding)."""
    return F.unfold(x[None], patch)[0].T.contiguous()


def _fold(patches: torch.Tensor, size: tuple[int, int], patch: int) -> torch.Tensor:
    """Average of overlapping ``[P, C*patch*patch]`` patches back to ``[C, H, W]``."""
    cols = patches.T[None]
    total = F.fold(cols, size, patch)[0]
    ones = torch.ones((1, patch * patch, cols.shape[2]), dtype=patches.dtype)
    count = F.fold(ones, size, patch)[0]
    return total / count


def _exact_nearest(query: torch.Tensor, keys: torch.Tensor, alpha: float | None) -> torch.Tensor:
    """Index of the nearest key of every query row (normalised by completeness when ``alpha``)."""
    keys_sq = (keys * keys).sum(1)
    chunk = max(1, 16_000_000 // max(1, keys.shape[0]))
    norm = None
    if alpha is not None:
        # min over queries of the distance to each key: a pass over query chunks first
        norm = torch.full((keys.shape[0],), float("inf"))
        for s in range(0, query.shape[0], chunk):
            q = query[s:s + chunk]
            d2 = ((q * q).sum(1, keepdim=True) - 2.0 * q @ keys.T + keys_sq[None]).clamp_min(0)
            norm = torch.minimum(norm, d2.min(0).values)
        norm = norm + alpha
    out = torch.empty(query.shape[0], dtype=torch.long)
    for s in range(0, query.shape[0], chunk):
        q = query[s:s + chunk]
        d2 = ((q * q).sum(1, keepdim=True) - 2.0 * q @ keys.T + keys_sq[None]).clamp_min(0)
        if norm is not None:
            d2 = d2 / norm[None]
        out[s:s + q.shape[0]] = d2.argmin(1)
    return out


def _patch_distances(query: torch.Tensor, keys: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Squared distance of each query row to the key row ``index`` names (chunked gathers)."""
    out = torch.empty(query.shape[0])
    chunk = max(1, 8_000_000 // max(1, query.shape[1]))
    for s in range(0, query.shape[0], chunk):
        diff = query[s:s + chunk] - keys[index[s:s + chunk]]
        out[s:s + chunk] = (diff * diff).sum(1)
    return out


def patchmatch(query: torch.Tensor, query_grid: tuple[int, int], keys: torch.Tensor, key_grid: tuple[int, int],
               init: torch.Tensor | None, rounds: int, gen: torch.Generator) -> torch.Tensor:
    """Approximate nearest key of every query patch by PatchMatch (module docstring).

    ``query`` ``[Hq*Wq, d]`` and ``keys`` ``[Hk*Wk, d]`` are patches in raster order of their grids;
    ``init`` ``[Hq, Wq, 2]`` (row, col) key coordinates to start from (random when None). Returns
    ``[Hq, Wq, 2]`` key coordinates.
    """
    hq, wq = query_grid
    hk, wk = key_grid
    top = torch.tensor([hk - 1, wk - 1])
    if init is None:
        field = torch.stack([torch.randint(hk, (hq, wq), generator=gen), torch.randint(wk, (hq, wq), generator=gen)], -1)
    else:
        field = init.clone()

    def flat(f):
        return (f[..., 0] * wk + f[..., 1]).reshape(-1)

    best = _patch_distances(query, keys, flat(field))
    for _ in range(rounds):
        candidates = []
        # the matches of neighbours at distances 1, 2, 4, ... (jump flooding: a vectorised pass cannot
        # sweep the image in scan order as the sequential algorithm does, so good matches travel
        # by doubling steps instead), each moved back by the offset to that neighbour
        step = 1
        while step < max(hq, wq):
            for dy, dx in ((0, step), (step, 0), (0, -step), (-step, 0)):
                candidates.append(torch.roll(field, shifts=(dy, dx), dims=(0, 1)) + torch.tensor([dy, dx]))
            step *= 2
        radius = float(max(hk, wk))
        while radius >= 1:
            jitter = (torch.rand((hq, wq, 2), generator=gen) * 2 - 1) * radius
            candidates.append(field + jitter.round().long())
            radius /= 2
        for cand in candidates:
            cand = torch.minimum(cand.clamp_min(0), top)
            d = _patch_distances(query, keys, flat(cand))
            better = (d < best).reshape(hq, wq)
            field = torch.where(better[..., None], cand, field)
            best = torch.minimum(best, d)
    return field


def generate(
    image: torch.Tensor,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    config: GPNNConfig | None = None,
    labels: torch.Tensor | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One sample of the patch nearest-neighbour generator.

    Parameters
    ----------
    image : ``[C, H, W]`` real image in [-1, 1] (any C: gray, RGB).
    size : ``(h, w)`` of the sample (default: the image's); any size whose coarsest scale holds a patch.
    seed : the noise at the coarsest scale; the same seed gives the same sample.
    labels : ``[L, H, W]`` label channels of the real image (:func:`fewgan.data.labels.encode_instances`),
        carried in the value patches.
    progress : called with 1 after every iteration (``iterations`` x scales in all).

    Returns
    -------
    (sample ``[C, h, w]``, label channels ``[L, h, w]`` or None), float32.
    """
    config = config or GPNNConfig()
    image = torch.as_tensor(image, dtype=torch.float32).detach().cpu()
    if image.ndim != 3:
        raise FewganError(f"gpnn: expected one [C, H, W] image, got shape {tuple(image.shape)}")
    c, h, w = image.shape
    out_h, out_w = size or (h, w)
    if labels is not None and tuple(labels.shape[1:]) != (h, w):
        raise FewganError(f"gpnn: labels are {tuple(labels.shape[1:])} but the image is {(h, w)}")
    real_sizes = pyramid_sizes(h, w, config)
    if min(h, w) < config.min_size:
        raise FewganError(f"gpnn: the image ({h} x {w} px) is smaller than min size {config.min_size}")
    levels = len(real_sizes)
    out_sizes = [(max(config.patch, math.ceil(out_h * config.scale_factor ** k)),
                  max(config.patch, math.ceil(out_w * config.scale_factor ** k))) for k in range(levels - 1, -1, -1)]
    values_full = image if labels is None else torch.cat([image, labels.float()], 0)

    gen = torch.Generator().manual_seed(int(seed))
    coarse_real = imresize(image[None], size=real_sizes[0])[0]
    query = imresize((coarse_real + config.noise_std * torch.randn(coarse_real.shape, generator=gen))[None],
                     size=out_sizes[0])[0]
    output = field = None
    prev_kgrid = (1, 1)
    for level, (real_size, out_size) in enumerate(zip(real_sizes, out_sizes)):
        real = imresize(values_full[None], size=real_size)[0]
        smaller = (max(1, math.ceil(real_size[0] * config.scale_factor)), max(1, math.ceil(real_size[1] * config.scale_factor)))
        blurred = imresize(imresize(real[None, :c], size=smaller), size=real_size)[0] if level else real[:c]
        keys = _unfold(blurred, config.patch)
        values = _unfold(real, config.patch)
        if level:
            query = imresize(output[None, :c], size=out_size)[0]
        qgrid = (out_size[0] - config.patch + 1, out_size[1] - config.patch + 1)
        kgrid = (real_size[0] - config.patch + 1, real_size[1] - config.patch + 1)
        exact = qgrid[0] * qgrid[1] * kgrid[0] * kgrid[1] <= config.exact_limit
        if field is not None and not exact:
            # the coarser scale's matches, scaled to this scale's grids, start PatchMatch
            rows = (torch.arange(qgrid[0]) * field.shape[0] // qgrid[0]).clamp_max(field.shape[0] - 1)
            cols = (torch.arange(qgrid[1]) * field.shape[1] // qgrid[1]).clamp_max(field.shape[1] - 1)
            ratio = torch.tensor([kgrid[0] / max(1, prev_kgrid[0]), kgrid[1] / max(1, prev_kgrid[1])])
            field = (field[rows][:, cols].float() * ratio).round().long()
            field = torch.minimum(field.clamp_min(0), torch.tensor([kgrid[0] - 1, kgrid[1] - 1]))
        for _ in range(config.iterations):
            patches = _unfold(query, config.patch)
            if exact:
                index = _exact_nearest(patches, keys, config.alpha)
                field = torch.stack([index // kgrid[1], index % kgrid[1]], -1).reshape(*qgrid, 2)
            else:
                field = patchmatch(patches, qgrid, keys, kgrid, field, config.patchmatch_rounds, gen)
                index = field[..., 0].reshape(-1) * kgrid[1] + field[..., 1].reshape(-1)
            output = _fold(values[index], out_size, config.patch)
            query = output[:c]
            if progress is not None:
                progress(1)
        prev_kgrid = kgrid
    return output[:c].clamp(-1, 1), (output[c:] if labels is not None else None)
