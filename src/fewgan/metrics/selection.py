"""The selection metric of a training run: a function of the generated images, lower is better.

A trainer that keeps its best checkpoint needs one number per evaluation; this module builds that
function from the real images once (their features are extracted here, once), and the API hands
it to the trainer (:func:`fewgan.stylegan2.train.train` takes it as an argument and imports no
metric itself).
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

MetricFn = Callable[[torch.Tensor], float]


def selection_metric(real_images: torch.Tensor, kind: str = "auto", *, feature_batch: int = 50,
                   device: str = "cpu", dtype: str | None = None) -> tuple[str, MetricFn, str]:
    """The selection metric as ``(name, fn, why)``: ``fn(fake [N, C, H, W] in [-1, 1]) -> float``, lower is better.

    'auto' is FID (Heusel et al., NeurIPS 2017; 2048-d Inception pool features,
    :mod:`fewgan.metrics.features`) when the Inception weights are installed, else the
    network-free sliced Wasserstein patch distance (Karras et al., ICLR 2018;
    :mod:`fewgan.metrics.swd`); 'kid' is the kernel inception distance (Binkowski et al.,
    ICLR 2018). Real features are extracted once, here; fakes use the real set's intensity
    window (``dtype`` is the data set's, for 16-bit data).
    """
    real_images = real_images.detach().float().cpu()
    if kind in ("auto", "fid", "kid"):
        from fewgan.metrics import features as feat

        try:
            weights = feat.find_weights()
        except feat.WeightsMissing as exc:
            if kind != "auto":
                raise
            why = f"Inception weights not installed ({str(exc).split(':')[0]})"
        else:
            window = feat.intensity_window(real_images, dtype)

            def features(x: torch.Tensor):
                return feat.extract_features(x.detach().float().cpu(), window=window, batch_size=feature_batch,
                                             device=device, weights=weights, progress=False)

            real_features = features(real_images)
            if kind == "kid":
                from fewgan.metrics.kid import kid_from_features

                return ("kid", lambda fake: float(kid_from_features(real_features, features(fake))[0]),
                        f"KID of 2048-d Inception features, weights {weights}")
            from fewgan.metrics.fid import fid_from_features

            def fid(fake: torch.Tensor) -> float:
                # FID on a few hundred images is biased upwards: said once at start-up, not every evaluation
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # svd: the same number as sqrtm (tests/metrics/test_fid.py) at ~1 s instead of ~60 CPU-s
                    # for 500 images, so evaluating every few epochs does not dominate training
                    return float(fid_from_features(real_features, features(fake), method="svd"))

            return ("fid", fid, f"FID of 2048-d Inception features, weights {weights}; on a few hundred images "
                                "it is biased upwards, compare runs at equal numbers of images")
    else:
        why = "asked for (--metric swd)"
    from fewgan.metrics.swd import swd

    return ("swd", lambda fake: float(swd(real_images, fake.detach().float().cpu(), seed=0)),
            f"sliced Wasserstein patch distance, no network: {why}")
