"""Native resolution (issue 14, points 1-2): windows of the coarse-to-fine pass, tiled sampling, crops.

Everything at tiny sizes: a 96 px image, tiles and crops of 24-32 px. The tiled and windowed passes
must equal the plain :meth:`TrainedScales.coarse_to_fine` up to float rounding (the kernels differ:
other shapes, fewer zero terms in the resize matrices), so the comparisons state a tolerance. They run
in float64: untrained generators have tiny activations, which BatchNorm scales up by ~100x, and
float32 rounding scaled up that way would hide a real mismatch (a wrong statistic moves pixels by
~0.1) less clearly than float64's 1e-12.
"""

from __future__ import annotations

import pytest
import torch

from fewgan.run import torch_threads
from fewgan.singan.nets import Generator
from fewgan.singan.pyramid import (TrainedScales, fixed_noise, fixed_noise_window, plan_pyramid, tiles,
                                   upsample_tiled)
from fewgan.singan.nets import upsample

TOL = 1e-9


def _scales(channels: int = 1, size: int = 96, seed: int = 0) -> TrainedScales:
    """Untrained generators of a 96 px native pyramid with random BatchNorm weights and running averages."""
    torch.manual_seed(seed)
    p = plan_pyramid(size, size, 16, size)
    gens = []
    for k in range(len(p.sizes)):
        g = Generator(channels, 8, 5, 3, conv="direct")
        for block in g.features:
            block.norm.running_mean.uniform_(-0.05, 0.05)
            block.norm.running_var.uniform_(0.0005, 0.002)
            block.norm.weight.data.uniform_(0.5, 1.5)
            block.norm.bias.data.uniform_(-0.2, 0.2)
        gens.append(g.double().eval().requires_grad_(False))
    amps = [1.0] + [0.1] * (len(p.sizes) - 1)
    return TrainedScales(gens, amps, p.sizes, p.scale_factor)


def _noises(scales: TrainedScales, channels: int = 1, n: int = 1, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((n, channels) + tuple(s), generator=g, dtype=torch.float64) for s in scales.sizes]


def test_tiles_partition_the_image():
    ts = tiles((70, 45), 32)
    mask = torch.zeros(70, 45, dtype=torch.int64)
    for y0, y1, x0, x1 in ts:
        mask[y0:y1, x0:x1] += 1
    assert len(ts) == 3 * 2 and bool((mask == 1).all())


def test_upsample_tiled_equals_upsample():
    scales = _scales()
    y = torch.randn(2, 3, 54, 41, dtype=torch.float64)
    for tile in (7, 16, 64):
        got = upsample_tiled(y, (72, 55), scales.scale_factor, tile)
        assert torch.allclose(got, upsample(y, (72, 55), scales.scale_factor), atol=TOL)


@pytest.mark.parametrize("rule", ["as-trained", "running", "own"])
def test_tiled_equals_untiled(rule):
    """Whole-image BatchNorm statistics from the tiles: the tiled sample is the untiled one."""
    scales = _scales(channels=3)
    noises = _noises(scales, 3, n=2)
    stop = len(scales.sizes) - 1
    with torch.no_grad():
        whole = scales.coarse_to_fine(fixed_noise(noises), stop=stop, batch=2, rule=rule)
        tiled = scales.tiled(fixed_noise(noises), stop=stop, tile=24, batch=2, rule=rule)
    assert tiled.shape == whole.shape == (2, 3, 96, 96)
    diff = (tiled - whole).abs().max().item()
    assert diff < TOL, diff
    # the tile's own statistics would not do: normalising each tile by itself moves pixels visibly
    assert (whole[0] - whole[1]).abs().max() > 0.05  # (and the two images differ: per-image statistics)


