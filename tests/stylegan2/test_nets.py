"""StyleGAN2 networks: parameter counts at the seed configuration, shapes, w_avg/truncation, mbstd."""

import copy

import pytest
import torch

from fewgan.stylegan2.config import StyleGAN2Config, channels_at
from fewgan.model import count_parameters
from fewgan.stylegan2.nets import Discriminator, Generator, LabelledCritic, MinibatchStdLayer
from fewgan.stylegan2.nets import build_networks
from fewgan.stylegan2.train import ema_update


def test_seed_configuration_parameter_counts_match_the_peer():
    """NVlabs StyleGAN2 with --match-fewgan at 64 px gray (../shared/peers): same totals and split."""
    cfg = StyleGAN2Config()
    G, D = build_networks(cfg, img_channels=1)
    groups = G.parameter_groups()
    print("G", count_parameters(G), groups, "D", count_parameters(D))
    assert groups == {"mapping": 230_400, "const": 4_096, "torgb": 189_893, "synthesis": 2_721_385}
    assert count_parameters(G) == 3_145_774
    assert count_parameters(D) == 3_511_521
    # RGB changes only toRGB (x3 weights and biases) and fromRGB
    G3, D3 = build_networks(cfg, img_channels=3)
    assert count_parameters(G3) - count_parameters(G) == 2 * (256 + 256 + 128 + 64 + 32 + 5)
    assert count_parameters(D3) - count_parameters(D) == 2 * 32


def test_seed_channels_and_layout():
    assert [channels_at(r, 2048, 256) for r in (4, 8, 16, 32, 64)] == [256, 256, 128, 64, 32]
    # default cbase is 32 x resolution: 32 channels at the finest layer at every resolution
    for res in (32, 64, 128, 256):
        assert channels_at(res, StyleGAN2Config(resolution=res).channel_base, 256) == 32
    G, D = build_networks(StyleGAN2Config(), 1)
    assert G.synthesis.channels == {4: 256, 8: 256, 16: 128, 32: 64, 64: 32}
    assert G.num_ws == 10 and G.mapping.z_dim == 128 and G.mapping.w_dim == 256
    assert len(G.mapping.layers) == 4 and all(l.bias_gain == 0.01 for l in G.mapping.layers)
    assert tuple(G.synthesis.blocks[0].const.shape) == (256, 4, 4)
    chain = [(b.conv0.in_channels, b.conv1.out_channels) for b in D.blocks]
    assert chain == [(32, 64), (64, 128), (128, 256), (256, 256)]
    assert D.blocks[0].fromrgb.out_channels == 32
    assert (D.fc.in_features, D.fc.out_features, D.out.in_features, D.out.out_features) == (4096, 256, 256, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_tiny(channels):
    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=32, resolution=16, img_channels=channels, cbase=256, cmax=32)
    D = Discriminator(resolution=16, img_channels=channels, cbase=256, cmax=32)
    img = G(torch.randn(5, 16))
    assert img.shape == (5, channels, 16, 16)
    assert D(img).shape == (5, 1)
    with pytest.raises(ValueError):
        D(torch.randn(2, channels, 8, 8))


def test_truncation_and_w_avg():
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, resolution=8, cbase=64, cmax=16)
    z = torch.randn(6, 8)
    G.mapping.update_w_avg(torch.ones(8))
    assert torch.allclose(G.mapping.w_avg, torch.full((8,), 0.005))  # lerp(mean, w_avg, 0.995)
    ws = G.mapping(z)
    assert torch.allclose(G.mapping(z, psi=0.0), G.mapping.w_avg.expand_as(ws))
    half = G.mapping(z, psi=0.5)
    assert torch.allclose(half, G.mapping.w_avg + 0.5 * (ws - G.mapping.w_avg), atol=1e-6)
    cut = G.mapping(z, psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, 2:], ws[:, 2:]) and torch.allclose(cut[:, :2], G.mapping.w_avg.expand(6, 2, 8))


def test_const_noise_is_deterministic_and_random_noise_is_not():
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, resolution=8, cbase=64, cmax=16)
    for layer in G.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 8)
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))


