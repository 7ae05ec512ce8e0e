"""``fewgan gpnn IMAGE OUT``: training-free samples of one image by patch nearest neighbours (GPNN)."""

from __future__ import annotations

_HELP = {
    "patch": "patch side in px (odd)",
    "scale_factor": "size ratio between neighbouring scales (0.3-1)",
    "min_size": "shorter side of the coarsest scale, px",
    "noise_std": "noise added to the coarsest scale, in [-1, 1] image units (the only randomness)",
    "alpha": "completeness weight of the normalised patch distance (smaller: every source patch used)",
    "iterations": "nearest-neighbour iterations per scale",
    "exact_limit": "most query x key patch pairs searched exactly at one scale; beyond it, PatchMatch",
    "patchmatch_rounds": "PatchMatch rounds per iteration",
    "patchmatch_dims": "principal components of a patch PatchMatch compares (49: all of a gray 7x7 patch)",
    "labels": "carry instance labels: PATH (label image or binary mask, same size), beside (NAME_masks.tif|png "
              "next to the image) or auto (fewgan's particle analysis); each sample gets NAME_masks.tif",
}


def register(sub) -> None:
    from fewgan.cli import positive_int
    from fewgan.config import add_config_arguments
    from fewgan.gpnn import GPNNConfig

    p = sub.add_parser(
        "gpnn", help="training-free samples of one image by patch nearest neighbours (GPNN; seconds, no GPU)",
        description="Make N samples of one image (PNG/TIFF/JPEG, 8/16-bit or float, gray or RGB) by coarse-to-fine "
                    "patch nearest neighbours (Granot et al., CVPR 2022): nothing is trained. The image is used at "
                    "its own resolution and pixel size; samples keep its format, bit depth and data range. "
                    "OUT gets the samples, log.txt and gpnn.json (what made them); fewgan eval and fewgan report "
                    "read it.")
    p.add_argument("image", help="the image")
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=positive_int, default=8, help="number of samples (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed: sample i depends only on (seed, i) (default: 0)")
    p.add_argument("--size", default=None, help="sample size HEIGHTxWIDTH, e.g. 300x400 (default: the image's)")
    p.add_argument("--scale", default=None, help="sample size factor: 1.5, or HEIGHTxWIDTH factors such as 1x2")
    p.add_argument("--format", choices=("png", "tiff"), default=None, help="output format (default: the input's)")
    p.add_argument("--export", default=None, metavar="FORMATS",
                   help="with --labels (which always writes NAME_masks.tif beside each sample): also write these "
                        "label formats: cellpose,coco,yolo (or yolo-seg), any combination, or all")
    p.add_argument("--quiet", action="store_true", help="no progress bar or first lines on the terminal")
    add_config_arguments(p, GPNNConfig, help=_HELP)
    p.set_defaults(func=_run)


def _run(args) -> int:
    import dataclasses

    from fewgan import api
    from fewgan.gpnn import GPNNConfig
    from fewgan.run import check_writable

    check_writable(args.out, "OUT")
    names = {f.name for f in dataclasses.fields(GPNNConfig)}
    options = {k: v for k, v in vars(args).items() if k in names}
    out = api.gpnn(args.image, args.out, n=args.n, seed=args.seed, size=args.size, scale=args.scale,
                   format=args.format, export=args.export, quiet=args.quiet, **options)
    print(f"wrote {args.n} sample(s) to {out}")
    return 0