@pytest.mark.parametrize("tile", [None, 24])
def test_each_sees_every_scale_of_one_pass_tiled_or_not(tile):
    """``each(j, y_in, noise_j, y_out)`` hands over every scale of one pass, tiled or not: y_out is what a
    pass stopped at j makes under rule None, and scale j alone on (y_in, noise_j) with the 'as-trained'
    rule is what a pass stopped at j makes under that rule (scales.png's rows)."""
    scales = _scales()
    noises = _noises(scales, n=2)
    stop = len(scales.sizes) - 1
    seen = {}
    with torch.no_grad():
        scales.whole(fixed_noise(noises), stop=stop, batch=2, tile=tile,
                     each=lambda j, y_in, z, y: seen.setdefault(j, (y_in.clone(), z.clone(), y.clone())))
        assert sorted(seen) == list(range(stop + 1))
        for j in range(stop + 1):
            y_in, noise_j, y_out = seen[j]
            assert torch.equal(noise_j, noises[j])
            alone = scales.coarse_to_fine(fixed_noise(noises), stop=j, batch=2)
            assert y_out.shape == alone.shape == (2, 1) + tuple(scales.sizes[j])
            assert torch.allclose(y_out, alone, atol=TOL)
            trained = scales.coarse_to_fine(fixed_noise(noises), stop=j, batch=2, rule="as-trained")
            again = scales.whole(lambda i, shape: noise_j, start=j, stop=j, image=y_in, tile=tile, rule="as-trained")
            assert torch.allclose(again, trained, atol=TOL)
    assert not torch.allclose(seen[stop][2], trained)  # the rules differ: the test can fail


def test_tiled_per_scale_output_is_one_pass_when_it_fits():
    scales = _scales()
    noises = _noises(scales)
    stop = len(scales.sizes) - 1
    with torch.no_grad():
        a = scales.coarse_to_fine(fixed_noise(noises), stop=stop, rule="as-trained")
        b = scales.tiled(fixed_noise(noises), stop=stop, tile=96, rule="as-trained")
    assert torch.equal(a, b)  # one tile: the plain pass itself, bit for bit


def test_window_pass_equals_whole_pass_cropped():
    """A crop's coarse-to-fine pass computes only its region, and gives the whole pass's pixels there."""
    scales = _scales(channels=2)
    noises = _noises(scales, 2)
    stop = len(scales.sizes) - 1
    with torch.no_grad():
        whole = scales.coarse_to_fine(fixed_noise(noises), stop=stop - 1, to_next=True)
        for window in [(0, 32, 0, 32), (40, 72, 13, 45), (64, 96, 64, 96)]:
            got = scales.coarse_to_fine_window(fixed_noise_window(noises), stop=stop - 1, window=window,
                                               to_next=True, channels=2)
            y0, y1, x0, x1 = window
            assert (got - whole[..., y0:y1, x0:x1]).abs().max().item() < TOL
    runs = scales.input_windows((40, 72, 13, 45), stop=stop - 1, to_next=True)
    grown = runs[stop - 1][0]
    h, w = scales.sizes[stop - 1]
    # the scale below the crop runs on about the crop's size there plus margins, not on the whole scale
    assert (grown[1] - grown[0]) < h and (grown[3] - grown[2]) < w
    assert runs[0][0] == (0,) + (scales.sizes[0][0],) + (0, scales.sizes[0][1])  # the coarsest scale: whole


# --------------------------------------------------------------------------- training at native size
NATIVE = dict(steps=3, log_every=2, checkpoint_every=2, sample_count=1, min_size=16, max_size=32, native=True,
              crop=24)


@pytest.fixture(scope="module")
def gray72(tmp_path_factory):
    from .conftest import blobs, write_png

    return write_png(tmp_path_factory.mktemp("img") / "gray.png", blobs(72, 64, 1, seed=4))


@pytest.fixture(scope="module")
def native_run(tmp_path_factory, gray72):
    from fewgan.singan.train import train

    with torch_threads(1):
        return train(gray72, results=tmp_path_factory.mktemp("runs"), quiet=True, **NATIVE)


def _weights(run):
    from fewgan.run import load_checkpoint

    return load_checkpoint(run / "generator.pt")


def test_native_run_keeps_the_size_and_trains_on_crops(native_run):
    from fewgan.run import read_metrics

    run = native_run
    log = (run / "log.txt").read_text()
    model = _weights(run)
    sizes = [tuple(s) for s in model["pyramid"]["sizes"]]
    assert sizes[-1] == (72, 64)  # max_size 32 would have made it 32 x 28
    assert "resolution: the model works at 72x64 px (native)" in log
    cropped = [k for k, s in enumerate(sizes) if max(s) > 24]
    assert cropped and cropped[-1] == len(sizes) - 1
    assert f"crops: scales s{cropped[0]}..s{cropped[-1]} (larger than --crop 24)" in log
    ends = [r for r in read_metrics(run) if r.get("event") == "scale_end"]
    assert [tuple(r["size"]) for r in ends] == sizes  # whole-image evaluation of the cropped scales, in tiles
    assert all(r["psnr"] == r["psnr"] for r in ends)  # finite


