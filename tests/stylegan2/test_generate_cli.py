"""Generation (fallback order, bit depth, seeds) and the CLI's one-line errors."""

import json

import numpy as np
import pytest
import torch

import fewgan
from fewgan.cli import main
from fewgan.errors import FewganError
from fewgan.stylegan2.generate import StyleGAN2Model, generate_to_folder, parse_seeds
from fewgan.stylegan2.train import train


@pytest.fixture(scope="module")
def run16(tmp_path_factory):
    """A 16-bit gray TIFF data set and a 4-step run on it with best-metric files."""
    root = tmp_path_factory.mktemp("gen")
    data = fewgan.synth(root / "data", mode="folder", n=6, size=16, seed=0, bit_depth=16, format="tiff")
    opts = dict(resolution=16, batch=4, z_dim=16, w_dim=32, cbase=256, cmax=32, classical="none",
                diffaugment="none", kimg=0.016, eval_every=1, eval_images=4, sample_every=0)
    run = train(data, results=root / "results", quiet=True, metric_fn=lambda fake: float(fake.std()), **opts)
    return run


def test_model_samples_in_the_data_sets_bit_depth(run16):
    model = fewgan.load(run16)
    assert "best EMA generator" in model.source
    a = model.sample(3, seed=5, psi=0.7)
    assert a.shape == (3, 16, 16, 1) and a.dtype == np.uint16
    t = model.sample_tensor(3, seed=5, psi=0.7)
    b = model.sample(seeds=[6], psi=0.7, batch=1)  # an image depends on its seed only, bit for bit
    assert np.array_equal(a[1], b[0]) and not np.array_equal(a[0], a[1])
    assert t.shape == (3, 1, 16, 16) and t.dtype == torch.float32


def test_generate_to_folder_writes_tiff_16_bit_grid_and_strip(run16, tmp_path):
    out = generate_to_folder(run16, tmp_path / "out", seeds="3-5", psi=0.7, grid=True, interpolate=True, quiet=True)
    files = sorted(p.name for p in out.glob("seed*"))
    assert files == ["seed000003.tif", "seed000004.tif", "seed000005.tif"]
    img, meta = fewgan.read_image(out / "seed000004.tif")
    assert meta.dtype == "uint16" and meta.channels == 1
    assert (out / "grid.png").is_file() and (out / "interpolation.png").is_file()
    info = json.loads((out / "generation.json").read_text())
    assert info["psi"] == 0.7 and info["bit_depth"] == 16 and "best_G_ema.pt" in info["checkpoint"]


def test_generation_fallback_order(run16, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(run16, run)
    ck = run / "checkpoints"
    assert StyleGAN2Model.load(run).path.name == "best_G_ema.pt"
    (ck / "best_G_ema.pt").unlink()
    model = StyleGAN2Model.load(run)
    assert model.path.name == "best_G.pt" and "best generator" in model.source
    (ck / "best_G.pt").unlink()
    model = StyleGAN2Model.load(run)
    assert model.path.name == "last.pt" and "last checkpoint" in model.source
    # the last checkpoint's EMA generator is what it loads
    state = torch.load(ck / "last.pt", weights_only=True)["G_ema"]
    assert all(torch.equal(v, model.G.state_dict()[k]) for k, v in state.items())
    (ck / "last.pt").unlink()
    with pytest.raises(FewganError, match="no generator checkpoint"):
        StyleGAN2Model.load(run)


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds(None, 3) == [0, 1, 2]
    assert parse_seeds("5-9", 2) == [5, 6]
    with pytest.raises(FewganError):
        parse_seeds("a-b")


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fewgan: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, run16):
    (tmp_path / "empty").mkdir()
    assert "no PNG" in _one_line_error(capsys, ["stylegan2", "train", str(tmp_path / "empty")])
    mixed = tmp_path / "mixed"
    fewgan.synth(mixed, mode="folder", n=1, size=16, bit_depth=8, seed=0)
    fewgan.synth(tmp_path / "m16", mode="folder", n=1, size=16, bit_depth=16, seed=1)
    (tmp_path / "m16" / "particles_0000.png").rename(mixed / "other.png")
    assert "mixed bit depths" in _one_line_error(capsys, ["stylegan2", "train", str(mixed), "--resolution", "16"])
    assert "power of two" in _one_line_error(capsys, ["stylegan2", "train", str(mixed), "--resolution", "48"])
    norun = tmp_path / "norun"
    norun.mkdir()
    (norun / "config.json").write_text((run16 / "config.json").read_text())
    assert "no generator checkpoint" in _one_line_error(capsys, ["stylegan2", "generate", str(norun)])
    assert "not found" in _one_line_error(capsys, ["stylegan2", "generate", str(tmp_path / "nothing")])
    assert "give an image FOLDER" in _one_line_error(capsys, ["stylegan2", "train"])
    assert "at least 1" in _one_line_error(capsys, ["stylegan2", "train", str(mixed), "--batch", "0"])


