"""StyleGAN2 with instance labels: labels in (beside, DIR, auto), extra channels, resume, labelled generation + export."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import fewgan
from fewgan.cli import main
from fewgan.data.export import boxes, read_yolo_boxes
from fewgan.data.folder import load_folder, load_folder_labels
from fewgan.data.images import to_numpy
from fewgan.data.labels import decode_instances, encode_instances, read_labels
from fewgan.errors import FewganError
from fewgan.metrics.instances import label_consistency
from fewgan.metrics.particles import measure_set
from fewgan.model import count_parameters
from fewgan.report.html import write_report
from fewgan.run import STYLEGAN2_TRAINING_LABELS_COUNT, STYLEGAN2_TRAINING_LABELS_DIR, load_checkpoint
from fewgan.stylegan2.config import StyleGAN2Config
from fewgan.stylegan2.generate import StyleGAN2Model, generate_to_folder
from fewgan.stylegan2.train import Trainer, label_parameters, train

OPTS = dict(resolution=16, batch=4, z_dim=16, w_dim=32, cbase=256, cmax=32, classical="flips", eval_every=0,
            sample_every=0, checkpoint_every=0, log_every=1000, g_reg_every=2, d_reg_every=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Six 32 x 32 synthetic particle images with their exact NAME_masks.tif beside them (trained at 16 px)."""
    return fewgan.synth(tmp_path_factory.mktemp("lab") / "data", mode="folder", n=6, size=32, seed=0)


@pytest.fixture(scope="module")
def labelled_run(data, tmp_path_factory):
    return train(data, results=tmp_path_factory.mktemp("runs"), quiet=True, labels="beside", kimg=0.016, **OPTS)


def test_extra_channel_parameters_match_the_hand_count(tiny, images):
    """Channels at 4, 8, 16 px: min(256 / r, 32) = 32, 32, 16. The 2 label channels add, in G, one
    1x1 weight row (in channels) and one bias per toRGB layer: 2 x (33 + 33 + 17) = 166; in D, the
    fromRGB 1x1 conv's weight columns for 2 more inputs into 16 channels: 2 x 16 = 32, plus the
    image-only critic, which is the unlabelled run's critic (same architecture, image channels in).
    The tanh label head adds nothing; without the image critic D grows by the 32 alone."""
    plain = Trainer(StyleGAN2Config.from_dict(tiny), images)
    critic = count_parameters(plain.D)
    labels = torch.from_numpy(np.stack([encode_instances(np.pad(np.ones((4, 4), np.int32), 6))] * 6))
    cfg = StyleGAN2Config.from_dict({**tiny, "labels": "beside"})
    assert cfg.label_head == "tanh" and cfg.image_critic  # the defaults of a new labelled run
    lab = Trainer(cfg, torch.cat([images, labels], 1))
    assert label_parameters(lab) == {"G_torgb": 166, "D_fromrgb": 32, "D_image_critic": critic,
                                     "G": 166, "D": 32 + critic}
    assert count_parameters(lab.G) - count_parameters(plain.G) == 166
    assert count_parameters(lab.D) - count_parameters(plain.D) == 32 + critic
    one = Trainer(cfg.replace(image_critic=False, label_head="linear"), torch.cat([images, labels], 1))
    assert label_parameters(one)["D"] == count_parameters(one.D) - critic == 32
    assert count_parameters(one.G) == count_parameters(lab.G)
    assert lab.image_channels == 1 and lab.channels == 3 and lab.G.img_channels == lab.D.img_channels == 3
    assert lab.diffaug.label_channels == 2  # the augmentations know the last 2 channels are labels
    # without labels nothing changes: the channel count of the networks is the image's
    assert plain.G.img_channels == 1 and StyleGAN2Config.from_dict(tiny).label_channels == 0
    with pytest.raises(FewganError, match="1 or 3 image channels"):
        Trainer(cfg, images)  # labelled config, but no label channels


