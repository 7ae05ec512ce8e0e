"""``fewgan weights``: the Inception weights that FID, KID, precision/recall and SIFID need.

``fewgan weights where`` shows where fewgan looks and what it finds;
``fewgan weights import FILE`` checks a file's SHA-256 and copies it into torch's hub cache;
``fewgan weights fetch [--url URL]`` downloads it (the only command that goes online).
"""

from __future__ import annotations

from fewgan.cli import add_group


def register(sub) -> None:
    _, actions = add_group(sub, "weights", "the Inception weights for FID/KID/SIFID: where, import, fetch")

    p = actions.add_parser("where", help="show where fewgan looks for the weights and what it finds",
                           description="Show the lookup order (explicit path, $FEWGAN_INCEPTION_WEIGHTS, torch hub "
                                       "cache) and the file found, with its SHA-256.")
    p.add_argument("--path", default=None, help="an explicit weights file to check")
    p.set_defaults(func=_where)

    p = actions.add_parser("import", help="check a weights file's SHA-256 and copy it into the cache",
                           description="Check that FILE is the FID Inception weights (SHA-256) and copy it "
                                       "into torch's hub cache, where fewgan, pytorch-fid and torch-fidelity find it.")
    p.add_argument("file", help="pt_inception-2015-12-05-6726825d.pth or weights-inception-2015-12-05-6726825d.pth")
    p.add_argument("--to", default=None, help="folder to copy into (default: torch.hub.get_dir()/checkpoints)")
    p.set_defaults(func=_import)

    p = actions.add_parser("fetch", help="download the weights (needs internet), check the hash, install them",
                           description="Download the FID Inception weights (95.6 MB), check the SHA-256 and "
                                       "install them into torch's hub cache.")
    p.add_argument("--url", default=None, help="download from this URL (default: pytorch-fid's release, then "
                                               "torch-fidelity's)")
    p.add_argument("--to", default=None, help="folder to install into (default: torch.hub.get_dir()/checkpoints)")
    p.set_defaults(func=_fetch)


def _where(args) -> int:
    from fewgan import api

    status = api.weights_status(args.path)
    for c in status["candidates"]:
        mark = "found" if c["exists"] else ("not set" if c["path"] is None else "missing")
        print(f"{c['source']:>18}: {c['path'] or '-'} [{mark}]")
    if status["found"]:
        ok = "the FID reference weights" if status["reference"] else "NOT the FID reference weights"
        print(f"using {status['found']}")
        print(f"sha256 {status['sha256']} ({ok})")
        return 0
    print(status["error"])
    return 1


def _import(args) -> int:
    from fewgan import api

    path = api.import_weights(args.file, args.to)
    print(f"imported {path} (sha256 checked)")
    return 0


def _fetch(args) -> int:
    from fewgan import api

    path = api.fetch_weights(args.url, args.to)
    print(f"downloaded {path} (sha256 checked)")
    return 0