def test_cli_dry_run_prints_the_resolved_config(capsys, tmp_path):
    assert main(["stylegan2", "train", str(tmp_path), "--dry-run", "--preset", "seed", "--kimg", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = out["config"]
    assert cfg["classical"] == "seed" and cfg["kimg"] == 2.0 and cfg["batch"] == 16 and cfg["r1_gamma"] == 5.0
    assert cfg["diffaugment"] == "color,translation,cutout" and cfg["ema_decay"] == 0.999


def test_a_best_file_newer_than_the_manifest_is_not_trusted(run16, tmp_path):
    """A kill between the best_* files: best_G_ema.pt of a later evaluation, best_info.json of the earlier."""
    import shutil

    from fewgan.run import save_checkpoint

    run = tmp_path / "copy"
    shutil.copytree(run16, run)
    ck = run / "checkpoints"
    step = json.loads((ck / "best_info.json").read_text())["step"]
    newer = torch.load(ck / "best_G_ema.pt", weights_only=True)
    newer["step"] = step + 2
    save_checkpoint(ck / "best_G_ema.pt", newer)
    model = StyleGAN2Model.load(run)
    assert model.path.name == "best_G.pt" and f"(step {step})" in model.source


def test_a_failed_start_leaves_no_run_folder(tmp_path, monkeypatch):
    from fewgan.stylegan2 import train as train_mod

    def broken(self, *args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(train_mod.Trainer, "__init__", broken)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    with pytest.raises(RuntimeError, match="simulated"):
        train_mod.train(images=images, results=tmp_path / "results", quiet=True, resolution=16, kimg=0.008,
                        eval_every=0)
    assert (tmp_path / "results").is_dir() and list((tmp_path / "results").iterdir()) == []


def test_dry_run_states_images_steps_and_a_time_estimate(tmp_path, capsys):
    from PIL import Image

    from fewgan.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / f"{i}.png")
    assert main(["stylegan2", "train", str(folder), "--dry-run", "--resolution", "16", "--epochs", "100"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["images"] == 5 and plan["total_images"] == 500 and plan["steps"] == 32  # ceil(500 / 16)
    assert "one CPU thread" in plan["estimate"]
    assert not (tmp_path / "results").exists()
    # a labelled run's image-only critic is in the estimate (it costs a second critic's passes)
    from fewgan.stylegan2.config import StyleGAN2Config
    from fewgan.stylegan2.train import IMAGE_CRITIC_COST, dry_run_plan

    cfg = StyleGAN2Config(resolution=64, kimg=10)
    plain, labelled = (dry_run_plan(c, folder, None)["cpu_seconds"] for c in (cfg, cfg.replace(labels="beside")))
    assert plain == 1300 and labelled == round(1300 * IMAGE_CRITIC_COST) > plain
    assert dry_run_plan(cfg.replace(labels="beside", image_critic=False), folder, None)["cpu_seconds"] == plain
