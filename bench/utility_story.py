#!/usr/bin/env python
"""The whole story as a benchmark: does generated labelled data help a segmenter? (issue 15, point 4)

From ``fewgan synth`` data with exact labels (the data and the two trainings of
``bench/label_quality.py``, same options and defaults, so the runs of one can be reused by the other):

(a) one labelled micrograph (``--singan-size`` px; with ``--singan-native`` at its own pixel size, the
    scales above ``--singan-crop`` trained on crops) -> SinGAN with labels -> ``--synthetic-n`` labelled samples -> the
    fixed U-Net of :func:`fewgan.metrics.utility.utility` trained on the real micrograph only, on
    the samples only and on both, each tested on ``--utility-test`` other micrographs (held-out seeds);
(a') the same micrograph story with the training-free patch baseline (GPNN, :mod:`fewgan.gpnn`) in
    place of SinGAN, on a ``--gpnn-size`` (512) px micrograph at its own resolution (``--methods gpnn``);
(b) a folder of ``--s2-n`` labelled 64 px crops -> StyleGAN2 with labels (the stated CPU budget)
    -> ``--synthetic-n`` generated crops with labels -> the same, tested on a held-out folder.

For each: F1 at IoU 0.5, mean matched IoU and relative count error of real-only, synthetic-only and
real + synthetic; the verdict lines of :mod:`fewgan.metrics.verdict` (fidelity and diversity from
:func:`fewgan.metrics.evaluate.evaluate` with their real-vs-real floors; copying: layout and patch
copying for the single image, the memorisation test for the set; labels; utility); wall times.

    .venv/bin/python bench/utility_story.py --singan-run RUN --s2-run RUN   # runs of label_quality.py
    .venv/bin/python bench/utility_story.py --quick                          # about a minute
    # (a) and (a') on the 16-bit 512 px micrograph of bench/side_by_side.py (seed 901), SinGAN native:
    .venv/bin/python bench/utility_story.py --methods singan gpnn --singan-size 512 --gpnn-size 512 \
        --singan-native --singan-crop 128 --bit-depth 16 --singan-density 2.5 --singan-format tiff \
        --train-seed 901 --test-seed 902 --synthetic-n 16 --singan-run RUN

Writes ``--json`` (default ``bench/results/utility_story.json``) and prints the tables and verdicts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import label_quality as lq  # noqa: E402  (the data, the trainings and the consistency of label_quality.py)


def pairs(images, labels) -> list:
    return [(image, label) for image, label in zip(images, labels)]


def fidelity_lines(real, fake, metrics) -> tuple[list, dict]:
    """Fidelity and diversity verdict lines from ``evaluate`` (SWD and pixel diversity with floors)."""
    from fewgan.metrics import verdict
    from fewgan.metrics.evaluate import evaluate

    res = evaluate(real, fake, metrics=metrics)["metrics"]

    def value(name, floor=False):
        entry = res.get(name, {})
        entry = entry.get("floor", {}) if floor else entry
        return entry.get("value") if isinstance(entry, dict) else None

    lines = [verdict.fidelity(value("swd"), value("swd", True))]
    if "diversity" in metrics:  # pixel diversity is the single-image measure (evaluate's DEFAULT_SINGLE)
        lines.append(verdict.diversity(value("diversity"), value("diversity", True)))
    numbers = {name: {"value": value(name), "floor": value(name, True)} for name in metrics}
    if "memorisation" in metrics:
        lines.append(verdict.memorisation(value("memorisation"), value("memorisation", True)))
    return lines, numbers


def story(real: list, synthetic: list, test: list, real_consistency: dict, generated_consistency: dict,
          copying_lines: list, fidelity: tuple[list, dict], config) -> dict:
    from fewgan.metrics import verdict
    from fewgan.metrics.utility import utility

    result = utility(real, synthetic, test, config)
    lines = fidelity[0] + copying_lines + [verdict.labels(generated_consistency["f1"], real_consistency["f1"]),
                                           verdict.utility(result)]
    keep = ("f1", "mean_matched_iou", "relative_count_error", "precision", "recall", "n_pred", "n_ref", "seconds")
    return {"utility": {source: {k: lq._clean(result[source][k]) for k in keep} for source in ("real", "synthetic", "both")},
            "utility_config": result["config"], "segmenter_parameters": result["parameters"],
            "fidelity": fidelity[1], "label_consistency": {"real": real_consistency, "generated": generated_consistency},
            "verdict": [line.to_dict() for line in lines], "verdict_text": [str(line) for line in lines]}


def single_image_story(data: dict, sample, config, **record) -> dict:
    """(a) and (a'): ``sample() -> (images [N, C, H, W], N instance images)`` of one labelled micrograph."""
    from fewgan.metrics import verdict
    from fewgan.metrics.copying import single_image_copying
    from fewgan.metrics.particles import find_threshold

    train_images, train_labels = lq.labelled_images([data["train"]])
    test_images, test_labels = lq.labelled_images(data["test"])
    threshold = find_threshold(train_images)
    t0 = time.perf_counter()
    images, labels = sample(train_images[0], train_labels[0])
    sampling = time.perf_counter() - t0
    copying = single_image_copying(train_images[0], images, other_real=test_images[0])
    lines = [verdict.layout_copying(copying["layout"]), verdict.patch_copying(copying["patches"])]
    out = story(pairs(train_images, train_labels), pairs(images, labels), pairs(test_images, test_labels),
                lq.consistency(test_images, test_labels, threshold), lq.consistency(images, labels, threshold),
                lines, fidelity_lines(train_images, images, ("swd", "diversity")), config)
    out.update(record, sampling_seconds=round(sampling, 1),
               copying={k: {kk: lq._clean(vv) for kk, vv in v.items() if not isinstance(vv, (list, dict))}
                        for k, v in copying.items()})
    return out


def singan_story(run: Path, data: dict, args, config) -> dict:
    """(a) SinGAN samples with labels from a run trained on the micrograph and its labels."""
    from fewgan import api

    def sample(image, labels):
        return api.load(run).sample_with_labels(args.synthetic_n, seed=args.sample_seed)

    return single_image_story(data, sample, config, run=str(run))


def gpnn_story(data: dict, args, config) -> dict:
    """(a') GPNN samples with labels (the label channels carried in the value patches) -> the same story."""
    import torch

    from fewgan.data.labels import decode_instances, encode_instances
    from fewgan.gpnn import GPNNConfig, generate

    def sample(image, labels):
        channels = torch.as_tensor(encode_instances(labels))
        images, instances = [], []
        for i in range(args.synthetic_n):
            x, y = generate(image, seed=args.sample_seed + i, config=GPNNConfig(), labels=channels)
            images.append(x.clamp(-1, 1))
            instances.append(decode_instances(y.numpy()))
        return torch.stack(images), instances

    return single_image_story(data, sample, config, size=args.gpnn_size)


def stylegan2_story(run: Path, data: dict, args, config) -> dict:
    from fewgan import api
    from fewgan.metrics.particles import find_threshold

    train_images, train_labels = lq.labelled_images(lq.folder_images(data["train"]))
    test_images, test_labels = lq.labelled_images(lq.folder_images(data["test"]))
    threshold = find_threshold(train_images)
    t0 = time.perf_counter()
    images, labels = api.load(run).sample_with_labels(args.synthetic_n, seed=args.sample_seed)
    sampling = time.perf_counter() - t0
    out = story(pairs(train_images, train_labels), pairs(images, labels), pairs(test_images, test_labels),
                lq.consistency(test_images, test_labels, threshold), lq.consistency(images, labels, threshold),
                [], fidelity_lines(train_images, images, ("swd", "memorisation")), config)
    out.update(run=str(run), sampling_seconds=round(sampling, 1))
    return out


def main(argv=None) -> dict:
    from fewgan.metrics.utility import UtilityConfig

    ap = lq.parser(__doc__.split("\n\n")[0], "utility_story.json")
    ap.add_argument("--synthetic-n", type=int, default=32, help="generated labelled images per method")
    ap.add_argument("--utility-test", type=int, default=4, help="held-out SinGAN micrographs to test on")
    ap.add_argument("--utility-steps", type=int, default=UtilityConfig.steps, help="U-Net training steps")
    ap.add_argument("--gpnn-size", type=int, default=512, help="micrograph side for the GPNN story (--methods gpnn)")
    args = lq.quick(ap.parse_args(argv))
    args.test_images = max(args.test_images, args.utility_test)
    if args.quick:
        args.synthetic_n, args.test_images, args.utility_steps, args.gpnn_size = 2, 1, 5, 48
    config = UtilityConfig(steps=args.utility_steps, crop=min(UtilityConfig.crop, args.singan_size))
    args.work.mkdir(parents=True, exist_ok=True)
    result = lq.header(args)
    if "singan" in args.methods:
        data = lq.singan_data(args.work, args)
        t0 = time.perf_counter()
        run = args.singan_run or lq.train_singan(data["train"], args.work, args)
        lq.check_trained_on(run, data["train"])
        result["singan"] = {"train_seconds": None if args.singan_run else round(time.perf_counter() - t0, 1),
                            **singan_story(run, data, args, config)}
    if "gpnn" in args.methods:
        import argparse

        data = lq.singan_data(args.work / "gpnn", argparse.Namespace(**{**vars(args), "singan_size": args.gpnn_size}))
        result["gpnn"] = {"train_seconds": 0.0, **gpnn_story(data, args, config)}
    if "stylegan2" in args.methods:
        data = lq.stylegan2_data(args.work, args)
        t0 = time.perf_counter()
        run = args.s2_run or lq.train_stylegan2(data["train"], args.work, args)[0]
        result["stylegan2"] = {"train_seconds": None if args.s2_run else round(time.perf_counter() - t0, 1),
                               **stylegan2_story(run, data, args, config)}
    result["load_end"] = lq.os.getloadavg()[0]
    lq.write_json(args.json, result)
    print(table(result))
    return result


def table(result: dict) -> str:
    out = []
    for method in ("singan", "gpnn", "stylegan2"):
        if method not in result:
            continue
        out += [f"{method}", "| trained on | F1 | mean matched IoU | relative count error |", "| --- | --- | --- | --- |"]
        for source in ("real", "synthetic", "both"):
            u = result[method]["utility"][source]
            out.append(f"| {source} | {u['f1']} | {u['mean_matched_iou']} | {u['relative_count_error']} |")
        out += result[method]["verdict_text"] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