def test_labels_beside_and_in_a_folder_are_read_and_encoded_like_their_image(data, tmp_path):
    images, meta = load_folder(data, resolution=32)
    beside = load_folder_labels(meta.files, "beside", 32)
    truth = [read_labels(f.replace(".png", "_masks.tif")) for f in meta.files]
    assert beside.shape == (6, 2, 32, 32)
    for enc, lab in zip(beside, truth):  # images already 32 x 32: no resize, the encoding exactly
        assert torch.equal(enc[0] > 0, torch.from_numpy(lab > 0))
        assert np.array_equal(decode_instances(enc.numpy(), min_area=1) > 0, lab > 0)
    folder = tmp_path / "labels"
    folder.mkdir()
    for f in meta.files:
        shutil.copy(f.replace(".png", "_masks.tif"), folder / (f.split("/")[-1][:-4] + ".tif"))
    assert torch.equal(load_folder_labels(meta.files, str(folder), 32), beside)
    # crop then resize: the label channels go through the same fit as their image
    fitted = load_folder_labels(meta.files, "beside", 8, "crop")
    assert fitted.shape == (6, 2, 8, 8) and float(fitted.min()) >= -1 and float(fitted.max()) <= 1


def test_label_errors_are_one_line(data, tmp_path):
    work = tmp_path / "d"
    shutil.copytree(data, work)
    files = [str(p) for p in sorted(work.glob("particles_*.png"))]
    (work / "particles_0002_masks.tif").unlink()
    with pytest.raises(FewganError, match="particles_0002.png: no label image beside it"):
        load_folder_labels(files, "beside", 16)
    shutil.copy(work / "particles_0001_masks.tif", work / "particles_0002_masks.tif")
    shutil.copy(work / "particles_0001_masks.tif", work / "orphan_masks.tif")
    with pytest.raises(FewganError, match="orphan_masks.tif: label image without an image"):
        load_folder_labels(files, "beside", 16)
    (work / "orphan_masks.tif").unlink()
    tifffile.imwrite(work / "particles_0003_masks.tif", np.ones((8, 8), np.uint16))
    with pytest.raises(FewganError, match="labels are 8 x 8 px but the image is 32 x 32 px"):
        load_folder_labels(files, "beside", 16)
    folder = tmp_path / "labels"
    folder.mkdir()
    Image.fromarray(np.eye(32, dtype=np.uint8)).save(folder / "particles_0000.png")
    with pytest.raises(FewganError, match="particles_0001.png: no label image"):
        load_folder_labels(files, str(folder), 16)
    with pytest.raises(FewganError, match="use none, beside, auto or a folder"):
        load_folder_labels(files, str(tmp_path / "missing"), 16)


