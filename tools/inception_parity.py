"""Parity of fewgan's Inception port with pytorch-fid's FID network (and torch-fidelity, clean-fid if installed).

Not part of the test suite: it needs torchvision and pytorch-fid, which do not import beside
the CPU torch of fewgan's environment, so it runs in a separate virtual environment::

    python3 -m venv /tmp/parity-venv
    /tmp/parity-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 pytorch-fid torch-fidelity clean-fid prdc
    /tmp/parity-venv/bin/python tools/inception_parity.py

What it does: builds fewgan's :class:`InceptionV3FID` (imported from ``src/`` by path, so
fewgan need not be installed there), fills it with seeded random weights (batch-norm
statistics calibrated on random images so that activations keep a sensible scale through
the 90-odd layers), saves that state dict, and loads the *same* file into

* pytorch-fid's ``InceptionV3(use_fid_inception=True)`` (the torchvision ``inception_v3`` with
  pytorch-fid's ``FIDInceptionA/C/E_1/E_2`` blocks; its weight download is replaced by the
  random file), comparing the maps at every tap (64, 192, 768, 2048) on the same 299 px input;
* torch-fidelity's ``FeatureExtractorInceptionV3`` (its own uint8 input, TF1 bilinear resize and
  normalisation) against fewgan's whole ``tf1`` pipeline on 64 px uint8 images, at every tap;
* clean-fid's ``clean`` resizer (PIL bicubic on float, clipped) against fewgan's ``clean``
  resize on 64 x 48 uint8 images;
* FID on features against pytorch-fid's ``calculate_frechet_distance`` and torch-fidelity's
  statistics, and KID against torch-fidelity's ``kid_features_to_metric`` with the same seed
  (fewgan draws the subsets in torch-fidelity's order, so the subsets are the same);
  precision, recall, density and coverage against the ``prdc`` package (Naeem et al.).

It prints the max absolute difference and the max relative to the largest activation. The
same network in the same memory layout agrees exactly with pytorch-fid; channels-last (what
fewgan runs) and the torch-fidelity pipeline agree to float32 rounding, which the script shows
by also comparing pytorch-fid against the port run in float64. Exit status 1 if the first
difference exceeds 1e-6 relative or any other 1e-3.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import types
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _load_fewgan_modules():
    """Import fewgan.metrics.inception (and features, when its imports are available) from src/."""
    sys.path.insert(0, str(ROOT / "src"))
    import fewgan.metrics.inception as inception  # noqa: E402

    return inception


def random_state(inception, seed: int) -> dict:
    torch.manual_seed(seed)
    net = inception.InceptionV3FID()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bn.weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bn.bias"):
                p.uniform_(-0.2, 0.2)
            elif p.ndim > 1:
                torch.nn.init.kaiming_normal_(p, nonlinearity="relu")
            else:
                p.uniform_(-0.1, 0.1)
    # calibrate batch-norm statistics on random inputs (cumulative average), then freeze
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 3, 299, 299) * 2 - 1, taps=("logits",))
    net.eval()
    return {k: v.clone() for k, v in net.state_dict().items()}


def pytorch_fid_network(state_file: Path):
    import pytorch_fid.inception as pfi

    state = torch.load(state_file, map_location="cpu", weights_only=True)
    # replace the download of the real weights by our random file
    pfi.load_state_dict_from_url = lambda *a, **k: state
    net = pfi.InceptionV3([0, 1, 2, 3], resize_input=False, normalize_input=False, use_fid_inception=True)
    return net.eval()


def report(name: str, ref: torch.Tensor, ours: torch.Tensor, rows: list) -> None:
    diff = (ref.double() - ours.double()).abs().max().item()
    scale = ref.double().abs().max().item()
    rows.append((name, tuple(ref.shape), diff, diff / max(scale, 1e-30)))
    print(f"{name:40s} shape {str(tuple(ref.shape)):22s} max|diff| {diff:.3e}  max|ref| {scale:.3e}  "
          f"relative {diff / max(scale, 1e-30):.3e}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=4, help="images per comparison")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    inception = _load_fewgan_modules()
    print(f"torch {torch.__version__}")
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "random-inception.pth"
        torch.save(random_state(inception, args.seed), state_file)
        ours = inception.InceptionV3FID()
        ours.load_state_dict(torch.load(state_file, map_location="cpu", weights_only=True), strict=True)
        ours.eval()

        # 1. pytorch-fid, same normalised 299 px input, maps at every tap
        import pytorch_fid

        print(f"pytorch-fid {pytorch_fid.__version__}")
        ref_net = pytorch_fid_network(state_file)
        g = torch.Generator().manual_seed(args.seed + 1)
        x = torch.rand(args.n, 3, 299, 299, generator=g) * 2 - 1
        ref_maps = ref_net(x)
        our_maps = ours.forward_maps(x, taps=("64", "192", "768", "2048"))
        for ref, tap in zip(ref_maps, ("64", "192", "768", "2048")):
            report(f"pytorch-fid map {tap}", ref, our_maps[tap], rows)
        # fewgan runs the network channels-last (faster on CPU): same numbers up to rounding
        fast = inception.InceptionV3FID()
        fast.load_state_dict(ours.state_dict())
        fast = fast.eval().to(memory_format=torch.channels_last)
        fast_maps = fast.forward_maps(x.contiguous(memory_format=torch.channels_last), taps=("64", "192", "768", "2048"))
        for ref, tap in zip(ref_maps, ("64", "192", "768", "2048")):
            report(f"pytorch-fid map {tap} (fewgan channels-last)", ref, fast_maps[tap], rows)
        # the float32 noise floor: pytorch-fid (float32) against fewgan's port in float64
        exact = inception.InceptionV3FID()
        exact.load_state_dict(ours.state_dict())
        exact_maps = exact.double().eval().forward_maps(x.double(), taps=("64", "192", "768", "2048"))
        for ref, tap in zip(ref_maps, ("64", "192", "768", "2048")):
            report(f"float64 port vs pytorch-fid float32, {tap}", exact_maps[tap], ref, rows)

        # 2. torch-fidelity, whole pipeline: uint8 64 px -> TF1 bilinear 299 -> (x-128)/128 -> taps
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
            import torch_fidelity
        except ImportError:
            print("torch-fidelity not installed: skipping its comparison")
        else:
            print(f"torch-fidelity {torch_fidelity.__version__}")
            taps = ["64", "192", "768", "2048", "logits_unbiased"]
            fe = FeatureExtractorInceptionV3("inception-v3-compat", taps,
                                             feature_extractor_weights_path=str(state_file)).eval()
            u8 = torch.randint(0, 256, (args.n, 3, 64, 64), generator=g, dtype=torch.uint8)
            ref = fe(u8)
            x = inception_input_tf1(u8)
            our = ours(x, taps=("64", "192", "768", "2048", "logits"))
            for tap, r in zip(taps, ref):
                key = "logits" if tap == "logits_unbiased" else tap
                # logits_unbiased is fc without the bias
                o = our[key] - ours.fc.bias if tap == "logits_unbiased" else our[key]
                report(f"torch-fidelity {tap} (tf1 pipeline)", r, o, rows)
    # 3. clean-fid's "clean" resize (PIL bicubic on float per channel, clipped) against fewgan's
    try:
        from cleanfid.resize import make_resizer
    except ImportError:
        print("clean-fid not installed: skipping the clean resize comparison")
    else:
        features = _features_module()
        resizer = make_resizer("PIL", False, "bicubic", (299, 299))
        u8 = torch.randint(0, 256, (args.n, 3, 64, 48), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
        ref = torch.stack([torch.from_numpy(resizer(im.permute(1, 2, 0).numpy())).permute(2, 0, 1) for im in u8])
        ours_x = features.preprocess(u8.float() / 127.5 - 1.0, window=None, resize="clean") * 128.0 + 128.0
        report("clean-fid PIL bicubic resize (0..255)", ref, ours_x, rows)
    # 4. the metrics on features against the reference tools' own functions
    metric_rows = compare_metrics(args.seed)
    same_order = [r for r in rows if r[0].startswith("pytorch-fid") and "channels-last" not in r[0]]
    other = [r for r in rows if r not in same_order]
    print(f"same network, same memory layout as pytorch-fid: max abs difference {max(r[2] for r in same_order):.3e}")
    print(f"channels-last, float64 and torch-fidelity pipeline: max relative difference "
          f"{max(r[3] for r in other):.3e} (float32 rounding, the size of the float64 rows)")
    worst_metric = max(abs(r - g) / abs(r) for _, r, g in metric_rows)
    print(f"metrics on features: max relative difference {worst_metric:.2e} (the references compute parts in "
          f"float32 from float32 features; fewgan in float64)")
    ok = max(r[3] for r in same_order) < 1e-6 and max(r[3] for r in other) < 1e-3 and worst_metric < 1e-4
    return 0 if ok else 1


def compare_metrics(seed: int) -> list:
    """FID against pytorch-fid and torch-fidelity, KID against torch-fidelity (same seed, same subsets)."""
    import numpy as np

    from fewgan.metrics.fid import fid_from_features
    from fewgan.metrics.kid import kid_from_features

    rng = np.random.default_rng(seed)
    a = rng.random((300, 64)).astype(np.float32)
    b = (rng.random((280, 64)) * 1.1 + 0.05).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N < 2048: known
        ours = fid_from_features(a, b)
    out = []
    from pytorch_fid.fid_score import calculate_frechet_distance

    ref = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    out.append(("FID vs pytorch-fid calculate_frechet_distance", ref, ours))
    try:
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
        from torch_fidelity.metric_kid import kid_features_to_metric
    except ImportError:
        print("torch-fidelity not installed: skipping its metric comparison")
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ref = fid_statistics_to_metric(fid_features_to_statistics(ta), fid_features_to_statistics(tb), False)
        out.append(("FID vs torch-fidelity", ref["frechet_inception_distance"], ours))
        kid_ref = kid_features_to_metric(ta, tb, kid_subsets=50, kid_subset_size=100, kid_degree=3, kid_gamma=None,
                                         kid_coef0=1, rng_seed=2020, verbose=False)
        kid = kid_from_features(a, b, subsets=50, subset_size=100, seed=2020)
        out.append(("KID mean vs torch-fidelity (seed 2020)", kid_ref["kernel_inception_distance_mean"], kid[0]))
        out.append(("KID std vs torch-fidelity (seed 2020)", kid_ref["kernel_inception_distance_std"], kid[1]))
    try:
        from prdc import compute_prdc
    except ImportError:
        print("prdc not installed: skipping its comparison")
    else:
        from fewgan.metrics.prdc import prdc

        # clusters, so that the four numbers are far from 0 and 1
        centres = rng.normal(size=(6, 16)) * 4
        real = np.concatenate([c + rng.normal(size=(40, 16)) for c in centres])
        fake = np.concatenate([c + rng.normal(size=(50, 16)) * 1.3 for c in centres[:4]])
        ref = compute_prdc(real, fake, nearest_k=5)
        got = prdc(real, fake, k=5)
        for key in ("precision", "recall", "density", "coverage"):
            out.append((f"{key} vs prdc 0.2 (k=5)", ref[key], got[key]))
    for name, ref, got in out:
        print(f"{name:48s} reference {ref:.10g}  fewgan {got:.10g}  relative {abs(ref - got) / abs(ref):.2e}")
    return out


def _features_module():
    """fewgan.metrics.features loaded from src/ (its run-folder helpers are imported lazily only)."""
    sys.modules.setdefault("fewgan.run", types.ModuleType("fewgan.run"))
    spec = importlib.util.spec_from_file_location("fewgan_features_for_parity", ROOT / "src/fewgan/metrics/features.py")
    features = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    return features


def inception_input_tf1(u8: torch.Tensor) -> torch.Tensor:
    """fewgan's tf1 preprocessing of uint8 images: to [-1, 1], window (-1, 1), TF1 resize, (x-128)/128."""
    images = u8.float() / 127.5 - 1.0
    return _features_module().preprocess(images, window=None, resize="tf1")


if __name__ == "__main__":
    raise SystemExit(main())