def test_crop_step_sees_crops_and_only_the_region_it_needs(gray72):
    """At a cropped scale the critic sees crop x crop images; the pass computes regions, not whole scales."""
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import SinGANTrainer, prepare
    from fewgan.run import resolve_device

    cfg = SinGANConfig.from_dict(NATIVE)
    tensor, meta, pyramid = prepare(gray72, cfg)
    trainer = SinGANTrainer(cfg, pyramid, meta.to_dict(), None, resolve_device("cpu"))
    trainer.start(tensor)
    last = len(pyramid.sizes) - 1
    for k in range(last + 1):
        trainer._begin_scale(k)
    seen = []
    dis = trainer.state.discriminator
    hook = dis.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    shapes = []
    hooks = [g.register_forward_hook(lambda m, i, o, j=j: shapes.append((j, tuple(i[0].shape[-2:]))))
             for j, g in enumerate(trainer.state.generators)]
    window = (40, 64, 20, 44)
    trainer.crop_window = lambda k: window
    trainer.train_step()
    hook.remove()
    for h in hooks:
        h.remove()
    assert set(seen) == {(24, 24)}  # the critic scores 24 px crops of the real and the fake
    sizes = pyramid.sizes
    runs = dict(shapes)
    # the current scale runs on the crop and its 5 px margin
    assert runs[last] == (34, 34)
    # the scale below runs on the region the crop needs, smaller than that scale on both sides ...
    assert all(a < b for a, b in zip(runs[last - 1], sizes[last - 1]))
    # ... and every scale on the planned window (the coarse ones whole)
    plan = trainer.scales.input_windows((35, 69, 15, 49), stop=last - 1, to_next=True)
    for j in range(last):
        y0, y1, x0, x1 = plan[j][0]
        assert runs[j] == (y1 - y0, x1 - x0), j
    assert runs[0] == tuple(sizes[0])


def test_crops_reach_the_borders_as_often_as_the_interior(gray72):
    """Each border row and column is in a crop as often as an interior one (the generator must learn
    the image border, where its zero padding is): 4000 draws of 24 px crops of a 72 x 64 scale."""
    from fewgan.run import resolve_device
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.train import SinGANTrainer, prepare

    cfg = SinGANConfig.from_dict(NATIVE)
    _, meta, pyramid = prepare(gray72, cfg)
    trainer = SinGANTrainer(cfg, pyramid, meta.to_dict(), None, resolve_device("cpu"))
    last = len(pyramid.sizes) - 1
    h, w = pyramid.sizes[last]
    torch.manual_seed(0)
    rows, cols = torch.zeros(h), torch.zeros(w)
    for _ in range(4000):
        y0, y1, x0, x1 = trainer.crop_window(last)
        assert (y1 - y0, x1 - x0) == (24, 24) and 0 <= y0 and y1 <= h and 0 <= x0 and x1 <= w
        rows[y0:y1] += 1
        cols[x0:x1] += 1
    for cover, size in ((rows, h), (cols, w)):
        interior = 4000 * 24 / (size + 23)  # a line at least a crop away from both borders
        assert abs(cover[24:size - 24].mean().item() / interior - 1) < 0.1
        # the border lines as often as the interior (a corner drawn from 0 .. size - crop: 1/24 of it),
        # the lines within a crop of a border at most twice as often
        for edge in (cover[0], cover[-1]):
            assert 0.8 < edge.item() / interior < 1.2
        assert cover.max().item() < 2.2 * interior


def test_native_resume_equals_uninterrupted(tmp_path, gray72, native_run):
    from fewgan.run import load_checkpoint
    from fewgan.singan.train import train

    full = native_run
    n_scales = len(_weights(full)["generators"])
    # 4 steps per scale; stop in the middle of the last (cropped) scale
    cut = train(gray72, results=tmp_path / "cut", quiet=True, stop_after=4 * (n_scales - 1) + 3, **NATIVE)
    ckpt = load_checkpoint(cut / "checkpoints" / "resume.pt")
    assert (ckpt["scale"], ckpt["step"], ckpt["begun"]) == (n_scales - 1, 2, True)
    train(resume=cut, quiet=True)
    a, b = _weights(full), _weights(cut)
    assert a["amps"] == b["amps"]
    for ga, gb in zip(a["generators"], b["generators"]):
        for key in ga:
            assert torch.equal(ga[key], gb[key]), key


