"""Augmentations move label channels with the image and never change their colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.augment import ADA, ClassicalAugment, DiffAugment
from fewgan.data.labels import encode_instances

H = W = 32


def labelled_pair(n=4, cy=11, cx=20, r=5):
    """Gray images (background -1, one bright disk) with their 2 label channels: [n, 3, H, W]."""
    yy, xx = np.mgrid[:H, :W]
    inst = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.int32)
    image = torch.from_numpy(np.where(inst > 0, 1.0, -1.0).astype(np.float32))[None]
    labels = torch.from_numpy(encode_instances(inst))
    return torch.cat([image, labels], 0)[None].repeat(n, 1, 1, 1)


def centroid(mask: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([ys.float().mean(), xs.float().mean()])


def bright(image: torch.Tensor) -> torch.Tensor:
    lo, hi = image.min(), image.max()
    return image > lo + 0.75 * (hi - lo)


MODULES = {
    "diffaugment": lambda: DiffAugment("color,translation", label_channels=2),
    "ada": lambda: ADA(channels=1, p=1.0, label_channels=2, disable=("xfrac",)),
    "classical": lambda: ClassicalAugment(parts=("hflip", "vflip", "rotate", "translate", "scale", "shear", "brightness", "contrast"),
                                          label_channels=2),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_labels_follow_the_geometry_and_take_no_colour(name):
    aug = MODULES[name]()
    x = labelled_pair()
    params = aug.sample_params(x, torch.Generator().manual_seed(3))
    out = aug.apply(x, params)
    assert out.shape == x.shape
    # labels do not depend on the image's content (no colour op mixes them in) ...
    noisy = x.clone()
    noisy[:, :1] = torch.rand_like(noisy[:, :1]) * 2 - 1
    assert torch.equal(aug.apply(noisy, params)[:, 1:], out[:, 1:])
    # ... nor on the colour parameters
    recoloured = dict(params)
    for key in ("brightness", "contrast"):
        if key in recoloured:
            recoloured[key] = recoloured[key] * 0.5 + (0.3 if key == "brightness" else 0.7)
    assert torch.equal(aug.apply(x, recoloured)[:, 1:], out[:, 1:])
    assert not torch.equal(aug.apply(x, recoloured)[:, :1], out[:, :1])   # the image did change
    # ... stay in range, and the object is where the image's object went
    assert out[:, 1:].min() >= -1 - 1e-6 and out[:, 1:].max() <= 1 + 1e-6
    moved = 0
    for i in range(x.shape[0]):
        fg = out[i, 1] > 0
        assert fg.any()
        dist = (centroid(fg) - centroid(bright(out[i, 0]))).norm()
        assert dist < 1.0, (name, i, float(dist))
        moved += int((centroid(fg) - centroid(x[i, 1] > 0)).norm() > 1.0)
    assert moved >= 1   # the draw did move something, so the check above is not vacuous


def test_diffaugment_cutout_and_translation_fill_labels_with_background():
    aug = DiffAugment("translation,cutout", label_channels=2)
    x = labelled_pair(n=1)
    params = {"shift_y": torch.tensor([0]), "shift_x": torch.tensor([8]),
              "cutout_top": torch.tensor([6]), "cutout_left": torch.tensor([16])}
    out = aug.apply(x, params)
    ky, kx = aug.cutout_size(H, W)
    assert torch.all(out[0, 1:, :, :8] == -1) and torch.all(out[0, 0, :, :8] == 0)          # uncovered
    assert torch.all(out[0, 1:, 6:6 + ky, 16:16 + kx] == -1)                               # cut out
    assert torch.all(out[0, 0, 6:6 + ky, 16:16 + kx] == 0)
    assert torch.allclose(out[0, 1:, :, 8:16], x[0, 1:, :, :8], atol=1e-6)                 # moved


def test_classical_erasing_removes_the_object_from_the_labels():
    aug = ClassicalAugment(parts=("erase",), erase_value=0.5, label_channels=2)
    x = labelled_pair(n=1)
    params = aug.sample_params(x, torch.Generator().manual_seed(0))
    params.update({"erase_top": torch.tensor([6]), "erase_left": torch.tensor([15]),
                   "erase_h": torch.tensor([10]), "erase_w": torch.tensor([10])})
    out = aug.apply(x, params)
    assert torch.all(out[0, 0, 6:16, 15:25] == 0.5) and torch.all(out[0, 1:, 6:16, 15:25] == -1)
    assert torch.equal(out[0, :, 20:], x[0, :, 20:])


def test_without_labels_nothing_changes():
    x = labelled_pair()[:, :1]
    for make in (lambda l: DiffAugment("color,translation,cutout", label_channels=l),
                 lambda l: ClassicalAugment.seed(label_channels=l)):
        a, b = make(0), make(0)
        params = a.sample_params(x, torch.Generator().manual_seed(1))
        assert torch.equal(a.apply(x, params), b.apply(x, params))
    with pytest.raises(ValueError, match="1 image \\+ 2 label channels"):
        ADA(channels=1, p=1.0, label_channels=2).apply(x, {})
