"""``fewgan synth``: synthetic particle micrographs with exact ground truth."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from fewgan.cli import finite_float, positive_int

    p = sub.add_parser(
        "synth",
        help="make synthetic particle micrographs with ground truth (one large image or a folder of small ones)",
        description=(
            "Make synthetic particle micrographs with exact ground truth (centre, radius, peak "
            "intensity of every particle) for trying and testing fewgan without private data."
        ),
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--mode", choices=("micrograph", "folder"), default="micrograph",
                   help="one large micrograph (for SinGAN) or a folder of N small images (for StyleGAN2)")
    p.add_argument("--n", type=positive_int, default=None, help="number of images in folder mode (default 200)")
    p.add_argument("--size", type=positive_int, default=None, help="image side in px (default 512 micrograph, 64 folder)")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=None, help="8 or 16 (default 16)")
    p.add_argument("--rgb", action="store_true", help="RGB images (tinted particles) instead of grayscale")
    p.add_argument("--format", choices=("png", "tiff"), default=None, help="file format (default png)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    p.add_argument("--density", type=finite_float, default=None, help="particles per 10,000 px^2")
    p.add_argument("--radius", type=finite_float, default=None, help="median particle radius in px")
    p.add_argument("--radius-sigma", type=finite_float, default=None, help="log-normal sigma of the radius")
    p.add_argument("--min-spacing", type=finite_float, default=None,
                   help="minimum gap between particle edges in px (negative allows overlap)")
    p.add_argument("--psf-sigma", type=finite_float, default=None, help="Gaussian point-spread function sigma in px")
    p.add_argument("--read-noise", type=finite_float, default=None, help="Gaussian read noise, in photo-electrons")
    p.add_argument("--photons", type=finite_float, default=None, help="photo-electrons at peak particle intensity (shot noise)")
    p.add_argument("--pixel-size", type=finite_float, default=None, help="physical pixel size written into the files")
    p.add_argument("--pixel-unit", default=None, help="unit of --pixel-size (default nm)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from fewgan import api

    options = {k: v for k, v in vars(args).items()
               if k not in ("func", "command", "debug", "out", "_parser") and v is not None and v is not False}
    if args.rgb:
        options["channels"] = 3
    options.pop("rgb", None)
    from fewgan.run import check_writable

    check_writable(args.out, "OUT")
    from fewgan.data.synthetic import synth_files

    api.synth(args.out, **options)  # returns the image (micrograph mode) or the folder
    out = Path(args.out)
    files = sorted(synth_files(out))
    print(f"wrote {len(files)} file(s) to {out}: " + ", ".join(p.name for p in files[:4]) + (", ..." if len(files) > 4 else ""))
    return 0
