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
    "epochs": "training budget in passes over the data set (3000 in the reference configuration: days on a "
              "CPU; --dry-run estimates the time)",
    "kimg": "training budget in thousands of images (overrides --epochs)",
    "diffaugment": "DiffAugment policy (comma list of color, translation, cutout), or none",
    "ada": "adaptive discriminator augmentation (Karras et al. 2020)",
    "classical": "classical augmentation of the real images: none, flips, flips,rot90, or seed (the reference "
                 "configuration's full list: rotations, colour, erasing, which can leak into the generated images)",
    "metric": "selection metric: auto (FID with Inception weights, else SWD), fid, kid, swd",
    "eval_every": "epochs between evaluations of the EMA generator (0: never)",
    "checkpoint_every": "epochs between periodic checkpoints",
    "amp": "bfloat16 mixed precision on the GPU",
    "recursive": "also read images in sub-folders",
    "labels": "train on images + instance labels: none, beside (NAME_masks.tif|png next to each NAME.png, the "
              "Cellpose convention), a folder of label images with the images' names, or auto (fewgan's particle "
              "analysis; its parameters are recorded in the run config)",
    "label_head": "labelled runs: the generator's label channels leave through tanh (bounded like the label "
                  "encoding; keeps samples' layouts from collapsing to one) or linear",
    "image_critic": "labelled runs: a second discriminator that sees the image channels alone, beside the one "
                    "that sees image + labels (keeps the images varied; costs about one more critic pass)",
    "z_dim": "length of the random latent vector z",
    "w_dim": "length of the intermediate latent vector w (the style)",
    "mapping_layers": "fully connected layers of the mapping network z -> w",
    "mapping_lr_mult": "learning-rate multiplier of the mapping network (StyleGAN2: 0.01)",
    "cmax": "most feature channels at any resolution",
    "mbstd_group": "images per minibatch-standard-deviation group in the discriminator",
    "batch": "images per training step (over all processes)",
    "lr_g": "Adam learning rate of the generator",
    "lr_d": "Adam learning rate of the discriminator",
    "lr_rampdown": "fraction of the budget, at its end, over which both learning rates fall to 0 along a half "
                   "cosine (0: constant, the reference configuration); extending a run re-spreads it over the new budget",
    "beta1": "Adam beta1 of both networks [0, 1)",
    "beta2": "Adam beta2 of both networks [0, 1)",
    "r1_gamma": "weight of the R1 gradient penalty on real images (0: off)",
    "pl_weight": "weight of the path-length regulariser of the generator (0: off)",
    "pl_decay": "decay of the running mean of path lengths [0, 1]",
    "pl_batch_shrink": "the path-length step uses batch / N images",
    "g_reg_every": "steps between path-length regularisation steps (lazy regularisation)",
    "d_reg_every": "steps between R1 steps (lazy regularisation)",
    "style_mixing": "probability of mixing two latents in one image [0, 1]",
    "ema_decay": "decay of the generator's exponential moving average per step [0, 1)",
    "ada_target": "ADA: target fraction of real images the discriminator scores positive [0, 1]",
    "ada_kimg": "ADA: thousands of images for the augmentation probability to go from 0 to 1",
    "ada_interval": "ADA: steps between adjustments of the augmentation probability",
    "eval_images": "generated images per evaluation of the selection metric",
    "eval_batch": "images per forward pass when generating for an evaluation",
    "feature_batch": "images per Inception forward pass in an evaluation",
    "checkpoint_every_steps": "also write the resume checkpoint every N steps (0: off)",
    "sample_every": "epochs between sample grids in samples/ (0: never)",
    "log_every": "steps between loss lines and metrics records",
    "channels_last": "channels-last memory format (GPU)",
}


def register(sub) -> None:
    from fewgan.cli import DEVICE_HELP, add_group, finite_float, positive_int
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
                   help="default: the reference configuration's networks and losses with DiffAugment and flips "
                        "only; seed: the reference configuration exactly, including its classical augmentation "
                        "of the real images (rotations, colour, erasing), which can leak into the generated "
                        "images (default: default)")
    t.add_argument("--device", default="auto", help=DEVICE_HELP)
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar or log lines, only warnings, a one-line status on stderr every 30 s and the "
                        "run folder at the end")
    t.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    add_config_arguments(t, StyleGAN2Config, help=_HELP)
    t.set_defaults(func=_train)

    g = actions.add_parser(
        "generate", help="write images of a trained run (in the data set's bit depth)",
        description="Write images of a trained run: best EMA generator, else best G, else the last checkpoint.",
    )
    g.add_argument("run", help="run folder")
    g.add_argument("--out", default=None, help="output folder (default: RUN/generated)")
    g.add_argument("--n", type=positive_int, default=None, help="number of images (default: one per seed, or 16)")
    g.add_argument("--seeds", default=None, help="seeds, e.g. 0-999 or 1,5,9 (default 0..n-1)")
    g.add_argument("--trunc", type=finite_float, default=1.0,
                   help="truncation psi: 1 = none (default), 0.7 = typical (less variety, fewer odd images), "
                        "0 = the average image")
    g.add_argument("--noise-mode", choices=("const", "random", "none"), default="const", help="noise inputs")
    g.add_argument("--batch", type=positive_int, default=32, help="images generated before they are written (default: 32); every image is computed on its own, so it never changes a pixel")
    g.add_argument("--grid", action="store_true", help="also write grid.png of the seeds")
    g.add_argument("--interpolate", action="store_true", help="also write interpolation.png between the first two seeds")
    g.add_argument("--format", choices=("png", "tiff"), default=None, help="file format (default: the data set's)")
    g.add_argument("--export", default=None, metavar="FORMATS",
                   help="labelled runs: also export the labels as cellpose, coco, yolo, yolo-seg (comma list) or "
                        "all; NAME_masks.tif is always written beside each image of a labelled run")
    g.add_argument("--device", default="auto", help=DEVICE_HELP)
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
    if not args.dry_run and args.resume is None:
        from fewgan.run import check_writable

        check_writable(args.results, "--results")
    run = api.train_stylegan2(args.folder, results=args.results, resume=args.resume, device=args.device,
                              quiet=args.quiet, preset=args.preset, dry_run=args.dry_run, **options)
    if not args.dry_run and os.environ.get("RANK", "0") == "0":
        print(f"run folder: {run}")  # with --quiet too: the one line a script needs
    return 0


def _generate(args) -> int:
    from fewgan import api

    from fewgan.run import check_writable

    n = args.n if args.n is not None or args.seeds is not None else 16
    check_writable(args.out if args.out is not None else args.run, "--out" if args.out is not None else "RUN")
    api.generate(args.run, args.out, n=n, seeds=args.seeds, psi=args.trunc, noise_mode=args.noise_mode,
                 batch=args.batch, grid=args.grid, interpolate=args.interpolate, format=args.format,
                 device=args.device, quiet=args.quiet, export=args.export)
    return 0
