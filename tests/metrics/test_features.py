"""Input handling (window, 8-bit mapping, resizes, grayscale) and batched, cached extraction."""

import numpy as np
import pytest
import torch
from PIL import Image

from fewgan.errors import FewganError
from fewgan.metrics import features
from fewgan.metrics.features import (extract_features, intensity_window, preprocess, resize_clean, resize_tf1,
                                     to_uint8_range)
from fewgan.metrics.inception import InceptionV3FID

from .fixtures.random_inception import save_random_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("weights"))


def test_window_of_8_bit_data_is_the_full_range():
    assert intensity_window(torch.zeros(2, 1, 4, 4), dtype="uint8") == (-1.0, 1.0)


def test_one_window_from_the_whole_real_set():
    a = torch.full((1, 4, 4), -0.9)
    b = torch.full((1, 4, 4), -0.5)
    b[0, 0, 0] = float("nan")  # ignored
    lo, hi = intensity_window([a, b])
    assert (lo, hi) == pytest.approx((-0.9, -0.5))
    # a fake darker than every real image stays darker (clipped), it is not stretched per image
    fake = torch.full((1, 4, 4), -0.95)
    assert to_uint8_range(fake, (lo, hi)).max() == 0
    assert to_uint8_range(a, (lo, hi)).max() == 0 and to_uint8_range(b, (lo, hi))[0, 1, 1] == 255
    mid = torch.full((1, 1, 1), -0.7)
    assert to_uint8_range(mid, (lo, hi)).item() == 128  # 127.5 rounds to the even 128


def test_8_bit_values_map_back_exactly():
    k = torch.arange(256.0)
    assert torch.equal(to_uint8_range(k / 127.5 - 1.0, None), k)
    assert to_uint8_range(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 255.0]
    with pytest.raises(FewganError):
        to_uint8_range(k, (1.0, 1.0))


def test_tf1_bilinear_by_hand():
    x = torch.tensor([[[[0.0, 10.0]]]])  # 1 x 2
    out = resize_tf1(x, size=4)
    # rows: source 0, 0.5, 1, 1.5 -> clamped to row 0; columns the same: 0, 5, 10, 10
    assert out.shape == (1, 1, 4, 4)
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 5.0, 10.0, 10.0]).expand(4, 4))
    y = torch.rand(1, 3, 7, 5)
    assert torch.equal(resize_tf1(y, size=7)[..., :5], resize_tf1(y, size=7)[..., :5])
    same = torch.rand(1, 1, 299, 299)
    assert torch.allclose(resize_tf1(same), same)


def test_clean_resize_is_pil_bicubic_on_float():
    x = torch.rand(1, 13, 9) * 255
    out = resize_clean(x, size=20)
    ref = np.asarray(Image.fromarray(x[0].numpy(), mode="F").resize((20, 20), Image.BICUBIC))
    assert torch.allclose(out[0], torch.from_numpy(ref).clamp(0, 255))
    assert resize_clean(torch.full((3, 10, 10), 77.0), size=31).sub(77).abs().max() < 1e-3
    assert out.min() >= 0 and out.max() <= 255  # bicubic overshoot is clipped


def test_grayscale_is_replicated_and_normalised():
    g = torch.rand(2, 1, 16, 16) * 2 - 1
    for mode in ("clean", "tf1"):
        a = preprocess(g, resize=mode)
        b = preprocess(g.expand(2, 3, 16, 16), resize=mode)
        assert a.shape == (2, 3, 299, 299) and torch.equal(a, b)
        assert a.min() >= -1.0 and a.max() <= 127 / 128
    with pytest.raises(FewganError, match="4 channels"):
        preprocess(torch.zeros(1, 4, 8, 8))
    with pytest.raises(FewganError, match="resize mode"):
        preprocess(g, resize="bilinear")


def test_extraction_is_batched_consistently_and_cached(weights, tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    imgs = torch.rand(3, 1, 20, 20) * 2 - 1
    one = extract_features(imgs, weights=weights, batch_size=1, progress=True)
    assert "Inception features: 3/3" in capsys.readouterr().err  # plain progress line off a terminal
    two = extract_features(list(imgs), weights=weights, batch_size=2, progress=False)
    assert one.shape == (3, 2048)
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)
    # tf1: the fast on-device path for a tensor equals the per-image path for a list
    t1 = extract_features(imgs[:2], weights=weights, resize="tf1", progress=False)
    t2 = extract_features(list(imgs[:2]), weights=weights, resize="tf1", progress=False)
    np.testing.assert_allclose(t1, t2, rtol=1e-4, atol=1e-6)
    assert not np.allclose(t1, one[:2])  # the resize mode matters
    # images of different sizes in one list
    mixed = extract_features([imgs[0], torch.rand(3, 31, 17) * 2 - 1], weights=weights, progress=False)
    np.testing.assert_allclose(mixed[0], one[0], rtol=1e-4, atol=1e-6)
    # cache: computed once, then read back without running the network
    cache = tmp_path / "cache"
    first = extract_features(imgs, weights=weights, cache=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("the network ran although the features were cached")

    monkeypatch.setattr(InceptionV3FID, "forward", boom)
    np.testing.assert_array_equal(extract_features(imgs, weights=weights, cache=cache, progress=False), first)
    with pytest.raises(AssertionError, match="network ran"):  # another window is another key
        extract_features(imgs, weights=weights, cache=cache, window=(-0.5, 0.5), progress=False)


def test_bad_extraction_input(weights):
    with pytest.raises(FewganError, match="no images"):
        extract_features(torch.zeros(0, 3, 8, 8), weights=weights)
    with pytest.raises(FewganError):
        extract_features(torch.zeros(8, 8), weights=weights)
    with pytest.raises(FewganError):
        extract_features(torch.zeros(1, 3, 8, 8), weights=weights, batch_size=0)


def test_feature_info_records_hash_resize_and_n(weights):
    info = features.feature_info(weights=weights, resize="tf1", n=7, window=(-1, 0.5))
    assert info["weights_file"] == weights.name and len(info["weights_sha256"]) == 64
    assert info["resize"] == "tf1" and info["n"] == 7 and info["window"] == [-1.0, 0.5]
    assert info["weights_reference"] is False
