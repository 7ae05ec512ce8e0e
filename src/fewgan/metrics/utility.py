"""Downstream utility: does generated labelled data help a segmenter? Train on synthetic, test on real.

The question users of generated training data ask is answered the way the microscopy literature
answers it (train on synthetic, test on real; e.g. the synthetic-data studies surveyed by
Thambawita et al., PLOS ONE 2022, doi:10.1371/journal.pone.0267976): one small, fixed, seeded
segmentation network is trained three times, on the real training data, on the generated data and
on both, and each is tested on held-out real data with labels. The real-only score is the reference.

The network (:class:`UNet`, after Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, at a CPU-friendly size): three resolution levels with
16, 32 and 64 features, each two 3x3 convolutions + BatchNorm + ReLU, 2x2 max-pooling down,
bilinear upsampling + concatenation with the skip connection up, a 1x1 head with two outputs: a
foreground logit and a normalised-distance value (tanh), the label encoding of
:mod:`fewgan.data.labels`. 118,322 parameters for one input channel.

The budget (:class:`UtilityConfig`): ``steps`` Adam steps (lr 1e-3) on batches of ``batch`` random
``crop`` x ``crop`` crops with random flips and 90-degree rotations (applied to image and labels
alike); the loss is binary cross-entropy on the foreground plus the mean squared error of the
distance channel inside the true foreground. With both sources, each batch holds half real and half
generated crops. Instances are recovered from the outputs by :func:`fewgan.data.labels.decode_instances`
(threshold, then watershed) and scored against the held-out labels by
:mod:`fewgan.metrics.instances` (F1 at IoU 0.5 with Hungarian matching, mean matched IoU, relative
count error). Everything is seeded: the same inputs and seed give the same scores on one machine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewgan.config import Config
from fewgan.errors import FewganError

SOURCES = ("real", "synthetic", "both")


@dataclasses.dataclass(frozen=True)
class UtilityConfig(Config):
    """The fixed training budget of the utility segmenter (see the module docstring)."""

    steps: int = 400
    batch: int = 8
    crop: int = 64
    lr: float = 1e-3
    features: int = 16
    seed: int = 0
    iou_threshold: float = 0.5

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1 or self.crop < 8 or self.crop % 4 or self.features < 1:
            raise FewganError("utility: steps, batch and features must be >= 1 and crop a multiple of 4 (>= 8)")
        if not 0 < self.lr < 1 or not 0 < self.iou_threshold < 1:
            raise FewganError("utility: lr and iou_threshold must lie in (0, 1)")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A three-level U-Net: ``[N, C, H, W]`` (H, W multiples of 4) -> ``[N, 2, H, W]`` (logit, distance)."""

    def __init__(self, in_channels: int = 1, features: int = 16):
        super().__init__()
        f = features
        self.down0 = _block(in_channels, f)
        self.down1 = _block(f, 2 * f)
        self.bottom = _block(2 * f, 4 * f)
        self.up1 = _block(4 * f + 2 * f, 2 * f)
        self.up0 = _block(2 * f + f, f)
        self.head = nn.Conv2d(f, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.down0(x)
        h1 = self.down1(F.max_pool2d(h0, 2))
        h2 = self.bottom(F.max_pool2d(h1, 2))
        u1 = self.up1(torch.cat([F.interpolate(h2, size=h1.shape[2:], mode="bilinear", align_corners=False), h1], 1))
        u0 = self.up0(torch.cat([F.interpolate(u1, size=h0.shape[2:], mode="bilinear", align_corners=False), h0], 1))
        out = self.head(u0)
        return torch.cat([out[:, :1], torch.tanh(out[:, 1:])], 1)


Pairs = Sequence[tuple[torch.Tensor, np.ndarray]]  # ([C, H, W] image in [-1, 1], [H, W] instances)


def _encoded(pairs: Pairs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from fewgan.data.labels import encode_instances

    out = []
    for image, labels in pairs:
        image = torch.as_tensor(image, dtype=torch.float32)
        if image.ndim != 3 or tuple(image.shape[1:]) != tuple(np.shape(labels)):
            raise FewganError(f"utility: an image of shape {tuple(image.shape)} has labels of shape {np.shape(labels)}")
        out.append((image, torch.from_numpy(encode_instances(np.asarray(labels)))))
    return out


def _crop_batch(items, n: int, crop: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(n):
        image, target = items[int(torch.randint(len(items), (1,), generator=gen))]
        _, h, w = image.shape
        ch, cw = min(crop, h - h % 4), min(crop, w - w % 4)
        top = int(torch.randint(h - ch + 1, (1,), generator=gen))
        left = int(torch.randint(w - cw + 1, (1,), generator=gen))
        x = image[:, top:top + ch, left:left + cw]
        y = target[:, top:top + ch, left:left + cw]
        k = int(torch.randint(4, (1,), generator=gen)) if ch == cw else 0
        flip = bool(torch.randint(2, (1,), generator=gen))
        x, y = torch.rot90(x, k, (1, 2)), torch.rot90(y, k, (1, 2))
        if flip:
            x, y = x.flip(2), y.flip(2)
        xs.append(x)
        ys.append(y)
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:  # images smaller than the crop: bring the batch to the smallest common size
        h = min(s[1] for s in shapes)
        w = min(s[2] for s in shapes)
        xs, ys = [x[:, :h, :w] for x in xs], [y[:, :h, :w] for y in ys]
    return torch.stack(xs), torch.stack(ys)


def _loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    fg = (target[:, :1] > 0).float()
    bce = F.binary_cross_entropy_with_logits(out[:, :1], fg)
    mse = ((out[:, 1:] - target[:, 1:]) ** 2 * fg).sum() / fg.sum().clamp_min(1.0)
    return bce + mse


def train_segmenter(sources: Sequence[Pairs], config: UtilityConfig, channels: int,
                    progress: Callable[[int], None] | None = None) -> UNet:
    """Train the fixed U-Net on one source or several (each batch split evenly between them)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    net = UNet(channels, config.features)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    encoded = [_encoded(pairs) for pairs in sources]
    if any(not items for items in encoded):
        raise FewganError("utility: a training source is empty")
    net.train()
    for step in range(config.steps):
        parts = [_crop_batch(items, max(1, config.batch // len(encoded)), config.crop, gen) for items in encoded]
        h = min(p[0].shape[2] for p in parts)
        w = min(p[0].shape[3] for p in parts)
        x = torch.cat([p[0][..., :h, :w] for p in parts])
        y = torch.cat([p[1][..., :h, :w] for p in parts])
        opt.zero_grad(set_to_none=True)
        loss = _loss(net(x), y)
        if not torch.isfinite(loss):
            raise FewganError(f"utility: the segmenter's loss became {float(loss)} at step {step}")
        loss.backward()
        opt.step()
        if progress is not None:
            progress(1)
    return net.eval()


@torch.no_grad()
def predict_instances(net: UNet, image: torch.Tensor) -> np.ndarray:
    """Instances ``[H, W]`` of one ``[C, H, W]`` image (padded to a multiple of 4 by reflection)."""
    from fewgan.data.labels import decode_instances

    _, h, w = image.shape
    ph, pw = (-h) % 4, (-w) % 4
    x = F.pad(image[None].float(), (0, pw, 0, ph), mode="reflect" if min(h, w) > 4 else "replicate")
    out = net(x)[0, :, :h, :w]
    channels = torch.stack([torch.where(out[0] > 0, 1.0, -1.0), out[1]]).numpy()
    return decode_instances(channels)


def utility(real: Pairs, synthetic: Pairs, test: Pairs, config: UtilityConfig | None = None,
            sources: Sequence[str] = SOURCES, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train on real, on synthetic and on both; test each on held-out real data (module docstring).

    Parameters
    ----------
    real, synthetic, test : sequences of ``([C, H, W] image in [-1, 1], [H, W] instance labels)``.
    sources : which of ``'real'``, ``'synthetic'``, ``'both'`` to train.

    Returns
    -------
    dict : per source the pooled scores over the test images (``f1``, ``mean_matched_iou``,
    ``relative_count_error``, ``precision``, ``recall``, counts, ``seconds``), the ``config`` and the
    architecture's ``parameters``.
    """
    from fewgan.metrics.instances import match_counts, scores

    config = config or UtilityConfig()
    if not test:
        raise FewganError("utility: no held-out real images with labels to test on")
    channels = int(torch.as_tensor(test[0][0]).shape[0])
    plan = {"real": [real], "synthetic": [synthetic], "both": [real, synthetic]}
    result: dict[str, Any] = {"config": config.to_dict(),
                              "parameters": sum(p.numel() for p in UNet(channels, config.features).parameters())}
    for source in sources:
        if source not in plan:
            raise FewganError(f"utility: unknown source {source!r} (choose from {', '.join(SOURCES)})")
        t0 = time.perf_counter()
        net = train_segmenter(plan[source], config, channels, progress)
        counts = [match_counts(predict_instances(net, torch.as_tensor(image)), np.asarray(labels), config.iou_threshold)
                  for image, labels in test]
        entry = scores(counts)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        result[source] = entry
    return result
