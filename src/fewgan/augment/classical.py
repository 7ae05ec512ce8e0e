"""Classical augmentation of the real training images, batched in torch (no torchvision).

The seed document trains its StyleGAN2 on images passed through a torchvision pipeline:
resize, grayscale, random horizontal and vertical flips (p 0.5 each), random rotation
(+-15 degrees), random affine (translate 0.1, scale 0.9-1.1, shear 5 degrees), colour jitter
(brightness 0.2, contrast 0.2), random erasing (p 0.2, area 0.02-0.1), to tensor, normalise to
``[-1, 1]``. As written it cannot run: ``RandomErasing`` needs a tensor but comes before
``ToTensor``. Resizing and grey conversion are done when the folder is loaded
(:func:`fewgan.data.folder.load_folder`); this module does the rest on batches of tensors
already in ``[-1, 1]``.

**Order** (the seed's, with erasing moved after the tensor conversion, the only place it can
run, and before the normalisation):

1. horizontal flip (p 0.5), 2. vertical flip (p 0.5), 3. optional 90-degree rotation
(``k ~ U{0..3}``, square images; not in the seed, for orientation-free data),
4. rotation by ``U(-15, 15)`` degrees, then 5. affine: integer translation ``round(U(-0.1,
0.1) * size)`` pixels per axis, scale ``U(0.9, 1.1)``, x-shear ``U(-5, 5)`` degrees, all about
the image centre, 6. brightness then contrast or contrast then brightness (a fair coin per
image, like ``ColorJitter``'s random order): brightness multiplies the image in ``[0, 1]``
units by ``U(0.8, 1.2)``; contrast blends it with its mean grey level ``m`` (luma 0.299, 0.587,
0.114 on RGB) as ``c u + (1 - c) m``, ``c ~ U(0.8, 1.2)``; each clipped to ``[0, 1]``, so the
output stays in ``[-1, 1]``, 7. random erasing with probability 0.2: a rectangle of area
``U(0.02, 0.1)`` of the image and aspect ratio log-uniform in ``(0.3, 3.3)`` (up to 10 tries
for one that fits, as torchvision), at a uniform position.

**Fill values**: ``-1`` (black) for the corners that rotation and the affine map uncover and
for erased rectangles; the seed's torchvision transforms fill PIL images with 0 and erase the
``[0, 1]`` tensor with 0 before the normalisation, i.e. black, which is ``-1`` here. Both are
options (``fill``, ``erase_value``; 0 is mid-grey).

Rotation and affine are done in **one** resampling (the seed resamples twice); the filled
area is the same as the two-step pipeline's (a pixel is filled when its position after the
inverse affine map *or* after the inverse rotation lies outside the image). Interpolation is
``nearest`` in the seed preset (torchvision's default for both transforms) and ``bilinear``
otherwise.

**Leaking** (Karras et al., "Training Generative Adversarial Networks with Limited Data",
NeurIPS 2020): the generator learns the distribution of what the discriminator sees as real.
Augmentations applied to every real image that cannot be undone in distribution show up in
generated images: filled corners (rotation, translation, scaling down, shear), sheared
particles, interpolation blur, erased rectangles, shifted and clipped intensities.
:attr:`ClassicalAugment.leaks` lists the enabled parts that leak; flips and 90-degree
rotations are not listed: they only make the learnt distribution symmetric, which is right
for data without a preferred orientation (the user's choice when turning them on).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fewgan.augment._common import (
    as_factor,
    bernoulli,
    check_images,
    join_labels,
    randint,
    split_labels,
    uniform,
)
from fewgan.errors import FewganError

#: Every part, in the order of application.
PARTS = (
    "hflip",
    "vflip",
    "rotate90",
    "rotate",
    "translate",
    "scale",
    "shear",
    "brightness",
    "contrast",
    "erase",
)
#: The seed document's parts.
SEED_PARTS = tuple(p for p in PARTS if p != "rotate90")
#: Parts the default keeps (plus ``rotate90`` on request).
DEFAULT_PARTS = ("hflip", "vflip")
#: Why each leaking part leaks into the generator.
LEAK_REASONS = {
    "rotate": "rotation fills the corners and interpolates",
    "translate": "translation fills a border strip",
    "scale": "scaling interpolates and fills the border when it shrinks",
    "shear": "shear distorts shapes and fills the corners",
    "brightness": "brightness jitter changes and clips the intensity distribution",
    "contrast": "contrast jitter changes and clips the intensity distribution",
    "erase": "random erasing paints rectangles",
}
PRESETS = ("seed", "default", "none")
_ALIASES = {"default": DEFAULT_PARTS, "flips": ("hflip", "vflip"), "rot90": ("rotate90",)}

_LUMA = (0.299, 0.587, 0.114)


class ClassicalAugment(nn.Module):
    """The seed's classical augmentation of real images, on ``[N, C, H, W]`` in ``[-1, 1]``, C = 1 or 3.

    Parameters
    ----------
    parts:
        which parts are on, a subset of :data:`PARTS` (see the module docstring for each).
        Presets: :meth:`seed` (everything the seed does) and :meth:`default` (flips only).
    rotate_degrees, translate, scale, shear_degrees, brightness, contrast:
        strengths, the seed's by default: 15, 0.1, (0.9, 1.1), 5, 0.2, 0.2.
    erase_p, erase_area, erase_ratio:
        random erasing: probability 0.2, area fraction (0.02, 0.1), aspect ratio (0.3, 3.3).
    fill, erase_value:
        value written where rotation / affine uncover the image, and into erased
        rectangles (both -1, black, as the seed).
    interpolation:
        ``"nearest"`` or ``"bilinear"`` for rotation and affine.

    ``aug(x)`` draws and applies; ``sample_params(x, generator)`` / ``apply(x, params)``
    split the two. Output: same shape, dtype, device; values stay in ``[-1, 1]`` when the
    input is in ``[-1, 1]`` and the fill values are. Differentiable w.r.t. ``x`` (not needed
    on real images, but free).
    """

    def __init__(
        self,
        parts: tuple[str, ...] | list[str] = DEFAULT_PARTS,
        rotate_degrees: float = 15.0,
        translate: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        shear_degrees: float = 5.0,
        brightness: float = 0.2,
        contrast: float = 0.2,
        erase_p: float = 0.2,
        erase_area: tuple[float, float] = (0.02, 0.1),
        erase_ratio: tuple[float, float] = (0.3, 3.3),
        fill: float = -1.0,
        erase_value: float = -1.0,
        interpolation: str = "bilinear",
        label_channels: int = 0,
    ):
        super().__init__()
        if label_channels < 0:
            raise FewganError(f"label_channels must be >= 0, got {label_channels}")
        self.label_channels = int(label_channels)
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise FewganError(
                f"unknown classical augmentation part(s) {', '.join(unknown)}: "
                f"choose from {', '.join(PARTS)} or a preset ({', '.join(PRESETS)})"
            )
        if interpolation not in ("nearest", "bilinear"):
            raise FewganError(f"interpolation {interpolation!r}: use 'nearest' or 'bilinear'")
        if not (0 < erase_area[0] <= erase_area[1] < 1 and 0 < erase_ratio[0] <= erase_ratio[1]):
            raise FewganError(
                f"random erasing area {erase_area} must satisfy 0 < lo <= hi < 1 and ratio "
                f"{erase_ratio} 0 < lo <= hi"
            )
        if not (0 < scale[0] <= scale[1]) or not (0 <= brightness < 1) or not (0 <= contrast < 1):
            raise FewganError(
                f"scale {scale} must be 0 < lo <= hi; brightness {brightness} and contrast "
                f"{contrast} in [0, 1)"
            )
        self.parts = tuple(p for p in PARTS if p in parts)
        self.rotate_degrees = float(rotate_degrees)
        self.translate = float(translate)
        self.scale = (float(scale[0]), float(scale[1]))
        self.shear_degrees = float(shear_degrees)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.erase_p = float(erase_p)
        self.erase_area = (float(erase_area[0]), float(erase_area[1]))
        self.erase_ratio = (float(erase_ratio[0]), float(erase_ratio[1]))
        self.fill = float(fill)
        self.erase_value = float(erase_value)
        self.interpolation = interpolation

    # ------------------------------------------------------------------ presets
    @classmethod
    def seed(cls, label_channels: int = 0) -> "ClassicalAugment":
        """Everything the seed document does, with its numbers and torchvision's nearest sampling."""
        return cls(parts=SEED_PARTS, interpolation="nearest", label_channels=label_channels)

    @classmethod
    def default(cls, rot90: bool = False, label_channels: int = 0) -> "ClassicalAugment":
        """Flips only (non-leaking); ``rot90=True`` adds 90-degree rotations (orientation-free data)."""
        return cls(parts=DEFAULT_PARTS + (("rotate90",) if rot90 else ()), label_channels=label_channels)

    @classmethod
    def from_spec(cls, spec: str | None, label_channels: int = 0) -> "ClassicalAugment | None":
        """``"seed"``, ``"default"``, ``"none"`` (None), or a comma list of :data:`PARTS`.

        A list switches on those parts with the seed's strengths and bilinear sampling, e.g.
        ``"hflip,vflip,rotate90"``; ``flips`` stands for ``hflip,vflip`` and ``rot90`` for
        ``rotate90`` (so ``"flips,rot90"`` is ``default(rot90=True)``). Unknown names raise
        :class:`FewganError`.
        """
        if spec is None:
            return None
        text = str(spec).strip().lower()
        if text in ("", "none", "off"):
            return None
        if text == "seed":
            return cls.seed(label_channels)
        parts: list[str] = []
        for name in (p.strip() for p in text.replace("+", ",").split(",") if p.strip()):
            parts.extend(_ALIASES.get(name, (name,)))
        return cls(parts=tuple(parts), label_channels=label_channels)

    def extra_repr(self) -> str:
        return f"parts={','.join(self.parts) or 'none'}, interpolation={self.interpolation}"

    @property
    def enabled(self) -> bool:
        return bool(self.parts)

    @property
    def leaks(self) -> tuple[str, ...]:
        """Enabled parts that leak into the generator (see :data:`LEAK_REASONS`)."""
        return tuple(p for p in self.parts if p in LEAK_REASONS)

    def leak_warning(self) -> str | None:
        """A one-line warning naming the leaking parts, or None when none is on."""
        if not self.leaks:
            return None
        return (
            f"classical augmentation of the real images leaks into the generator "
            f"({', '.join(self.leaks)}): generated images will show fill, distortion, erasing "
            f"or intensity jitter (Karras et al. 2020); keep only flips (the default) unless "
            f"you reproduce the seed"
        )

    # ------------------------------------------------------------------ sampling
    def sample_params(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw parameters per image; identity values where a part is off.

        Returns ``[N]`` tensors on ``x.device``: ``hflip``, ``vflip`` (bool), ``rotate90``
        (int64 quarter turns as ``torch.rot90(., k, (2, 3))``), ``angle`` (degrees,
        counter-clockwise on screen), ``shift_x``, ``shift_y`` (int64 pixels), ``scale``,
        ``shear`` (degrees), ``brightness``, ``contrast`` (factors), ``brightness_first``
        (bool), ``erase`` (bool), ``erase_top``, ``erase_left``, ``erase_h``, ``erase_w``
        (int64). All draws are made whichever parts are on, so the random stream does not
        depend on the options.
        """
        check_images(x, "ClassicalAugment")
        n, _, h, w = x.shape
        dev = x.device
        on = self.parts

        def keep(name: str, value: torch.Tensor, identity) -> torch.Tensor:
            return value if name in on else torch.full_like(value, identity)

        params = {
            "hflip": keep("hflip", bernoulli(n, 0.5, generator, dev), False),
            "vflip": keep("vflip", bernoulli(n, 0.5, generator, dev), False),
            "rotate90": keep("rotate90", randint(n, 0, 4, generator, dev), 0),
            "angle": keep(
                "rotate", uniform(n, -self.rotate_degrees, self.rotate_degrees, generator, dev), 0.0
            ),
            "shift_x": keep(
                "translate",
                torch.round(uniform(n, -self.translate * w, self.translate * w, generator, dev)).long(),
                0,
            ),
            "shift_y": keep(
                "translate",
                torch.round(uniform(n, -self.translate * h, self.translate * h, generator, dev)).long(),
                0,
            ),
            "scale": keep("scale", uniform(n, self.scale[0], self.scale[1], generator, dev), 1.0),
            "shear": keep(
                "shear", uniform(n, -self.shear_degrees, self.shear_degrees, generator, dev), 0.0
            ),
            "brightness": keep(
                "brightness", uniform(n, 1 - self.brightness, 1 + self.brightness, generator, dev), 1.0
            ),
            "contrast": keep(
                "contrast", uniform(n, 1 - self.contrast, 1 + self.contrast, generator, dev), 1.0
            ),
            "brightness_first": bernoulli(n, 0.5, generator, dev),
        }
        params.update(self._sample_erase(n, h, w, generator, dev))
        return params

    def _sample_erase(self, n, h, w, generator, dev) -> dict[str, torch.Tensor]:
        tries = 10
        area = uniform(n * tries, *self.erase_area, generator, dev).view(n, tries) * (h * w)
        log_lo, log_hi = math.log(self.erase_ratio[0]), math.log(self.erase_ratio[1])
        aspect = torch.exp(uniform(n * tries, log_lo, log_hi, generator, dev)).view(n, tries)
        eh = torch.round(torch.sqrt(area * aspect)).long()
        ew = torch.round(torch.sqrt(area / aspect)).long()
        fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        first = torch.argmax(fits.to(torch.int64), dim=1, keepdim=True)  # first try that fits
        eh = eh.gather(1, first).view(n)
        ew = ew.gather(1, first).view(n)
        any_fit = fits.any(dim=1)
        erase = bernoulli(n, self.erase_p, generator, dev) & any_fit
        if "erase" not in self.parts:
            erase = torch.zeros_like(erase)
        top = torch.floor(uniform(n, 0.0, 1.0, generator, dev) * (h - eh + 1).clamp(min=1)).long()
        left = torch.floor(uniform(n, 0.0, 1.0, generator, dev) * (w - ew + 1).clamp(min=1)).long()
        zero = torch.zeros_like(eh)
        return {
            "erase": erase,
            "erase_top": torch.where(erase, top, zero),
            "erase_left": torch.where(erase, left, zero),
            "erase_h": torch.where(erase, eh, zero),
            "erase_w": torch.where(erase, ew, zero),
        }

    # ------------------------------------------------------------------ applying
    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply drawn parameters (from :meth:`sample_params`) to ``x``; same shape and dtype."""
        check_images(x, "ClassicalAugment")
        x = flip(x, params["hflip"], params["vflip"])
        x = rotate90(x, params["rotate90"])
        # label channels move with the image; what rotation/affine uncover and erasing removes is
        # background (-1) in them whatever the image's fill; no brightness/contrast on them
        image, labels = split_labels(x, self.label_channels)
        geometry = (params["angle"], params["shift_x"], params["shift_y"], params["scale"], params["shear"])
        image = rotate_affine(image, *geometry, fill=self.fill, mode=self.interpolation)
        image = jitter(image, params["brightness"], params["contrast"], params["brightness_first"])
        box = (params["erase_top"], params["erase_left"], params["erase_h"], params["erase_w"])
        image = erase(image, *box, self.erase_value)
        if labels is not None:
            labels = erase(rotate_affine(labels, *geometry, fill=-1.0, mode=self.interpolation), *box, -1.0)
        return join_labels(image, labels)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` (``[N, C, H, W]`` in ``[-1, 1]``) with freshly drawn parameters."""
        if not self.parts:
            return x
        return self.apply(x, self.sample_params(x, generator))


def flip(x: torch.Tensor, hflip: torch.Tensor, vflip: torch.Tensor) -> torch.Tensor:
    """Mirror columns where ``hflip`` and rows where ``vflip`` (bool ``[N]``); exact."""
    n = x.shape[0]
    if bool(hflip.any()):
        x = torch.where(hflip.view(n, 1, 1, 1), x.flip(3), x)
    if bool(vflip.any()):
        x = torch.where(vflip.view(n, 1, 1, 1), x.flip(2), x)
    return x


def rotate90(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``torch.rot90(x[n], k[n], (1, 2))`` per image (square images for odd ``k``); exact."""
    n, _, h, w = x.shape
    k = k % 4
    if not bool((k != 0).any()):
        return x
    if h != w and bool((k % 2 == 1).any()):
        raise FewganError(f"90-degree rotations need square images, got {h}x{w}: remove rotate90")
    out = x
    for quarter in (1, 2, 3):
        if bool((k == quarter).any()):
            out = torch.where((k == quarter).view(n, 1, 1, 1), torch.rot90(x, quarter, (2, 3)), out)
    return out


def rotate_affine(
    x: torch.Tensor,
    angle: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    scale: torch.Tensor,
    shear: torch.Tensor,
    fill: float = -1.0,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Rotation by ``angle`` followed by the affine map ``t + scale * Shear_x(shear)``, about the centre.

    In centred pixel coordinates (x right, y down, so a positive angle turns the image
    counter-clockwise on screen): ``p_mid = R(angle) p_src`` and
    ``p_out = t + scale * [[1, tan(shear)], [0, 1]] p_mid``. One ``grid_sample`` samples ``x``
    at the composed inverse; a pixel whose ``p_mid`` or ``p_src`` lies outside the image is
    ``fill`` (as the two-step rotate-then-affine pipeline would fill it). Parameters ``[N]``;
    images with identity parameters are returned exactly.
    """
    n, c, h, w = x.shape
    active = (angle != 0) | (shift_x != 0) | (shift_y != 0) | (scale != 1) | (shear != 0)
    if not bool(active.any()):
        return x
    f = torch.float32
    dev = angle.device
    rad = -torch.deg2rad(angle.to(f))  # y points down: counter-clockwise on screen is -angle
    tan = torch.tan(torch.deg2rad(shear.to(f)))
    s = scale.to(f)
    # Inverse affine: p_mid = Shear^-1 (p_out - t) / s, Shear^-1 = [[1, -tan], [0, 1]].
    ys = torch.arange(h, dtype=f, device=dev) + 0.5 - h / 2.0
    xs = torch.arange(w, dtype=f, device=dev) + 0.5 - w / 2.0
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    qx = px.unsqueeze(0) - shift_x.to(f).view(n, 1, 1)
    qy = py.unsqueeze(0) - shift_y.to(f).view(n, 1, 1)
    mid_y = qy / s.view(n, 1, 1)
    mid_x = (qx - tan.view(n, 1, 1) * qy) / s.view(n, 1, 1)
    # Inverse rotation: p_src = R(-rad) p_mid.
    cos, sin = torch.cos(rad).view(n, 1, 1), torch.sin(rad).view(n, 1, 1)
    src_x = cos * mid_x + sin * mid_y
    src_y = -sin * mid_x + cos * mid_y
    mid_inside = (mid_x.abs() <= w / 2.0) & (mid_y.abs() <= h / 2.0)
    if mode == "nearest":
        # Nearest sampling uses the half-open pixel edges [-size/2, size/2).
        mid_inside = (mid_x >= -w / 2.0) & (mid_x < w / 2.0) & (mid_y >= -h / 2.0) & (mid_y < h / 2.0)
    grid = torch.stack((src_x / (w / 2.0), src_y / (h / 2.0)), dim=-1).to(device=x.device, dtype=x.dtype)
    y = F.grid_sample(x - fill, grid, mode=mode, padding_mode="zeros", align_corners=False) + fill
    y = torch.where(mid_inside.to(x.device).unsqueeze(1), y, torch.full_like(y, fill))
    return torch.where(active.to(x.device).view(n, 1, 1, 1), y, x)


def jitter(
    x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, brightness_first: torch.Tensor
) -> torch.Tensor:
    """Brightness and contrast jitter in ``[0, 1]`` units, clipped, in a per-image order.

    ``u = (x + 1) / 2``; brightness ``u b``; contrast ``c u + (1 - c) m`` with ``m`` the image's
    mean grey level (luma weights on RGB); each result clipped to ``[0, 1]``; back to ``[-1,
    1]``. Factors ``[N]``; images with both factors 1 are returned exactly.
    """
    n = x.shape[0]
    active = (brightness != 1) | (contrast != 1)
    if not bool(active.any()):
        return x
    u = (x + 1.0) / 2.0

    def bright(v):
        return (v * as_factor(brightness, v)).clamp(0.0, 1.0)

    def contr(v):
        if v.shape[1] == 3:
            luma = torch.tensor(_LUMA, dtype=v.dtype, device=v.device).view(1, 3, 1, 1)
            grey = (v * luma).sum(dim=1, keepdim=True)
        else:
            grey = v.mean(dim=1, keepdim=True)
        m = grey.mean(dim=(1, 2, 3), keepdim=True)
        cf = as_factor(contrast, v)
        return (cf * v + (1.0 - cf) * m).clamp(0.0, 1.0)

    first = brightness_first.to(x.device).view(n, 1, 1, 1)
    out = torch.where(first, contr(bright(u)), bright(contr(u)))
    return torch.where(active.to(x.device).view(n, 1, 1, 1), out * 2.0 - 1.0, x)


def erase(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
    value: float = -1.0,
) -> torch.Tensor:
    """Set rows ``[top, top + height)`` x columns ``[left, left + width)`` to ``value`` (all channels)."""
    n, _, h, w = x.shape
    if not bool((height > 0).any()):
        return x
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = top.view(n, 1, 1), left.view(n, 1, 1)
    box = (rows >= top) & (rows < top + height.view(n, 1, 1))
    box = box & (cols >= left) & (cols < left + width.view(n, 1, 1))
    return torch.where(box.unsqueeze(1), torch.full_like(x, value), x)
