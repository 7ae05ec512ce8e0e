"""The labelled-data benchmarks (bench/label_quality.py, bench/utility_story.py) in their --quick mode.

What could fail: the real reference must be F1 1.0 on exact synth labels and count exactly the
held-out instances (a wrong threshold, a wrong label file or a resized image breaks it); the
output must carry every number bench/README.md reports.
"""

import json
import math

import numpy as np
import pytest


def _instances(paths):
    from fewgan.data.labels import labels_beside, read_labels

    return sum(int(read_labels(labels_beside(p)).max()) for p in paths)


@pytest.mark.slow
def test_label_quality_and_utility_story_quick(tmp_path, bench_script):
    lq = bench_script("label_quality")
    result = lq.main(["--quick", "--work", str(tmp_path / "work"), "--json", str(tmp_path / "lq.json")])
    assert json.loads((tmp_path / "lq.json").read_text())["singan"]["real_reference"]["f1"] == 1.0

    # the resize ceiling: a 128 px micrograph resized as the pyramid would (to 64 px), its labels decoded:
    # every particle survives and is found
    (ceiling,) = result["resize_ceiling"]
    truth = json.loads((tmp_path / "work" / "ceiling_128" / "micrograph.json").read_text())
    assert ceiling["trained_size"] == [64, 64]
    assert ceiling["n_ref"] == ceiling["n_pred"] == truth["count"] > 0 and ceiling["f1"] == 1.0

    sg = result["singan"]
    # a given run of other data is refused: every number of its story would be meaningless
    from fewgan import api

    lq.check_trained_on(sg["run"], tmp_path / "work" / "singan_train" / "micrograph.png")
    other = api.synth(tmp_path / "other", size=32, seed=99, density=60.0, bit_depth=8)
    with pytest.raises(SystemExit, match="pixels differ"):
        lq.check_trained_on(sg["run"], other)
    held_out = sorted((tmp_path / "work").glob("singan_test*/micrograph.png"))
    assert len(held_out) == 1
    assert sg["real_reference"]["f1"] == 1.0
    assert sg["real_reference"]["n_ref"] == sg["real_reference"]["n_pred"] == _instances(held_out) > 0
    assert sg["real_training_image"]["f1"] == 1.0
    assert sg["sample_size"] == [32, 32]  # trained at the micrograph's own size: nothing resized
    assert sg["generated"]["images"] == 2 and 0.0 <= sg["generated"]["f1"] <= 1.0
    assert sg["ratio"] == pytest.approx(sg["generated"]["f1"] / sg["real_reference"]["f1"], abs=1e-4)

    s2 = result["stylegan2"]
    test_folder = sorted((tmp_path / "work" / "stylegan2_test").glob("particles_*.png"))
    assert len(test_folder) == 16
    assert s2["real_reference"]["f1"] == 1.0
    assert s2["real_reference"]["n_ref"] == _instances(test_folder)
    assert [p["kimg"] for p in s2["curve"]] == [0.032]
    for which in ("G_ema", "G"):
        point = s2["curve"][0][which]
        assert point["images"] == 2 and 0.0 <= point["f1"] <= 1.0
        assert set(point["diagnostics"]) == {"f1_own_threshold", "foreground_pixel_iou", "contrast_in_minus_out",
                                             "labelled_fraction"}
    assert s2["generated"] == s2["curve"][-1]["G_ema"]
    # real data: the labels cover the bright particles, so the contrast inside minus outside is positive
    assert s2["real_reference"]["diagnostics"]["contrast_in_minus_out"] > 0.1

    story = bench_script("utility_story")
    runs = ["--singan-run", sg["run"], "--s2-run", s2["run"]]
    out = story.main(["--quick", "--work", str(tmp_path / "work"), "--json", str(tmp_path / "us.json"), *runs])
    for method, questions in (("singan", ["fidelity", "diversity", "copying (layout)", "copying (patches)"]),
                              ("stylegan2", ["fidelity", "copying (set)"])):
        entry = out[method]
        assert [line["question"] for line in entry["verdict"]] == questions + ["labels", "utility"]
        for source in ("real", "synthetic", "both"):
            f1 = entry["utility"][source]["f1"]
            assert 0.0 <= f1 <= 1.0 and entry["utility"][source]["n_ref"] > 0
        real_f1 = entry["label_consistency"]["real"]["f1"]
        assert real_f1 == 1.0
        gen_f1 = entry["label_consistency"]["generated"]["f1"]
        assert f"at F1 {gen_f1:.2f}, with the real labels at F1 1.00" in entry["verdict_text"][-2]
        assert not math.isnan(np.float64(entry["utility"]["real"]["seconds"]))


