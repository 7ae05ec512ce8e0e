"""Options of data-efficient StyleGAN2, written once (defaults = the seed document's numbers).

Where seed ``003`` leaves a value open, it comes from Karras et al., "Analyzing and
Improving the Image Quality of StyleGAN" (CVPR 2020) and NVlabs' code: Adam betas
(0, 0.99), mapping lr multiplier 0.01, style mixing 0.9, path-length decay 0.01 on half
the batch, lazy regularisation with Adam's lr and betas raised to ``k / (k + 1)``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from fewgan.config import Config
from fewgan.errors import FewganError

METRICS = ("auto", "fid", "kid", "swd")
CLASSICAL = ("none", "flips", "flips,rot90", "seed")
PRESETS = ("default", "seed")
LABEL_HEADS = ("tanh", "linear")


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config(Config):
    """Every training option of ``fewgan stylegan2 train`` (one field, one ``--option``)."""

    # data
    resolution: int = 64            # square side, a power of two in [8, 1024]
    channels: str = "auto"          # 'auto', '1' or '3'
    fit: str = "crop"               # 'crop', 'resize' or 'pad' to the square resolution
    recursive: bool = False         # look for images in sub-folders too
    labels: str = "none"            # 'none', 'beside' (NAME_masks.tif|png), 'auto' (particle analysis) or a DIR
    # labelled runs only (no effect without labels): see fewgan.stylegan2.nets.LabelledCritic
    label_head: str = "tanh"        # G's label channels: 'tanh' (bounded like the encoding) or 'linear'
    image_critic: bool = True       # a second critic on the image channels alone, beside the image + label one
    # networks (seed: mapping 128 -> 256, 4 layers; channels min(cbase / res, cmax))
    z_dim: int = 128
    w_dim: int = 256
    mapping_layers: int = 4
    mapping_lr_mult: float = 0.01
    cbase: Optional[int] = None     # None: 32 x resolution (2048 at 64 px) -> 32 channels at the finest layer
    cmax: int = 256
    mbstd_group: int = 4
    # optimisation (seed: batch 16, lr 0.001; Adam betas from the paper)
    batch: int = 16
    lr_g: float = 0.001
    lr_d: float = 0.001
    lr_rampdown: float = 0.0        # fraction of the budget, at its end, over which both lrs fall to 0 (0: constant)
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 5.0
    pl_weight: float = 1.0
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    g_reg_every: int = 8
    d_reg_every: int = 8
    style_mixing: float = 0.9
    ema_decay: float = 0.999
    # budget: epochs (seed 3000) unless kimg is given
    epochs: int = 3000
    kimg: Optional[float] = None
    # augmentation
    diffaugment: str = "color,translation,cutout"   # '' or 'none' switches it off
    ada: bool = False
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    ada_interval: int = 4
    classical: str = "flips"        # none | flips | flips,rot90 | seed (the seed's full list; leaks)
    # selection metric and checkpoints
    metric: str = "auto"            # auto (FID with Inception weights, else SWD) | fid | kid | swd
    eval_every: int = 10            # epochs between evaluations (0: never)
    eval_images: int = 500
    eval_batch: int = 32
    feature_batch: int = 50
    checkpoint_every: int = 10      # epochs between periodic checkpoints (0: only at the end)
    checkpoint_every_steps: int = 0  # also every N steps (0: off)
    sample_every: int = 50          # epochs between sample grids (0: never)
    log_every: int = 20             # steps between log lines
    # performance (GPU)
    channels_last: bool = False
    amp: bool = False               # bfloat16 autocast for the network forward passes (GPU)
    # randomness
    seed: int = 0                   # every random draw of the run (latents, batches, augmentation)

    #: settings of the run, not of the model: a resume may change them (the budget too: a run can be
    #: extended), see fewgan.config.Config.resume_with
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = (
        "epochs", "kimg", "eval_every", "eval_batch", "feature_batch", "checkpoint_every", "checkpoint_every_steps",
        "sample_every", "log_every", "channels_last")
    #: runs made before these fields existed trained a linear label head and one critic
    ADDED_FIELDS: ClassVar[dict] = {"label_head": "linear", "image_critic": False}

    def __post_init__(self):
        r = self.resolution
        if not isinstance(r, int) or r < 8 or r > 1024 or r & (r - 1):
            raise FewganError(
                f"--resolution {r}: must be a power of two between 8 and 1024 (e.g. 32, 64, 128); "
                "images of any size are cropped, padded or resized to it (--fit)")
        if self.channels not in ("auto", "1", "3"):
            raise FewganError(f"--channels {self.channels!r}: use auto, 1 or 3")
        if not isinstance(self.labels, str) or not self.labels.strip():
            raise FewganError("--labels: use none, beside, auto or a folder of label images")
        if not isinstance(self.image_critic, bool):
            raise FewganError(f"--image-critic {self.image_critic!r}: use true or false")
        if self.label_head not in LABEL_HEADS:
            raise FewganError(f"--label-head {self.label_head!r}: use {' or '.join(LABEL_HEADS)}")
        if self.fit not in ("crop", "resize", "pad"):
            raise FewganError(f"--fit {self.fit!r}: use crop, resize or pad")
        if self.batch < 1:
            raise FewganError(f"--batch {self.batch}: must be at least 1")
        if self.metric not in METRICS:
            raise FewganError(f"--metric {self.metric!r}: use one of {', '.join(METRICS)}")
        if self.classical not in CLASSICAL:
            raise FewganError(f"--classical {self.classical!r}: use one of {', '.join(CLASSICAL)}")
        if self.kimg is not None and self.kimg <= 0:
            raise FewganError(f"--kimg {self.kimg}: must be positive")
        if self.kimg is None and self.epochs < 1:
            raise FewganError(f"--epochs {self.epochs}: must be at least 1")
        if self.g_reg_every < 1 or self.d_reg_every < 1:
            raise FewganError("--g-reg-every / --d-reg-every: must be at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise FewganError(f"--ema-decay {self.ema_decay}: must be in [0, 1)")
        if self.cbase is not None and self.cbase < 1:
            raise FewganError(f"--cbase {self.cbase}: must be positive")
        if self.pl_batch_shrink < 1:
            raise FewganError("--pl-batch-shrink: must be at least 1")
        for name in ("lr_g", "lr_d", "mapping_lr_mult", "ada_kimg"):
            if not getattr(self, name) > 0:
                raise FewganError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be positive")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise FewganError(f"--{name} {getattr(self, name)}: must be in [0, 1)")
        if not 0 <= self.lr_rampdown < 1:
            raise FewganError(f"--lr-rampdown {self.lr_rampdown}: the fraction of the budget over which the learning "
                              "rates fall to 0 must be in [0, 1) (e.g. 0.3; 0: constant)")
        for name in ("pl_decay", "style_mixing", "ada_target"):
            if not 0 <= getattr(self, name) <= 1:
                raise FewganError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be in [0, 1]")
        for name in ("r1_gamma", "pl_weight", "eval_every", "checkpoint_every", "checkpoint_every_steps",
                     "sample_every"):
            if getattr(self, name) < 0:
                raise FewganError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 0")
        for name in ("z_dim", "w_dim", "mapping_layers", "cmax", "mbstd_group", "ada_interval", "eval_images",
                     "eval_batch", "feature_batch", "log_every"):
            if getattr(self, name) < 1:
                raise FewganError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")

    @property
    def channel_base(self) -> int:
        """``cbase``, or ``32 * resolution`` when not given (the seed's 2048 at 64 px)."""
        return self.cbase if self.cbase is not None else 32 * self.resolution

    @property
    def label_channels(self) -> int:
        """Label channels after the image channels: 2 (:data:`fewgan.data.labels.LABEL_CHANNELS`) when labelled."""
        from fewgan.data.labels import LABEL_CHANNELS

        return 0 if self.labels == "none" else LABEL_CHANNELS

    @property
    def diffaugment_on(self) -> bool:
        return self.diffaugment.strip().lower() not in ("", "none", "off")


def preset_overrides(preset: str) -> dict:
    """Fields a preset changes. 'seed' = the seed document exactly, classical augmentation included."""
    if preset not in PRESETS:
        raise FewganError(f"--preset {preset!r}: use one of {', '.join(PRESETS)}")
    return {"classical": "seed"} if preset == "seed" else {}


def channels_at(resolution: int, cbase: int, cmax: int) -> int:
    """Feature maps at one resolution: ``min(cbase // resolution, cmax)`` (2048 / 256 at 64 px:
    4:256, 8:256, 16:128, 32:64, 64:32)."""
    return max(1, min(cbase // resolution, cmax))
