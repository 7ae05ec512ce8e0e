"""``fewgan eval REAL FAKE``: every metric in a table on the terminal, every number in JSON."""

from __future__ import annotations

import sys

from fewgan.metrics.evaluate import METRICS, SIZE_MISMATCH


def register(sub) -> None:
    from fewgan.cli import DEVICE_HELP, finite_float, positive_int

    p = sub.add_parser(
        "eval",
        help="compare real and generated images (FID, KID, PRDC, SIFID, SWD, PSNR/SSIM, particles, memorisation, "
             "copying, labels, utility) and print a verdict",
        description=(
            "Compare real and generated images. REAL and FAKE are each a folder of images, one image, or a "
            "run folder (FAKE: images are generated from it first; REAL: the data it was trained on). "
            "Every metric is also computed between two halves of the real data (the floor: what 'as good "
            "as real' looks like). Without Inception weights, FID/KID/PRDC/SIFID are skipped with a note "
            "and the other metrics still run. A verdict (fidelity, diversity, copying, labels, utility: one "
            "plain line each, thresholds in fewgan.metrics.verdict.THRESHOLDS) is printed above the table."
        ),
    )
    p.add_argument("real", help="real images: folder, image file or run folder")
    p.add_argument("fake", help="generated images: folder, image file or run folder")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help=f"metrics to compute, from: {', '.join(METRICS)} (default: fid kid prdc swd particles "
                        "memorisation for a real folder; sifid diversity swd particles copying for one real image; "
                        "labels too whenever both sides have labels; utility only when asked: minutes)")
    p.add_argument("--json", dest="json_path", default=None, help="write every number to this JSON file")
    p.add_argument("--n", type=positive_int, default=None,
                   help="images to generate when FAKE is a run folder (default: as many as REAL, at least 50 "
                        "for one real image)")
    p.add_argument("--seed", type=int, default=0, help="seed of generation, the real split, crops, SWD and KID")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--resolution", type=positive_int, default=None,
                   help="load folders at this square size (needed when a folder mixes sizes)")
    p.add_argument("--channels", default="auto", choices=("auto", "1", "3"),
                   help="load both sets as gray (1) or RGB (3) (default: auto)")
    p.add_argument("--size-mismatch", choices=SIZE_MISMATCH, default="resize",
                   help="generated images of another size than the real set: resize them with a warning, or "
                        "stop with an error (default: resize)")
    p.add_argument("--no-floors", dest="floors", action="store_false",
                   help="skip the real-vs-real floors (faster)")
    p.add_argument("--resize", choices=("clean", "tf1"), default="clean",
                   help="resize to 299 px for Inception: clean (PIL bicubic) or tf1 (as published FIDs)")
    p.add_argument("--batch-size", type=positive_int, default=50,
                   help="images per Inception forward pass (default 50; lower it if memory runs out)")
    p.add_argument("--weights", default=None, help="Inception weights file (default: looked up, see 'fewgan weights where')")
    p.add_argument("--cache", action="store_true", help="cache Inception features of the sets by content hash")
    p.add_argument("--threshold", default=None,
                   help="particle threshold: 'otsu' (default, on the real set) or a number in [-1, 1] units")
    p.add_argument("--polarity", choices=("bright", "dark", "auto"), default=None,
                   help="particles brighter (default) or darker than the background, or auto")
    p.add_argument("--smooth-sigma", type=finite_float, default=None, help="particle pre-smoothing in px (default 1)")
    p.add_argument("--min-area", type=positive_int, default=None, help="smallest particle in px (default 4)")
    p.add_argument("--min-distance", type=positive_int, default=None,
                   help="smallest distance between watershed markers in px (default 3)")
    p.add_argument("--no-watershed", dest="watershed", action="store_false", default=None,
                   help="do not split touching particles")
    p.add_argument("--near-copy-threshold", type=finite_float, default=None,
                   help="memorisation: distance ratio below which a generated image is a near-copy (default 0.5)")
    p.add_argument("--real-labels", default=None, metavar="PATH|DIR",
                   help="instance labels of REAL: a label image (one image) or a folder of label images named "
                        "like the images (default: NAME_masks.tif|png beside each image, when every image has one)")
    p.add_argument("--second-real", default=None, metavar="IMAGE",
                   help="an independent real image of the same size (one real image): the copying measures "
                        "between two real images, printed beside the samples'")
    p.add_argument("--test", default=None, metavar="PATH",
                   help="utility: held-out real images with labels beside them (image or folder) that the "
                        "generator never saw (default: the last quarter of REAL's images in file order; refused "
                        "when the FAKE run's config.json records training data that holds them)")
    p.add_argument("--utility-steps", type=positive_int, default=None,
                   help="utility: training steps of each of the three segmenters (default 400)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict and the table")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from fewgan import api
    from fewgan.metrics.evaluate import format_table
    from fewgan.metrics.particles import format_table as particle_table

    particle_options = {k: getattr(args, k) for k in ("threshold", "polarity", "smooth_sigma", "min_area",
                                                       "min_distance", "watershed")
                        if getattr(args, k) is not None}

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    if args.json_path:  # before hours of compute, not after
        from fewgan.run import check_writable

        check_writable(args.json_path, "--json", kind="file")
    # the JSON is written after the table is printed, so that a failing write loses nothing shown
    result = api.evaluate(
        args.real, args.fake, metrics=args.metrics, json_path=None, device=args.device, n=args.n,
        seed=args.seed, resolution=args.resolution,
        channels=args.channels if args.channels == "auto" else int(args.channels),
        size_mismatch=args.size_mismatch, floors=args.floors, resize=args.resize, batch_size=args.batch_size,
        weights=args.weights, cache=True if args.cache else None, particle_options=particle_options,
        near_copy_threshold=args.near_copy_threshold, log=log, progress=not args.quiet,
        real_labels=args.real_labels, second_real=args.second_real, test=args.test,
        utility_options={"steps": args.utility_steps} if args.utility_steps else None,
    )
    for w in result["warnings"]:
        print(f"fewgan: warning: {w}", file=sys.stderr)
    print(f"real: {result['real']['source']} ({result['real']['n']} images), "
          f"fake: {result['fake']['source']} ({result['fake']['n']} images), mode: {result['mode']}")
    if result.get("floor"):
        print(f"floor: {result['floor']}")
    if result["verdict"]:
        from fewgan.metrics.verdict import Line, render

        print()
        print("verdict:")
        print(render([Line(**line) for line in result["verdict"]]))
        print()
    print(format_table(result))
    if result["network_metrics"] != "computed":
        print(f"network metrics {result['network_metrics']}")
    particles = result["metrics"].get("particles")
    if particles and "table" in particles:
        print()
        few = " (1 real image: too few to judge significance, KS p-values are descriptive only)" \
            if result["real"]["n"] == 1 else ""
        print(f"particle statistics (real vs generated){few}:")
        print(particle_table(particles))
    if args.json_path:
        from fewgan.metrics.evaluate import json_safe
        from fewgan.run import atomic_write_json

        atomic_write_json(args.json_path, json_safe(result))
        print(f"wrote {args.json_path}")
    return 0
