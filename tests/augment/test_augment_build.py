"""fewgan.augment.build and Augmentations: what the trainer and the CLI get."""

import pytest
import torch

from fewgan.augment import ADA, Augmentations, ClassicalAugment, DiffAugment, build
from fewgan.errors import FewganError


def test_build_all_off_is_identity():
    aug = build(None, False, None, channels=1)
    assert (aug.diffaugment, aug.ada, aug.classical) == (None, None, None)
    x = torch.rand(2, 1, 8, 8)
    assert aug.for_real_data(x) is x and aug.for_discriminator(x) is x
    assert aug.leaks == () and aug.leak_warning() is None
    assert aug.describe() == ["DiffAugment: off", "ADA: off", "Classical augmentation of reals: off"]


def test_build_seed_configuration():
    aug = build("color,translation,cutout", True, "seed", channels=3, ada_target=0.7, ada_kimg=100)
    assert isinstance(aug.diffaugment, DiffAugment) and aug.diffaugment.policy == ("color", "translation", "cutout")
    assert isinstance(aug.ada, ADA) and aug.ada.target == 0.7 and aug.ada.adjust_kimg == 100
    assert isinstance(aug.classical, ClassicalAugment) and "erase" in aug.leaks
    assert aug.leak_warning().startswith("classical augmentation of the real images leaks")
    assert aug.describe()[0] == "DiffAugment: on (color,translation,cutout)"


def test_for_discriminator_is_diffaugment_after_ada():
    aug = build("color,cutout", True, None, channels=3, ada_p=0.5)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(0)
    got = aug.for_discriminator(x, torch.Generator().manual_seed(0))
    ada_params = aug.ada.sample_params(x, g)
    expect = aug.diffaugment.apply(aug.ada.apply(x, ada_params), aug.diffaugment.sample_params(x, g))
    assert torch.equal(got, expect)
    assert isinstance(Augmentations(), Augmentations)


def test_build_rejects_bad_options():
    with pytest.raises(FewganError):
        build("color,zoom", False, None, 3)
    with pytest.raises(FewganError):
        build(None, False, "flips,blur", 3)
    with pytest.raises(FewganError):
        build(None, True, None, 4)
