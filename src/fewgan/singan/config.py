"""SinGAN options: one frozen dataclass, defaults = the seed's logged run.

The seed run (kligvasser/SinGAN ``generation/main.py`` with ``g_multivanilla`` /
``d_vanilla``) used min size 16, max size 200, lr 4e-4, 2000 steps per scale, batch size 1,
one critic step, noise weight 0.1; everything else is the public code's default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from fewgan.config import Config
from fewgan.errors import FewganError


@dataclasses.dataclass(frozen=True)
class SinGANConfig(Config):
    """Every option of a SinGAN run (see ``fewgan singan train --help``).

    Attributes
    ----------
    min_size, max_size : short side of the coarsest scale / long side of the finest, px.
    scale_factor_init : ratio between scales the pyramid rule starts from (0.75).
    noise_weight : amp(sk) = noise_weight * RMSE(upsampled reconstruction of s(k-1), real sk).
    steps : training steps per scale; a scale runs steps 0..steps inclusive (steps + 1 updates).
    lr, betas : Adam for both networks.
    lr_step_size, lr_gamma : StepLR; lr at step t is lr * gamma ** ((t - 1) // step_size)
        (the public code steps its scheduler after each step; at 2000 steps it never fires).
    lr_decay_fraction : if set, overrides ``lr_step_size`` with ``round(fraction * steps)``.
    batch_size : B noise draws per step against the real image repeated B times.
    critic_steps : the generator is updated on steps divisible by this (the public ``num_critic``).
    gp_weight, recon_weight, adv_weight : D = D_r + D_f + gp_weight * D_gp;
        G = recon_weight * G_recon + adv_weight * G_adv.
    features : feature count of the first scale; doubles every ``features_every`` scales up to
        ``max_features``.
    num_blocks, kernel_size : conv layers per network (incl. the last one) and their kernel.
    channels : 'auto' (a gray image is trained as three identical channels and sampled back as
        their mean, as the seed ran it: :data:`fewgan.singan.nets.GRAY_TRAINING_CHANNELS`; with
        labels it stays one channel), 1 (one channel) or 3 (RGB samples).
    data_range : (lo, hi) data values mapped to [-1, 1] (default: the dtype's range, or the
        value range of a float image); e.g. (0, 4095) for a 12-bit camera stored in uint16.
    page : page of a multi-page TIFF.
    labels : train on the image and its instance labels jointly (SinGAN-Seg: Thambawita et al., PLOS ONE
        2022, doi:10.1371/journal.pone.0267976): a label image or binary mask file of the image's height and
        width, 'beside' (the Cellpose ``NAME_masks.tif|png`` next to the image) or 'auto' (instances from
        fewgan's particle analysis of the image, its parameters recorded in ``config.json``). The labels
        become :data:`fewgan.data.labels.LABEL_CHANNELS` extra channels (foreground, normalised distance;
        :func:`fewgan.data.labels.encode_instances`) of every generator and critic; None: no labels.
    native : keep the input's pixel size (the finest scale is the image itself, ``max_size`` is not
        applied); the pyramid rule is the seed's with ``max_size`` = the image's long side.
    crop : scales larger than this (on either side) train on random aligned ``crop x crop`` crops:
        the real image, the previous scale's upsampled image from fresh noise and from the fixed
        reconstruction noise, cut at the same place, each computed with the margin the generators
        need (:meth:`fewgan.singan.pyramid.TrainedScales.coarse_to_fine_window`); their whole-image
        passes (noise amplitude, reconstruction, samples) run in ``crop`` px tiles
        (:meth:`~fewgan.singan.pyramid.TrainedScales.tiled`). 0: never crop. The default, 256 px, is
        just above the seed's finest scale (200 px): a step at a cropped scale costs what the seed's
        finest step costs (~0.3 GFLOP per 128-feature conv layer), the critic still sees ~60,000 of its
        11 px patches per step, and the widest activation is 128 x 266 x 266 floats (36 MB), so
        memory no longer grows with the image. Scales of at most ``crop`` px see the whole image:
        with ``max_size`` <= 256 (the default 200) nothing is cropped.
    log_every : seed-format loss line and metrics record every N steps.
    checkpoint_every : resume checkpoint every N steps within a scale (and at every scale end).
    sample_count : random samples in each scale's sample grid.
    stop_after : stop (as if killed) after this many steps in total; for tests of resume.
    concurrent : on a CPU with 2+ threads, run the two independent halves of each update
        (critic: real/fake terms | gradient penalty; generator: reconstruction | adversarial
        term) on two single-threaded workers and add their gradients, instead of one
        multi-threaded pass. Same losses and gradients (summed in a fixed order, so runs stay
        deterministic); only floating-point rounding differs from the serial pass.
    critic_norm : 'batch' (BatchNorm in the critic, as ``d_vanilla``; the seed's training) or 'none' (no
        normalisation, He-initialised, as WGAN-GP prescribes: the critic then sees the samples'
        brightness and contrast, which a batch-of-one BatchNorm removes); see
        :data:`fewgan.singan.nets.CRITIC_NORMS` and bench/README.md (issue 17).
    conv : CPU kernels of the wide 3x3 convolutions: 'auto' (Winograd through NNPACK where it
        was measured faster: 128 features from ~50 x 50 px, 64 features from ~80 x 80 px, on
        AVX2 CPUs), 'winograd' (wherever NNPACK can) or 'direct' (PyTorch's own). The same
        convolutions up to float32 rounding; see :mod:`fewgan.ops.winograd`.
    """

    min_size: int = 16
    max_size: int = 200
    scale_factor_init: float = 0.75
    noise_weight: float = 0.1
    steps: int = 2000
    lr: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.9)
    lr_step_size: int = 2000
    lr_gamma: float = 0.1
    lr_decay_fraction: float | None = None
    batch_size: int = 1
    critic_steps: int = 1
    gp_weight: float = 0.1
    recon_weight: float = 10.0
    adv_weight: float = 1.0
    features: int = 32
    max_features: int = 128
    features_every: int = 4
    num_blocks: int = 5
    kernel_size: int = 3
    channels: str = "auto"
    data_range: tuple[float, float] | None = None
    page: int | None = None
    labels: str | None = None
    native: bool = False
    crop: int = 256
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 100
    sample_count: int = 4
    stop_after: int | None = None
    concurrent: bool = False
    conv: str = "auto"
    critic_norm: str = "batch"

    #: fields added after runs were stored, with the value those runs trained with (Config.from_stored)
    ADDED_FIELDS: ClassVar[dict[str, Any]] = {"critic_norm": "batch"}

    #: settings of the run, not of the model: a resume may change them (fewgan.config.Config.resume_with)
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("log_every", "checkpoint_every", "stop_after", "concurrent", "conv")

    def __post_init__(self) -> None:
        """Raise :class:`FewganError` for option values no run can use (so no such config exists)."""
        def bad(msg: str):
            raise FewganError(msg)

        if self.min_size < 1 or self.max_size < 1:
            bad(f"--min-size and --max-size must be positive (got {self.min_size}, {self.max_size})")
        if self.min_size > self.max_size:
            bad(f"--min-size {self.min_size} is larger than --max-size {self.max_size}; "
                "choose a min size at most the max size")
        if self.min_size < self.receptive_field:
            bad(f"--min-size {self.min_size} is below the discriminator's receptive field "
                f"({self.receptive_field} px); use --min-size {self.receptive_field} or more")
        if not 0 < self.scale_factor_init < 1:
            bad(f"--scale-factor-init must be in (0, 1), got {self.scale_factor_init}")
        if self.steps < 0:
            bad(f"--steps must be >= 0, got {self.steps}")
        if self.batch_size < 1 or self.critic_steps < 1:
            bad("--batch-size and --critic-steps must be at least 1")
        if self.lr <= 0:
            bad(f"--lr must be positive, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            bad(f"--betas takes two numbers in [0, 1), got {list(self.betas)}")
        if not 0 < self.lr_gamma <= 1:
            bad(f"--lr-gamma must be in (0, 1], got {self.lr_gamma}")
        for name in ("noise_weight", "gp_weight", "recon_weight", "adv_weight"):
            if getattr(self, name) < 0:
                bad(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.stop_after is not None and self.stop_after < 1:
            bad(f"--stop-after must be at least 1, got {self.stop_after}")
        if self.lr_step_size < 1:
            bad(f"--lr-step-size must be at least 1, got {self.lr_step_size}")
        if self.lr_decay_fraction is not None and not 0 < self.lr_decay_fraction <= 1:
            bad(f"--lr-decay-fraction must be in (0, 1], got {self.lr_decay_fraction}")
        if self.features < 1 or self.max_features < self.features or self.features_every < 1:
            bad("--features must be >= 1, --max-features >= --features, --features-every >= 1")
        if self.num_blocks < 2 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            bad("--num-blocks must be >= 2 and --kernel-size odd")
        if self.data_range is not None and (len(self.data_range) != 2 or not self.data_range[1] > self.data_range[0]):
            bad(f"--data-range takes two numbers LO HI with HI > LO, got {list(self.data_range)}")
        if self.page is not None and self.page < 0:
            bad(f"--page must be >= 0, got {self.page}")
        if str(self.channels) not in ("auto", "1", "3"):
            bad(f"--channels must be auto, 1 or 3, got {self.channels!r}")
        if self.labels is not None and not str(self.labels).strip():
            bad("--labels takes a label file, 'beside' or 'auto'")
        if self.conv not in ("auto", "winograd", "direct"):
            bad(f"--conv must be auto, winograd or direct, got {self.conv!r}")
        from fewgan.singan.nets import CRITIC_NORMS

        if self.critic_norm not in CRITIC_NORMS:
            bad(f"--critic-norm must be one of {', '.join(CRITIC_NORMS)}, got {self.critic_norm!r}")
        if self.crop < 0 or (self.crop != 0 and self.crop < self.receptive_field):
            bad(f"--crop {self.crop} is below the discriminator's receptive field ({self.receptive_field} px); "
                f"use --crop {self.receptive_field} or more (or 0 for whole images)")
        if self.log_every < 1 or self.checkpoint_every < 1 or self.sample_count < 1:
            bad("--log-every, --checkpoint-every and --sample-count must be at least 1")

    @property
    def receptive_field(self) -> int:
        """Receptive field of the discriminator: ``num_blocks * (kernel_size - 1) + 1`` px (11)."""
        return self.num_blocks * (self.kernel_size - 1) + 1

    def features_at(self, scale: int) -> int:
        """Feature count of scale ``scale``: doubles every ``features_every`` scales, capped."""
        return min(self.features * 2 ** (scale // self.features_every), self.max_features)

    def step_size(self) -> int:
        """The StepLR step size in effect (``lr_decay_fraction`` wins when set)."""
        if self.lr_decay_fraction is not None:
            return max(1, int(round(self.lr_decay_fraction * self.steps)))
        return self.lr_step_size

    def lr_at(self, step: int) -> float:
        """Learning rate used by training step ``step`` (0-based), as StepLR stepped after each step."""
        return self.lr * self.lr_gamma ** (max(step - 1, 0) // self.step_size())

    @property
    def label_channels(self) -> int:
        """Label channels after the image channels: :data:`fewgan.data.labels.LABEL_CHANNELS` with labels, else 0."""
        from fewgan.data.labels import LABEL_CHANNELS

        return LABEL_CHANNELS if self.labels is not None else 0
