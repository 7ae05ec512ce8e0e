"""Sampling from a trained SinGAN run: any number of images, any size or aspect.

Every image ``i`` draws its noises from its own generator seeded by ``(seed, i)``,
BatchNorm follows :data:`fewgan.singan.nets.SAMPLING_RULE` (the finest scale normalises with its
standing statistics, the mean of many samples' own statistics, the frozen coarser scales with their
running averages; the rule of the trainer's figures and the report too), and every image goes through
the networks on its own (a fixed internal micro-batch of one, ``MICRO_BATCH``), so the same seed
gives bit-identical images whatever ``batch`` is: convolution kernels may change with the batch
size (oneDNN picks other kernels for other batch sizes on AVX-512 CPUs), and a micro-batch that
never changes means every image always meets the same kernels. The fixed-noise reconstruction
follows :data:`fewgan.singan.nets.RECONSTRUCTION_RULE` (the finest scale with the image's own
statistics, as the reconstruction loss ran it). ``scale`` / ``size`` change the size of every scale in proportion
(SinGAN's fully-convolutional generators accept any size): a larger field of view, or another aspect.
``start_scale=K`` feeds the real image at scale K-1 instead of generated coarse scales, for
variations close to the original (SinGAN's injection at a chosen scale).

Large samples (a 4096 x 4096 micrograph) are made tile by tile (``tile``; automatic when the
untiled pass's feature maps would exceed :data:`MEMORY_BUDGET`): every scale runs on ``tile`` px
tiles with the generators' margin of overlap; every BatchNorm of a sample normalises with fixed
statistics (running averages, standing statistics), so a tiled sample is the untiled one up to float
rounding and has no seams (the reconstruction's finest scale gathers the whole image's statistics
over the tiles in a first pass: :meth:`fewgan.singan.pyramid.TrainedScales.tiled`).

Shaham, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural
Image", ICCV 2019.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.ops.imresize import imresize
from fewgan.run import SINGAN_MODEL_FILE, load_checkpoint, read_run_config, resolve_device
from fewgan.singan.nets import (METHOD, MODEL_FORMAT, RECONSTRUCTION_RULE, SAMPLING_RULE, Generator, image_part,
                               make_noise)
from fewgan.singan.pyramid import Pyramid, TrainedScales, fixed_noise

# images per forward pass, whatever --batch says: a constant batch shape means the same kernels
# for every image, hence the same pixels on every CPU (see the module docstring)
MICRO_BATCH = 1

#: bytes the widest feature maps of an untiled sample may take before sampling goes tile by tile
MEMORY_BUDGET = 1 << 30
#: feature maps of one scale alive at once in a no-grad pass, per image: measured 2.2 GB peak RSS
#: (0.3 GB base) for two 512 px images at 128 features (139 MB a map), i.e. ~7 maps, rounded up
#: (the convolutions' input, output and Winograd work buffers, BatchNorm and activation outputs)
LIVE_MAPS = 8
#: the tile side of automatic tiling: 256 px tiles with 5 px margins recompute 8 % of the pixels,
#: and a tile's pass at 128 features takes ~0.3 GB (LIVE_MAPS maps of 266 x 266)
DEFAULT_TILE = 256

PathLike = str | os.PathLike


def parse_scale(value: Any) -> tuple[float, float] | None:
    """``1.5`` -> (1.5, 1.5); ``'1x2'`` -> (1.0, 2.0) (height x width); None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        sy = sx = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        sy, sx = float(value[0]), float(value[1])
    else:
        m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(?:[xX,]\s*([0-9.eE+-]+))?\s*", str(value))
        if not m:
            raise FewganError(f"--scale {value!r}: give a factor (1.5) or height x width factors (1x2)")
        try:
            sy = float(m.group(1))
            sx = float(m.group(2)) if m.group(2) else sy
        except ValueError:
            raise FewganError(f"--scale {value!r}: give a factor (1.5) or height x width factors (1x2)") from None
    if not (sy > 0 and sx > 0) or not np.isfinite([sy, sx]).all():
        raise FewganError(f"--scale {value!r}: factors must be positive")
    return sy, sx