def test_cli_label_errors_exit_2(data, tmp_path, capsys):
    work = tmp_path / "d"
    shutil.copytree(data, work)
    (work / "particles_0000_masks.tif").unlink()
    code = main(["stylegan2", "train", str(work), "--labels", "beside", "--results", str(tmp_path / "r"),
                 "--resolution", "16", "--kimg", "0.004", "--eval-every", "0", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no label image beside it" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_auto_labels_record_the_particle_analysis(data, tmp_path):
    run = train(data, results=tmp_path, quiet=True, labels="auto", kimg=0.004, **OPTS)
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["config"]["labels"] == "auto"
    labels = recorded["data"]["labels"]
    assert labels["source"] == "auto" and labels["particles"]["threshold"] == "otsu"
    assert labels["threshold"]["polarity"] == "bright" and -1 < labels["threshold"]["threshold"] < 1
    assert len(labels["counts"]) == 6 and min(labels["counts"]) >= 1
    # the first training images as trained (16 px, the data's uint16) with the instances the model learnt
    shown = run / STYLEGAN2_TRAINING_LABELS_DIR
    images, meta = load_folder(data, resolution=16)
    found = measure_set(images, threshold=labels["threshold"], keep_labels=True)["labels"]
    for i, f in enumerate(meta.files[:STYLEGAN2_TRAINING_LABELS_COUNT]):
        stem = Path(f).stem
        image = tifffile.imread(shown / f"{stem}.tif")
        assert image.dtype == np.dtype(meta.image.dtype) == np.uint16 and image.shape == (16, 16)
        assert np.array_equal(image, to_numpy(images[i], meta.image)[..., 0])
        masks = tifffile.imread(shown / f"{stem}_masks.tif")
        assert masks.dtype == np.uint16 and masks.max() == labels["counts"][i]
        assert np.array_equal(masks, found[i])
    assert len(list(shown.iterdir())) == 2 * STYLEGAN2_TRAINING_LABELS_COUNT
    page = write_report(run, plots=False).read_text(encoding="utf-8")
    threshold = labels["threshold"]["threshold"]
    for i, f in enumerate(meta.files[:STYLEGAN2_TRAINING_LABELS_COUNT]):
        n = labels["counts"][i]
        assert (f"training image {Path(f).stem} as trained (16x16 px), labels from fewgan&#x27;s particle analysis "
                f"(--labels auto), threshold {threshold:.4g}") in page
        assert f"check that they match the particles; {n} instance{'s' if n != 1 else ''}" in page
    assert "cannot be shown" not in page and f"{STYLEGAN2_TRAINING_LABELS_DIR}/" not in page


def test_resume_with_labels_is_exact_and_refuses_changing_them(data, tmp_path, one_thread):
    opts = {**OPTS, "kimg": 0.024, "checkpoint_every_steps": 2}
    full = train(data, results=tmp_path / "a", quiet=True, labels="beside", **opts)
    part = train(data, results=tmp_path / "b", quiet=True, labels="beside", max_steps=3, **opts)
    assert load_checkpoint(part / "checkpoints" / "last.pt")["step"] == 2
    resumed = train(resume=part, quiet=True)
    a, b = load_checkpoint(full / "checkpoints" / "last.pt"), load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6 and a["img_channels"] == b["img_channels"] == 3
    for net in ("G", "G_ema", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    with pytest.raises(FewganError, match="cannot change labels"):
        train(resume=part, quiet=True, labels="auto")


def test_labelled_model_contract(labelled_run):
    model = fewgan.load(labelled_run)
    assert isinstance(model, StyleGAN2Model) and model.outputs == ("labels",)
    images = model.sample_tensor(3, seed=4)
    same, labels = model.sample_with_labels(3, seed=4)
    assert images.shape == (3, 1, 16, 16) and torch.equal(images, same)  # the contract: image channels only
    assert len(labels) == 3 and all(lab.shape == (16, 16) and lab.dtype == np.int32 for lab in labels)
    assert model.meta.channels == 1 and model.sample(2).shape == (2, 16, 16, 1)


def test_generate_writes_masks_and_exports_that_read_back(labelled_run, data, tmp_path, capsys):
    out = tmp_path / "gen"
    code = main(["stylegan2", "generate", str(labelled_run), "--out", str(out), "--n", "4", "--export",
                 "coco,yolo", "--device", "cpu", "--quiet"])
    assert code == 0
    model = fewgan.load(labelled_run)
    images, labels = model.sample_with_labels(4, seed=0)
    # not a vacuous round trip: the sampled label channels hold instances (5 in 4 images on this run)
    assert sum(int(lab.max()) for lab in labels) > 0
    coco = COCO(str(out / "coco.json"))
    for i, lab in enumerate(labels):
        name = f"seed{i:06d}.png"
        masks = tifffile.imread(out / f"seed{i:06d}_masks.tif")
        assert masks.dtype == np.uint16 and np.array_equal(masks, lab)  # Cellpose masks always written
        image_id = next(im["id"] for im in coco.dataset["images"] if im["file_name"] == name)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(anns) == lab.max()
        for ann in anns:  # each COCO mask (pycocotools' decoding) is exactly one instance
            m = mask_utils.decode(ann["segmentation"]).astype(bool)
            ids = np.unique(lab[m])
            assert len(ids) == 1 and np.array_equal(lab == ids[0], m)
        assert sorted(read_yolo_boxes(out / "yolo" / "labels" / f"seed{i:06d}.txt", 16, 16)) == sorted(boxes(lab))
    assert (out / "yolo" / "dataset.yaml").is_file()
    record = json.loads((out / "generation.json").read_text())
    assert record["labels"]["export"] == ["coco", "yolo"]
    # label consistency of the generated set (no quality claim for a 4-step run): a score in [0, 1]
    real, _ = load_folder(data, resolution=16)
    from fewgan.metrics.particles import find_threshold

    score = label_consistency(images.clamp(-1, 1), labels, threshold=find_threshold(real))
    assert 0.0 <= score["f1"] <= 1.0 and 0.0 <= score["mean_matched_iou"] <= 1.0


def test_export_of_an_unlabelled_run_is_refused(tmp_path, tiny, images, capsys):
    run = train(images=images, results=tmp_path, quiet=True, **{**tiny, "kimg": 0.004, "diffaugment": "none"})
    assert fewgan.load(run).outputs == ()
    with pytest.raises(FewganError, match="trained without labels"):
        generate_to_folder(run, tmp_path / "g", n=1, export="coco", quiet=True)
    capsys.readouterr()  # the training's status lines (a slow machine prints one every 30 s)
    code = main(["stylegan2", "generate", str(run), "--n", "1", "--export", "bogus", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "unknown export format bogus" in err


def test_trainer_augmentations_move_labels_and_never_colour_them(tiny, images):
    labels = torch.from_numpy(np.stack([encode_instances(np.pad(np.ones((4, 6), np.int32), ((2, 10), (9, 1))))] * 6))
    x = torch.cat([images, labels], 1)
    cfg = StyleGAN2Config.from_dict({**tiny, "labels": "beside", "diffaugment": "color", "ada": True,
                                     "classical": "flips"})
    trainer = Trainer(cfg, x)
    assert trainer.diffaug.label_channels == trainer.ada.label_channels == trainer.classical.label_channels == 2
    torch.manual_seed(0)
    coloured = trainer.diffaug(x)
    assert torch.equal(coloured[:, 1:], x[:, 1:]) and not torch.equal(coloured[:, :1], x[:, :1])
    torch.manual_seed(1)
    real = trainer._real_batch()  # classical flips: the foreground stays exactly +-1 and keeps its area
    assert set(real[:, 1].unique().tolist()) == {-1.0, 1.0}
    assert torch.equal((real[:, 1] > 0).sum((1, 2)), torch.full((4,), 24))
    # and each real is one training pair under one flip, image and labels together
    flips = [lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.flip(-1).flip(-2)]
    for r in real:
        assert any(torch.equal(f(x[i]), r) for i in range(6) for f in flips)
    trainer.train_step()
    assert all(torch.isfinite(v).all() for v in trainer.last.values())


def test_a_run_stored_before_the_label_levers_loads_and_resumes_as_it_was(data, tmp_path, capsys):
    """A labelled run whose config.json and checkpoints lack ``label_head`` / ``image_critic`` (made before
    they existed) was a linear head and one critic: it loads, generates and resumes as that, while a new
    run without the fields given gets today's defaults (tanh, image critic)."""
    opts = {**OPTS, "kimg": 0.008, "checkpoint_every_steps": 1}
    run = train(data, results=tmp_path, quiet=True, labels="beside", label_head="linear", image_critic=False, **opts)
    before = load_checkpoint(run / "checkpoints" / "last.pt")
    for path in [run / "checkpoints" / "last.pt", *(run / "checkpoints").glob("best_*.pt")]:
        ck = load_checkpoint(path)
        for key in ("label_head", "image_critic"):
            del ck["config"][key]
        torch.save(ck, path)
    payload = json.loads((run / "config.json").read_text())
    for key in ("label_head", "image_critic"):
        del payload["config"][key]
    (run / "config.json").write_text(json.dumps(payload))
    assert StyleGAN2Config.from_dict(payload["config"]).image_critic  # today's default ...
    old = StyleGAN2Config.from_stored(payload["config"])               # ... is not what the run was
    assert (old.label_head, old.image_critic) == ("linear", False)
    model = fewgan.load(run)
    assert model.G.synthesis.label_head == "linear"
    assert torch.equal(model.G.state_dict()["synthesis.blocks.0.const"], before["G_ema"]["synthesis.blocks.0.const"])
    resumed = train(resume=run, quiet=True, kimg=0.016)
    after = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert after["step"] == 4 and set(after["D"]) == set(before["D"])  # one critic, as trained
    assert (after["config"]["label_head"], after["config"]["image_critic"]) == ("linear", False)


def test_cli_label_levers_are_recorded_and_checked(data, tmp_path, capsys):
    common = ["stylegan2", "train", str(data), "--labels", "beside", "--resolution", "16", "--kimg", "0.004",
              "--cbase", "256", "--cmax", "32", "--eval-every", "0", "--sample-every", "0", "--device", "cpu", "--quiet"]
    assert main([*common, "--results", str(tmp_path / "a"), "--label-head", "linear", "--no-image-critic"]) == 0
    stored = json.loads(next((tmp_path / "a").glob("*/config.json")).read_text())["config"]
    assert (stored["label_head"], stored["image_critic"]) == ("linear", False)
    log = next((tmp_path / "a").glob("*/log.txt")).read_text()
    assert "linear label head" in log and "no image-only critic" in log
    capsys.readouterr()
    code = main([*common, "--results", str(tmp_path / "b"), "--label-head", "sigmoid"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--label-head 'sigmoid': use tanh or linear" in err
