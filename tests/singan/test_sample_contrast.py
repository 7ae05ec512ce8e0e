"""Guard for issue 17: random samples of bright objects on a dark background keep the real contrast.

A tiny SinGAN (24 x 24 px, 4 scales, 40 steps per scale) is trained on three bright Gaussian
spots on a dark, slightly noisy background, for three image and training seeds; 16 samples of
each are drawn by the sampler. Over the three seeds, the mean per-sample standard deviation must
be at least 68 % of the real one and the mean 99.5th percentile at most 45 grey levels (8-bit)
below the real one. The issue's failure had samples at a third of the real std (8.0 against 23.9) and
maxima 115 grey levels low.

Measured on this machine (16 samples, sampling seed 1; real std / p99.5 per seed 51.0 / 217,
54.6 / 222, 50.2 / 215): the gray image trained as one channel (``channels=1``, fewgan before
issue 17's training fix) gives std 22.7 / 39.4 / 36.0 and p99.5 119 / 186 / 179: mean ratio 0.63
and 57 grey levels low, so this test fails on it; trained as three identical channels (the
default, :data:`fewgan.singan.nets.GRAY_TRAINING_CHANNELS`) std 38.5 / 37.7 / 37.0 and p99.5
198 / 158 / 192: ratio 0.73, 35 grey levels low. The bounds sit halfway; the margins (0.05 of the
ratio, 10 grey levels) are of the size of one seed's spread, which is why three seeds are
averaged: a GAN's training path is not bit-stable across CPU kernels, so on another CPU the
numbers move within that spread. Neither rule reaches the real contrast at this budget (the peer
does not either: bench/README.md, issue 17).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.singan.nets import SAMPLING_RULE, statistics_at
from fewgan.singan.sample import SinGANModel

from .conftest import write_png


def bright_spots(size: int = 24, seed: int = 1) -> np.ndarray:
    """Three bright Gaussian spots (peak ~225, sigma 2.5 px) on a dark background (25, noise sd 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.full((size, size), 25.0)
    for _ in range(3):
        cy, cx = rng.uniform(2.5, size - 2.5, 2)
        img += 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.5 ** 2))
    img += rng.normal(0, 3, img.shape)
    return img[..., None]


@pytest.mark.slow
def test_samples_keep_the_real_intensity_spread(tmp_path):
    from fewgan.singan.train import train

    ratios, gaps = [], []
    for seed in (0, 1, 2):
        path = write_png(tmp_path / f"spots{seed}.png", bright_spots(seed=seed))
        run = train(path, results=tmp_path / f"runs{seed}", quiet=True, steps=40, min_size=16, max_size=24,
                    seed=seed, log_every=1000, checkpoint_every=10**6, sample_count=1)
        model = SinGANModel.load(run)
        real = (model.reals[-1][:, :1].double() + 1) * 127.5       # gray: the channels are identical
        fake = (model.sample_tensor(16, seed=1).double() + 1) * 127.5
        assert fake.shape == (16, 1, 24, 24)
        real_std, real_hi = float(real.std()), float(np.percentile(real.numpy(), 99.5))
        assert real_std > 45 and real_hi > 200                      # the image is what the test says
        ratios.append(np.mean([float(x.std()) for x in fake]) / real_std)
        gaps.append(real_hi - np.mean([np.percentile(x.numpy(), 99.5) for x in fake]))
    assert np.mean(ratios) >= 0.68, ratios
    assert np.mean(gaps) <= 45, gaps


def test_the_sampling_rule_is_as_trained(tiny_run):
    """Finest scale: each image's own statistics; frozen scales: running averages; batch-independent."""
    assert SAMPLING_RULE == "as-trained"
    assert [statistics_at(j, 3) for j in range(4)] == ["module", "module", "module", "own"]
    model = SinGANModel.load(tiny_run)
    together = model.sample_tensor(3, seed=4, batch=3)
    alone = model.sample_tensor(3, seed=4, batch=1)
    assert torch.allclose(together, alone, atol=1e-5)
    # by hand: the last generator in train mode on one image at a time (a batch of one, as in training)
    # on top of the frozen scales in eval mode
    last = model.generators[-1]
    before = {k: v.clone() for k, v in last.state_dict().items()}
    model.generators[-1] = _TrainModeOnce(last)
    try:
        by_hand = model.sample_tensor(1, seed=4, rule="running")
    finally:
        model.generators[-1] = last
        last.load_state_dict(before)   # train mode moved the running averages
    assert torch.allclose(by_hand[0], together[0], atol=1e-5)
    running = model.sample_tensor(3, seed=4, rule="running")
    assert not torch.allclose(together, running, atol=1e-3)   # the rule changes the images


class _TrainModeOnce(torch.nn.Module):
    """Runs a generator in train mode (batch statistics) and puts it back in eval mode."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, z, prev, statistics="module"):
        self.generator.train()
        try:
            return self.generator(z, prev)
        finally:
            self.generator.eval()


def test_a_gray_sample_is_the_clipped_mean_of_its_trained_channels_as_the_reconstruction_is(tmp_path):
    """A gray image trained as three channels comes back as the mean of the three, clipped afterwards:
    where one channel overshoots (1.5, 0.5, 0.5) the pixel is 0.833, not the 0.667 of clipping each
    channel first (which dimmed the brightest objects of the Hubble field's samples, issue 17), in
    ``sample_tensor`` and in ``sample`` (the written file's values), as in ``reconstruct_tensor``."""
    from fewgan.singan.train import train

    path = write_png(tmp_path / "spots.png", bright_spots(size=20, seed=0))
    run = train(path, results=tmp_path / "runs", quiet=True, steps=2, min_size=16, max_size=20, seed=0,
                log_every=1000, checkpoint_every=10**6, sample_count=1)
    model = SinGANModel.load(run)
    assert (model.channels, model.image_channels, model.meta.channels) == (3, 3, 1)
    h, w = model.size

    def overshooting(sizes, k0, gens, rule="as-trained", tile=None):
        y = torch.full((len(gens), 3, h, w), 0.5)
        y[:, 0] = 1.5                                   # one channel past the top of the range
        y[:, :, 0, 0] = torch.tensor([-1.6, -1.0, -0.9])  # and one corner past the bottom
        return y

    model._generate = overshooting
    x = model.sample_tensor(2, seed=0)
    assert x.shape == (2, 1, h, w)
    assert torch.allclose(x[:, 0, 1:, 1:], torch.tensor(2.5 / 3)) and torch.allclose(x[:, 0, 0, 0], torch.tensor(-1.0))
    assert int(model.sample(1)[0, 5, 5, 0]) == round((2.5 / 3 + 1) * 127.5)   # 234, not 213
