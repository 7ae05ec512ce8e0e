"""Images from a trained StyleGAN2 run: seeds, truncation, noise mode, the data set's bit depth.

Which weights: the best EMA generator (``checkpoints/best_G_ema.pt``), else the best regular
generator (``best_G.pt``), else the EMA generator of the last periodic checkpoint
(``last.pt``); the model says which it used (``StyleGAN2Model.source``). Truncation is the
"truncation trick" of Karras et al., "A Style-Based Generator Architecture for GANs", CVPR
2019: ``w' = w_avg + psi (w - w_avg)``.

Every image depends only on its seed (its latent and, with ``noise_mode='random'``, its noise
maps are drawn from ``torch.Generator().manual_seed(seed)``), not on the batch it is in: the
networks see one image at a time (a fixed internal micro-batch, ``MICRO_BATCH``), because
convolution kernels may change with the batch size (on AVX-512 CPUs they do), and the same
batch shape for every image means the same kernels, hence bit-identical images.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.run import (CHECKPOINT_DIR, STYLEGAN2_BEST_FILES, STYLEGAN2_BEST_INFO, STYLEGAN2_LAST_CHECKPOINT, atomic_write_json,
                        load_checkpoint, read_run_config, resolve_device)
from fewgan.stylegan2.config import StyleGAN2Config
from fewgan.stylegan2.nets import METHOD, Generator, build_networks

# images per forward pass whatever --batch says (see the module docstring)
MICRO_BATCH = 1

FALLBACK = ((STYLEGAN2_BEST_FILES["G_ema"], "G_ema", "best EMA generator"),
            (STYLEGAN2_BEST_FILES["G"], "G", "best generator (no best EMA file)"),
            (STYLEGAN2_LAST_CHECKPOINT, "G_ema", "EMA generator of the last checkpoint (no best-metric files)"))


def parse_seeds(seeds: str | int | Iterable[int] | None, n: int | None = None) -> list[int]:
    """``'0-999'``, ``'1,5,9'``, ``'0-3,10'``, an int or a list -> list of ints; with only ``n``: ``0..n-1``."""
    if seeds is None:
        if n is None:
            raise FewganError("give --n or --seeds")
        return list(range(int(n)))
    if isinstance(seeds, int):
        return list(range(seeds, seeds + (n or 1)))
    if isinstance(seeds, str):
        out: list[int] = []
        for part in seeds.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part[1:]:
                    a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                    lo, hi = int(a), int(b)
                    if hi < lo:
                        raise ValueError
                    out.extend(range(lo, hi + 1))
                else:
                    out.append(int(part))
            except ValueError:
                raise FewganError(f"--seeds {seeds!r}: use a list such as 0-999 or 1,5,9") from None
        seeds = out
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise FewganError("--seeds: no seeds given")
    if n is not None and n != len(seeds):
        if n < len(seeds):
            seeds = seeds[:n]
        else:
            raise FewganError(f"--n {n} but only {len(seeds)} seeds given: give as many seeds as images")
    return seeds


def _matches_manifest(ck: Path, data: dict[str, Any]) -> bool:
    """Whether a ``best_*.pt`` belongs to the set ``best_info.json`` (written last) describes."""
    from fewgan.run import read_json

    manifest = ck / STYLEGAN2_BEST_INFO
    if not manifest.is_file():
        return True  # runs from before the manifest rule
    try:
        step = read_json(manifest).get("step")
    except FewganError:
        return False
    return step is None or data.get("step") is None or int(data["step"]) == int(step)


class StyleGAN2Model:
    """A trained generator with the data set's metadata; see :meth:`load`.

    Implements :class:`fewgan.model.TrainedModel` (no reconstruction: a StyleGAN2 model has none).
    A model trained with labels (``label_channels`` 2) makes the encoded label channels after the
    image channels; :meth:`sample_tensor` returns the image channels only, :meth:`sample_with_labels`
    both, and ``outputs`` is ``("labels",)``.
    """

    method = METHOD

    def __init__(self, G: Generator, image_meta: dict[str, Any], source: str, path: Path, device: str = "cpu",
                 run: Path | None = None, data_path: Path | None = None, label_channels: int = 0):
        self.G = G.eval().requires_grad_(False)
        self.label_channels = int(label_channels)
        self.image_meta = image_meta
        self.source = source
        self.path = path
        self.device = torch.device(device)
        self.run = run
        self._data_path = data_path

    @classmethod
    def load(cls, run: str | os.PathLike, device: str = "cpu", quiet: bool = True) -> "StyleGAN2Model":
        """Load the best EMA generator of ``run`` (fallback: best G, then the last checkpoint).

        Raises :class:`FewganError` when the run has none of them.
        """
        from fewgan.model import recorded_data_path

        run = Path(run)
        payload = read_run_config(run, method=METHOD)
        ck = run / CHECKPOINT_DIR
        for name, key, what in FALLBACK:
            path = ck / name
            if path.is_file():
                data = load_checkpoint(path, map_location="cpu")
                if name.startswith("best_") and not _matches_manifest(ck, data):
                    continue  # written after the manifest by a killed save: not part of the best set
                state = data["state_dict"] if "state_dict" in data else data[key]
                cfg = StyleGAN2Config.from_stored(data.get("config", payload["config"]))
                channels = int(data.get("img_channels", payload.get("data", {}).get("image", {}).get("channels", 1)))
                G, _ = build_networks(cfg, channels)
                G.load_state_dict(state)
                G.to(device)
                step = data.get("step")
                source = f"{what}: {path.name}" + (f" (step {step})" if step is not None else "")
                if not quiet:
                    print(f"using the {source}", file=sys.stderr)
                return cls(G, payload.get("data", {}).get("image", {}), source, path, device, run,
                           recorded_data_path(payload, METHOD), label_channels=cfg.label_channels)
        raise FewganError(f"{run}: no generator checkpoint (none of {', '.join(f[0] for f in FALLBACK)} in "
                          f"{ck}); train longer or resume the run")

    # -- sampling
    def _latents(self, seeds: Sequence[int], noise_mode: str):
        z, noise = [], []
        shapes = self.G.synthesis.noise_shapes()
        for s in seeds:
            gen = torch.Generator().manual_seed(int(s))
            z.append(torch.randn(1, self.G.z_dim, generator=gen))
            if noise_mode == "random":
                noise.append([torch.randn(1, 1, h, w, generator=gen) for h, w in shapes])
        z = torch.cat(z).to(self.device)
        if noise_mode == "random":
            noise = [torch.cat([n[i] for n in noise]).to(self.device) for i in range(len(shapes))]
            return z, noise
        return z, None

    @property
    def outputs(self) -> tuple[str, ...]:
        """``("labels",)`` for a model trained with labels, else ``()``."""
        return ("labels",) if self.label_channels else ()

    @property
    def image_channels(self) -> int:
        return self.G.img_channels - self.label_channels

    def sample_tensor(self, n: int | None = None, seed: int = 0, psi: float = 1.0, noise_mode: str = "const",
                      batch: int = 32, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """``[N, C, R, R]`` float32 in about [-1, 1] (unclamped), CPU; seeds ``seed .. seed+n-1`` or ``seeds``.

        The image channels only (a labelled model's label channels: :meth:`sample_with_labels`).
        ``batch`` is checked but does not change a pixel: images go through the networks
        ``MICRO_BATCH`` at a time.
        """
        return self._synthesize(n, seed, psi, noise_mode, batch, seeds)[:, :self.image_channels]

    def sample_with_labels(self, n: int | None = None, seed: int = 0, psi: float = 1.0, noise_mode: str = "const",
                           batch: int = 32, seeds: Sequence[int] | None = None
                           ) -> tuple[torch.Tensor, list[np.ndarray]]:
        """Images ``[N, C, R, R]`` (as :meth:`sample_tensor`, same pixels) and their instances: N label
        images ``[R, R]`` int32 (0 background, 1..n), decoded from the label channels by
        :func:`fewgan.data.labels.decode_instances` (threshold + watershed)."""
        from fewgan.data.labels import decode_instances

        if not self.label_channels:
            raise FewganError(f"{self.run}: this model was trained without labels (train with --labels)")
        x = self._synthesize(n, seed, psi, noise_mode, batch, seeds)
        c = self.image_channels
        return x[:, :c], [decode_instances(channels.numpy()) for channels in x[:, c:]]

    @torch.no_grad()
    def _synthesize(self, n, seed, psi, noise_mode, batch, seeds) -> torch.Tensor:
        """Every channel the generator makes, ``[N, C + L, R, R]`` on the CPU."""
        if noise_mode not in ("const", "random", "none"):
            raise FewganError(f"--noise-mode {noise_mode!r}: use const, random or none")
        if batch < 1:
            raise FewganError(f"--batch {batch}: must be at least 1")
        if not math.isfinite(float(psi)):
            raise FewganError(f"--trunc {psi}: must be a finite number (1: no truncation)")
        seeds = list(seeds) if seeds is not None else list(range(int(seed), int(seed) + int(n or 0)))
        if not seeds:
            raise FewganError("nothing to generate: n must be at least 1")
        out = []
        for start in range(0, len(seeds), MICRO_BATCH):
            chunk = seeds[start:start + MICRO_BATCH]
            z, noise = self._latents(chunk, noise_mode)
            ws = self.G.mapping(z, psi=psi)
            mode = "random" if noise is not None else noise_mode
            out.append(self.G.synthesis(ws, noise_mode=mode, noise=noise).float().cpu())
        return torch.cat(out)

    def sample(self, n: int | None = None, seed: int = 0, psi: float = 1.0, noise_mode: str = "const",
               batch: int = 32, seeds: Sequence[int] | None = None) -> np.ndarray:
        """``[N, H, W, C]`` array in the data set's dtype and data range (uint8 / uint16 / float32)."""
        from fewgan.data.images import to_numpy

        x = self.sample_tensor(n, seed=seed, psi=psi, noise_mode=noise_mode, batch=batch, seeds=seeds)
        return to_numpy(x, self.meta)

    def training_data(self) -> Path | None:
        """The folder this model was trained on (the path its ``config.json`` records; None for in-memory images)."""
        return self._data_path

    def reconstruction(self) -> None:
        """None: a StyleGAN2 generator reconstructs no training image."""
        return None

    @property
    def meta(self):
        """The data set's :class:`fewgan.data.images.ImageMeta` at the generator's size."""
        from fewgan.data.images import ImageMeta

        meta = ImageMeta.from_dict(self.image_meta) if self.image_meta else ImageMeta(channels=self.image_channels)
        return meta.with_size(self.G.resolution, self.G.resolution)

    @torch.no_grad()
    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, psi: float = 1.0) -> torch.Tensor:
        """``[steps, C, R, R]``: linear interpolation in w between two seeds (constant noise)."""
        z, _ = self._latents([seed_a, seed_b], "const")
        ws = self.G.mapping(z, psi=psi)
        t = torch.linspace(0, 1, steps, device=ws.device).view(-1, 1, 1)
        return self.G.synthesis(ws[:1].lerp(ws[1:], t), noise_mode="const").float().cpu()[:, :self.image_channels]