def test_ema_rule_and_buffers():
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, resolution=8, cbase=64, cmax=16)
    ema = copy.deepcopy(G)
    before = [p.clone() for p in ema.parameters()]
    for p in G.parameters():
        p.data.add_(1.0)
    G.mapping.w_avg.fill_(3.0)
    ema_update(ema, G, 0.999)
    for b, e, p in zip(before, ema.parameters(), G.parameters()):
        assert torch.allclose(e, 0.999 * b + 0.001 * p, atol=1e-6)
    assert torch.equal(ema.mapping.w_avg, G.mapping.w_avg)


def test_minibatch_stddev_uses_consecutive_groups():
    x = torch.zeros(8, 2, 2, 2)
    x[:4] = torch.arange(4.0).view(4, 1, 1, 1)  # group 0: values 0, 1, 2, 3 -> population std sqrt(1.25)
    y = MinibatchStdLayer(group_size=4)(x)
    assert y.shape == (8, 3, 2, 2)
    assert torch.allclose(y[:4, 2], torch.full((4, 2, 2), 1.25 ** 0.5), atol=1e-4)
    assert torch.allclose(y[4:, 2], torch.full((4, 2, 2), 1e-4), atol=1e-5)  # sqrt(eps) for a constant group
    # the first half alone gives the same statistics (what a rank holding samples 0-3 computes)
    assert torch.allclose(MinibatchStdLayer(4)(x[:4]), y[:4])
    # a batch not divisible by the group size falls back to a divisor
    assert MinibatchStdLayer(4)(torch.randn(6, 2, 2, 2)).shape == (6, 3, 2, 2)


def test_tanh_label_head_squashes_the_label_channels_and_leaves_the_image_alone():
    kw = dict(z_dim=8, w_dim=16, resolution=8, img_channels=3, mapping_layers=2, cbase=64, cmax=16, label_channels=2)
    torch.manual_seed(0)
    linear = Generator(**kw, label_head="linear")
    tanh = Generator(**kw, label_head="tanh")
    tanh.load_state_dict(linear.state_dict())  # no parameters of its own
    with torch.no_grad():
        for name, p in linear.synthesis.named_parameters():  # large toRGB weights: label outputs beyond +-1
            if ".torgb." in name:
                p.mul_(50)
        tanh.load_state_dict(linear.state_dict())
        z = torch.randn(4, 8)
        a, b = linear(z, noise_mode="const"), tanh(z, noise_mode="const")
    assert torch.equal(a[:, :1], b[:, :1])  # the image channel is never squashed
    assert torch.allclose(b[:, 1:], torch.tanh(a[:, 1:]), atol=1e-6)
    assert float(a[:, 1:].abs().max()) > 1 >= float(b[:, 1:].abs().max())
    with pytest.raises(ValueError, match="label_head"):
        Generator(**{**kw, "label_channels": 3}, label_head="tanh")  # no image channel left
    with pytest.raises(ValueError, match="label_head"):
        Generator(**kw, label_head="sigmoid")


def test_labelled_critic_is_a_joint_and_an_image_only_critic_side_by_side():
    cfg = StyleGAN2Config(resolution=8, cbase=64, cmax=16, labels="beside")
    torch.manual_seed(0)
    G, D = build_networks(cfg, 3)
    assert isinstance(D, LabelledCritic) and D.joint.img_channels == 3 and D.image.img_channels == 1
    assert G.synthesis.label_head == "tanh" and G.synthesis.label_channels == 2
    x = torch.randn(4, 3, 8, 8)
    out = D(x)
    assert out.shape == (4, 2)
    assert torch.equal(out[:, :1], D.joint(x)) and torch.equal(out[:, 1:], D.image(x[:, :1]))
    x2 = x.clone()
    x2[:, 1:] = -x2[:, 1:]  # other labels: the image critic's logits do not move, the joint one's do
    assert torch.equal(D(x2)[:, 1], out[:, 1]) and not torch.equal(D(x2)[:, 0], out[:, 0])
    # the options switch each lever off; an unlabelled config has neither, whatever they say
    _, one = build_networks(cfg.replace(image_critic=False), 3)
    assert isinstance(one, Discriminator)
    G0, D0 = build_networks(StyleGAN2Config(resolution=8, cbase=64, cmax=16), 1)
    assert isinstance(D0, Discriminator) and G0.synthesis.label_head == "linear"
    with pytest.raises(ValueError, match="first channels"):
        LabelledCritic(Discriminator(8, 1, 64, 16), Discriminator(8, 1, 64, 16))
