"""faiss-cpu against fewgan's PatchMatch and exact search for GPNN's nearest patches (issue 14 point 4).

Keys: the 7 x 7 patches of a 16-bit synthetic micrograph blurred as GPNN blurs them (down by 0.75 and
back up); queries: the patches of an independent micrograph treated alike. Exact nearest neighbours
of ``--check`` random queries (chunked matrix products, :func:`fewgan.gpnn._exact_nearest`) are the
truth; each method's recall is the share of those queries for which it returns a patch within 1 % of
the exact distance (ties in flat regions make "the same index" too strict), and its time is for all
queries. faiss is optional here (fewgan does not depend on it); run with it importable, e.g.

    python -m venv /tmp/faissenv && /tmp/faissenv/bin/pip install faiss-cpu
    OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python bench/gpnn_faiss.py --size 512 \
        --faiss-path /tmp/faissenv/lib/python3.*/site-packages
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--check", type=int, default=2000, help="queries whose exact neighbour is computed")
    p.add_argument("--faiss-path", default=None, help="site-packages holding faiss (appended to sys.path)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    import numpy as np
    import torch

    from fewgan.data.synthetic import make_micrograph
    from fewgan.gpnn import _exact_nearest, _unfold, patch_basis, patch_features, patchmatch
    from fewgan.ops.imresize import imresize

    def image(seed):
        x, _ = make_micrograph(seed=seed, size=(args.size, args.size), bit_depth=16)
        t = torch.from_numpy(x.astype(np.float32) / 32767.5 - 1.0)[None]
        small = (int(np.ceil(args.size * 0.75)),) * 2
        return imresize(imresize(t[None], size=small), size=(args.size, args.size))[0]

    keys_img, query_img = image(901), image(1901)
    keys, query = _unfold(keys_img, 7), _unfold(query_img, 7)
    grid = args.size - 6
    rng = np.random.default_rng(0)
    check = torch.from_numpy(rng.choice(query.shape[0], args.check, replace=False))
    truth = _exact_nearest(query[check], keys, None)
    d_true = ((query[check] - keys[truth]) ** 2).sum(1)

    def recall(index):
        d = ((query[check] - keys[index[check]]) ** 2).sum(1)
        return float((d <= d_true * 1.01 + 1e-7).float().mean())

    rows = {}
    # fewgan's PatchMatch as GPNN runs it: from a start field (here random, with jumps) then 1 round per
    # iteration; timed per round after the start
    basis = patch_basis(keys_img, 7, 49)
    kf, qf = patch_features(keys_img, basis), patch_features(query_img, basis)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    field = patchmatch(qf, kf, None, 4, gen, jump=True)
    start_s = time.perf_counter() - t0
    for total in (4, 8, 12):
        index = field[..., 0].reshape(-1) * grid + field[..., 1].reshape(-1)
        rows[f"patchmatch {total} rounds"] = {"recall": recall(index)}
        if total < 12:
            t0 = time.perf_counter()
            field = patchmatch(qf, kf, field, 4, gen)
            rows[f"patchmatch {total} rounds"]["next 4 rounds s"] = round(time.perf_counter() - t0, 2)
    rows["patchmatch start (4 rounds with jumps) s"] = round(start_s, 2)
    if args.faiss_path:
        for path in glob.glob(args.faiss_path):
            sys.path.append(path)
    try:
        import faiss
    except ImportError:
        print("faiss not importable: only PatchMatch measured", file=sys.stderr)
        faiss = None
    if faiss is not None:
        faiss.omp_set_num_threads(torch.get_num_threads())
        xb, xq = keys.numpy().astype(np.float32), query.numpy().astype(np.float32)
        for name, factory, params in (("faiss IVF1024,Flat nprobe 8", "IVF1024,Flat", {"nprobe": 8}),
                                      ("faiss HNSW32 efSearch 64", "HNSW32", {"efSearch": 64})):
            t0 = time.perf_counter()
            index = faiss.index_factory(xb.shape[1], factory)
            index.train(xb)
            index.add(xb)
            build = time.perf_counter() - t0
            faiss.ParameterSpace().set_index_parameters(index, ",".join(f"{k}={v}" for k, v in params.items()))
            t0 = time.perf_counter()
            _, found = index.search(xq, 1)
            search = time.perf_counter() - t0
            rows[name] = {"recall": recall(torch.from_numpy(found[:, 0].astype(np.int64))), "build s": round(build, 2),
                          "search all s": round(search, 2), "version": faiss.__version__}
    out = {"size": args.size, "queries": int(query.shape[0]), "threads": torch.get_num_threads(), "rows": rows}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