def generate_to_folder(run, out=None, n: int | None = None, seeds=None, psi: float = 1.0, noise_mode: str = "const",
                       batch: int = 32, grid: bool = False, interpolate: bool = False, format: str | None = None,
                       device: str = "cpu", quiet: bool = False, export: str | Sequence[str] | None = None) -> Path:
    """Write one image per seed into ``out`` (default ``RUN/generated``), in the data set's bit depth.

    A labelled model also writes each image's instances as ``NAME_masks.tif`` (uint16, Cellpose
    convention) beside it, and ``export`` ('cellpose', 'coco', 'yolo', 'yolo-seg', a comma list or
    'all') the formats of :func:`fewgan.data.export.export` (COCO JSON, YOLO folder with dataset.yaml).

    ``format``: 'png' or 'tiff' (default: the data set's). ``grid``: also ``grid.png`` (8-bit, up to
    64 seeds); ``interpolate``: ``interpolation.png``, a strip between the first two seeds. Writes
    ``generation.json`` (which checkpoint, seeds, psi, noise mode). Returns ``out``.
    """
    from fewgan.data.export import LabelledImage, parse_formats, write_cellpose
    from fewgan.data.export import export as export_formats
    from fewgan.data.images import save_grid, write_image

    formats = parse_formats(export)
    model = StyleGAN2Model.load(run, device=resolve_device(device), quiet=True)
    if formats and not model.outputs:
        raise FewganError(f"--export {','.join(formats)}: {run} was trained without labels; train with --labels "
                          "beside|DIR|auto to generate labelled images")
    seed_list = parse_seeds(seeds, n)
    out = Path(out) if out is not None else Path(run) / "generated"
    out.mkdir(parents=True, exist_ok=True)
    meta = model.meta
    fmt = format or ("tiff" if meta.format == "tiff" else "png")
    if fmt not in ("png", "tiff", "tif"):
        raise FewganError(f"--format {fmt!r}: use png or tiff")
    suffix = ".tif" if fmt in ("tiff", "tif") else ".png"
    if not quiet:
        print(f"using the {model.source}, device {model.device}")
    written = 0
    items: list[LabelledImage] = []  # kept only for the set-wide formats (COCO, YOLO)
    set_formats = [f for f in formats if f != "cellpose"]
    for start in range(0, len(seed_list), batch):
        chunk = seed_list[start:start + batch]
        if model.outputs:
            images, labels = model.sample_with_labels(seeds=chunk, psi=psi, noise_mode=noise_mode, batch=batch)
        else:
            images, labels = model.sample_tensor(seeds=chunk, psi=psi, noise_mode=noise_mode, batch=batch), None
        for i, (s, img) in enumerate(zip(chunk, images)):
            path = write_image(out / f"seed{s:06d}{suffix}", img, meta)
            if labels is not None:  # the label channels never pass through the image's metadata
                item = LabelledImage(Path(path), labels[i])
                write_cellpose(item)
                if set_formats:
                    items.append(item)
            written += 1
    exported = export_formats(items, out, set_formats) if items else {}
    if grid:
        g = model.sample_tensor(seeds=seed_list[:64], psi=psi, noise_mode=noise_mode, batch=batch)
        save_grid(out / "grid.png", g)
    if interpolate:
        if len(seed_list) < 2:
            raise FewganError("--interpolate needs at least two seeds")
        save_grid(out / "interpolation.png", model.interpolate(seed_list[0], seed_list[1], psi=psi), nrow=8)
    atomic_write_json(out / "generation.json", {
        "run": str(run), "checkpoint": str(model.path), "source": model.source, "n": written,
        "seeds": [seed_list[0], seed_list[-1]] if len(seed_list) > 2 else seed_list, "psi": psi,
        "noise_mode": noise_mode, "format": fmt, "dtype": meta.dtype, "bit_depth": meta.bit_depth,
        "data_range": list(meta.data_range), "channels": meta.channels,
        **({"labels": {"masks": "NAME_masks.tif", "export": list(formats), "files": exported}}
           if model.outputs else {}),
    })
    if not quiet:
        print(f"wrote {written} images to {out}")
    return out