def test_spread_is_zero_for_one_layout_and_the_std_across_samples_otherwise(bench_script):
    lq = bench_script("label_quality")
    image = np.zeros((1, 1, 4, 4))
    image[0, 0, 1, 1] = 0.5
    lab = np.zeros((4, 4), np.int32)
    lab[1, 1] = 1
    # mode collapse: the same image and labels four times -> no spread at all
    assert lq.spread(np.repeat(image, 4, axis=0), [lab] * 4) == {"image": 0.0, "foreground": 0.0}
    # two images differing at one pixel of 16 by 0.5 (std 0.25 there), foreground -1 vs +1 there (std 1)
    assert lq.spread(np.concatenate([image, np.zeros_like(image)]), [lab, np.zeros_like(lab)]) == {
        "image": round(0.25 / 16, 4), "foreground": round(1.0 / 16, 4)}


def test_foreground_overlap_of_layouts(bench_script):
    lq = bench_script("label_quality")
    a = np.zeros((4, 4), np.int32)
    a[0, :2] = 1                      # 2 px
    b = np.zeros((4, 4), np.int32)
    b[0, 1:3] = 2                     # 2 px, 1 shared with a: IoU 1/3
    empty = np.zeros((4, 4), np.int32)
    assert lq.foreground_overlap([a, a, a]) == 1.0                      # one layout three times
    assert lq.foreground_overlap([a, b]) == round(1 / 3, 4)
    assert lq.foreground_overlap([a, b, empty]) == round(1 / 9, 4)      # a-b 1/3, a-empty 0, b-empty 0
    assert lq.foreground_overlap([a, empty], [b, empty]) == round(1 / 3, 4)      # same index: a vs b only
    assert lq.foreground_overlap([empty, empty]) is None
    assert lq.foreground_overlap([a], None) is None and lq.foreground_overlap([a], [a, b]) is None


@pytest.mark.slow
def test_continue_with_another_ema_decay_trains_the_same_raw_generator(tmp_path, bench_script):
    """bench/label_quality_continue.py: the copy continues the raw generator exactly (the EMA never feeds
    back into training) while its EMA follows the new decay; the change is recorded in the copy only."""
    import shutil

    import torch

    from fewgan import api
    from fewgan.run import CHECKPOINT_DIR, STYLEGAN2_LAST_CHECKPOINT, load_checkpoint

    folder = api.synth(tmp_path / "data", mode="folder", n=8, size=16, seed=1, density=60.0)
    runtime = dict(eval_every=0, sample_every=0, checkpoint_every=0, quiet=True)
    run = api.train_stylegan2(folder, results=tmp_path / "runs", labels="beside", kimg=0.016, resolution=16,
                              cbase=64, cmax=16, batch=8, ema_decay=0.9, **runtime)
    shutil.copyfile(run / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, run / "snapshot_kimg0.016.pt")
    api.train_stylegan2(resume=run, kimg=0.032, **runtime)               # the original, 2 more steps
    copy = bench_script("label_quality_continue").main([str(run), "0.016", "ema_decay=0.5", str(tmp_path / "copy"),
                                                        "0.032"])
    a = load_checkpoint(run / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT)
    b = load_checkpoint(copy / "snapshot_kimg0.032.pt")
    assert a["step"] == b["step"] == 4
    assert (a["config"]["ema_decay"], b["config"]["ema_decay"]) == (0.9, 0.5)
    assert json.loads((copy / "config.json").read_text())["config"]["ema_decay"] == 0.5
    assert json.loads((run / "config.json").read_text())["config"]["ema_decay"] == 0.9
    for name, p in a["G"].items():
        assert torch.allclose(p, b["G"][name], atol=1e-6), name
    # the EMAs differ once the raw generator has moved: 2 updates at decay 0.9 vs 0.5 from the same start
    start = load_checkpoint(run / "snapshot_kimg0.016.pt")
    name = "synthesis.blocks.0.conv1.weight"
    moved = (a["G"][name] - start["G_ema"][name]).abs().max()
    assert moved > 1e-4
    assert (b["G_ema"][name] - a["G_ema"][name]).abs().max() > 0.1 * moved


