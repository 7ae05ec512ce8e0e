"""Differentiable Augmentation (DiffAugment) for data-efficient GAN training.

Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020 (arXiv:2006.10738). The same random, differentiable transformations are applied
to real *and* generated images whenever the discriminator sees them (D step and G step), so
that D cannot memorise the few real images and G still receives useful gradients through the
augmentation. Written from the paper's description; the operations, in policy order:

``color`` (three ops, each with one value per image)
    * brightness: ``y = x + b``, ``b ~ U(-0.5, 0.5)``.
    * saturation (RGB only): ``y = m + s (x - m)`` where ``m`` is the per-pixel mean over the
      channels and ``s ~ U(0, 2)``. On one channel ``m = x``, so the op is the identity (and is
      skipped); the draw is still made so that random streams do not depend on channels.
    * contrast: ``y = m + c (x - m)`` where ``m`` is the mean over all channels and pixels of
      the image and ``c ~ U(0.5, 1.5)``.
``translation``
    integer shift ``(ty, tx)`` per image, each uniform over ``{-S, ..., S}`` with
    ``S = int(ratio * size + 0.5)`` (ratio 1/8 by default: 8 px at 64 px):
    ``y[i, j] = x[i - ty, j - tx]`` where that pixel exists, else 0 (zero padding).
``cutout``
    a square (a rectangle on non-square images) of ``int(ratio * size + 0.5)`` pixels per side
    (ratio 1/2 by default) is set to 0. Its top-left corner ``(top, left)`` is uniform over
    ``-(k // 2) <= top <= H - k // 2 - (k % 2)`` (``k`` the side; same for ``left``), so its
    centre is uniform over the image and it may be clipped by the border, as in the paper's
    cutout. The zeroed fraction of the image is the clipped area / (H W): exactly
    ``ratio^2`` (1/4) when the square lies inside, down to about a quarter of that in a corner.

Values are **not clamped**; on inputs in ``[-1, 1]`` the worst-case ranges after each op are:
brightness ``[-1.5, 1.5]``; saturation (RGB) ``[2 lo - hi, 2 hi - lo]`` of its input, i.e.
``[-4.5, 4.5]`` after brightness; contrast ``[1.5 lo - 0.5 hi, 1.5 hi - 0.5 lo]`` of its input,
i.e. ``[-9, 9]`` for the full RGB colour chain and ``[-3, 3]`` on one channel (typical images
stay far inside). Translation and cutout only move values or write 0, so they keep the range
of their input (and add 0). Zero is mid-grey for images in ``[-1, 1]``.

Every op is differentiable with respect to the images (the random parameters are constants),
so the generator's gradient and R1's gradient pass through it.

With ``label_channels=L`` the last L channels are labels (:mod:`fewgan.data.labels`): they are
translated and cut out with the image, never colour-changed, and what translation uncovers or
cutout removes becomes background (-1) in them rather than 0.
"""

from __future__ import annotations

import torch
from torch import nn

from fewgan.augment._common import (
    as_factor,
    check_images,
    gather_pixels,
    join_labels,
    pixel_grid,
    randint,
    split_labels,
    uniform,
)
from fewgan.errors import FewganError

#: The policy names this module knows, in the order they are applied.
POLICIES = ("color", "translation", "cutout")
#: The paper's policy for data-efficient StyleGAN2 (and the seed document's).
DEFAULT_POLICY = "color,translation,cutout"


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """Turn ``"color,translation,cutout"`` into a tuple of known names (``None``/""/"none": empty).

    Raises :class:`FewganError` for an unknown name, listing the known ones. Duplicates are
    dropped; the order of application is always :data:`POLICIES`' order, as in the paper.
    """
    if policy is None:
        return ()
    names = [p.strip().lower() for p in str(policy).replace("+", ",").split(",") if p.strip()]
    if names in ([], ["none"], ["off"]):
        return ()
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise FewganError(
            f"unknown DiffAugment policy {', '.join(repr(u) for u in unknown)} in {policy!r}: "
            f"use a comma-separated subset of {','.join(POLICIES)}, or 'none'"
        )
    return tuple(p for p in POLICIES if p in names)


