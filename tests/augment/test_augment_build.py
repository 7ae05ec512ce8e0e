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


@pytest.mark.parametrize("which", ["ada", "diffaugment"])
def test_r1_through_the_augmentation_matches_an_explicit_jacobian(which):
    # R1 = |d D(aug(x)) / dx|^2 needs double backward through the augmentation (grid_sample,
    # gather). For fixed params aug is linear, aug(x) = J x (+ const): compare with J built by
    # autograd.functional.jacobian, used as a plain matrix.
    torch.manual_seed(0)
    aug = ADA(channels=1, p=1.0) if which == "ada" else DiffAugment()
    x = (torch.rand(1, 1, 6, 6, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    params = aug.sample_params(x, torch.Generator().manual_seed(3))
    d = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(36, 8), torch.nn.Softplus(), torch.nn.Linear(8, 1)
    ).double()

    def r1_grads(forward):
        (g,) = torch.autograd.grad(d(forward(x)).sum(), x, create_graph=True)
        params_d = list(d.parameters())[:-1]  # the last bias does not enter dD/dx
        return torch.autograd.grad(g.square().sum(), params_d)

    jac = torch.autograd.functional.jacobian(lambda t: aug.apply(t, params), x.detach()).reshape(36, 36)
    const = aug.apply(torch.zeros_like(x), params).reshape(36)
    explicit = r1_grads(lambda t: (jac @ t.reshape(36) + const).reshape(1, 1, 6, 6))
    through = r1_grads(lambda t: aug.apply(t, params))
    assert any(e.abs().sum() > 0 for e in explicit)
    for a, b in zip(through, explicit):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
