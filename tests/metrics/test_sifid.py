"""SIFID at both taps (native resolution, labelled) and pixel diversity."""

import numpy as np
import pytest
import torch

from fewgan.errors import FewganError
from fewgan.metrics import features
from fewgan.metrics.sifid import SIFID_TAPS, pixel_diversity, sifid, sifid_from_positions

from .fixtures.random_inception import save_random_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("weights"))


def test_sifid_of_the_real_image_is_zero_and_grows_with_noise(weights):
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 40), indexing="ij")
    real = (0.8 * torch.sin(6 * xx) * torch.cos(4 * yy))[None]  # [1, 48, 40]
    fakes = [real, (real + 0.1 * torch.randn_like(real)).clamp(-1, 1), (real + 0.4 * torch.randn_like(real)).clamp(-1, 1),
             real[:, :32, :36]]  # another size: native resolution, no resize
    out = sifid(real, fakes, weights=weights)
    assert set(out) == {"sifid_64", "sifid_192"}
    for tap in ("64", "192"):
        r = out[f"sifid_{tap}"]
        v = r["per_image"]
        assert len(v) == 4 and r["n"] == 4
        assert abs(v[0]) < 1e-6  # the real image against itself
        assert v[0] < v[1] < v[2]  # more noise, larger distance
        assert r["mean"] == pytest.approx(np.mean(v)) and r["max"] == pytest.approx(max(v))
        assert r["layer"] == SIFID_TAPS[tap] and r["weights_file"] == weights.name
        assert r["weights_sha256"] == features.file_sha256(weights)
        assert r["resize"].startswith("none") and r["window"] == pytest.approx([-0.8, 0.8], abs=0.01)
    # 48 x 40: 64-tap map 21 x 17, 192-tap map 8 x 6
    assert (out["sifid_64"]["positions_real"], out["sifid_64"]["channels"]) == (21 * 17, 64)
    assert (out["sifid_192"]["positions_real"], out["sifid_192"]["channels"]) == (8 * 6, 192)
    only = sifid(real, fakes[:2], layer="64", weights=weights)
    assert list(only) == ["sifid_64"]
    assert only["sifid_64"]["per_image"] == pytest.approx(out["sifid_64"]["per_image"][:2])


def test_stem_taps_are_before_the_pools(weights):
    img = torch.rand(3, 40, 40) * 2 - 1
    pos = features.stem_features(img, taps=("64", "192"), weights=weights)
    # 40 -> 19 (stride 2) -> 17 -> 17: 64 channels at 17 x 17; max pool -> 8 -> 8 -> 6: 192 at 6 x 6
    assert pos["64"].shape == (17 * 17, 64) and pos["192"].shape == (6 * 6, 192)


def test_torchvision_style_file_loads_its_stem(tmp_path):
    """torchvision's ImageNet file has AuxLogits and a 1000-class fc; only the stem is used."""
    from fewgan.metrics.inception import InceptionV3FID

    torch.manual_seed(3)
    state = {k: v for k, v in InceptionV3FID().state_dict().items() if not k.startswith("fc.")}
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    path = tmp_path / "inception_v3_google-like.pth"
    torch.save(state, path)
    model, info = features.load_stem(path)
    torch.testing.assert_close(model.Conv2d_4a_3x3.conv.weight, state["Conv2d_4a_3x3.conv.weight"])
    assert info["name"] == path.name
    del state["Conv2d_2b_3x3.bn.running_var"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(FewganError, match="stem"):
        features.load_stem(tmp_path / "broken.pth")


def test_sifid_from_positions_is_a_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5000, 2))
    b = rng.normal(size=(5000, 2)) * 2 + 1
    # N(0, I) vs N(1, 4I): |1|^2 * 2 + 2 * (1 - 2)^2 = 4
    assert sifid_from_positions(a, b) == pytest.approx(4.0, rel=0.05)


def test_sifid_methods_agree():
    rng = np.random.default_rng(1)
    for p in (30, 400):  # fewer positions than channels (auto -> svd), and more (auto -> sqrtm)
        a, b = rng.random((p, 64)), rng.random((p + 5, 64)) * 1.2
        ref = sifid_from_positions(a, b, method="sqrtm")
        assert sifid_from_positions(a, b, method="svd") == pytest.approx(ref, rel=1e-6)
        assert sifid_from_positions(a, b) == pytest.approx(ref, rel=1e-6)


def test_sifid_bad_input(weights):
    real = torch.zeros(1, 32, 32)
    with pytest.raises(FewganError, match="layer"):
        sifid(real, [real], layer="768", weights=weights)
    with pytest.raises(FewganError, match="one real image"):
        sifid(torch.zeros(2, 1, 32, 32), [real], weights=weights)
    with pytest.raises(FewganError, match="smaller"):
        sifid(real, [torch.zeros(1, 10, 10)], weights=weights)


def test_pixel_diversity_by_hand():
    real = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])  # std sqrt(1.25)
    same = real.expand(4, 1, 2, 2)
    assert pixel_diversity(same, real) == 0.0
    a, b = torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0)
    samples = torch.stack([a, b])  # per-pixel std 1 everywhere
    assert pixel_diversity(samples, real) == pytest.approx(1.0 / np.sqrt(1.25))
    with pytest.raises(FewganError, match="shape"):
        pixel_diversity(torch.zeros(2, 1, 3, 3), real)
    with pytest.raises(FewganError, match="N >= 2"):
        pixel_diversity(torch.zeros(1, 1, 2, 2), real)