def test_resume_refuses_a_changed_crop_or_native(tmp_path, gray72):
    from fewgan.errors import FewganError
    from fewgan.singan.train import train

    cut = train(gray72, results=tmp_path / "cut", quiet=True, stop_after=5, **NATIVE)  # checkpoint at s1 step 0
    with pytest.raises(FewganError, match="cannot change crop"):
        train(resume=cut, crop=32, quiet=True)
    with pytest.raises(FewganError, match="cannot change native"):
        train(resume=cut, native=False, quiet=True)


def test_default_crop_changes_nothing_at_the_seed_sizes(tmp_path, gray72):
    """max_size 200 (the seed's) never exceeds the 256 px crop: the run is the one without crops, bit for bit."""
    from fewgan.singan.train import train

    opts = dict(steps=2, log_every=2, checkpoint_every=2, sample_count=1, min_size=16, max_size=48)
    a = train(gray72, results=tmp_path / "a", quiet=True, **opts)
    b = train(gray72, results=tmp_path / "b", quiet=True, crop=0, **opts)
    wa, wb = _weights(a), _weights(b)
    assert wa["amps"] == wb["amps"]
    for ga, gb in zip(wa["generators"], wb["generators"]):
        for key in ga:
            assert torch.equal(ga[key], gb[key]), key


def test_labels_train_with_crops(tmp_path):
    from fewgan.data.synthetic import synth
    from fewgan.singan.sample import SinGANModel
    from fewgan.singan.train import train

    image = synth(tmp_path / "synth", size=64, seed=3, density=40.0, radius=3.0)
    run = train(image, results=tmp_path / "runs", quiet=True, labels="beside", **NATIVE)
    model = SinGANModel.load(run)
    assert model.outputs == ("labels",) and model.size == (64, 64)
    images, labels = model.sample_with_labels(1, seed=0)
    assert images.shape == (1, 1, 64, 64) and labels[0].shape == (64, 64)
    tiled, tiled_labels = model.sample_with_labels(1, seed=0, tile=24)
    assert (tiled - images).abs().max() < 1e-3


# --------------------------------------------------------------------------- tiled sampling of a trained run
def test_tiled_sample_equals_untiled_sample(native_run):
    from fewgan.singan.sample import SinGANModel

    model = SinGANModel.load(native_run)
    whole = model.sample_tensor(2, seed=5, scale=1.5)          # 108 x 96: fits, untiled
    tiled = model.sample_tensor(2, seed=5, scale=1.5, tile=20)  # 30 tiles at the finest scale
    assert whole.shape == tiled.shape == (2, 1, 108, 96)
    assert (whole - tiled).abs().max().item() < 1e-4  # float32 rounding, amplified by BatchNorm
    rec = model.reconstruct_tensor()
    assert (model.reconstruct_tensor(tile=16) - rec).abs().max().item() < 1e-4


def test_automatic_tiling_above_the_memory_budget(native_run, monkeypatch):
    from fewgan.singan import sample
    from fewgan.singan.sample import SinGANModel

    model = SinGANModel.load(native_run)
    sizes = model.scale_sizes()
    assert model.tile_for(sizes, None) is None
    # 8 maps of 128 features at 4096 + 10 px squared: 69 GB untiled, so a 4096 px sample is tiled
    big = model.scale_sizes(size="4096x4096")
    assert model.untiled_bytes(big) == 8 * 4 * model.features[-1] * 4106 * 4106
    assert model.untiled_bytes(big, batch=2) == 2 * model.untiled_bytes(big)
    assert model.tile_for(big, None) == sample.DEFAULT_TILE
    monkeypatch.setattr(sample, "MEMORY_BUDGET", 1000)
    calls = []
    real = type(model.scales).tiled
    monkeypatch.setattr(type(model.scales), "tiled", lambda self, *a, **k: calls.append(k["tile"]) or real(self, *a, **k))
    model.sample_tensor(1, seed=0)
    assert calls == [sample.DEFAULT_TILE]