def parse_size(value: Any) -> tuple[int, int] | None:
    """``'300x400'`` (height x width) or ``(300, 400)`` -> (300, 400); ``'256'`` -> (256, 256)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        h, w = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+))?\s*", str(value))
        if not m:
            raise FewganError(f"--size {value!r}: give HEIGHTxWIDTH in pixels, e.g. 300x400")
        h, w = m.group(1), m.group(2) or m.group(1)
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise FewganError(f"--size {value!r}: both sides must be at least 1 px")
    return h, w


def image_seed(seed: int, index: int) -> int:
    """A 63-bit seed for image ``index`` of a draw with ``seed`` (independent streams per image)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(2, dtype=np.uint64)[0]
               >> np.uint64(1))


class SinGANModel:
    """A trained SinGAN pyramid loaded from a run folder (``SinGANModel.load(run)``).

    Implements :class:`fewgan.model.TrainedModel`; ``meta`` is the training image's
    :class:`fewgan.data.images.ImageMeta` (format, dtype, data range, channels).
    """

    method = METHOD

    def __init__(self, data: dict[str, Any], device: torch.device, run: Path | None = None,
                 data_path: Path | None = None):
        if data.get("format") != MODEL_FORMAT:
            raise FewganError(f"{run}: {SINGAN_MODEL_FILE} is not a fewgan SinGAN model file")
        from fewgan.data.images import ImageMeta
        from fewgan.singan.config import SinGANConfig

        self.run = run
        self._data_path = data_path
        self.device = device
        self.config = SinGANConfig.from_stored(data["config"])
        self.pyramid = Pyramid.from_dict(data["pyramid"])
        self.meta = ImageMeta.from_dict(data["meta"])
        self.channels = int(data["channels"])
        self.amps = [float(a) for a in data["amps"]]
        self.reals = [r.to(device) for r in data["reals"]]
        self.fixed_noises = [n.to(device) for n in data["fixed_noises"]]
        self.generators = []
        self.features = [int(f) for f in data["features"]]
        for f, sd in zip(data["features"], data["generators"]):
            g = Generator(self.channels, int(f), self.config.num_blocks, self.config.kernel_size,
                          conv=self.config.conv).to(device)
            g.load_state_dict(sd)
            g.eval().requires_grad_(False)
            self.generators.append(g)
        if len(self.generators) != len(self.pyramid.sizes):
            raise FewganError(f"{run}: model has {len(self.generators)} scales, pyramid {len(self.pyramid.sizes)}")
        # the scales' standing statistics (stored by the trainer; a model file from before them computes
        # them when first needed, from the same fixed noise stream, so both give the same samples)
        self._standing = {int(k): [(m.to(device), v.to(device)) for m, v in pairs]
                          for k, pairs in data.get("standing", {}).items()}

    @classmethod
    def load(cls, run: PathLike, device: str = "cpu") -> "SinGANModel":
        """Load ``RUN/generator.pt`` (a finished ``fewgan singan train`` run)."""
        from fewgan.model import recorded_data_path

        run = Path(run)
        payload = read_run_config(run, method=METHOD)
        path = run / SINGAN_MODEL_FILE
        if not path.is_file():
            raise FewganError(f"{run}: no {SINGAN_MODEL_FILE} (training did not finish); "
                              f"finish it with: fewgan singan train --resume {run}")
        return cls(load_checkpoint(path), resolve_device(device), run, recorded_data_path(payload, METHOD))

    def training_data(self) -> Path | None:
        """The image this model was trained on (the path its ``config.json`` records)."""
        return self._data_path

    def reconstruction(self):
        """The fixed-noise reconstruction and the training image at the finest scale (:class:`fewgan.model.Reconstruction`)."""
        from fewgan.model import Reconstruction

        return Reconstruction(image=self.reconstruct_tensor(),
                              target=self.image(self.reals[-1]).detach().float().cpu())

    @property
    def label_channels(self) -> int:
        """Label channels after the image channels (:data:`fewgan.data.labels.LABEL_CHANNELS`, or 0)."""
        return self.config.label_channels

    @property
    def image_channels(self) -> int:
        """The image channels the networks were trained with, the first ``image_channels`` of every
        generator's output (three for a gray image trained as three: :data:`fewgan.singan.nets.GRAY_TRAINING_CHANNELS`)."""
        return self.channels - self.label_channels

    def image(self, y: torch.Tensor) -> torch.Tensor:
        """The image of generator output ``y`` ``[..., C, H, W]`` with the image's own channels (:func:`image_part`)."""
        return image_part(y, self.image_channels, self.meta.channels)

    @property
    def outputs(self) -> tuple[str, ...]:
        """``('labels',)`` for a model trained with labels (:meth:`sample_with_labels`), else ``()``."""
        return ("labels",) if self.label_channels else ()

    @property
    def num_scales(self) -> int:
        return len(self.pyramid.sizes)

    @property
    def size(self) -> tuple[int, int]:
        """``(h, w)`` of the finest scale (the trained image size)."""
        return tuple(self.pyramid.sizes[-1])

    def scale_sizes(self, size: Any = None, scale: Any = None) -> list[tuple[int, int]]:
        """Sizes of s0..sN for an output of ``size`` (h, w) or ``scale`` times the trained size."""
        if size is not None and scale is not None:
            raise FewganError("give --size or --scale, not both")
        size, factors = parse_size(size), parse_scale(scale)
        if size is None and factors is None:
            return [tuple(s) for s in self.pyramid.sizes]
        h_n, w_n = self.size
        if size is not None:
            sy, sx = size[0] / h_n, size[1] / w_n
        else:
            sy, sx = factors
        sizes = [(max(1, int(round(h * sy))), max(1, int(round(w * sx)))) for h, w in self.pyramid.sizes]
        if size is not None:
            sizes[-1] = size
        return sizes

    def _check_start(self, start_scale: int | None) -> int:
        if start_scale is None:
            return 0
        k = int(start_scale)
        if not 0 <= k < self.num_scales:
            raise FewganError(f"--start-scale {k} is out of range: this run has scales 0..{self.num_scales - 1}")
        return k

    @torch.no_grad()
    def sample_tensor(self, n: int, seed: int = 0, size: Any = None, scale: Any = None,
                      start_scale: int | None = None, batch: int = 16,
                      rule: str = SAMPLING_RULE, tile: int | None = None) -> torch.Tensor:
        """``n`` random images as ``[n, C, H, W]`` float in [-1, 1] (clipped), on the CPU.

        Image ``i`` depends only on ``(seed, i)``, not on ``batch``: images are computed one at a
        time (``MICRO_BATCH``) and ``batch`` only sets how many are generated between checks.
        ``rule``: the BatchNorm rule (:data:`fewgan.singan.nets.SAMPLING_RULES`); the others than
        the default are kept for comparisons (``bench/singan_quality.py``).
        ``tile``: compute every scale in ``tile`` px tiles (:meth:`tile_for`; None: only when the untiled
        pass would not fit :data:`MEMORY_BUDGET`); the same images up to float rounding.
        The image channels only; a labelled model's labels: :meth:`sample_with_labels`.
        """
        return self.image(self._sample_all(n, seed, size, scale, start_scale, batch, rule, tile)).clamp(-1, 1)

    @torch.no_grad()
    def sample_with_labels(self, n: int, seed: int = 0, size: Any = None, scale: Any = None,
                           start_scale: int | None = None, batch: int = 16,
                           tile: int | None = None) -> tuple[torch.Tensor, list[np.ndarray]]:
        """``n`` random images and their instances: ``([n, C, H, W] in [-1, 1], n arrays [H, W] int32)``.

        The images are those of :meth:`sample_tensor` with the same arguments; each image's instances
        are decoded from its generated label channels by :func:`fewgan.data.labels.decode_instances`
        (foreground > 0, watershed of the distance channel). Raises :class:`FewganError` for a model
        trained without labels.
        """
        from fewgan.data.labels import decode_instances

        if not self.label_channels:
            raise FewganError(f"{self.run}: this model was trained without labels (fewgan singan train --labels)")
        both = self._sample_all(n, seed, size, scale, start_scale, batch, tile=tile)
        ci = self.image_channels
        return self.image(both).clamp(-1, 1), [decode_instances(x[ci:].clamp(-1, 1).numpy()) for x in both]

    def _sample_all(self, n: int, seed: int, size: Any, scale: Any, start_scale: int | None,
                    batch: int, rule: str = SAMPLING_RULE, tile: int | None = None) -> torch.Tensor:
        """Every channel (image, then labels) of ``n`` samples, on the CPU, **not clipped**: a gray image
        trained as three channels is their mean clipped to [-1, 1] (as the reconstruction and the
        trainer's figures are), not the mean of three clipped channels, which pulls the brightest and
        darkest pixels inward wherever one channel overshoots (issue 17: 0.9 % of a Hubble-field
        sample's pixels; its 99.5th percentile 188 -> 196 grey levels)."""
        if n < 0 or batch < 1:
            raise FewganError("--n must be >= 0 and --batch >= 1")
        sizes = self.scale_sizes(size, scale)
        k0 = self._check_start(start_scale)
        tile = self.tile_for(sizes, tile)
        out = []
        for first in range(0, n, batch):
            idx = range(first, min(n, first + batch))
            for m in range(idx.start, idx.stop, MICRO_BATCH):
                gens = [torch.Generator().manual_seed(image_seed(seed, i))
                        for i in range(m, min(idx.stop, m + MICRO_BATCH))]
                out.append(self._generate(sizes, k0, gens, rule, tile).cpu())
        if not out:
            h, w = sizes[-1]
            return torch.zeros((0, self.channels, h, w))
        return torch.cat(out)

    @property
    def scales(self) -> TrainedScales:
        """The trained scales (:meth:`fewgan.singan.pyramid.TrainedScales.coarse_to_fine`)."""
        return TrainedScales(self.generators, self.amps, self.pyramid.sizes, self.pyramid.scale_factor,
                             standing=self.standing_statistics)

    def standing_statistics(self, k: int) -> list:
        """Scale ``k``'s standing statistics (:meth:`fewgan.singan.pyramid.TrainedScales.standing_statistics`),
        from the model file, or computed once (at the trained sizes, in tiles where a pass would not fit)."""
        if k not in self._standing:
            sizes = [tuple(s) for s in self.pyramid.sizes]
            self._standing[k] = self.scales.standing_statistics(k, channels=self.channels, device=self.device,
                                                                tile=self.tile_for(sizes[:k + 1], None))
        return self._standing[k]

    def untiled_bytes(self, sizes: list[tuple[int, int]], batch: int = MICRO_BATCH) -> int:
        """Bytes of the feature maps an untiled pass of ``batch`` images at ``sizes`` holds at once
        (:data:`LIVE_MAPS` maps of the widest scale)."""
        pad = self.generators[0].pad  # every scale's generator has the same margin
        return max(LIVE_MAPS * 4 * batch * f * (h + 2 * pad) * (w + 2 * pad) for f, (h, w) in zip(self.features, sizes))

    def tile_for(self, sizes: list[tuple[int, int]], tile: int | None, batch: int = MICRO_BATCH) -> int | None:
        """The tile side a pass of ``batch`` images at ``sizes`` runs with: ``tile`` (checked), or
        :data:`DEFAULT_TILE` when the untiled pass would exceed :data:`MEMORY_BUDGET`, else None (untiled)."""
        if tile is None:
            return DEFAULT_TILE if self.untiled_bytes(sizes, batch) > MEMORY_BUDGET else None
        tile = int(tile)
        field = 2 * self.generators[0].pad + 1
        if tile < field:
            raise FewganError(f"--tile {tile} is smaller than the generators' receptive field ({field} px); "
                              f"use --tile {max(field, 64)} or more, or leave it out (automatic)")
        return tile

    def _generate(self, sizes: list[tuple[int, int]], k0: int, gens: list[torch.Generator],
                  rule: str = SAMPLING_RULE, tile: int | None = None) -> torch.Tensor:
        b, c = len(gens), self.channels
        scales = self.scales
        image = None
        if k0 > 0:
            real = self.reals[k0 - 1]
            if tuple(real.shape[-2:]) != tuple(sizes[k0 - 1]):
                real = imresize(self.reals[-1], size=sizes[k0 - 1])
            image = scales.upsample(real.expand(b, -1, -1, -1), sizes[k0])
        # each image's noises come from its own generator, drawn scale by scale in order (the skipped
        # scales too, so that an image's noise does not depend on the start scale)
        noises = {j: torch.cat([make_noise((1, c) + tuple(sizes[j]), j == 0, generator=g) for g in gens])
                  for j in range(self.num_scales)}
        kwargs = dict(start=k0, stop=self.num_scales - 1, image=image, batch=b, channels=c, device=self.device,
                      sizes=sizes, rule=rule)
        return scales.whole(lambda j, shape: noises[j].to(self.device), tile=tile, **kwargs)

    def sample(self, n: int, seed: int = 0, size: Any = None, scale: Any = None, start_scale: int | None = None,
               batch: int = 16, tile: int | None = None) -> np.ndarray:
        """``n`` random images as ``[n, H, W, C]`` in the input's dtype and data range (uint8/uint16/float32)."""
        from fewgan.data.images import to_numpy

        return to_numpy(self.sample_tensor(n, seed, size, scale, start_scale, batch, tile=tile), self.meta)

    @torch.no_grad()
    def reconstruct_tensor(self, tile: int | None = None) -> torch.Tensor:
        """The fixed-noise reconstruction of the training image, ``[1, C, H, W]`` in [-1, 1] (``tile``: as
        :meth:`sample_tensor`)."""
        sizes = [tuple(s) for s in self.pyramid.sizes]
        tile = self.tile_for(sizes, tile)
        kwargs = dict(stop=self.num_scales - 1, channels=self.channels, device=self.device, rule=RECONSTRUCTION_RULE)
        y = self.scales.whole(fixed_noise(self.fixed_noises), tile=tile, **kwargs)
        return self.image(y).clamp(-1, 1).cpu()

    def reconstruct(self) -> np.ndarray:
        """The fixed-noise reconstruction as ``[H, W, C]`` in the input's dtype."""
        from fewgan.data.images import to_numpy

        return to_numpy(self.reconstruct_tensor()[0], self.meta)