class DiffAugment(nn.Module):
    """DiffAugment (Zhao et al., NeurIPS 2020) on ``[N, C, H, W]`` images in ``[-1, 1]``, C = 1 or 3.

    Parameters
    ----------
    policy:
        comma-separated subset of ``color``, ``translation``, ``cutout`` (see the module
        docstring for what each does); ``None`` or ``"none"`` makes the module the identity.
    translation_ratio:
        largest shift as a fraction of the image height / width (1/8).
    cutout_ratio:
        side of the cut-out square as a fraction of the image height / width (1/2).

    ``aug(x)`` draws fresh parameters and applies them; ``aug.sample_params(x, generator)``
    and ``aug.apply(x, params)`` split the two so a draw can be replayed (tests, or DDP ranks
    sharing one draw). The module has no parameters or buffers; output has the shape, dtype
    and device of the input.
    """

    def __init__(
        self,
        policy: str | None = DEFAULT_POLICY,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        label_channels: int = 0,
    ):
        super().__init__()
        if label_channels < 0:
            raise FewganError(f"label_channels must be >= 0, got {label_channels}")
        self.label_channels = int(label_channels)
        if not 0.0 <= translation_ratio < 1.0:
            raise FewganError(
                f"DiffAugment translation ratio {translation_ratio} is outside [0, 1): "
                "use a fraction of the image size such as 0.125"
            )
        if not 0.0 <= cutout_ratio <= 1.0:
            raise FewganError(
                f"DiffAugment cutout ratio {cutout_ratio} is outside [0, 1]: "
                "use a fraction of the image size such as 0.5"
            )
        self.policy = parse_policy(policy)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)

    def extra_repr(self) -> str:
        return (
            f"policy={','.join(self.policy) or 'none'}, "
            f"translation_ratio={self.translation_ratio}, cutout_ratio={self.cutout_ratio}"
        )

    @property
    def enabled(self) -> bool:
        """True when at least one op is on."""
        return bool(self.policy)

    def shift_limits(self, height: int, width: int) -> tuple[int, int]:
        """Largest translation ``(S_y, S_x)`` in pixels for an image of this size."""
        r = self.translation_ratio
        return int(height * r + 0.5), int(width * r + 0.5)

    def cutout_size(self, height: int, width: int) -> tuple[int, int]:
        """Cut-out rectangle ``(k_y, k_x)`` in pixels for an image of this size."""
        r = self.cutout_ratio
        return int(height * r + 0.5), int(width * r + 0.5)

    def sample_params(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw one set of parameters per image of ``x`` (only its shape and device are used).

        Returns a dict of ``[N]`` tensors on ``x.device``: ``brightness``, ``saturation``,
        ``contrast`` (float32) for ``color``; ``shift_y``, ``shift_x`` (int64) for
        ``translation``; ``cutout_top``, ``cutout_left`` (int64) for ``cutout``. Only the
        entries of enabled ops are present. Draws come from ``generator`` when given.
        """
        check_images(x, "DiffAugment")
        n, _, h, w = x.shape
        dev = x.device
        params: dict[str, torch.Tensor] = {}
        if "color" in self.policy:
            params["brightness"] = uniform(n, -0.5, 0.5, generator, dev)
            params["saturation"] = uniform(n, 0.0, 2.0, generator, dev)
            params["contrast"] = uniform(n, 0.5, 1.5, generator, dev)
        if "translation" in self.policy:
            sy, sx = self.shift_limits(h, w)
            params["shift_y"] = randint(n, -sy, sy + 1, generator, dev)
            params["shift_x"] = randint(n, -sx, sx + 1, generator, dev)
        if "cutout" in self.policy:
            ky, kx = self.cutout_size(h, w)
            params["cutout_top"] = randint(n, -(ky // 2), h - ky // 2 + 1 - ky % 2, generator, dev)
            params["cutout_left"] = randint(n, -(kx // 2), w - kx // 2 + 1 - kx % 2, generator, dev)
        return params

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply the enabled ops with the given parameters (from :meth:`sample_params`).

        ``x``: ``[N, C, H, W]`` float. Returns a new tensor of the same shape, dtype, device.
        """
        check_images(x, "DiffAugment")
        image, labels = split_labels(x, self.label_channels)
        if "color" in self.policy:
            image = brightness(image, params["brightness"])
            image = saturation(image, params["saturation"])
            image = contrast(image, params["contrast"])
        # label channels are shifted by +1 for the zero-filling ops, so that filled pixels are -1
        x = join_labels(image, None if labels is None else labels + 1.0)
        if "translation" in self.policy:
            x = translate(x, params["shift_y"], params["shift_x"])
        if "cutout" in self.policy:
            ky, kx = self.cutout_size(x.shape[2], x.shape[3])
            x = cutout(x, params["cutout_top"], params["cutout_left"], ky, kx)
        if labels is not None:
            image, labels = split_labels(x, self.label_channels)
            x = join_labels(image, labels - 1.0)
        return x

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` (``[N, C, H, W]``) with freshly drawn parameters."""
        if not self.policy:
            return x
        return self.apply(x, self.sample_params(x, generator))


def brightness(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``y = x + b`` per image (``b``: ``[N]``)."""
    return x + as_factor(b, x)


def saturation(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``y = m + s (x - m)``, ``m`` the mean over channels; identity on one channel."""
    if x.shape[1] == 1:
        return x
    m = x.mean(dim=1, keepdim=True)
    return m + as_factor(s, x) * (x - m)


def contrast(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``y = m + c (x - m)``, ``m`` the mean of each image over channels and pixels."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return m + as_factor(c, x) * (x - m)


def translate(x: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """``y[n, :, i, j] = x[n, :, i - shift_y[n], j - shift_x[n]]`` where that exists, else 0."""
    n, _, h, w = x.shape
    rows, cols = pixel_grid(n, h, w, x.device)
    src_r = rows - shift_y.view(n, 1, 1)
    src_c = cols - shift_x.view(n, 1, 1)
    inside = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < w)
    y = gather_pixels(x, src_r.clamp(0, h - 1), src_c.clamp(0, w - 1))
    return y * inside.unsqueeze(1).to(x.dtype)


def cutout(
    x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size_y: int, size_x: int
) -> torch.Tensor:
    """Zero rows ``top <= i < top + size_y`` and columns ``left <= j < left + size_x`` (clipped)."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top = top.view(n, 1, 1)
    left = left.view(n, 1, 1)
    cut = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~cut).unsqueeze(1).to(x.dtype)