def test_no_seams_on_a_flat_field(native_run):
    """The finest scale of a trained run on a flat field (a constant image, no noise): inside the image its
    output is constant (it only changes within ``pad`` px of the image border, the zero padding), so a
    step at a tile border would be a seam. Tiled: none (below 1e-5 of a [-1, 1] range); tiles without
    their overlap, each zero-padded like an image border: a step as large as the border effect."""
    from fewgan.singan.pyramid import _grow, _whole_moments, tiles
    from fewgan.singan.sample import SinGANModel

    model = SinGANModel.load(native_run)
    scales, last, size, tile = model.scales, model.num_scales - 1, model.size, 16
    flat = torch.full((1, model.channels) + size, 0.25)  # every trained channel (a gray image trains as three)
    zero = lambda j, shape: torch.zeros(shape)  # noqa: E731
    with torch.no_grad():
        whole = scales.coarse_to_fine(zero, start=last, stop=last, image=flat, rule="as-trained")[0, 0]
        tiled = scales.tiled(zero, start=last, stop=last, image=flat, tile=tile, rule="as-trained")[0, 0]
        gen = scales.generators[last]
        stats = [(m, v) for m, v, _ in _whole_moments(gen, flat, size, tile)]
        naive = torch.empty_like(whole)
        for t in tiles(size, tile):
            y0, y1, x0, x1 = _grow(t, 0, size)
            naive[t[0]:t[1], t[2]:t[3]] = gen(flat[..., y0:y1, x0:x1], flat[..., y0:y1, x0:x1], stats)[0, 0]
    inner = slice(gen.pad + 1, size[0] - gen.pad - 1)
    inner_x = slice(gen.pad + 1, size[1] - gen.pad - 1)
    assert (whole[inner, inner_x] - whole[inner, inner_x].mean()).abs().max() < 1e-5  # a flat field inside
    assert (whole - whole[inner, inner_x].mean()).abs().max() > 1e-3  # ... and the image border differs
    border_cols = [b for b in range(tile, size[1], tile)]
    for image, expect_seam in ((tiled, False), (naive, True)):
        step = image[inner].diff(dim=1).abs().amax(dim=0)   # largest step between columns c and c + 1
        at_borders = step[[b - 1 for b in border_cols]].max().item()
        if expect_seam:
            assert at_borders > 1e-3
        else:
            assert at_borders < 1e-5
            step_rows = image[:, inner_x].diff(dim=0).abs().amax(dim=1)
            assert step_rows[[b - 1 for b in range(tile, size[0], tile)]].max().item() < 1e-5


def test_tile_below_the_receptive_field_is_one_line_exit_2(native_run, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "fewgan", "singan", "sample", str(native_run), "--tile", "5",
                           "--out", str(out), "--device", "cpu"], capture_output=True, text=True,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tile 5 is smaller than the generators' receptive field (11 px)" in lines[0]
    assert not any(out.iterdir()) if out.exists() else True


def test_memory_is_released_between_the_phases_of_a_run(gray72, tmp_path, monkeypatch):
    """fewgan.run.release_memory runs after each scale's set-up passes, at each in-scale checkpoint, before
    and after each scale's end passes, after the model file and after scales.png (bench/README.md: without
    it a 2048 px run passed 4 GiB)."""
    from fewgan import api, run
    from fewgan.report import plots  # noqa: F401  (bound to the real release_memory before the patch below,
    # as in a full run of the suite: the figure's per-row calls are the next test's, not counted here)
    from fewgan.singan import train as train_module

    calls = []
    where = {}
    monkeypatch.setattr(train_module.SinGANTrainer, "start", _remember(train_module.SinGANTrainer.start, where))
    monkeypatch.setattr(train_module, "release_memory", lambda: calls.append(_phase(where["trainer"])))
    monkeypatch.setattr(run, "release_memory", lambda: calls.append("api"))
    with torch_threads(1):
        out = api.train_singan(gray72, results=tmp_path, quiet=True, **NATIVE)  # steps 0..3, checkpoint every 2
    assert (out / "scales.png").is_file() and (out / "report.html").is_file()
    n = len(_weights(out)["generators"])
    # per scale: after the set-up passes (step 0), at the checkpoint after step 1 (step 2), before and
    # after the end passes (step 4); then after the model file, with the training state dropped
    # ("model file": the figure and report load the model from it), and after the figure
    per_scale = [c for k in range(n) for c in ((k, 0, True), (k, 2, True), (k, 4, True), (k, 4, True))]
    assert calls == per_scale + ["model file", "api"]


