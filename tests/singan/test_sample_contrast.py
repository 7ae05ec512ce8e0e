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
198 / 158 / 192: ratio 0.73, 35 grey levels low (sampled with each image's own statistics at the
finest scale, the rule of the time; with the sampler's standing statistics, re-measured 2026-12-06 on
an AMD EPYC: std 38.0 / 38.3 / 36.9, p99.5 189 / 168 / 192, ratio 0.73, 36 low; the old rule on the
same runs 0.73, 35 low). The bounds sit halfway; the margins (0.05 of the
ratio, 10 grey levels) are of the size of one seed's spread, which is why three seeds are
averaged: a GAN's training path is not bit-stable across CPU kernels, so on another CPU the
numbers move within that spread. Neither rule reaches the real contrast at this budget (the peer
does not either: bench/README.md, issue 17).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.singan.nets import RECONSTRUCTION_RULE, SAMPLING_RULE, statistics_at
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


def test_the_sampling_rule_is_standing_statistics_at_the_last_scale(tiny_run):
    """Finest scale: its standing statistics (the mean of random samples' own statistics, from their fixed
    stream); frozen scales: running averages; batch-independent; the reconstruction keeps its own."""
    from fewgan.singan.pyramid import STANDING_SEED, random_noise, standing_count

    assert SAMPLING_RULE == "standing" and RECONSTRUCTION_RULE == "as-trained"
    assert [statistics_at(j, 3) for j in range(4)] == ["module", "module", "module", "standing"]
    assert [statistics_at(j, 3, RECONSTRUCTION_RULE) for j in range(4)] == ["module", "module", "module", "own"]
    model = SinGANModel.load(tiny_run)
    together = model.sample_tensor(3, seed=4, batch=3)
    alone = model.sample_tensor(3, seed=4, batch=1)
    assert torch.allclose(together, alone, atol=1e-5)
    # by hand: each BatchNorm input of the last generator over standing_count samples of the fixed stream,
    # the last scale on each sample's own statistics and the frozen scales in eval mode
    last, n = model.generators[-1], model.num_scales
    seen: dict[int, list] = {}
    hooks = [block.conv.register_forward_hook(lambda mod, args, out, i=i: seen.setdefault(i, []).append(out))
             for i, block in enumerate(last.features)]
    try:
        count = standing_count(model.size)
        with torch.no_grad():
            for i in range(count):
                g = torch.Generator().manual_seed(STANDING_SEED * 1000 + i)
                model.scales.coarse_to_fine(random_noise(g), stop=n - 1, rule="as-trained")
    finally:
        for h in hooks:
            h.remove()
    by_hand = [(torch.stack([x.double().mean((0, 2, 3)) for x in seen[i]]).mean(0),
                torch.stack([x.double().var((0, 2, 3), unbiased=False) for x in seen[i]]).mean(0))
               for i in range(len(last.features))]
    stored = model.standing_statistics(n - 1)
    assert len(stored) == len(by_hand) == len(last.features)
    for (m, v), (hm, hv) in zip(stored, by_hand):
        assert m.shape == (1, last.feature_count)
        assert torch.allclose(m[0].double(), hm, rtol=1e-4, atol=1e-5)
        assert torch.allclose(v[0].double(), hv, rtol=1e-4, atol=1e-6)
    # the samples are the frozen scales in eval mode and the last generator on those statistics
    model.generators[-1] = _WithStatistics(last, stored)
    try:
        again = model.sample_tensor(1, seed=4, rule="running")
    finally:
        model.generators[-1] = last
    assert torch.allclose(again[0], together[0], atol=1e-5)
    for rule in ("running", "as-trained"):   # the rule changes the images
        assert not torch.allclose(together, model.sample_tensor(3, seed=4, rule=rule), atol=1e-3)


def test_own_statistics_give_every_input_the_same_contrast_standing_statistics_keep_it(tiny_run):
    """Why the sampler does not normalise a sample by its own statistics: BatchNorm on one image's own
    statistics removes the gain of its input (a sample with fainter objects comes out as contrasted as
    any other: the blown-out samples of issue 17's synth run), fixed statistics keep it."""
    model = SinGANModel.load(tiny_run)
    last = model.generators[-1]
    stored = model.standing_statistics(model.num_scales - 1)
    g = torch.Generator().manual_seed(0)
    z = torch.randn((1, model.channels) + model.size, generator=g)
    zero = torch.zeros_like(z)
    with torch.no_grad():
        own = [last(a * z, zero, "own") for a in (0.5, 1.0, 2.0)]
        standing = [last(a * z, zero, stored) for a in (0.5, 1.0, 2.0)]
    # the first convolution is linear, its bias cancels in the mean: own statistics see one input (up to
    # BatchNorm's eps against the variance); standing statistics see three
    gap = lambda ys: max(float((ys[0] - ys[1]).abs().max()), float((ys[1] - ys[2]).abs().max()))  # noqa: E731
    assert gap(own) < 2e-3 and gap(standing) > 20 * gap(own), (gap(own), gap(standing))
    spread = [float(y.std()) for y in standing]
    assert spread[0] < spread[1] < spread[2], spread


class _WithStatistics(torch.nn.Module):
    """Runs a generator with the given ``(mean, var)`` statistics whatever the caller asks for."""

    def __init__(self, generator, statistics):
        super().__init__()
        self.generator, self.statistics = generator, statistics

    def forward(self, z, prev, statistics="module"):
        return self.generator(z, prev, self.statistics)


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


def test_the_model_file_stores_every_scale_s_standing_statistics_and_an_older_file_computes_the_same(tiny_run):
    """generator.pt holds the standing statistics of every scale (the sampler and scales.png need them);
    a model file from before them computes them when first needed, from the same fixed stream: same samples."""
    from fewgan.run import SINGAN_MODEL_FILE, load_checkpoint

    data = load_checkpoint(tiny_run / SINGAN_MODEL_FILE)
    assert sorted(data["standing"]) == list(range(len(data["generators"])))
    stored = SinGANModel(data, torch.device("cpu"))
    older = SinGANModel({k: v for k, v in data.items() if k != "standing"}, torch.device("cpu"))
    for k in range(stored.num_scales):
        for (m, v), (m2, v2) in zip(stored.standing_statistics(k), older.standing_statistics(k)):
            assert torch.allclose(m, m2, atol=1e-6) and torch.allclose(v, v2, rtol=1e-5, atol=1e-7)
    assert torch.allclose(stored.sample_tensor(2, seed=3), older.sample_tensor(2, seed=3), atol=1e-5)


def test_sample_contrast_is_each_samples_std_over_the_real_images():
    from fewgan.singan.outputs import sample_contrast

    real = torch.randn(3, 20, 30, generator=torch.Generator().manual_seed(0))
    ref = float(real.double().std(unbiased=False))
    samples = torch.stack([real * 0.5 + 0.3, real, real * 2.0 - 1.0])   # brightness does not count
    lo, mean, hi = sample_contrast(samples, real)
    assert (lo, hi) == (0.5, 2.0) and mean == pytest.approx(3.5 / 3, abs=1e-3)
    assert float(samples[2].double().std(unbiased=False)) / ref == pytest.approx(2.0)
    assert sample_contrast(samples, torch.zeros(3, 20, 30)) is None           # a flat real image


def test_every_scale_end_records_its_samples_contrast(tiny_run):
    import json

    ends = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    ends = [r for r in ends if r.get("event") == "scale_end"]
    assert [r["scale"] for r in ends] == [0, 1, 2, 3]
    for r in ends:
        lo, mean, hi = r["sample_contrast"]
        assert 0 < lo <= mean <= hi
