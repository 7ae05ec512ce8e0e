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

Nearest neighbours are exact (chunked matrix products in float32, one augmented product per pass)
up to ``exact_limit`` query x key pairs, which with the defaults covers the scales up to about 70 px;
beyond it, approximate by PatchMatch (Barnes, Shechtman, Finkelstein and Goldman, "PatchMatch: A
Randomized Correspondence Algorithm for Structural Image Editing", SIGGRAPH 2009), vectorised: the
field of matches starts from the previous iteration's (or the coarser scale's, scaled up) and
improves by ``patchmatch_rounds`` (1) rounds of propagation from the four neighbours and random
search in halving windows, with plain (not normalised) distances between patch features (the
principal-component coordinates of each patch: all 49 of a gray 7 x 7 patch, a rotation that keeps
distances exact; 49 of an RGB patch's 147), compared by gathering, without unfolded copies of the
image. Its cost is linear in the number of patches, where exact search is quadratic. The paper
searches exactly on a GPU; here the fine scales of a CPU run are approximate, and the completeness
term acts only at the exact scales.

Measured (``bench/gpnn_recall.py``, ``bench/gpnn_faiss.py``; figures in ``bench/README.md``): in use
(a 256 px synthetic micrograph, the last iteration of each PatchMatch scale against exact search of
2,000 of its queries) PatchMatch's match is within 1 % of the exact distance for 74-91 % of queries
(the finer the scale, the better: the query is made of the image's own patches, whose neighbours'
matches propagate), median distance ratio 1.00. On the hard case of one micrograph's patches against another's (256 px, 62,500 queries, from a random
start), PatchMatch finds a patch within 1 % of the exact distance for 11 / 14 / 17 % of queries after
4 / 8 / 12 rounds (54-68 % within 10 %: ``tests/test_gpnn.py``); faiss-cpu 1.15.1 (installs cleanly
beside torch 2.13.0) reaches 73 % (IVF1024,Flat, nprobe 8) and 99.9 % (HNSW32, efSearch 64), at
29 / 47 s to build an index per scale and 5 / 36 s to search all queries once, against 5-8 s per
PatchMatch round (2 threads on a heavily loaded machine: ratios, not speeds). HNSW is 5x slower
per iteration; IVF costs about what PatchMatch does over a scale's ten iterations and finds far
better matches there: a candidate to adopt as an optional index (it is a compiled dependency that
fewgan does not have today); not done yet.
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
    """Options of the patch nearest-neighbour generator (defaults: the paper's where it has one).

    patch, scale_factor, min_size, noise_std, alpha, iterations : the paper's patch size, pyramid
        ratio, coarsest shorter side (px), noise at the coarsest scale, completeness weight and
        nearest-neighbour iterations per scale (module docstring).
    exact_limit : most query x key patch pairs searched exactly at one scale; beyond it, PatchMatch.
    patchmatch_rounds : PatchMatch rounds per iteration (each starts from the previous matches).
    patchmatch_dims : principal components of a patch PatchMatch compares (49: all of a gray 7 x 7
        patch, so its distances are the exact ones; an RGB patch has 147 and is projected).
    labels : carry instance labels: a label image or binary mask PATH of the image's size,
        ``'beside'`` (the Cellpose ``NAME_masks.tif|png`` next to the image) or ``'auto'`` (fewgan's
        particle analysis); None: none.
    """

    patch: int = 7
    scale_factor: float = 0.75
    min_size: int = 21
    noise_std: float = 0.75
    alpha: float = 0.005
    iterations: int = 10
    exact_limit: float = 2e7
    patchmatch_rounds: int = 1
    patchmatch_dims: int = 49
    labels: str | None = None

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


def output_pyramid(height: int, width: int, levels: int, config: GPNNConfig) -> list[tuple[int, int]]:
    """Sizes of a ``height x width`` sample at the image's ``levels`` scales, coarsest first (each holds a patch)."""
    return [(max(config.patch, math.ceil(height * config.scale_factor ** k)),
             max(config.patch, math.ceil(width * config.scale_factor ** k))) for k in range(levels - 1, -1, -1)]


def _unfold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``[C, H, W]`` -> ``[P, C*patch*patch]`` (all positions, stride 1, no padding)."""
    return F.unfold(x[None], patch)[0].T.contiguous()


def _exact_nearest(query: torch.Tensor, keys: torch.Tensor, alpha: float | None) -> torch.Tensor:
    """Index of the nearest key of every query row (normalised by completeness when ``alpha``).

    ``query`` ``[Q, d]``, ``keys`` ``[K, d]``. Each pass over the ``Q x K`` distances is one matrix
    product of augmented rows, ``[q, |q|^2, 1] . [-2 k w, w, |k|^2 w] = w |q - k|^2`` with the key's
    weight ``w`` (1, or ``1 / (alpha + min_q' |q' - k|^2)``), followed by one reduction: the
    element-wise passes of the plain formula cost more than the product on a CPU (measured 3-5x
    slower, 5,000-10,000 rows). Rows are centred on the keys' mean first, which leaves distances
    unchanged and keeps ``|q|^2`` small against float32 rounding.
    """
    mean = keys.mean(0)
    q, k = query - mean, keys - mean
    q_aug = torch.cat([q, (q * q).sum(1, keepdim=True), torch.ones(q.shape[0], 1)], 1)
    k_sq = (k * k).sum(1, keepdim=True)
    chunk = max(1, _EXACT_CHUNK // max(1, k.shape[0]))
    weight = torch.ones(k.shape[0], 1)
    if alpha is not None:
        # min over queries of the distance to each key: a pass over query chunks first
        k_aug = torch.cat([-2.0 * k, torch.ones(k.shape[0], 1), k_sq], 1).T.contiguous()
        norm = torch.full((k.shape[0],), float("inf"))
        for s in range(0, q.shape[0], chunk):
            norm = torch.minimum(norm, (q_aug[s:s + chunk] @ k_aug).amin(0))
        weight = (1.0 / (norm.clamp_min(0) + alpha))[:, None]
    k_aug = torch.cat([-2.0 * k * weight, weight, k_sq * weight], 1).T.contiguous()
    out = torch.empty(q.shape[0], dtype=torch.long)
    for s in range(0, q.shape[0], chunk):
        out[s:s + chunk] = (q_aug[s:s + chunk] @ k_aug).argmin(1)
    return out


# elements of one chunk of the query x key distance matrix (32 MB of float32)
_EXACT_CHUNK = 8_000_000


def patch_features(image: torch.Tensor, basis: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Every patch of ``image`` ``[C, H, W]`` projected on ``basis`` (:func:`patch_basis`): ``[H', W', dims]``.

    One convolution with the principal patches as kernels: no unfolded copy of the image (an
    unfolded 2048 px image is 0.8 GB per channel).
    """
    weight, bias = basis
    return F.conv2d(image[None], weight, bias)[0].permute(1, 2, 0).contiguous()


def patch_basis(image: torch.Tensor, patch: int, dims: int, samples: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``dims`` principal components of the ``patch`` x ``patch`` patches of ``image``.

    Computed from the patches on a regular grid of at most ``samples`` positions (no randomness:
    the basis depends on the image only). Returns (conv weight ``[dims, C, patch, patch]``, bias
    ``[dims]``) so that :func:`patch_features` gives each patch's centred coordinates.
    """
    c, h, w = image.shape
    hp, wp = h - patch + 1, w - patch + 1
    stride = max(1, math.ceil(math.sqrt(hp * wp / samples)))
    rows, cols = torch.arange(0, hp, stride), torch.arange(0, wp, stride)
    cells = [image[:, rows[:, None] + dy, cols[None, :] + dx].reshape(c, -1) for dy in range(patch) for dx in range(patch)]
    patches = torch.stack(cells, 2).permute(1, 0, 2).reshape(-1, c * patch * patch)  # order (C, dy, dx)
    mean = patches.mean(0)
    _, _, vh = torch.linalg.svd(patches - mean, full_matrices=False)
    components = vh[:dims]
    return components.reshape(-1, c, patch, patch).contiguous(), -(components @ mean)


def _fold_field(values: torch.Tensor, field: torch.Tensor, size: tuple[int, int], patch: int) -> torch.Tensor:
    """The average of the overlapping value patches ``field`` names, as a ``[C, *size]`` image.

    ``values`` ``[C, Hv, Wv]``; ``field`` ``[Hq, Wq, 2]`` with ``Hq = size[0] - patch + 1`` (and
    likewise W). The same as folding ``unfold(values)[index]`` (F.fold), one gather per offset.
    """
    c, _, value_width = values.shape
    hq, wq = field.shape[:2]
    flat = values.reshape(c, -1)
    base = (field[..., 0] * value_width + field[..., 1]).reshape(-1)
    total = torch.zeros((c,) + tuple(size))
    for dy in range(patch):
        for dx in range(patch):
            total[:, dy:dy + hq, dx:dx + wq] += flat.index_select(1, base + (dy * value_width + dx)).reshape(c, hq, wq)
    # patches covering each pixel: separable, (rows covering y) x (columns covering x)
    rows = F.conv1d(torch.ones(1, 1, hq), torch.ones(1, 1, patch), padding=patch - 1)[0, 0]
    cols = F.conv1d(torch.ones(1, 1, wq), torch.ones(1, 1, patch), padding=patch - 1)[0, 0]
    return total / (rows[:, None] * cols[None, :])


# query rows whose key patches are gathered at once (16 MB of gray 7 x 7 features)
_GATHER_ROWS = 1 << 16


def patchmatch(query: torch.Tensor, keys: torch.Tensor, init: torch.Tensor | None, rounds: int,
               gen: torch.Generator, jump: bool = False) -> torch.Tensor:
    """Approximate nearest key of every query patch by PatchMatch (module docstring).

    ``query`` ``[Hq, Wq, d]`` and ``keys`` ``[Hk, Wk, d]``: one feature vector per patch position
    (:func:`patch_features`); ``init`` ``[Hq, Wq, 2]`` (row, col) key positions to start from
    (random when None). Each round tries, for every query patch at once, the matches of its four
    neighbours moved back by the offset to them (propagation; with ``jump``, also neighbours at 2, 4,
    8, ... px: a vectorised pass cannot sweep the image in scan order as the sequential algorithm
    does, so from a random start good matches travel by doubling steps) and random matches in
    windows of halving radius around its own (random search). Returns ``[Hq, Wq, 2]``.
    """
    hq, wq, d = query.shape
    hk, wk, _ = keys.shape
    query, keys = query.reshape(-1, d), keys.reshape(-1, d)
    top = torch.tensor([hk - 1, wk - 1])
    if init is None:
        field = torch.stack([torch.randint(hk, (hq, wq), generator=gen), torch.randint(wk, (hq, wq), generator=gen)], -1)
    else:
        field = init.clone()

    def distances(f):
        index = (f[..., 0] * wk + f[..., 1]).reshape(-1)
        out = torch.empty(index.shape[0])
        for s in range(0, index.shape[0], _GATHER_ROWS):  # in chunks: a gathered copy of 2048^2 patches is 0.8 GB
            diff = keys.index_select(0, index[s:s + _GATHER_ROWS]).sub_(query[s:s + _GATHER_ROWS])
            out[s:s + _GATHER_ROWS] = diff.mul_(diff).sum(1)
        return out.reshape(hq, wq)

    def candidates():
        steps = [1]
        while jump and steps[-1] * 2 < max(hq, wq):
            steps.append(steps[-1] * 2)
        for step in steps:
            for dy, dx in ((0, step), (step, 0), (0, -step), (-step, 0)):
                yield torch.roll(field, shifts=(dy, dx), dims=(0, 1)) + torch.tensor([dy, dx])
        radius = float(max(hk, wk))
        while radius >= 1:
            jitter = (torch.rand((hq, wq, 2), generator=gen) * 2 - 1) * radius
            yield field + jitter.round().long()
            radius /= 2

    best = distances(field)
    for _ in range(rounds):
        for cand in candidates():
            cand = torch.minimum(cand.clamp_min(0), top)
            d = distances(cand)
            better = d < best
            field = torch.where(better[..., None], cand, field)
            best = torch.where(better, d, best)
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
    if min(out_h, out_w) < config.patch:
        raise FewganError(f"gpnn: the sample size {out_h} x {out_w} px is smaller than one patch ({config.patch} px)")
    out_sizes = output_pyramid(out_h, out_w, len(real_sizes), config)
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
        if level:
            query = imresize(output[None, :c], size=out_size)[0]
        qgrid = (out_size[0] - config.patch + 1, out_size[1] - config.patch + 1)
        kgrid = (real_size[0] - config.patch + 1, real_size[1] - config.patch + 1)
        exact = qgrid[0] * qgrid[1] * kgrid[0] * kgrid[1] <= config.exact_limit
        if exact:
            keys = _unfold(blurred, config.patch)
        else:
            basis = patch_basis(blurred, config.patch, config.patchmatch_dims)
            key_features = patch_features(blurred, basis)
        if field is not None and not exact:
            # the coarser scale's matches, scaled to this scale's grids, start PatchMatch
            rows = (torch.arange(qgrid[0]) * field.shape[0] // qgrid[0]).clamp_max(field.shape[0] - 1)
            cols = (torch.arange(qgrid[1]) * field.shape[1] // qgrid[1]).clamp_max(field.shape[1] - 1)
            ratio = torch.tensor([kgrid[0] / max(1, prev_kgrid[0]), kgrid[1] / max(1, prev_kgrid[1])])
            field = (field[rows][:, cols].float() * ratio).round().long()
            field = torch.minimum(field.clamp_min(0), torch.tensor([kgrid[0] - 1, kgrid[1] - 1]))
        for _ in range(config.iterations):
            if exact:
                index = _exact_nearest(_unfold(query, config.patch), keys, config.alpha)
                field = torch.stack([index // kgrid[1], index % kgrid[1]], -1).reshape(*qgrid, 2)
            else:
                field = patchmatch(patch_features(query, basis), key_features, field, config.patchmatch_rounds, gen,
                                   jump=field is None)
            output = _fold_field(real, field, out_size, config.patch)
            query = output[:c]
            if progress is not None:
                progress(1)
        prev_kgrid = kgrid
    return output[:c].clamp(-1, 1), (output[c:] if labels is not None else None)


def output_size(height: int, width: int, size: tuple[int, int] | None, scale: tuple[float, float] | None,
                config: GPNNConfig) -> tuple[int, int]:
    """``(h, w)`` of the samples: ``size``, or ``scale`` (height, width factors) times the image's, or the image's."""
    if size is not None and scale is not None:
        raise FewganError("give --size or --scale, not both")
    if size is not None:
        out = tuple(int(v) for v in size)
    elif scale is not None:
        out = (max(1, int(round(height * scale[0]))), max(1, int(round(width * scale[1]))))
    else:
        out = (height, width)
    if min(out) < config.patch:
        raise FewganError(f"the sample size {out[0]} x {out[1]} px is smaller than one patch ({config.patch} px); "
                          "give a larger --size or --scale")
    return out


def sample_seed(seed: int, index: int) -> int:
    """The noise seed of sample ``index`` of a draw with ``seed`` (an independent stream per sample)."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def sample_to_folder(image_path, out, *, n: int, seed: int, size: tuple[int, int] | None = None,
                     scale: tuple[float, float] | None = None, config: GPNNConfig | None = None,
                     instances=None, labels_record: dict | None = None, formats: tuple[str, ...] = (),
                     format: str | None = None, quiet: bool = False):
    """Write ``n`` GPNN samples of one image into ``out``; returns ``out``.

    Parameters
    ----------
    image_path : PNG, TIFF or JPEG (8/16-bit, float TIFF; gray or RGB), read once.
    out : output folder: ``sample_00000.<ext>`` ... in the input's format, bit depth, data range and
        pixel size (GPNN works on the image at its own resolution: nothing is resized), written
        atomically; with labels ``sample_00000_masks.tif`` beside each (and ``formats``); a
        ``log.txt``, a ``metrics.jsonl`` end record and, last, ``gpnn.json`` (config, seeds, input,
        sizes, seconds).
    n, seed : sample ``i`` uses the noise seed :func:`sample_seed` ``(seed, i)``.
    size, scale : the samples' ``(h, w)`` or (height, width) factors of the image's size.
    instances : ``[H, W]`` int instance labels of the image (or None), carried into every sample.
    labels_record : what to record of the labels (their source).
    formats : label formats besides the Cellpose masks (:func:`fewgan.data.export.export`).
    format : 'png' or 'tiff' (default: the input's).
    quiet : no progress bar or first lines on the terminal (``log.txt`` still has them).
    """
    import datetime
    import time
    from pathlib import Path

    from fewgan import __version__
    from fewgan.data.export import LabelledImage
    from fewgan.data.export import export as export_formats
    from fewgan.data.images import check_pixel_count, read_image, write_image
    from fewgan.data.labels import decode_instances, encode_instances
    from fewgan.run import GPNN_RECORD_FILE, RunLogger, atomic_write_json

    config = config or GPNNConfig()
    image_path, out = Path(image_path), Path(out)
    image, meta = read_image(image_path)
    c, h, w = image.shape
    out_h, out_w = output_size(h, w, size, scale, config)
    check_pixel_count(f"{image_path}: the requested sample", out_w, out_h)
    if min(h, w) < config.min_size:
        raise FewganError(f"gpnn: the image ({h} x {w} px) is smaller than min size {config.min_size}")
    labels = None
    if instances is not None:
        if tuple(instances.shape) != (h, w):
            raise FewganError(f"gpnn: labels are {tuple(instances.shape)} but the image is {(h, w)}")
        labels = torch.from_numpy(encode_instances(instances))
    fmt = {"tif": "tiff"}.get(str(format).lower(), str(format).lower()) if format else (
        "tiff" if meta.format == "tiff" else "png")
    if fmt not in ("png", "tiff"):
        raise FewganError(f"--format {format!r}: use png or tiff")
    ext = ".tif" if fmt == "tiff" else ".png"
    out_meta = meta.with_size(out_h, out_w)  # the input's pixel size: GPNN resizes nothing
    sizes = pyramid_sizes(h, w, config)
    unit = f" {meta.pixel_unit}" if meta.pixel_unit else ""
    pixel = f"pixel size {meta.pixel_size:g}{unit}" if meta.pixel_size else "pixel size not recorded in the file"
    works_at = (f"GPNN works at the image's own resolution ({h} x {w} px, {pixel}): nothing is resized; "
                f"samples {out_h} x {out_w} px at the same pixel size")
    out.mkdir(parents=True, exist_ok=True)
    log = RunLogger(out, quiet=quiet, tensorboard=False)
    try:
        log.info(f"gpnn: {image_path} ({h} x {w} px, {c} channel(s), {meta.dtype}); {works_at}")
        log.info(f"gpnn: {len(sizes)} scales {sizes[0][0]}x{sizes[0][1]} .. {h}x{w}, {config.iterations} "
                 f"iterations each, {n} sample(s), seed {seed}" + (", labels carried" if labels is not None else ""))
        bar = log.progress(n * len(sizes) * config.iterations, desc="gpnn", unit="iteration")
        width = max(5, len(str(max(n - 1, 0))))
        paths, masks, seconds = [], [], []
        for i in range(n):
            t0 = time.perf_counter()
            sample, sample_labels = generate(image, (out_h, out_w), sample_seed(seed, i), config, labels,
                                             progress=bar.update)
            paths.append(write_image(out / f"sample_{i:0{width}d}{ext}", sample, out_meta, format=fmt))
            if sample_labels is not None:
                masks.append(decode_instances(sample_labels.numpy()))
            seconds.append(time.perf_counter() - t0)
        bar.close()
        if masks:  # the Cellpose masks always, the other formats on request
            export_formats([LabelledImage(Path(p), m) for p, m in zip(paths, masks)], out,
                           tuple(dict.fromkeys(("cellpose",) + tuple(formats))))
        log.metrics({"event": "done", "samples": n, "generation_seconds": sum(seconds)})
        log.info(f"gpnn: {n} sample(s) in {sum(seconds):.1f} s ({sum(seconds) / max(n, 1):.1f} s each) -> {out}")
    finally:
        log.close()
    data_meta = meta.to_dict()
    data_meta["notes"] = list(data_meta.get("notes") or []) + [works_at]
    atomic_write_json(out / GPNN_RECORD_FILE, {
        "method": "gpnn",
        "fewgan_version": __version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "seed": int(seed),
        "n": int(n),
        "data": {"path": str(image_path.resolve()), "image": data_meta},
        "size": [out_h, out_w],
        "pyramid": {"image": [list(s) for s in sizes], "samples": [list(s) for s in output_pyramid(out_h, out_w, len(sizes), config)]},
        "labels": labels_record,
        "samples": [Path(p).name for p in paths],
        "seconds": [round(s, 3) for s in seconds],
        "environment": {"device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__},
    })
    return out
