"""Adaptive discriminator augmentation (ADA).

Karras, Aittala, Hellsten, Laine, Lehtinen and Aila, "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020 (arXiv:2006.06676). Every image the discriminator sees (real or
generated, D step and G step) passes through a fixed pipeline of transformations; each
transformation is applied to each image independently with probability ``p``. Because every
transformation is invertible in distribution and skipped with probability ``1 - p > 0``, the
generator still learns the un-augmented distribution ("non-leaking") as long as ``p`` stays
well below 1 (the paper finds leaks beyond about 0.8 for some groups). ``p`` is adjusted during
training from an overfitting heuristic instead of being tuned by hand:

    r_t = E[sign(D(real))]  over the last ``interval`` D steps,
    p  <- clamp(p + sign(r_t - target) * N_images / (adjust_kimg * 1000), 0, max_p)

with ``N_images`` the number of real images in that interval (batch x interval), target 0.6 and
``adjust_kimg`` 500 (``p`` can go from 0 to 1 in 500k images).

The pipeline (the paper's "bgc": blit, geometric, colour), in order, with the paper's
distributions; ``[N]`` parameters are drawn per image and set to the identity where the image
does not get that transformation:

Pixel blitting (exact: done by integer indexing, no resampling)
    * x-flip: ``k ~ U{0, 1}``, mirror columns when 1.
    * 90-degree rotation: ``k ~ U{0, 1, 2, 3}`` quarter turns, as ``torch.rot90(x, k, (2, 3))``
      (square images only).
    * integer translation: ``(ty, tx)`` uniform over ``{-S, ..., S}``, ``S = round(0.125 * size)``,
      ``y[i, j] = z[i - ty, j - tx]`` with the image mirrored about its edge pixels (reflect
      padding, the edge pixel not repeated).
    The three are composed as ``translate(rot90(xflip(x)))``.
Geometric (one bilinear ``grid_sample`` for all of them, with reflection padding: the image
mirrored about its border, so the edge pixel repeats; nothing is ever filled with a constant)
    * isotropic scaling by ``2^(0.2 z)``, ``z ~ N(0, 1)``;
    * rotation by ``U(-pi, pi)``, applied with probability ``1 - sqrt(1 - p)`` before and again
      after the anisotropic scaling (so that some rotation happens with probability ~``p``);
    * anisotropic scaling by ``(2^(0.2 z), 2^(-0.2 z))``;
    * fractional translation by ``0.125 * size * z`` per axis, ``z ~ N(0, 1)``.
    Transforms compose in pixel units about the image centre, so non-square images rotate
    correctly. **Low-pass** (a documented simpler choice than the paper's wavelet up/down
    sampling): the output is computed on a ``supersample``-times finer grid (2 by default) and
    box-averaged back, which removes most aliasing when an image is shrunk by up to 2x and
    blurs an identity-like warp by a kernel of ``[1/8, 3/4, 1/8]`` per axis at most. Images that
    get no geometric transformation are passed through exactly.
Colour (one affine map per image in colour space)
    * brightness: add ``0.2 z``;
    * contrast: multiply by ``2^(0.5 z)`` (about 0, mid-grey in ``[-1, 1]``);
    * luma flip (RGB only): reflect colours through the plane orthogonal to the grey axis
      ``(1, 1, 1) / sqrt(3)`` when ``k ~ U{0, 1}`` is 1;
    * hue rotation (RGB only): rotate colours about the grey axis by ``U(-pi, pi)``;
    * saturation (RGB only): scale the component orthogonal to the grey axis by ``2^z``.
    On one channel luma flip, hue and saturation do nothing (they act only off the grey axis).
    Values are not clamped; brightness and contrast can leave ``[-1, 1]``, as in the paper.

Not implemented from the paper's full pipeline: image-space filtering and corruptions (noise,
cutout). Every operation is differentiable with respect to the images (the random parameters
are constants), so the generator's gradient and R1 pass through the augmentation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fewgan.augment._common import (
    as_factor,
    check_images,
    gather_pixels,
    join_labels,
    normal,
    pixel_grid,
    randint,
    split_labels,
    uniform,
)
from fewgan.errors import FewganError

#: Transformations in the order they are applied; each can be switched off by name.
TRANSFORMS = (
    "xflip",
    "rotate90",
    "xint",
    "scale",
    "rotate",
    "aniso",
    "xfrac",
    "brightness",
    "contrast",
    "lumaflip",
    "hue",
    "saturation",
)
#: Those that act only on RGB images (no-ops on one channel).
RGB_ONLY = ("lumaflip", "hue", "saturation")
GEOMETRIC = ("scale", "rotate", "aniso", "xfrac")

_GREY_AXIS = (1.0 / math.sqrt(3.0),) * 3


class ADA(nn.Module):
    """Adaptive discriminator augmentation (Karras et al., NeurIPS 2020) with its ``p`` controller.

    Parameters
    ----------
    channels:
        1 or 3; on 1 channel the RGB-only transformations are off.
    p:
        initial augmentation probability (a buffer, saved in ``state_dict``).
    target:
        target of the overfitting heuristic ``r_t = E[sign(D(real))]`` (0.6).
    adjust_kimg:
        thousands of images for ``p`` to move by 1 (500).
    interval:
        the trainer's cadence in D steps between :meth:`update` calls (4); stored for it, the
        module itself does not count steps.
    max_p:
        upper clamp of ``p`` (0.99), so some images always pass un-augmented.
    disable:
        names from :data:`TRANSFORMS` to switch off (e.g. ``("rotate90",)`` for data with a
        meaningful orientation).
    translate_max, scale_std, rotate_max, aniso_std, xfrac_std, brightness_std, contrast_std,
    hue_max, saturation_std:
        the paper's strengths (0.125, 0.2, 1 (x pi), 0.2, 0.125, 0.2, 0.5, 1 (x pi), 1).
    supersample:
        factor of the low-pass supersampling of geometric warps (2; 1 turns it off).

    Use: ``y = ada(x)`` on ``[N, C, H, W]`` images (any range; ``[-1, 1]`` in fewgan), same
    shape, dtype and device; ``ada.accumulate(real_logits)`` after each D step on reals;
    ``ada.update()`` every ``interval`` steps (after all-reducing :attr:`stat_sum` and
    :attr:`stat_count` across ranks under DDP).
    """

    def __init__(
        self,
        channels: int = 3,
        p: float = 0.0,
        target: float = 0.6,
        adjust_kimg: float = 500.0,
        interval: int = 4,
        max_p: float = 0.99,
        disable: tuple[str, ...] | list[str] = (),
        translate_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1.0,
        saturation_std: float = 1.0,
        supersample: int = 2,
        label_channels: int = 0,
    ):
        super().__init__()
        if label_channels < 0:
            raise FewganError(f"label_channels must be >= 0, got {label_channels}")
        self.label_channels = int(label_channels)
        if channels not in (1, 3):
            raise FewganError(f"ADA works on 1 or 3 channels, got {channels}: convert the images")
        unknown = [d for d in disable if d not in TRANSFORMS]
        if unknown:
            raise FewganError(
                f"unknown ADA transformation(s) {', '.join(unknown)}: choose from {', '.join(TRANSFORMS)}"
            )
        if not 0.0 < max_p <= 1.0 or not 0.0 <= p <= 1.0:
            raise FewganError(f"ADA p {p} and max_p {max_p} must lie in [0, 1] (max_p > 0)")
        if adjust_kimg <= 0 or interval < 1 or supersample < 1:
            raise FewganError(
                f"ADA adjust_kimg ({adjust_kimg}) must be > 0, interval ({interval}) and "
                f"supersample ({supersample}) >= 1"
            )
        self.channels = int(channels)
        self.target = float(target)
        self.adjust_kimg = float(adjust_kimg)
        self.interval = int(interval)
        self.max_p = float(max_p)
        self.supersample = int(supersample)
        self.enabled_transforms = tuple(
            t for t in TRANSFORMS if t not in disable and not (channels == 1 and t in RGB_ONLY)
        )
        self.translate_max = float(translate_max)
        self.scale_std = float(scale_std)
        self.rotate_max = float(rotate_max)
        self.aniso_std = float(aniso_std)
        self.xfrac_std = float(xfrac_std)
        self.brightness_std = float(brightness_std)
        self.contrast_std = float(contrast_std)
        self.hue_max = float(hue_max)
        self.saturation_std = float(saturation_std)
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        # Float64 so that sums of +-1 and counts stay exact for any realistic interval.
        self.register_buffer("stat_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("stat_count", torch.zeros((), dtype=torch.float64))
        self.last_rt: float | None = None

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, p={float(self.p):.4f}, target={self.target}, "
            f"adjust_kimg={self.adjust_kimg}, transforms={','.join(self.enabled_transforms)}"
        )

    # ------------------------------------------------------------------ the p controller
    @torch.no_grad()
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add ``sum(sign(real_logits))`` and the number of logits to the running statistics."""
        logits = real_logits.detach().reshape(-1)
        self.stat_sum += torch.sign(logits).sum().to(self.stat_sum)
        self.stat_count += logits.numel()

    @torch.no_grad()
    def update(self, num_images: int | float | None = None) -> float | None:
        """Adjust ``p`` from the statistics gathered since the last call, then reset them.

        ``num_images``: images the discriminator saw in the interval (batch x interval); by
        default :attr:`stat_count`, the number of real logits accumulated (the same thing when
        every D step accumulates its whole real batch, after the DDP all-reduce the global
        count). Returns ``r_t`` (None, and ``p`` unchanged, when nothing was accumulated).
        """
        count = float(self.stat_count)
        if count <= 0:
            return None
        rt = float(self.stat_sum) / count
        n = count if num_images is None else float(num_images)
        step = math.copysign(1.0, rt - self.target) if rt != self.target else 0.0
        new_p = min(max(float(self.p) + step * n / (self.adjust_kimg * 1000.0), 0.0), self.max_p)
        self.p.fill_(new_p)
        self.stat_sum.zero_()
        self.stat_count.zero_()
        self.last_rt = rt
        return rt

    # ------------------------------------------------------------------ augmentation
    def sample_params(
        self, x: torch.Tensor, generator: torch.Generator | None = None, p: float | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw every transformation's parameters for each image of ``x`` at probability ``p``.

        ``p`` defaults to the buffer. Returns ``[N]`` tensors on ``x.device``, identity values
        where an image does not get a transformation: ``xflip``, ``rotate90``, ``shift_y``,
        ``shift_x`` (int64); ``scale``, ``rotate_pre``, ``aniso``, ``rotate_post`` (radians),
        ``xfrac_y``, ``xfrac_x`` (fractions of the image height / width), ``brightness``,
        ``contrast`` (float32); for RGB also ``lumaflip`` (int64), ``hue`` (radians),
        ``saturation`` (float32). Every draw is made even for disabled transformations, so
        the random stream does not depend on which are on.
        """
        check_images(x, "ADA")
        n, _, h, w = x.shape
        dev = x.device
        p = float(self.p) if p is None else float(p)
        p_rot = 1.0 - math.sqrt(max(1.0 - p, 0.0))
        on = self.enabled_transforms

        def gate(name: str, value: torch.Tensor, identity: float, prob: float = p) -> torch.Tensor:
            hit = uniform(n, 0.0, 1.0, generator, dev) < prob
            if name not in on:
                hit = torch.zeros_like(hit)
            return torch.where(hit, value, torch.full_like(value, identity))

        sy, sx = int(round(self.translate_max * h)), int(round(self.translate_max * w))
        two = math.log(2.0)
        params = {
            "xflip": gate("xflip", randint(n, 0, 2, generator, dev), 0),
            "rotate90": gate("rotate90", randint(n, 0, 4, generator, dev), 0),
            "shift_y": gate("xint", randint(n, -sy, sy + 1, generator, dev), 0),
            "shift_x": gate("xint", randint(n, -sx, sx + 1, generator, dev), 0),
            "scale": gate("scale", torch.exp(two * normal(n, self.scale_std, generator, dev)), 1.0),
            "rotate_pre": gate(
                "rotate", uniform(n, -1.0, 1.0, generator, dev) * math.pi * self.rotate_max, 0.0, p_rot
            ),
            "aniso": gate("aniso", torch.exp(two * normal(n, self.aniso_std, generator, dev)), 1.0),
            "rotate_post": gate(
                "rotate", uniform(n, -1.0, 1.0, generator, dev) * math.pi * self.rotate_max, 0.0, p_rot
            ),
            "xfrac_y": gate("xfrac", normal(n, self.xfrac_std, generator, dev), 0.0),
            "xfrac_x": gate("xfrac", normal(n, self.xfrac_std, generator, dev), 0.0),
            "brightness": gate("brightness", normal(n, self.brightness_std, generator, dev), 0.0),
            "contrast": gate(
                "contrast", torch.exp(two * normal(n, self.contrast_std, generator, dev)), 1.0
            ),
        }
        if self.channels == 3:
            params["lumaflip"] = gate("lumaflip", randint(n, 0, 2, generator, dev), 0)
            params["hue"] = gate(
                "hue", uniform(n, -1.0, 1.0, generator, dev) * math.pi * self.hue_max, 0.0
            )
            params["saturation"] = gate(
                "saturation", torch.exp(two * normal(n, self.saturation_std, generator, dev)), 1.0
            )
        return params

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply drawn parameters to ``x`` (``[N, C, H, W]``); same shape, dtype, device."""
        check_images(x, "ADA")
        if x.shape[1] != self.channels + self.label_channels:
            raise ValueError(f"ADA was built for {self.channels} image + {self.label_channels} label channels, "
                             f"got {x.shape[1]}")
        # geometric transformations move label channels with the image (reflect padding, so no
        # fill value is involved); colour transformations touch the image channels only
        x = blit(x, params["xflip"], params["rotate90"], params["shift_y"], params["shift_x"])
        x = geometric(
            x,
            params["scale"],
            params["rotate_pre"],
            params["aniso"],
            params["rotate_post"],
            params["xfrac_y"],
            params["xfrac_x"],
            self.supersample,
        )
        image, labels = split_labels(x, self.label_channels)
        image = color(
            image,
            params["brightness"],
            params["contrast"],
            params.get("lumaflip"),
            params.get("hue"),
            params.get("saturation"),
        )
        return join_labels(image, labels)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` at the current ``p`` (the identity, without drawing, when ``p`` is 0)."""
        check_images(x, "ADA")
        p = float(self.p)
        if p <= 0.0 or not self.enabled_transforms:
            return x
        return self.apply(x, self.sample_params(x, generator, p=p))


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror integer indices into ``[0, size)`` (reflect padding without repeating the edge)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    k = torch.remainder(index, period)
    return torch.where(k >= size, period - k, k)


def blit(
    x: torch.Tensor,
    xflip: torch.Tensor,
    rotate90: torch.Tensor,
    shift_y: torch.Tensor,
    shift_x: torch.Tensor,
) -> torch.Tensor:
    """Exact pixel blitting ``translate(rot90(xflip(x), k), (ty, tx))`` with reflect padding.

    ``xflip`` (0/1), ``rotate90`` (0..3, as ``torch.rot90(., k, (2, 3))``), ``shift_y``,
    ``shift_x``: int ``[N]``. Implemented as one integer gather, so values are copied exactly.
    """
    n, _, h, w = x.shape
    if not (bool((xflip != 0).any()) or bool((rotate90 % 4 != 0).any())
            or bool((shift_y != 0).any()) or bool((shift_x != 0).any())):
        return x
    if h != w and bool((rotate90 % 2 != 0).any()):
        raise FewganError(f"ADA 90-degree rotations need square images, got {h}x{w}: disable rotate90")
    rows, cols = pixel_grid(n, h, w, x.device)
    # Doubled, centred coordinates keep every pixel centre an integer: u = 2j - (W - 1).
    u = 2 * (cols - shift_x.view(n, 1, 1)) - (w - 1)
    v = 2 * (rows - shift_y.view(n, 1, 1)) - (h - 1)
    k = (rotate90 % 4).view(n, 1, 1)
    # Inverse of one quarter turn of torch.rot90(., 1, (2, 3)): (u, v) -> (-v, u).
    u_src = torch.where(k == 0, u, torch.where(k == 1, -v, torch.where(k == 2, -u, v)))
    v_src = torch.where(k == 0, v, torch.where(k == 1, u, torch.where(k == 2, -v, -u)))
    u_src = torch.where(xflip.view(n, 1, 1) != 0, -u_src, u_src)
    src_c = _reflect((u_src + (w - 1)) // 2, w)
    src_r = _reflect((v_src + (h - 1)) // 2, h)
    return gather_pixels(x, src_r, src_c)


def geometric(
    x: torch.Tensor,
    scale: torch.Tensor,
    rotate_pre: torch.Tensor,
    aniso: torch.Tensor,
    rotate_post: torch.Tensor,
    xfrac_y: torch.Tensor,
    xfrac_x: torch.Tensor,
    supersample: int = 2,
) -> torch.Tensor:
    """Warp each image by ``T(xfrac) R(rotate_post) A(aniso) R(rotate_pre) S(scale)`` about its centre.

    All parameters ``[N]`` float; identity values (1, 0) leave an image untouched exactly.
    One bilinear ``grid_sample`` with reflection padding on a ``supersample``-times finer output
    grid, box-averaged back to ``[H, W]`` (the low-pass).
    """
    n, c, h, w = x.shape
    active = (scale != 1) | (rotate_pre != 0) | (aniso != 1) | (rotate_post != 0)
    active = active | (xfrac_y != 0) | (xfrac_x != 0)
    if not bool(active.any()):
        return x
    # Warp only the images that get a transformation (at small p most do not); the others
    # are copied through exactly.
    index = active.nonzero().view(-1).to(x.device)
    sub = index.to(scale.device)
    f = torch.float32
    scale, rotate_pre, aniso, rotate_post, xfrac_y, xfrac_x = (
        t[sub].to(f) for t in (scale, rotate_pre, aniso, rotate_post, xfrac_y, xfrac_x)
    )
    # Inverse map, output pixel -> input pixel, in centred pixel units (x right, y down):
    # S^-1 R_pre^-1 A^-1 R_post^-1 T^-1.
    inv = _translate(-xfrac_x * w, -xfrac_y * h)
    inv = _rotation(-rotate_post) @ inv
    inv = _diag(1.0 / aniso, aniso) @ inv
    inv = _rotation(-rotate_pre) @ inv
    inv = _diag(1.0 / scale, 1.0 / scale) @ inv
    # affine_grid works in normalised units: pixel-centred coordinate = normalised * size / 2.
    half = torch.tensor([w / 2.0, h / 2.0], device=inv.device, dtype=f)
    theta = inv[:, :2, :].clone()
    theta[:, :, :2] = theta[:, :, :2] * half.view(1, 1, 2) / half.view(1, 2, 1)
    theta[:, :, 2] = theta[:, :, 2] / half.view(1, 2)
    s = int(supersample)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, [index.numel(), c, h * s, w * s], align_corners=False)
    y = F.grid_sample(x[index], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if s > 1:
        y = F.avg_pool2d(y, s)
    return x.index_copy(0, index, y)


def _eye(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, dtype=torch.float32, device=device).repeat(n, 1, 1)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(tx.shape[0], tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def _diag(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(sx.shape[0], sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(theta.shape[0], theta.device)
    cos, sin = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0] = cos
    m[:, 0, 1] = -sin
    m[:, 1, 0] = sin
    m[:, 1, 1] = cos
    return m


def color(
    x: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    lumaflip: torch.Tensor | None = None,
    hue: torch.Tensor | None = None,
    saturation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Colour transformations, composed into one affine map per image.

    Grey (``C == 1``): ``y = contrast * (x + brightness)``. RGB: ``y = M (x + b 1)`` with
    ``M = Sat(s) Hue(theta) Flip(k) * contrast``, all acting about the grey axis
    ``g = (1, 1, 1) / sqrt(3)``: ``Flip = I - 2 k g g^T``, ``Hue`` the rotation by ``theta``
    about ``g``, ``Sat = g g^T + s (I - g g^T)``. Parameters are ``[N]``; identity values
    (0, 1, 0, 0, 1) leave an image unchanged (up to float rounding, and exactly on grey).
    """
    n, c = x.shape[:2]
    active = (brightness != 0) | (contrast != 1)
    if c == 1 or lumaflip is None:
        if not bool(active.any()):
            return x
        return as_factor(contrast, x) * (x + as_factor(brightness, x))
    active = active | (lumaflip != 0) | (hue != 0) | (saturation != 1)
    if not bool(active.any()):
        return x
    f = torch.float32
    dev = brightness.device
    g = torch.tensor(_GREY_AXIS, dtype=f, device=dev)
    ggt = torch.outer(g, g).expand(n, 3, 3)
    eye = torch.eye(3, dtype=f, device=dev).expand(n, 3, 3)
    k = lumaflip.to(f).view(n, 1, 1)
    flip = eye - 2.0 * k * ggt
    # Rodrigues' rotation about the unit axis g: I cos + (1 - cos) g g^T + sin [g]_x.
    cross = torch.tensor(
        [[0.0, -g[2], g[1]], [g[2], 0.0, -g[0]], [-g[1], g[0], 0.0]], dtype=f, device=dev
    ).expand(n, 3, 3)
    cos, sin = torch.cos(hue.to(f)).view(n, 1, 1), torch.sin(hue.to(f)).view(n, 1, 1)
    rot = eye * cos + (1.0 - cos) * ggt + sin * cross
    sat = ggt + saturation.to(f).view(n, 1, 1) * (eye - ggt)
    m = sat @ rot @ flip * contrast.to(f).view(n, 1, 1)
    m = m.to(device=x.device, dtype=x.dtype)
    y = torch.einsum("nij,njhw->nihw", m, x + as_factor(brightness, x))
    return torch.where(active.to(x.device).view(n, 1, 1, 1), y, x)