@pytest.mark.slow
def test_continue_with_an_lr_ramp_in_chunks_is_the_run_trained_with_it_from_the_start(tmp_path, bench_script):
    """bench/label_quality_continue.py with ``lr_rampdown``: every chunk trains under the whole copy's
    budget, so a constant-lr snapshot taken before the ramp starts, continued in two chunks, ends where a
    run trained with the ramp from step 0 ends (the ramp multiplies the lr by exactly 1 before it)."""
    import shutil

    import torch

    from fewgan import api
    from fewgan.run import CHECKPOINT_DIR, STYLEGAN2_LAST_CHECKPOINT, load_checkpoint

    folder = api.synth(tmp_path / "data", mode="folder", n=8, size=16, seed=1, density=60.0)
    runtime = dict(eval_every=0, sample_every=0, checkpoint_every=0, quiet=True)
    model = dict(labels="beside", resolution=16, cbase=64, cmax=16, batch=8)
    run = api.train_stylegan2(folder, results=tmp_path / "runs", kimg=0.016, **model, **runtime)
    shutil.copyfile(run / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT, run / "snapshot_kimg0.016.pt")
    copy = bench_script("label_quality_continue").main([str(run), "0.016", "lr_rampdown=0.5", str(tmp_path / "copy"),
                                                        "0.032,0.048"])
    whole = api.train_stylegan2(folder, results=tmp_path / "whole", kimg=0.048, lr_rampdown=0.5, **model, **runtime)
    a = load_checkpoint(whole / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT)
    b = load_checkpoint(copy / "snapshot_kimg0.048.pt")
    mid = load_checkpoint(copy / "snapshot_kimg0.032.pt")
    assert (a["step"], mid["step"], b["step"]) == (6, 4, 6)
    from fewgan.stylegan2.train import lr_multiplier

    last_lr = 0.001 * 8 / 9 * lr_multiplier(5 / 6, 0.5)  # step 6 of 6, lazy Adam rate (g_reg_every 8)
    assert b["config"]["lr_rampdown"] == 0.5 and b["opt_G"]["param_groups"][0]["lr"] == pytest.approx(last_lr)
    for net in ("G", "G_ema", "D"):
        for name, p in a[net].items():
            assert torch.allclose(p, b[net][name], atol=1e-6), f"{net}.{name}"
    # label_quality.py's own chunked training with --s2-lr-rampdown ends there too
    lq = bench_script("label_quality")
    args = lq.parser("", "x.json").parse_args(
        ["--s2-size", "16", "--s2-cbase", "64", "--s2-cmax", "16", "--s2-batch", "8", "--s2-lr-rampdown", "0.5",
         "--s2-kimg", "0.016,0.032,0.048", "--seed", "0"])
    same = api.train_stylegan2(folder, results=tmp_path / "same", kimg=0.048, labels="beside", resolution=16,
                               seed=0, **lq.stylegan2_options(args), **runtime)
    run, snaps = lq.train_stylegan2(folder, tmp_path / "lq", args)
    assert [load_checkpoint(p)["step"] for _, p in snaps] == [2, 4, 6]
    c, d = load_checkpoint(same / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT), load_checkpoint(snaps[-1][1])
    assert d["config"]["lr_rampdown"] == 0.5 and d["config"]["kimg"] == 0.048
    for name, p in c["G"].items():
        assert torch.allclose(p, d["G"][name], atol=1e-6), name
