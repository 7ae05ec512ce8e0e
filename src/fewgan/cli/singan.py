"""``fewgan singan train|sample``: SinGAN on one image."""

from __future__ import annotations

_TRAIN_HELP = {
    "min_size": "short side of the coarsest scale, px",
    "max_size": "long side of the finest scale, px",
    "steps": "training steps per scale, counted from 0: N runs steps 0..N, i.e. N + 1 updates per scale "
             "(the published code's convention)",
    "lr": "Adam learning rate of both networks",
    "betas": "Adam betas",
    "noise_weight": "amp(sk) = noise weight x RMSE of the upsampled reconstruction",
    "batch_size": "noise draws per step (the real image is repeated)",
    "lr_decay_fraction": "decay the lr by --lr-gamma after this fraction of each scale's steps",
    "channels": "auto (gray trained as 3 identical channels, sampled gray), 1 or 3",
    "data_range": "LO HI: data values mapped to [-1, 1], e.g. 0 4095 for a 12-bit camera in uint16 "
                  "(default: the dtype range; the value range for float images)",
    "page": "page of a multi-page TIFF",
    "labels": "train on the image and its instance labels: PATH (label image or binary mask, same size), "
              "beside (NAME_masks.tif|png next to the image) or auto (fewgan's particle analysis)",
    "native": "keep the image's own pixel size (no downscaling to --max-size): for micrographs whose "
              "particles must keep their size in pixels",
    "crop": "scales larger than this train on random CROP x CROP crops (the coarse scales see the whole "
            "image); 0: never crop (default: 256)",
    "log_every": "steps between loss lines (in the published code's format) and metrics records",
    "checkpoint_every": "resume checkpoint every N steps within a scale",
    "stop_after": "stop after N steps in total, as if killed (for testing --resume)",
    "scale_factor_init": "size ratio between neighbouring scales the pyramid rule starts from (0-1)",
    "lr_step_size": "steps after which the learning rate is multiplied by --lr-gamma",
    "lr_gamma": "factor applied to the learning rate every --lr-step-size steps (0-1]",
    "critic_steps": "critic (discriminator) updates per generator update",
    "gp_weight": "weight of the WGAN-GP gradient penalty in the critic loss",
    "recon_weight": "weight of the reconstruction loss (fixed noise must rebuild the image) in the generator loss",
    "adv_weight": "weight of the adversarial term in the generator loss",
    "features": "convolution channels at the coarsest scale",
    "max_features": "most convolution channels at any scale",
    "features_every": "the channel count doubles every N scales (up to --max-features)",
    "num_blocks": "convolution layers per generator and critic (the critic's receptive field is "
                  "num-blocks x (kernel-size - 1) + 1 px)",
    "kernel_size": "convolution kernel size in px (odd)",
    "seed": "random seed: the same seed and options give the same run",
    "sample_count": "random samples in each scale's sample grid",
    "concurrent": "on a CPU with 2+ threads, run the two halves of each update on two single-threaded "
                  "workers (same losses up to float rounding; faster on some CPUs)",
    "critic_norm": "the critic's normalisation: batch (BatchNorm, the published code; on one image it cannot "
                   "see a sample's brightness or contrast) or none (no normalisation, as WGAN-GP prescribes; "
                   "experimental: not better at 300 steps per scale, bench/README.md)",
    "conv": "CPU kernels of the wide 3x3 convolutions: auto (Winograd where measured faster), winograd or direct",
}


