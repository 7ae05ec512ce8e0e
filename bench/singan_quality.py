#!/usr/bin/env python
"""SinGAN sample quality, fewgan against the public kligvasser/SinGAN, with their sampling rules (issue 17).

For every image and seed: the image is fitted to ``--max-size`` (PIL bicubic, antialiased, sides
rounded up: what the peer harness's ``--prefit`` does) and saved as one 8-bit gray PNG that both
programs train on (fewgan reads it as one channel, the peer as RGB); fewgan trains in this process
(``fewgan.singan.train.train``), the peer through ``../shared/peers/singan_peer.py`` with its own
virtual environment. Then 16 random samples are drawn with each program's BatchNorm rules:

* fewgan ``standing`` (the rule fewgan samples with, :data:`fewgan.singan.nets.SAMPLING_RULE`: the
  finest scale normalises with its standing statistics, the frozen scales use their running
  averages); ``as-trained`` (the finest scale normalises each sample by its own statistics: the rule
  before standing statistics); ``running`` (every scale in BatchNorm eval mode: the rule before issue 17); ``own``
  (every scale each sample's own statistics, the peer's evaluation rule applied to fewgan);
* peer ``train``: its ``--evaluation`` path (every scale in train mode on a batch of one: each sample
  its own statistics); peer ``eval``: the same networks with BatchNorm in eval mode.

``--critic-norm none`` trains fewgan with its unnormalised critic (``fewgan singan train --critic-norm``;
runs under ``runs/fewgan-none_*``, rows ``fewgan none <rule>``, pictures ``<image>_seed<k>_fewgan-none.png``).

The peer is sampled by ``bench/singan_peer_sample.py``, run with the peer's python: it imports the
peer's own ``Trainer`` and ``g_multivanilla`` from its work tree (nothing copied) and draws with them.
One metric code judges all: per-sample intensity std and 0.5 / 99.5 percentiles (8-bit grey levels;
the peer's RGB averaged to gray), SWD (``fewgan.metrics.swd.swd_levels``, mean over ``--metric-seeds``),
pixel diversity (``fewgan.metrics.sifid.pixel_diversity``) and where it comes from (:func:`variety`:
layouts, brightness, contrast), reconstruction PSNR (fixed noise,
fewgan's as-trained rule; the peer's with BatchNorm eval, as it saves ``s<N>_fixed.png``). Writes ``OUT/quality.json``, ``OUT/quality.md`` (the table) and
``OUT/<image>_seed<k>.png`` (rows: real | reconstruction | 7 samples, one row per program and rule, in
the order of the table). The same command with the same ``--out`` reuses finished trainings and
cached peer samples and judges them anew.

    .venv/bin/python bench/singan_quality.py --peer /tmp/peer_singan --peer-python /tmp/peer-venv/bin/python \\
        --images coins hubble brick synth --seeds 0 1 2 --max-size 128 --steps 300 --out bench/quality

Runs made in pieces (other seeds, other machines) are merged by ``--summarise A/quality.json
B/quality.json ... --out DIR``: one entry per image and seed (a later file's replaces an earlier
one's), the table, and ``DIR/bounds.md``: issue 17 point 2's bounds (:data:`BOUNDS`) checked on each
image's means over the seeds that have both programs.

Images (all offline): ``coins`` (skimage, 303x384 gray), ``hubble`` (skimage ``hubble_deep_field``
rows 0:250, cols 250:450, to gray), ``brick`` (skimage texture, 512x512 gray), ``synth`` (``fewgan
synth`` micrograph, 8-bit, 256 px, bright particles on a dark background), the quick cases ``coins96``
and ``synth96`` of ``bench/README.md``, or a path to any image.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_HARNESS = HERE.parent.parent / "shared" / "peers" / "singan_peer.py"


def source_image(name: str):
    """``[H, W]`` uint8 gray array of a named test image (or a file)."""
    import numpy as np
    from PIL import Image

    if name == "coins":
        from skimage import data
        return data.coins()
    if name == "hubble":
        from skimage import color, data
        rgb = data.hubble_deep_field()[0:250, 250:450]
        return np.clip(np.rint(color.rgb2gray(rgb) * 255), 0, 255).astype(np.uint8)
    if name in ("brick", "grass", "gravel"):
        from skimage import data
        return getattr(data, name)()
    if name == "coins96":  # the quick case of issue 17: three coins, bright on dark, 96 x 96
        from skimage import data
        return data.coins()[170:266, 0:96]
    if name == "synth96":  # the quick micrograph of issue 17 (fit to 64 px in the figures of bench/README.md)
        from fewgan.data.synthetic import make_micrograph
        image, _ = make_micrograph(seed=3, size=(96, 96), bit_depth=8, density=6.0, radius=7.0)
        return image
    if name == "synth":
        from fewgan.data.synthetic import make_micrograph
        image, _ = make_micrograph(seed=0, size=(256, 256), bit_depth=8, density=2.0, radius=10.0)
        return image
    with Image.open(name) as im:
        return np.asarray(im.convert("L"))


def prefit(array, max_size: int, path: Path) -> Path:
    """The larger side at most ``max_size`` (PIL bicubic, antialiased, ceil sizes), 8-bit gray PNG."""
    from PIL import Image

    im = Image.fromarray(array)
    w, h = im.size
    s = min(max_size / max(h, w), 1.0)
    nh, nw = math.ceil(h * s), math.ceil(w * s)
    if (nh, nw) != (h, w):
        im = im.resize((nw, nh), Image.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def fewgan_run(image: Path, out: Path, a) -> Path:
    from fewgan.singan.train import train

    done = sorted(out.glob("*/generator.pt"))
    if done:
        return done[-1].parent
    return Path(train(str(image), results=str(out), quiet=True, steps=a.steps, min_size=a.min_size,
                      max_size=a.max_size, lr=a.lr, seed=a.seed_now, log_every=100, checkpoint_every=10**9,
                      critic_norm=a.critic_norm))


RULES = ("standing", "as-trained", "running", "own")
"""fewgan's BatchNorm rules the bench draws with (:data:`fewgan.singan.nets.SAMPLING_RULES`), its sampler's first."""
PROGRAM = f"fewgan {RULES[0]}"
"""The rows point 2's bounds judge: fewgan's sampler (:data:`fewgan.singan.nets.SAMPLING_RULE`)."""


def fewgan_samples(run: Path, n: int, seed: int):
    """{rule: [n, 1, H, W]} in [-1, 1] for every rule of :data:`RULES`, the reconstruction [1, 1, H, W], the real image."""
    import torch

    from fewgan.singan.sample import SinGANModel

    model = SinGANModel.load(run)
    out = {rule: model.sample_tensor(n, seed=seed, rule=rule) for rule in RULES}
    return out, model.reconstruct_tensor(), model.image(model.reals[-1]).cpu()  # gray: the trained channels' mean


def peer_run(image: Path, out: Path, a) -> Path:
    run = out / "run"
    if not (run / "g_multivanilla.pt").is_file():
        cmd = [a.peer_python, str(PEER_HARNESS), "run", "--peer", a.peer, "--image", str(image), "--out", str(out),
               "--min-size", str(a.min_size), "--max-size", str(a.max_size), "--lr", repr(a.lr),
               "--steps", str(a.steps), "--seed", str(a.seed_now), "--threads", str(a.threads),
               "--print-every", "100", "--quiet", "--no-quality", "--force"]
        subprocess.run(cmd, check=True)
    return run


def peer_samples(run: Path, image: Path, n: int, seed: int, a):
    import numpy as np
    import torch

    prefix = run / f"samples_seed{seed}"
    if not Path(f"{prefix}_train.npy").is_file():
        subprocess.run([a.peer_python, str(HERE / "singan_peer_sample.py"), a.peer, str(run), str(image),
                        str(a.min_size), str(a.max_size), str(n), str(seed), str(prefix)], check=True,
                       env={**os.environ, "PYTHONPATH": str(PEER_HARNESS.parent / "shims")})
    gray = lambda x: torch.from_numpy(np.load(x)).float().mean(1, keepdim=True)  # noqa: E731
    return ({"train": gray(f"{prefix}_train.npy"), "eval": gray(f"{prefix}_eval.npy")},
            gray(f"{prefix}_recon.npy"), gray(f"{prefix}_real.npy"))


def judge(real, fake, recon, metric_seeds):
    """Numbers of one set of samples against the real image (all ``[N, 1, H, W]`` in [-1, 1])."""
    import numpy as np
    import torch

    from fewgan.metrics.sifid import pixel_diversity
    from fewgan.metrics.swd import swd_levels

    u8 = lambda x: ((x.double().clamp(-1, 1) + 1) * 127.5).numpy()  # noqa: E731
    f = u8(fake)
    per = np.array([[s.std(), *np.percentile(s, [0.5, 99.5]), s.max()] for s in f])
    swds = [swd_levels(real, fake, seed=k) for k in metric_seeds]
    return {"std": float(per[:, 0].mean()), "p0.5": float(per[:, 1].mean()), "p99.5": float(per[:, 2].mean()),
            "max": float(per[:, 3].mean()),
            "swd": float(np.mean([s["swd"] for s in swds])), "swd_sd": float(np.std([s["swd"] for s in swds])),
            "swd_levels": [float(np.mean(v)) for v in zip(*[s["levels"] for s in swds])],
            "diversity": float(pixel_diversity(fake, real[0])), **variety(f),
            "psnr": float(10 * torch.log10(4 / ((recon.clamp(-1, 1) - real) ** 2).mean()))}


def variety(samples) -> dict:
    """Where a set of samples' pixel diversity comes from (information beside point 2's bounds, not a bound).

    ``samples``: ``[N, C, H, W]`` (N >= 2). ``structure``: the pixel diversity of the samples after each is
    standardised by its own mean and std (mean over pixels of the per-pixel std over samples): the variety
    of where things are, blind to any sample being brighter or of more contrast than another; samples with
    independent layouts give about 1, one layout in every sample 0. ``mean_jitter`` / ``std_jitter``: the std
    over samples of each sample's mean and of its std (the units of ``samples``): the variety of brightness and
    contrast between samples, which the plain pixel diversity counts as well (a sampler that normalises each
    sample by its own BatchNorm statistics, like the peer's, adds some)."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    mean, std = x.mean(1), x.std(1)
    z = (x - mean[:, None]) / np.maximum(std, 1e-12)[:, None]
    return {"structure": float(z.std(0).mean()), "mean_jitter": float(mean.std()), "std_jitter": float(std.std())}


def picture(path: Path, real, rows: dict):
    """real | reconstruction | 7 samples, one row per program and rule."""
    import torch

    from fewgan.data.images import save_grid

    k = min(7, *(len(samples) for _, samples in rows.values()))
    tiles = []
    for name, (recon, samples) in rows.items():
        tiles += [real[0], recon[0], *samples[:k]]
    save_grid(path, torch.stack(tiles), nrow=2 + k)


def real_stats(real):
    import numpy as np

    r = ((real.double() + 1) * 127.5).numpy()
    return {"std": float(r.std()), "p0.5": float(np.percentile(r, 0.5)), "p99.5": float(np.percentile(r, 99.5)),
            "max": float(r.max())}


def markdown(results) -> str:
    lines = ["| image | seed | program, sampler | std (real) | p0.5 / p99.5 (real) | SWD | SWD levels fine..coarse "
             "| diversity | structure, mean / std jitter | recon PSNR |", "| --- " * 10 + "|"]
    for r in results:
        rs = r["real"]
        for key, m in r["programs"].items():
            lines.append(f"| {r['image']} | {r['seed']} | {key} | {m['std']:.1f} ({rs['std']:.1f}) | "
                         f"{m['p0.5']:.0f} / {m['p99.5']:.0f} ({rs['p0.5']:.0f} / {rs['p99.5']:.0f}) | "
                         f"{m['swd']:.3f} | {' '.join(f'{v:.3f}' for v in m['swd_levels'])} | "
                         f"{m['diversity']:.2f} | {_variety_cell(m)} | {m['psnr']:.2f} |")
    return "\n".join(lines) + "\n"


def _variety_cell(m: dict) -> str:
    """:func:`variety`'s numbers of one entry (``-`` for an entry judged before they existed)."""
    if "structure" not in m:
        return "-"
    return f"{m['structure']:.2f}, {m['mean_jitter']:.1f} / {m['std_jitter']:.1f}"


BOUNDS = {"std": 0.15, "percentile": 10.0, "psnr": 0.5}
"""Issue 17 point 2, per image on the mean over seeds: the samples' mean intensity std within 15 % of
the real image's, their 0.5 / 99.5 percentiles within 10 grey levels of the real image's, diversity
at least the peer's and SWD at most the peer's (the peer sampled through its own evaluation path,
``peer train``), reconstruction PSNR at most 0.5 dB below the peer's."""

CHECKS = ("std", "p0.5", "p99.5", "swd", "diversity", "psnr")
"""The judged numbers, in the order of :func:`bounds_markdown`'s verdict column (each has one bound)."""

INFO = ("structure",)
"""Numbers :func:`bounds` also averages, shown beside the bounds but judged by none (:func:`variety`)."""


def merge(files) -> list[dict]:
    """The entries of several ``quality.json`` files, one per (image, seed): a later file's entry
    replaces an earlier one's (a re-run with the peer beside it replaces a fewgan-only run)."""
    entries = {}
    for f in files:
        for e in json.loads(Path(f).read_text())["results"]:
            entries[(e["image"], e["seed"])] = e
    return [entries[key] for key in sorted(entries)]


def bounds(results, program: str = PROGRAM, peer: str = "peer train") -> list[dict]:
    """Point 2's bounds (:data:`BOUNDS`) per image, on the means over the seeds that have both programs.

    Returns one dict per image: ``seeds``, the means (``program``, ``peer``, ``real``: std, p0.5,
    p99.5, swd, diversity, psnr) and ``checks`` {bound: bool}; images without a peer entry get the
    seeds and no checks.
    """
    import numpy as np

    rows = []
    for image in dict.fromkeys(e["image"] for e in results):
        both = [e for e in results if e["image"] == image and program in e["programs"] and peer in e["programs"]]
        row = {"image": image, "seeds": [e["seed"] for e in both]}
        if both:
            mean = lambda get: {k: float(np.mean([get(e)[k] for e in both])) for k in CHECKS + INFO  # noqa: E731
                                if all(k in get(e) for e in both)}
            f, q, r = mean(lambda e: e["programs"][program]), mean(lambda e: e["programs"][peer]), mean(lambda e: e["real"])
            row.update(program=f, peer=q, real=r, checks={
                "std": abs(f["std"] - r["std"]) <= BOUNDS["std"] * r["std"],
                "p0.5": abs(f["p0.5"] - r["p0.5"]) <= BOUNDS["percentile"],
                "p99.5": abs(f["p99.5"] - r["p99.5"]) <= BOUNDS["percentile"],
                "diversity": f["diversity"] >= q["diversity"],
                "swd": f["swd"] <= q["swd"],
                "psnr": f["psnr"] >= q["psnr"] - BOUNDS["psnr"]})
        rows.append(row)
    return rows


def bounds_markdown(rows, program: str = PROGRAM) -> str:
    """One line per image: the means over seeds, each bound's verdict (**no** where it fails)."""
    mark = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    structure = lambda f, q: (f"{f['structure']:.2f} / {q['structure']:.2f}"  # noqa: E731
                              if "structure" in f and "structure" in q else "-")
    lines = [f"| image | seeds | std {program} / peer (real) | p0.5 / p99.5 (real) | SWD / peer | diversity / peer "
             "| structure / peer (no bound) | recon PSNR / peer | std, p0.5, p99.5, SWD, diversity, PSNR within bounds |",
             "| --- " * 9 + "|"]
    for r in rows:
        if "checks" not in r:
            lines.append(f"| {r['image']} | none with the peer | | | | | | | |")
            continue
        f, q, x, c = r["program"], r["peer"], r["real"], r["checks"]
        lines.append(f"| {r['image']} | {' '.join(map(str, r['seeds']))} | {f['std']:.1f} / {q['std']:.1f} ({x['std']:.1f}) "
                     f"| {f['p0.5']:.0f} / {f['p99.5']:.0f} ({x['p0.5']:.0f} / {x['p99.5']:.0f}) | {f['swd']:.3f} / {q['swd']:.3f} "
                     f"| {f['diversity']:.2f} / {q['diversity']:.2f} | {structure(f, q)} | {f['psnr']:.2f} / {q['psnr']:.2f} "
                     f"| {', '.join(mark(c[k]) for k in CHECKS)} |")
    return "\n".join(lines) + "\n"


def rules_markdown(results, peer: str = "peer train") -> str:
    """Every rule of both programs judged by point 2's bounds, one line per image and rule (means over the
    seeds that have the rule and ``peer``): the numbers behind the bounds, the bounds each fails, and
    ``structure x 1.15``: about the most pixel diversity the rule's layouts give inside the std bound
    (pixel diversity ~ structure x sample std / real std, :func:`variety`), to read beside the peer's
    diversity. A peer row is judged against itself for diversity and SWD (always held) and against
    the real image for the rest."""
    judged = {program: {r["image"]: r for r in bounds(results, program=program, peer=peer)}
              for program in dict.fromkeys(p for e in results for p in e["programs"])}
    lines = ["| image | rule | std / real | p0.5 / p99.5 off the real | SWD | diversity | structure | structure x 1.15 "
             "| bounds failed |", "| --- " * 9 + "|"]
    for image in dict.fromkeys(e["image"] for e in results):
        for program, rows in judged.items():
            row = rows[image]
            if "checks" not in row:
                continue
            f, x = row["program"], row["real"]
            failed = [k for k in CHECKS if not row["checks"][k]]
            s = f.get("structure")
            layouts = "- | -" if s is None else f"{s:.3f} | {s * (1 + BOUNDS['std']):.3f}"
            lines.append(f"| {image} | {program} | {f['std'] / x['std']:.3f} | {f['p0.5'] - x['p0.5']:+.0f} / "
                         f"{f['p99.5'] - x['p99.5']:+.0f} | {f['swd']:.3f} | {f['diversity']:.3f} | {layouts} "
                         f"| {', '.join(failed) or 'none'} |")
    return "\n".join(lines) + "\n"


def summarise(files, out: Path) -> str:
    """``--summarise``: merge ``quality.json`` files, write ``out/quality.json``, ``quality.md``,
    ``bounds.md`` (point 2's bounds on the means over seeds) and ``rules.md`` (the same bounds for every
    rule of both programs, :func:`rules_markdown`); returns the bounds table."""
    from fewgan.run import atomic_write_json, atomic_write_text

    results = merge(files)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "quality.json", {"config": {"merged": [str(f) for f in files]}, "results": results})
    atomic_write_text(out / "quality.md", markdown(results))
    table = bounds_markdown(bounds(results))
    atomic_write_text(out / "bounds.md", table)
    atomic_write_text(out / "rules.md", rules_markdown(results))
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", default=["coins", "hubble", "brick", "synth"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--min-size", type=int, default=16)
    p.add_argument("--max-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--n", type=int, default=16, help="random samples per program and rule")
    p.add_argument("--metric-seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--peer", default=None, help="kligvasser/SinGAN work tree (setup_peer.sh); omit for fewgan only")
    p.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    p.add_argument("--critic-norm", default="batch", choices=["batch", "none"],
                   help="fewgan's --critic-norm (runs under runs/fewgan_* for batch, runs/fewgan-none_* for none)")
    p.add_argument("--out", default=str(HERE / "quality"))
    p.add_argument("--summarise", nargs="+", metavar="QUALITY_JSON", default=None,
                   help="train nothing: merge these quality.json files (a later one's image and seed replaces an "
                        "earlier one's) into --out, with bounds.md, point 2's bounds on the means over seeds, and "
                        "rules.md, the same bounds for every rule of both programs")
    a = p.parse_args(argv)
    if a.summarise:
        print(summarise(a.summarise, Path(a.out)), end="")
        return 0
    import torch

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    # a re-run with the same --out reuses finished trainings and judges them anew (the same samples: the
    # same seeds); their training seconds are the earlier run's, not this run's judging time
    earlier = {(e["image"], e["seed"]): e for e in (json.loads((out / "quality.json").read_text())["results"]
                                                      if (out / "quality.json").is_file() else [])}
    for seed in a.seeds:  # every image at one seed before the next seed: a partial run covers all images
        for name in a.images:
            stem = Path(name).stem
            image = prefit(source_image(name), a.max_size, out / "images" / f"{stem}_fit{a.max_size}.png")
            a.seed_now = seed
            t0 = time.perf_counter()
            tag = "fewgan" if a.critic_norm == "batch" else f"fewgan-{a.critic_norm}"
            before = earlier.get((stem, seed), {})
            frun = out / "runs" / f"{tag}_{stem}_s{seed}"
            reused = any(frun.glob("*/generator.pt"))
            run = fewgan_run(image, frun, a)
            samples, recon, real = fewgan_samples(run, a.n, 100 + seed)
            real = real.float()
            entry = {"image": stem, "seed": seed, "fitted": str(image), "real": real_stats(real), "programs": {},
                     "fewgan_run": str(run), "seconds_fewgan": round(time.perf_counter() - t0, 1)}
            if reused:
                entry["seconds_fewgan"] = before.get("seconds_fewgan")
            rows = {}
            for rule in RULES:
                key = f"{tag.replace('-', ' ')} {rule}"
                entry["programs"][key] = judge(real, samples[rule], recon, range(a.metric_seeds))
                rows[key] = (recon, samples[rule])
            if a.peer:
                t0 = time.perf_counter()
                pout = out / "runs" / f"peer_{stem}_s{seed}"
                preused = (pout / "run" / "g_multivanilla.pt").is_file()
                prun = peer_run(image, pout, a)
                psamples, precon, preal = peer_samples(prun, image, a.n, seed, a)
                entry["seconds_peer"] = before.get("seconds_peer") if preused else round(time.perf_counter() - t0, 1)
                if tuple(preal.shape[-2:]) == tuple(real.shape[-2:]):
                    for rule in ("train", "eval"):
                        entry["programs"][f"peer {rule}"] = judge(preal, psamples[rule], precon,
                                                                  range(a.metric_seeds))
                        rows[f"peer {rule}"] = (precon, psamples[rule])
                else:
                    entry["peer_note"] = f"peer pyramid ends at {tuple(preal.shape[-2:])}, fewgan at {tuple(real.shape[-2:])}"
            picture(out / (f"{stem}_seed{seed}.png" if a.critic_norm == "batch" else f"{stem}_seed{seed}_{tag}.png"),
                    real, rows)
            results.append(entry)
            print(markdown([entry]), flush=True)
            from fewgan.run import atomic_write_json, atomic_write_text
            atomic_write_json(out / "quality.json", {"config": {k: v for k, v in vars(a).items()},
                                                     "results": results})
            atomic_write_text(out / "quality.md", markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
