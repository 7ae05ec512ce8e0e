"""``fewgan demo [singan|stylegan2|gpnn]``: synthetic data, training (none for gpnn), samples, evaluation, report."""

from __future__ import annotations


def register(sub) -> None:
    from fewgan.cli import DEVICE_HELP, positive_int

    p = sub.add_parser(
        "demo",
        help="the whole pipeline on synthetic data: train, sample, evaluate, write the report (a few minutes)",
        description=(
            "Make a synthetic particle micrograph with its instance labels (or, for stylegan2, a "
            "folder of small particle images), train a small model on it (SinGAN: on the image and "
            "its labels together), sample at the original size and at a larger field of view (SinGAN: "
            "each sample with its labels, exported as Cellpose masks, coco.json and yolo/ in "
            "RUN/samples_demo), evaluate (SWD, particle statistics, PSNR/SSIM; FID/SIFID only when "
            "the Inception weights are installed) and write the run's report.html (the verdict on "
            "top, instance outlines of real and generated images), whose path is printed last. The "
            "SinGAN demo takes about 5 minutes on 2 CPU cores."
        ),
    )
    p.add_argument("kind", nargs="?", choices=("singan", "stylegan2", "gpnn"), default="singan",
                   help="which model (default singan; gpnn: the training-free patch baseline, about a minute)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny sizes and step counts: the pipeline end to end in seconds (also FEWGAN_DEMO_TINY=1)")
    p.add_argument("--out", default="results", help="folder for the synthetic data and the run (default results)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the training and the samples")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help="no training progress bar or loss lines on the terminal")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default 1 with --device cpu: the demo's small convolutions "
                        "run faster on one thread than on two busy cores)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from fewgan.pipeline import run_demo, tiny_from_env

    from fewgan.run import check_writable

    check_writable(args.out, "--out")
    report = run_demo(args.kind, tiny=True if args.tiny else tiny_from_env(), out=args.out, seed=args.seed,
                      device=args.device, quiet=args.quiet, threads=args.threads)
    print(report, flush=True)
    return 0
