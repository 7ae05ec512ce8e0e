#!/usr/bin/env python
"""Where a SinGAN run's random samples gain or lose contrast, scale by scale (issue 17, bench/README.md).

For every scale k: 16 random samples of scales 0..k under the sampler's rule
(:data:`fewgan.singan.nets.SAMPLING_RULE`) with k as the last scale, against the real image at scale k: mean per-sample std,
mean, 99.5th and 98th percentiles (8-bit grey levels of the trained channels' mean). Then the last
step taken apart: the samples of scales 0..N-2 under each rule, upsampled, and after the last scale.

    PYTHONPATH=src python bench/singan_per_scale.py RUN [--n 16] [--seed 100]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def main(argv=None) -> int:
    from fewgan.singan.nets import SAMPLING_RULE, SAMPLING_RULES, make_noise
    from fewgan.singan.sample import SinGANModel

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=100)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    m = SinGANModel.load(a.run)

    def stats(x):
        g = ((m.image(x).mean(1) + 1) * 127.5).clamp(0, 255).numpy()
        return (f"std {np.mean([s.std() for s in g]):5.1f} mean {g.mean():5.1f} "
                f"p99.5 {np.mean([np.percentile(s, 99.5) for s in g]):5.1f} "
                f"p98 {np.mean([np.percentile(s, 98) for s in g]):5.1f}")

    sizes = [tuple(s) for s in m.pyramid.sizes]
    n_scales = m.num_scales
    gens = [torch.Generator().manual_seed(a.seed + i) for i in range(a.n)]
    noises = {j: torch.cat([make_noise((1, m.channels) + sizes[j], j == 0, generator=g) for g in gens])
              for j in range(n_scales)}
    noise = lambda j, shape: noises[j]  # noqa: E731
    common = dict(batch=a.n, channels=m.channels)
    with torch.no_grad():
        for k in range(n_scales):
            y = m.scales.coarse_to_fine(noise, stop=k, rule=SAMPLING_RULE, **common)
            print(f"s{k} {sizes[k][0]}x{sizes[k][1]}  real {stats(m.reals[k])} | samples {stats(y)} | amp {m.amps[k]:.3f}")
        # every rule, the sampler's last (its line equals the finest scale's above)
        for rule in [r for r in SAMPLING_RULES if r != SAMPLING_RULE] + [SAMPLING_RULE]:
            y = m.scales.coarse_to_fine(noise, stop=n_scales - 2, rule="own" if rule == "own" else "running", **common)
            up = m.scales.upsample(y, sizes[-1])
            out = m.scales.coarse_to_fine(noise, start=n_scales - 1, stop=n_scales - 1, image=up, rule=rule, **common)
            print(f"last step, {rule:10s}: scales 0..N-2 {stats(y)} | upsampled {stats(up)} | after the last {stats(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
