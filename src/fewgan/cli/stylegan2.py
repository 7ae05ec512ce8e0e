"""``fewgan stylegan2 train|generate``: data-efficient StyleGAN2 on a folder of images.

Options of ``train`` are derived from :class:`fewgan.stylegan2.config.StyleGAN2Config` (one field,
one option); handlers only parse and call :mod:`fewgan.api`.
"""

from __future__ import annotations

_HELP = {
    "seed": "seed of every random draw of the run (latents, batches, augmentation)",
    "resolution": "square training resolution, a power of two (8-1024)",
    "channels": "image channels: auto, 1 or 3",
    "fit": "how images of another size or aspect become square: crop, resize or pad",
    "cbase": "channel base: channels at resolution r are min(cbase / r, cmax); default 32 x resolution",
    "epochs": "training budget in passes over the data set (the seed: 3000)",
    "kimg": "training budget in thousands of images (overrides --epochs)",
    "diffaugment": "DiffAugment policy (comma list of color, translation, cutout), or none",
    "ada": "adaptive discriminator augmentation (Karras et al. 2020)",
    "classical": "classical augmentation of the reals: none, flips, flips,rot90, seed (leaks into G)",
    "metric": "selection metric: auto (FID with Inception weights, else SWD), fid, kid, swd",
    "eval_every": "epochs between evaluations of the EMA generator (0: never)",
    "checkpoint_every": "epochs between periodic checkpoints",
    "amp": "bfloat16 mixed precision on the GPU",
    "channels_last": "channels-last memory format (GPU)",
}


def register(sub) -> None:
    from fewgan.cli import add_group
    from fewgan.config import add_config_arguments
    from fewgan.stylegan2.config import StyleGAN2Config

    _, actions = add_group(sub, "stylegan2", "data-efficient StyleGAN2 on a folder of images: train, generate")
    t = actions.add_parser(
        "train", help="train on a folder of images (8/16-bit PNG/TIFF/JPEG, gray or RGB)",
        description=("Train data-efficient StyleGAN2 (DiffAugment, EMA, optional ADA) on a folder of images; "
                     "several GPUs or CPU processes with torchrun --nproc_per_node N -m fewgan stylegan2 train ..."),
    )
    t.add_argument("folder", nargs="?", default=None, help="folder of training images (optional with --resume)")
    t.add_argument("--results", default="results", help="where run folders are created (default: results)")
    t.add_argument("--resume", default=None, metavar="RUN", help="continue a run folder from its last checkpoint")
    t.add_argument("--preset", choices=("default", "seed"), default=None,
                   help="seed: the seed document exactly (its classical augmentation included, which leaks); "
                        "default: the seed's networks and losses, DiffAugment, flips only")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar or log lines, only warnings and a one-line status on stderr every 30 s")
    t.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    add_config_arguments(t, StyleGAN2Config, help=_HELP)
    t.set_defaults(func=_train)

    g = actions.add_parser(
        "generate", help="write images of a trained run (in the data set's bit depth)",
        description="Write images of a trained run: best EMA generator, else best G, else the last checkpoint.",
    )
    g.add_argument("run", help="run folder")
    g.add_argument("--out", default=None, help="output folder (default: RUN/generated)")
    g.add_argument("--n", type=int, default=None, help="number of images (default: one per seed, or 16)")
    g.add_argument("--seeds", default=None, help="seeds, e.g. 0-999 or 1,5,9 (default 0..n-1)")
    g.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1: none; 0.7 typical)")
    g.add_argument("--noise-mode", choices=("const", "random", "none"), default="const", help="noise inputs")
    g.add_argument("--batch", type=int, default=32, help="generation batch size")
    g.add_argument("--grid", action="store_true", help="also write grid.png of the seeds")
    g.add_argument("--interpolate", action="store_true", help="also write interpolation.png between the first two seeds")
    g.add_argument("--format", choices=("png", "tiff"), default=None, help="file format (default: the data set's)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    g.add_argument("--quiet", action="store_true", help="no console output")
    g.set_defaults(func=_generate)


def _train(args) -> int:
    from fewgan import api
    from fewgan.errors import FewganError
    from fewgan.stylegan2.config import StyleGAN2Config
    import dataclasses
    import os

    if args.folder is None and args.resume is None:
        raise FewganError("fewgan stylegan2 train: give an image FOLDER (or --resume RUN)")
    names = {f.name for f in dataclasses.fields(StyleGAN2Config)}
    options = {k: v for k, v in vars(args).items() if k in names}
    if isinstance(options.get("channels"), int):
        options["channels"] = str(options["channels"])
    run = api.train_stylegan2(args.folder, results=args.results, resume=args.resume, device=args.device,
                              quiet=args.quiet, preset=args.preset, dry_run=args.dry_run, **options)
    if not args.dry_run and not args.quiet and os.environ.get("RANK", "0") == "0":
        print(f"run folder: {run}")
    return 0


def _generate(args) -> int:
    from fewgan import api

    n = args.n if args.n is not None or args.seeds is not None else 16
    api.generate(args.run, args.out, n=n, seeds=args.seeds, psi=args.trunc, noise_mode=args.noise_mode,
                 batch=args.batch, grid=args.grid, interpolate=args.interpolate, format=args.format,
                 device=args.device, quiet=args.quiet)
    return 0