def register(sub) -> None:
    from fewgan.cli import DEVICE_HELP, add_group, positive_int
    from fewgan.config import add_config_arguments
    from fewgan.singan.config import SinGANConfig

    _, actions = add_group(sub, "singan", "SinGAN on one image: train, sample")

    p = actions.add_parser(
        "train", help="train SinGAN on one image (PNG/TIFF/JPEG, 8/16-bit, gray or RGB)",
        description="Train a multi-scale SinGAN (g_multivanilla / d_vanilla, WGAN-GP) on one image. "
                    "Defaults follow the published reference training run (kligvasser/SinGAN): min size 16, "
                    "max size 200, lr 4e-4, 2000 steps per scale (steps 0..2000). The finest scale is at most "
                    "--max-size px: a larger image is downscaled, and the first lines say so.")
    p.add_argument("image", nargs="?", help="the training image (omit with --resume)")
    p.add_argument("--results", default="results", help="parent folder of the run folder (default: results)")
    p.add_argument("--resume", metavar="RUN", default=None, help="continue a run from its last checkpoint")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar or log lines, only a one-line status on stderr every 30 s (files are still written)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and pyramid, train nothing")
    add_config_arguments(p, SinGANConfig, help=_TRAIN_HELP)
    p.set_defaults(func=_train)

    s = actions.add_parser(
        "sample", help="write random images from a trained SinGAN run",
        description="Write N random images of a trained run in the input's format and bit depth; "
                    "--size/--scale change the size or aspect, --start-scale injects the real image.")
    s.add_argument("run", help="a SinGAN run folder")
    s.add_argument("--out", default=None, help="output folder (default: RUN/samples_seed<SEED>)")
    s.add_argument("--n", type=positive_int, default=16, help="number of images (default: 16)")
    s.add_argument("--batch", type=positive_int, default=16, help="images generated between progress checks (default: 16); every image is computed on its own, so it never changes a pixel")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--size", default=None, help="output size HEIGHTxWIDTH, e.g. 300x400")
    s.add_argument("--scale", default=None, help="output size factor: 1.5, or HEIGHTxWIDTH factors such as 1x2")
    s.add_argument("--start-scale", type=int, default=None, help="inject the real image at this scale (0..N)")
    s.add_argument("--reconstruct", action="store_true", help="also write the fixed-noise reconstruction")
    s.add_argument("--format", choices=("png", "tiff"), default=None, help="output format (default: the input's)")
    s.add_argument("--tile", type=positive_int, default=None,
                   help="make each image in TILE x TILE px tiles with overlap: any size (4096x4096 too) in bounded "
                        "memory, the same image up to float rounding (default: automatic, 256 px tiles when the "
                        "untiled image would need more than 1 GiB of feature maps)")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--export", default=None, metavar="FORMATS",
                   help="a model trained with --labels writes NAME_masks.tif beside each sample; also write "
                        "these label formats: cellpose,coco,yolo (or yolo-seg), any combination, or all")
    s.set_defaults(func=_sample)


def _train(args) -> int:
    from fewgan import api
    from fewgan.config import config_from_args  # noqa: F401 (options come from the same dataclass)
    from fewgan.singan.config import SinGANConfig
    import dataclasses

    names = {f.name for f in dataclasses.fields(SinGANConfig)}
    options = {k: v for k, v in vars(args).items() if k in names}
    if not args.dry_run and args.resume is None:
        from fewgan.run import check_writable

        check_writable(args.results, "--results")
    run = api.train_singan(args.image, results=args.results, resume=args.resume, device=args.device,
                           quiet=args.quiet, dry_run=args.dry_run, **options)
    if not args.dry_run and args.quiet:
        print(run)
    return 0


def _sample(args) -> int:
    from fewgan import api
    from fewgan.run import check_writable

    check_writable(args.out if args.out is not None else args.run, "--out" if args.out is not None else "RUN")
    from fewgan.singan.train import resolve_device

    print(f"device: {resolve_device(args.device)}")
    out = api.sample(args.run, args.out, n=args.n, batch=args.batch, seed=args.seed, size=args.size,
                     scale=args.scale, start_scale=args.start_scale, reconstruct=args.reconstruct,
                     format=args.format, device=args.device, export=args.export, tile=args.tile)
    print(f"wrote {args.n} image(s) to {out}")
    return 0
