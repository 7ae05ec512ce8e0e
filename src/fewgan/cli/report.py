"""``fewgan report RUN``: (re)write a run's plots and its self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's plots and its self-contained HTML report (report.html)",
        description=(
            "Draw the plots of a run folder (plots/*.png) and write report.html: configuration, "
            "environment, timings, result tables, evaluation (eval.json), figures and samples, "
            "all embedded in one file that opens without network access. Prints the report's path."
        ),
    )
    p.add_argument("run", help="run folder (results/<date_time>)")
    p.add_argument("--out", default=None, help="where to write the report (default RUN/report.html)")
    p.add_argument("--no-plots", action="store_true", help="do not redraw plots/*.png; embed the ones that exist")
    p.add_argument("--max-images", type=int, default=24, help="most sample images embedded (default 24)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from fewgan import api
    from fewgan.errors import FewganError

    if args.max_images < 0:
        raise FewganError(f"--max-images {args.max_images}: must be 0 or more")
    from fewgan.run import check_writable

    if args.out is not None:
        check_writable(args.out, "--out", kind="file")
    elif Path(args.run).is_dir():  # report.html and plots/ go into the run folder
        check_writable(args.run, "RUN")
    path = api.report(args.run, out=args.out, plots=not args.no_plots, max_images=args.max_images)
    print(path)
    return 0
