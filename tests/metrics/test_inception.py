"""The Inception-v3 FID port: names and shapes of the community file, taps, pooling, no torchvision."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fewgan.metrics.inception import STEM_LAYERS, InceptionV3FID, _BlockE, _tf_avg_pool, tap_name

FIXTURE = Path(__file__).parent / "fixtures" / "inception_fid_state_dict.json"


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return InceptionV3FID().eval()


def test_state_dict_matches_the_community_file_layout(net):
    expected = json.loads(FIXTURE.read_text())["keys"]
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert list(ours) == list(expected)  # same names, same order
    assert ours == expected
    # a file with exactly those names and shapes loads strictly, with or without num_batches_tracked
    state = {k: torch.randn(v) if "num_batches" not in k else torch.tensor(0) for k, v in expected.items()}
    InceptionV3FID().load_state_dict(state, strict=True)
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    assert net.fc.out_features == 1008


def test_state_dict_with_a_wrong_shape_is_refused():
    state = InceptionV3FID().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(RuntimeError):
        InceptionV3FID().load_state_dict(state, strict=True)


def test_taps_shapes_and_pooling(net):
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        maps = net.forward_maps(x, taps=("64", "192", "768", "2048", "logits"))
        pooled = net(x, taps=("64", "192", "768", "2048", "logits"))
        stem = net.stem_maps(x)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "64": (1, 64, 73, 73), "192": (1, 192, 35, 35), "768": (1, 768, 17, 17), "2048": (1, 2048, 1, 1),
        "logits": (1, 1008)}
    assert {k: tuple(v.shape) for k, v in pooled.items()} == {
        "64": (1, 64), "192": (1, 192), "768": (1, 768), "2048": (1, 2048), "logits": (1, 1008)}
    torch.testing.assert_close(pooled["192"], maps["192"].mean(dim=(2, 3)))
    # the SIFID taps are before the pools: pooling them gives the FID taps
    assert tuple(stem["64"].shape) == (1, 64, 147, 147) and tuple(stem["192"].shape) == (1, 192, 71, 71)
    torch.testing.assert_close(F.max_pool2d(stem["64"], 3, 2), maps["64"])
    torch.testing.assert_close(F.max_pool2d(stem["192"], 3, 2), maps["192"])
    assert (pooled["2048"] >= 0).all()  # ReLU then average


def test_cost_is_5_7_gmac_per_image():
    net = InceptionV3FID().eval()
    macs = []

    def count(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            macs.append(out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
        elif isinstance(mod, torch.nn.Linear):
            macs.append(mod.in_features * mod.out_features)

    for mod in net.modules():
        mod.register_forward_hook(count)
    with torch.no_grad():
        net(torch.zeros(1, 3, 299, 299), taps=("logits",))
    assert sum(macs) == 5_713_232_480
    assert len(macs) == 94 + 1  # 94 convolutions and the classifier


def test_early_tap_stops_early(net):
    x = torch.rand(2, 3, 80, 80)
    with torch.no_grad():
        out = net(x, taps=("64",))
    assert list(out) == ["64"] and out["64"].shape == (2, 64)


def test_tf_average_pool_ignores_padding():
    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(_tf_avg_pool(x), x)  # torch's default would give 4/9 in the corners
    x = torch.arange(9.0).view(1, 1, 3, 3)
    assert _tf_avg_pool(x)[0, 0, 0, 0].item() == pytest.approx((0 + 1 + 3 + 4) / 4)


def test_block_e_pool_types_differ_only_in_the_pool_branch():
    torch.manual_seed(1)
    avg = _BlockE(16, pool="avg").eval()
    mx = _BlockE(16, pool="max").eval()
    mx.load_state_dict(avg.state_dict())
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        a, m = avg(x), mx(x)
    assert a.shape == (1, 320 + 768 + 768 + 192, 5, 5)
    torch.testing.assert_close(a[:, :-192], m[:, :-192])  # all branches but the pool branch agree
    assert not torch.allclose(a[:, -192:], m[:, -192:])
    with torch.no_grad():
        expected = mx.branch_pool(F.max_pool2d(x, 3, 1, 1))
    torch.testing.assert_close(m[:, -192:], expected)


def test_tap_names_and_bad_input(net):
    assert tap_name("pool3") == "2048" and tap_name(64) == "64"
    with pytest.raises(ValueError):
        tap_name("1000")
    with pytest.raises(ValueError):
        net(torch.zeros(1, 1, 299, 299))
    with pytest.raises(ValueError):
        net(torch.zeros(1, 3, 50, 50))
    assert STEM_LAYERS[0] == "Conv2d_1a_3x3"


def test_importing_the_metrics_does_not_import_torchvision():
    code = ("import sys, fewgan.metrics, fewgan.metrics.features, fewgan.metrics.inception, fewgan.metrics.fid, "
            "fewgan.metrics.kid, fewgan.metrics.prdc, fewgan.metrics.sifid; "
            "assert 'torchvision' not in sys.modules, 'torchvision imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