def sample_to_folder(run: PathLike, out: PathLike | None = None, n: int = 16, batch: int = 16, seed: int = 0,
                     size: Any = None, scale: Any = None, start_scale: int | None = None,
                     reconstruct: bool = False, format: str | None = None, device: str = "cpu",
                     export: str | None = None, tile: int | None = None) -> Path:
    """Write ``n`` samples (``sample_00000.png``...) of a SinGAN run into ``out``; returns ``out``.

    Images keep the input's format, bit depth and data range (``format`` 'png' or 'tiff'
    overrides the format). ``reconstruct`` writes ``reconstruction.<ext>`` as well.
    Default ``out``: ``RUN/samples_seed<seed>``. A model trained with labels also writes each
    sample's instances as ``sample_00000_masks.tif`` (uint16, Cellpose) and, with ``export``
    (``'coco,yolo'``, ``'all'``: :func:`fewgan.data.export.parse_formats`), those formats
    (:func:`fewgan.data.export.export`); ``export`` for a model without labels is an error.
    ``tile``: make each image (and the reconstruction) in ``tile`` px tiles (:meth:`SinGANModel.tile_for`;
    None: automatic, when the untiled pass would not fit :data:`MEMORY_BUDGET`).
    """
    from fewgan.data.export import LabelledImage, parse_formats
    from fewgan.data.export import export as export_formats
    from fewgan.data.images import write_image

    formats = parse_formats(export)
    model = SinGANModel.load(run, device=device)
    model.tile_for(model.scale_sizes(size, scale), tile)  # a bad --tile stops before any work
    if formats and not model.label_channels:
        raise FewganError(f"{run}: --export needs a model trained with labels (fewgan singan train --labels)")
    if format is not None:
        format = {"tif": "tiff", "jpg": "jpeg"}.get(str(format).lower(), str(format).lower())
        if format not in ("png", "tiff"):
            raise FewganError(f"--format {format!r}: use png or tiff")
    fmt = format or ("tiff" if model.meta.format == "tiff" else "png")
    ext = ".tif" if fmt == "tiff" else ".png"
    out = Path(out) if out is not None else Path(run) / f"samples_seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    labels = None
    if model.label_channels:
        images, labels = model.sample_with_labels(n, seed=seed, size=size, scale=scale, start_scale=start_scale,
                                                  batch=batch, tile=tile)
    else:
        images = model.sample_tensor(n, seed=seed, size=size, scale=scale, start_scale=start_scale, batch=batch,
                                     tile=tile)
    width = max(5, len(str(max(n - 1, 0))))
    paths = []
    for i, img in enumerate(images):
        paths.append(write_image(out / f"sample_{i:0{width}d}{ext}", img, model.meta.with_size(*img.shape[-2:]),
                                 format=fmt))
    if labels is not None:  # the Cellpose masks always, the other formats on request
        export_formats([LabelledImage(Path(p), lab) for p, lab in zip(paths, labels)], out,
                       tuple(dict.fromkeys(("cellpose",) + formats)))
    if reconstruct:
        rec = model.reconstruct_tensor(tile=tile)[0]
        write_image(out / f"reconstruction{ext}", rec, model.meta.with_size(*rec.shape[-2:]), format=fmt)
    return out