def _remember(start, where):
    def wrapped(self, image):
        where["trainer"] = self
        return start(self, image)
    return wrapped


def _phase(trainer):
    st = trainer.state
    return "model file" if st is None else (st.scale, st.step, st.begun)


def test_scales_figure_is_two_passes_whose_rows_equal_passes_stopped_at_each_scale(native_run, tmp_path, monkeypatch):
    """scales.png is made from one reconstruction pass and one sample pass (``each``; each scale once more
    alone for its own statistics), instead of a pass per row (hours at 2048 px); row k equals a pass
    stopped at scale k under the sampling rule, panels are at most SCALES_PANEL_MAX px (area-averaged),
    and memory is released after each pass."""
    from fewgan.report import plots
    from fewgan.singan.nets import RECONSTRUCTION_RULE, SAMPLING_RULE
    from fewgan.singan.pyramid import random_noise
    from fewgan.singan.sample import SinGANModel

    model = SinGANModel.load(native_run)
    n = model.num_scales
    calls, passes = [], []
    monkeypatch.setattr(plots, "release_memory", lambda: calls.append(1))
    whole = TrainedScales.whole
    monkeypatch.setattr(TrainedScales, "whole",
                        lambda self, *a, **k: passes.append((k.get("start", 0), k["stop"])) or whole(self, *a, **k))
    with torch_threads(1):
        rows = plots.singan_scale_panels(model)
        plots.plot_singan_scales(model, tmp_path / "scales.png")
    assert (tmp_path / "scales.png").stat().st_size > 0
    # per figure: two passes to the finest scale, each scale but the finest once more alone (its own
    # statistics), a release after each of the two passes
    chains = [p for p in passes if p == (0, n - 1)]
    assert len(chains) == 4 and sorted(p for p in passes if p != (0, n - 1)) == sorted([(k, k) for k in range(n - 1)] * 4)
    assert len(calls) == 4
    monkeypatch.setattr(TrainedScales, "whole", whole)
    whole = model.scales.whole
    assert len(rows) == n and all(len(r) == 4 for r in rows)
    g = torch.Generator().manual_seed(model.config.seed * 1000 + 999)
    with torch.no_grad():  # the one sampling rule of `fewgan singan sample` and the report (issue 17.4)
        for k in range(n):
            recon = whole(fixed_noise(model.fixed_noises), stop=k, channels=model.channels, rule=RECONSTRUCTION_RULE)
            assert torch.allclose(rows[k][1], model.image(recon[0]), atol=1e-5)
            assert torch.allclose(rows[k][0], model.image(model.reals[k][0]))
        samples = whole(random_noise(g, model.device), stop=n - 1, batch=2, channels=model.channels,
                        rule=SAMPLING_RULE)
        g = torch.Generator().manual_seed(model.config.seed * 1000 + 999)
        coarse = whole(random_noise(g, model.device), stop=n - 2, batch=2, channels=model.channels,
                       rule=SAMPLING_RULE)   # row n - 2: scale n - 2 as the last scale, its standing statistics
    assert torch.allclose(rows[-1][2], model.image(samples[0]), atol=1e-5)
    assert torch.allclose(rows[-2][3], model.image(coarse[1]), atol=1e-5)
    assert torch.allclose(rows[-1][3], model.image(samples[1]), atol=1e-5)
    assert not torch.allclose(rows[-1][2], rows[-1][3])  # two different samples
    # a panel larger than the display size is area-averaged down to it
    small = plots.singan_scale_panels(model, max_side=20)
    big = rows[-1][1]
    assert max(small[-1][1].shape[-2:]) == 20 and max(small[0][1].shape[-2:]) <= 20
    pooled = torch.nn.functional.interpolate(big[None], size=tuple(small[-1][1].shape[-2:]), mode="area")[0]
    assert torch.allclose(small[-1][1], pooled, atol=1e-5)