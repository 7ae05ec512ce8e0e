"""SinGAN training: one image, a pyramid of scales trained coarse to fine, resumable exactly.

What a step computes is what the public kligvasser/SinGAN trainer (``generation/trainer.py``,
the code the seed run used) computes, in the same order and with the same random draws:

1. critic step: the frozen scales s0..s(k-1) turn fresh noise into an image (no gradient,
   BatchNorm in eval mode), it is upsampled to scale k, the current generator adds its
   residual to ``up + amp_k * noise`` (train mode); the critic scores the real image and the
   fake; ``D = D_r + D_f + 0.1 * D_gp`` with the per-pixel channel-norm gradient penalty at
   ``alpha * real + (1 - alpha) * fake``; one Adam step;
2. generator step (every ``critic_steps``): ``G = 10 * G_recon + G_adv``, where ``G_recon``
   is the MSE of the reconstruction from the fixed noises (one draw per scale, kept for the
   run, scaled by each scale's amp) and ``G_adv = -mean D(fake)`` on the critic step's fake
   (the critic frozen); one Adam step.

Work the public code repeats without changing a number is done once here: the frozen
scales' output for the fixed reconstruction noises is constant during a scale (cached);
resize weights are cached matrices; reals are built once; evaluation images are made only
at the end of a scale (with their own random generator, so they never shift the training
stream). On the CPU the wide 3x3 convolutions (and their input gradients, also inside the
gradient penalty's double backward) run on NNPACK's Winograd kernels where that was measured
faster (``config.conv``, :mod:`fewgan.ops.winograd`): the same convolutions, about half the
multiplications. A checkpoint every ``checkpoint_every`` steps holds everything (frozen and current
networks, both optimisers, RNG state, fixed noises, amps, step), so ``--resume`` continues
exactly: on CPU the final weights equal those of a run that never stopped.

Shaham, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural Image",
ICCV 2019. Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.ops import winograd
from fewgan.run import (CHECKPOINT_DIR, RunLogger, atomic_write_json, create_run_dir, get_rng_state,
                        load_checkpoint, read_run_config, save_checkpoint, set_rng_state, truncate_metrics,
                        write_run_config)
from fewgan.singan import losses
from fewgan.singan.config import SinGANConfig
from fewgan.singan.nets import (SAMPLING_RULE, Discriminator, Generator, count_parameters, make_noise, statistics_at,
                                upsample)
from fewgan.singan.pyramid import Pyramid, build_reals, plan_pyramid

METHOD = "singan"
RESUME_FILE = "resume.pt"
MODEL_FILE = "generator.pt"
MODEL_FORMAT = "fewgan-singan-1"
SAMPLES_DIR = "samples"
FIGURE_FILE = "scales.png"
LOSS_KEYS = ("D", "D_r", "D_f", "D_gp", "G", "G_recon", "G_adv")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available) -> ``torch.device``."""
    name = str(device or "cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FewganError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FewganError(f"--device {name!r} is not a device (use cpu, cuda, cuda:N or auto)") from None


class _Stopped(Exception):
    """Raised inside the loop when ``stop_after`` steps have run (a simulated kill)."""


@dataclasses.dataclass
class _State:
    reals: list[torch.Tensor]
    fixed_noises: list[torch.Tensor]
    amps: list[float]
    generators: list[Generator]
    discriminator: Discriminator | None = None
    g_opt: torch.optim.Optimizer | None = None
    d_opt: torch.optim.Optimizer | None = None
    scale: int = 0
    step: int = 0
    begun: bool = False
    elapsed: float = 0.0
    steps_done: int = 0
    last: dict[str, float] = dataclasses.field(default_factory=dict)
    fixed_prev: torch.Tensor | None = None
    scale_elapsed0: float = 0.0


def _in_conv_mode(method):
    """Run a trainer method with the run's CPU convolution kernels (``config.conv``) in this thread."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with winograd.mode(self.cfg.conv):
            return method(self, *args, **kwargs)
    return wrapper


class SinGANTrainer:
    """Owns every piece of training state of one run (see the module docstring).

    Parameters
    ----------
    config : the run's options.
    pyramid : the scale sizes.
    meta : the input's :class:`fewgan.data.images.ImageMeta` as a dict (format, bit depth, range).
    run_dir : the run folder (written to), or None for a run without files (tests).
    device : where the networks run.
    """

    def __init__(self, config: SinGANConfig, pyramid: Pyramid, meta: dict[str, Any], run_dir: Path | None,
                 device: torch.device, logger: RunLogger | None = None):
        self.cfg = config
        self.pyramid = pyramid
        self.meta = meta
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = device
        self.log = logger or RunLogger(None, quiet=True)
        self.state: _State | None = None
        self.scale_records: list[dict[str, Any]] = []
        self._t_start = time.perf_counter()
        self._pool = None
        if config.concurrent and device.type == "cpu" and torch.get_num_threads() >= 2:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="singan-branch",
                                            initializer=torch.set_num_threads, initargs=(1,))

    # ------------------------------------------------------------------ set-up
    @property
    def channels(self) -> int:
        return int(self.state.reals[0].shape[1])

    def start(self, image: torch.Tensor) -> None:
        """Seed the RNGs, build the reals and draw the fixed noises (``image``: ``[C, H, W]`` in [-1, 1])."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        reals = [r.to(self.device) for r in build_reals(image.float(), self.pyramid)]
        c = reals[0].shape[1]
        noises = [make_noise((1, c, h, w), k == 0, device=self.device) for k, (h, w) in enumerate(self.pyramid.sizes)]
        self.state = _State(reals=reals, fixed_noises=noises, amps=[], generators=[])

    def _new_discriminator(self, features: int) -> Discriminator:
        return Discriminator(self.channels, features, self.cfg.num_blocks, self.cfg.kernel_size).to(self.device)

    def _new_generator(self, features: int) -> Generator:
        return Generator(self.channels, features, self.cfg.num_blocks, self.cfg.kernel_size).to(self.device)

    @_in_conv_mode
    def _begin_scale(self, k: int) -> None:
        """New networks / amp for scale k, in the public code's order (critic, amp, generator)."""
        st, cfg = self.state, self.cfg
        f = cfg.features_at(k)
        changed = k == 0 or f != cfg.features_at(k - 1)
        if changed:
            st.discriminator = self._new_discriminator(f)
        if k == 0:
            st.amps = [1.0]
            gen = self._new_generator(f)
        else:
            prev = st.generators[k - 1]
            st.amps = st.amps[:k]
            # the amp uses the just-trained generator in train mode (batch statistics), as the
            # public code does; this forward also moves its BatchNorm running averages once
            prev.train()
            with torch.no_grad():
                b = cfg.batch_size
                y = st.fixed_prev.expand(b, -1, -1, -1)
                z = y + st.amps[k - 1] * st.fixed_noises[k - 1].expand(b, -1, -1, -1)
                recon = prev(z, y)
                up = upsample(recon, self.pyramid.sizes[k], self.pyramid.scale_factor)
                amp = losses.noise_amplitude(up, st.reals[k].expand(b, -1, -1, -1), cfg.noise_weight)
            st.amps.append(float(torch.tensor(amp, dtype=torch.float32)))
            prev.eval().requires_grad_(False)
            gen = self._new_generator(f) if changed else copy.deepcopy(prev)
        gen.train().requires_grad_(True)
        st.generators = st.generators[:k] + [gen]
        st.discriminator.train().requires_grad_(True)
        st.fixed_prev = self._fixed_prev(k)
        st.g_opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        st.d_opt = torch.optim.Adam(st.discriminator.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        st.scale, st.step, st.begun = k, 0, True
        if k == 0:
            self.log.info(f"Number of parameters in generator: {count_parameters(gen)}")
            self.log.info(f"Number of parameters in discriminator: {count_parameters(st.discriminator)}")

    @_in_conv_mode
    def _fixed_prev(self, k: int) -> torch.Tensor:
        """The frozen scales' reconstruction from the fixed noises, upsampled to scale k (``[1, C, h, w]``)."""
        st = self.state
        y = torch.zeros_like(st.reals[0])
        with torch.no_grad():
            for j in range(k):
                y = st.generators[j](y + st.amps[j] * st.fixed_noises[j], y)
                y = upsample(y, self.pyramid.sizes[j + 1], self.pyramid.scale_factor)
        return y

    def _random_prev(self, k: int, batch: int) -> torch.Tensor:
        """The frozen scales fed with fresh noise (global RNG), upsampled to scale k (``[B, C, h, w]``)."""
        st = self.state
        c = self.channels
        if k == 0:
            h, w = self.pyramid.sizes[0]
            return torch.zeros((batch, c, h, w), device=self.device)
        h0, w0 = self.pyramid.sizes[0]
        y = torch.zeros((batch, c, h0, w0), device=self.device)
        with torch.no_grad():
            for j in range(k):
                noise = make_noise(tuple(y.shape), j == 0, device=self.device)
                y = st.generators[j](y + st.amps[j] * noise, y)
                y = upsample(y, self.pyramid.sizes[j + 1], self.pyramid.scale_factor)
        return y

    # ------------------------------------------------------------------ one step
    @_in_conv_mode
    def train_step(self) -> dict[str, torch.Tensor]:
        """One critic step and (every ``critic_steps``) one generator step at the current scale and step."""
        st, cfg = self.state, self.cfg
        k, t, b = st.scale, st.step, cfg.batch_size
        gen, dis = st.generators[k], st.discriminator
        lr = cfg.lr_at(t)
        for opt in (st.g_opt, st.d_opt):
            for group in opt.param_groups:
                group["lr"] = lr
        real = st.reals[k].expand(b, -1, -1, -1)
        do_g = t % cfg.critic_steps == 0

        # critic
        y = self._random_prev(k, b)
        noise = make_noise(tuple(y.shape), k == 0, device=self.device)
        z = y + st.amps[k] * noise
        with torch.set_grad_enabled(do_g):
            fake = gen(z, y)
        alpha_cpu = None
        if self._pool is None:
            dis.requires_grad_(True)
            st.d_opt.zero_grad(set_to_none=True)
            d_r, d_f = losses.critic_terms(dis(real), dis(fake.detach()))
            alpha = torch.rand(b, 1, 1, 1).to(self.device)
            d_gp = losses.gradient_penalty(dis, real, fake, alpha)
            d_total = losses.critic_loss(d_r, d_f, d_gp, cfg.gp_weight)
            d_total.backward()
        else:
            # alpha is the only random draw of this phase: draw it here, in the serial order
            alpha_cpu = torch.rand(b, 1, 1, 1)
            alpha = alpha_cpu.to(self.device)
            params = list(dis.parameters())
            dis.requires_grad_(True)

            def penalty():
                with winograd.mode(cfg.conv):
                    gp = losses.gradient_penalty(dis, real, fake, alpha)
                    return gp.detach(), torch.autograd.grad(cfg.gp_weight * gp, params, allow_unused=True)

            with self._single_thread():
                job = self._pool.submit(penalty)
                d_r, d_f = losses.critic_terms(dis(real), dis(fake.detach()))
                grads = torch.autograd.grad(d_r + d_f, params)
                d_gp, grads_gp = job.result()
            _set_grads(params, grads, grads_gp)
            d_total = losses.critic_loss(d_r.detach(), d_f.detach(), d_gp, cfg.gp_weight)
        st.d_opt.step()
        dis.requires_grad_(False)
        out = {"D": d_total.detach(), "D_r": d_r.detach(), "D_f": d_f.detach(), "D_gp": d_gp.detach()}

        # generator
        if do_g:
            st.g_opt.zero_grad(set_to_none=True)
            y_fixed = st.fixed_prev.expand(b, -1, -1, -1)
            z_fixed = y_fixed + st.amps[k] * st.fixed_noises[k].expand(b, -1, -1, -1)
            if self._pool is None:
                recon = gen(z_fixed, y_fixed)
                g_recon = losses.reconstruction_loss(recon, real)
                g_total, g_adv = losses.generator_loss(g_recon, dis(fake), cfg.recon_weight, cfg.adv_weight)
                g_total.backward()
            else:
                params = list(gen.parameters())

                def adversarial():
                    with winograd.mode(cfg.conv):
                        g_adv = -dis(fake).mean()
                        return g_adv.detach(), torch.autograd.grad(cfg.adv_weight * g_adv, params, allow_unused=True)

                with self._single_thread():
                    job = self._pool.submit(adversarial)
                    recon = gen(z_fixed, y_fixed)
                    g_recon = losses.reconstruction_loss(recon, real)
                    grads = torch.autograd.grad(cfg.recon_weight * g_recon, params, allow_unused=True)
                    g_adv, grads_adv = job.result()
                _set_grads(params, grads, grads_adv)
                g_recon = g_recon.detach()
                g_total = cfg.recon_weight * g_recon + cfg.adv_weight * g_adv
            st.g_opt.step()
            out.update({"G": g_total.detach(), "G_recon": g_recon.detach(), "G_adv": g_adv.detach()})
        return out

    def _single_thread(self):
        """Both workers single-threaded for the concurrent phase; the thread count is restored after."""
        import contextlib

        @contextlib.contextmanager
        def ctx():
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                yield
            finally:
                torch.set_num_threads(before)
        return ctx()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ------------------------------------------------------------------ loop
    def run(self, progress: bool = True) -> None:
        """Train from the current state to the end (or until ``stop_after`` steps, raising ``_Stopped``)."""
        st, cfg = self.state, self.cfg
        n_scales = len(self.pyramid.sizes)
        total = n_scales * (cfg.steps + 1)
        bar = self.log.progress(total, desc="singan", unit="step", initial=st.scale * (cfg.steps + 1) + st.step) \
            if progress else None
        scale_bar = None
        try:
            while st.scale < n_scales:
                k = st.scale
                if not st.begun:
                    self._begin_scale(k)
                    h, w = self.pyramid.sizes[k]
                    self.log.info(f"Scale #{k + 1}")
                    self.log.info(f"s{k}: {h}x{w}, {cfg.features_at(k)} features, amp {st.amps[k]:.3f}, "
                                  f"{cfg.steps + 1} steps")
                    st.scale_elapsed0 = st.elapsed
                scale_bar = self.log.progress(cfg.steps + 1, desc=f"  s{k} {self.pyramid.sizes[k][0]}x"
                                              f"{self.pyramid.sizes[k][1]}", unit="step", initial=st.step) \
                    if progress else None
                while st.step <= cfg.steps:
                    t0 = time.perf_counter()
                    values = self.train_step()
                    st.elapsed += time.perf_counter() - t0
                    st.last.update(values)
                    t = st.step
                    if t % cfg.log_every == 0 or t == cfg.steps:
                        self._log_step(k, t)
                    st.step += 1
                    st.steps_done += 1
                    if bar is not None:
                        bar.update(1, scale=f"s{k}")
                        scale_bar.update(1)
                    if cfg.stop_after is not None and st.steps_done >= cfg.stop_after:
                        raise _Stopped()
                    if st.step <= cfg.steps and st.step % cfg.checkpoint_every == 0:
                        self.save_resume()
                if scale_bar is not None:
                    scale_bar.close()
                    scale_bar = None
                self._end_scale(k)
                st.scale, st.step, st.begun = k + 1, 0, False
                self.save_resume()
        finally:
            if scale_bar is not None:
                scale_bar.close()
            if bar is not None:
                bar.close()

    def _log_step(self, k: int, t: int) -> None:
        last = {key: float(v) for key, v in self.state.last.items()}
        for key in LOSS_KEYS:
            last.setdefault(key, float("nan"))
        self.log.info(
            f"Iteration {t}, D: {last['D']:.6f}, D_r: {last['D_r']:.6f}, D_f: {last['D_f']:.6f}, "
            f"D_gp: {last['D_gp']:.6f}, G: {last['G']:.5f}, G_recon: {last['G_recon']:.5f}, G_adv: {last['G_adv']:.5f}"
        )
        record = {"scale": k, "step": t, **{key: last[key] for key in LOSS_KEYS}, "amp": self.state.amps[k],
                  "lr": self.cfg.lr_at(t), "seconds": round(self.state.elapsed, 4)}
        self.log.metrics(record)
        self.log.scalars(k * (self.cfg.steps + 1) + t, {f"s{k}/{key}": last[key] for key in LOSS_KEYS})

    # ------------------------------------------------------------------ scale end, evaluation
    @torch.no_grad()
    @_in_conv_mode
    def reconstruct(self, k: int) -> torch.Tensor:
        """Fixed-noise reconstruction at scale k: ``[1, C, h, w]``.

        The sampling rule (:data:`fewgan.singan.nets.SAMPLING_RULE`): the frozen scales in eval
        mode, scale k with the image's own statistics, as the reconstruction loss ran it.
        """
        st = self.state
        gen = st.generators[k]
        was = gen.training
        gen.eval()
        y = self._fixed_prev(k)
        out = gen(y + st.amps[k] * st.fixed_noises[k], y, statistics=statistics_at(k, k))
        gen.train(was)
        return out

    @torch.no_grad()
    @_in_conv_mode
    def sample(self, k: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random images at scale k (noise from ``generator``): ``[n, C, h, w]``.

        The sampling rule of ``fewgan singan sample`` (:data:`fewgan.singan.nets.SAMPLING_RULE`:
        scale k normalises each image by its own statistics, the frozen scales use their running
        averages), so the per-scale grids and ``scales.png`` show what the sampler draws.
        """
        st = self.state
        gen = st.generators[k]
        was = gen.training
        gen.eval()
        h0, w0 = self.pyramid.sizes[0]
        y = torch.zeros((n, self.channels, h0, w0), device=self.device)
        for j in range(k + 1):
            noise = make_noise(tuple(y.shape), j == 0, generator=generator, device=self.device)
            y = st.generators[j](y + st.amps[j] * noise, y, statistics=statistics_at(j, k))
            if j < k:
                y = upsample(y, self.pyramid.sizes[j + 1], self.pyramid.scale_factor)
        gen.train(was)
        return y

    @_in_conv_mode
    def _end_scale(self, k: int) -> None:
        from fewgan.data.images import ImageMeta, save_grid, to_numpy, write_image
        from fewgan.metrics.fidelity import psnr, ssim

        st, cfg = self.state, self.cfg
        meta = ImageMeta.from_dict(self.meta)
        recon = self.reconstruct(k)
        g = torch.Generator().manual_seed(cfg.seed * 1000 + k)
        samples = self.sample(k, cfg.sample_count, g)
        real_np = to_numpy(st.reals[k][0], meta).astype(np.float64)
        recon_np = to_numpy(recon[0], meta).astype(np.float64)
        lo, hi = meta.data_range
        squeeze = (lambda a: a[..., 0]) if real_np.shape[-1] == 1 else (lambda a: a)
        value_psnr = psnr(squeeze(real_np), squeeze(recon_np), data_range=float(hi) - float(lo))
        value_ssim = ssim(squeeze(real_np), squeeze(recon_np), data_range=float(hi) - float(lo))
        h, w = self.pyramid.sizes[k]
        seconds_scale = st.elapsed - st.scale_elapsed0
        record = {"event": "scale_end", "scale": k, "size": [h, w], "amp": st.amps[k], "psnr": value_psnr,
                  "ssim": value_ssim, "seconds_scale": round(seconds_scale, 4), "features": cfg.features_at(k),
                  "sampling_rule": SAMPLING_RULE}
        self.last_scale_record = record
        self.log.metrics(record)
        self.log.info(f"s{k} done: {h}x{w}, amp {st.amps[k]:.3f}, reconstruction PSNR {value_psnr:.2f} dB, "
                      f"SSIM {value_ssim:.4f}, {seconds_scale:.1f} s")
        if self.run_dir is not None:
            out = self.run_dir / SAMPLES_DIR
            suffix = ".tif" if meta.format == "tiff" else ".png"
            write_image(out / f"s{k}_recon{suffix}", recon[0].cpu(), meta.with_size(h, w))
            save_grid(out / f"s{k}_samples.png", samples.cpu(), nrow=min(cfg.sample_count, 4))
            save_checkpoint(self.run_dir / CHECKPOINT_DIR / f"s{k}.pt", {
                "scale": k, "size": [h, w], "amp": st.amps[k], "features": cfg.features_at(k),
                "generator": st.generators[k].state_dict(), "discriminator": st.discriminator.state_dict()})
            self.log.image(f"s{k}/recon", recon[0], k)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (plain data; ``weights_only`` loadable)."""
        st = self.state
        d = {
            "format": MODEL_FORMAT, "config": self.cfg.to_dict(), "pyramid": self.pyramid.to_dict(), "meta": self.meta,
            "reals": [r.cpu() for r in st.reals], "fixed_noises": [n.cpu() for n in st.fixed_noises],
            "amps": list(st.amps), "features": [g.feature_count for g in st.generators],
            "generators": [g.state_dict() for g in st.generators],
            "scale": st.scale, "step": st.step, "begun": st.begun, "elapsed": st.elapsed,
            "steps_done": st.steps_done, "scale_elapsed0": st.scale_elapsed0, "rng": get_rng_state(self.device),
            "last": {k: float(v) for k, v in st.last.items()},
        }
        if st.begun:
            d["discriminator"] = st.discriminator.state_dict()
            d["discriminator_features"] = st.discriminator.feature_count
            d["g_opt"] = st.g_opt.state_dict()
            d["d_opt"] = st.d_opt.state_dict()
        elif st.discriminator is not None:  # carried over to the next scale when features do not change
            d["discriminator"] = st.discriminator.state_dict()
            d["discriminator_features"] = st.discriminator.feature_count
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        dev = self.device
        gens = []
        n_gens = len(d["generators"])
        for j, (f, sd) in enumerate(zip(d["features"], d["generators"])):
            g = Generator(int(d["reals"][0].shape[1]), int(f), self.cfg.num_blocks, self.cfg.kernel_size).to(dev)
            g.load_state_dict(sd)
            current = d["begun"] and j == n_gens - 1
            g.train(current).requires_grad_(current)
            gens.append(g)
        self.state = _State(reals=[r.to(dev) for r in d["reals"]], fixed_noises=[n.to(dev) for n in d["fixed_noises"]],
                            amps=[float(a) for a in d["amps"]], generators=gens, scale=int(d["scale"]),
                            step=int(d["step"]), begun=bool(d["begun"]), elapsed=float(d["elapsed"]),
                            steps_done=int(d["steps_done"]), last=dict(d.get("last", {})),
                            scale_elapsed0=float(d.get("scale_elapsed0", 0.0)))
        st = self.state
        if "discriminator" in d:
            st.discriminator = Discriminator(self.channels, int(d["discriminator_features"]), self.cfg.num_blocks,
                                             self.cfg.kernel_size).to(dev)
            st.discriminator.load_state_dict(d["discriminator"])
            st.discriminator.train().requires_grad_(True)
        if st.begun:
            k = st.scale
            st.fixed_prev = self._fixed_prev(k)
            st.g_opt = torch.optim.Adam(gens[k].parameters(), lr=self.cfg.lr, betas=tuple(self.cfg.betas))
            st.d_opt = torch.optim.Adam(st.discriminator.parameters(), lr=self.cfg.lr, betas=tuple(self.cfg.betas))
            st.g_opt.load_state_dict(d["g_opt"])
            st.d_opt.load_state_dict(d["d_opt"])
        elif st.scale > 0:
            st.fixed_prev = self._fixed_prev(st.scale - 1)
        set_rng_state(d["rng"], dev)

    def save_resume(self) -> None:
        if self.run_dir is not None:
            save_checkpoint(self.run_dir / CHECKPOINT_DIR / RESUME_FILE, self.state_dict())

    def model_dict(self) -> dict[str, Any]:
        """What sampling needs: the frozen pyramid of generators and its noise amplitudes."""
        st = self.state
        return {"format": MODEL_FORMAT, "config": self.cfg.to_dict(), "pyramid": self.pyramid.to_dict(),
                "meta": self.meta, "channels": self.channels, "amps": list(st.amps),
                "features": [g.feature_count for g in st.generators],
                "generators": [g.state_dict() for g in st.generators],
                "reals": [r.cpu() for r in st.reals], "fixed_noises": [n.cpu() for n in st.fixed_noises]}

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        """Final model file, amps, the table, the scales figure, the report."""
        st = self.state
        for g in st.generators:
            g.eval()
        records = {r["scale"]: r for r in _read_scale_ends(self.run_dir)} if self.run_dir else {}
        self.log.info("")
        self.log.info("Scales:")
        for k, (h, w) in enumerate(self.pyramid.sizes):
            r = records.get(k, {})
            extra = f", psnr: {r['psnr']:.2f}, ssim: {r['ssim']:.4f}" if "psnr" in r else ""
            self.log.info(f"s{k}, size: {h}x{w}, amp: {st.amps[k]:.3f}{extra}")
        if self.run_dir is None:
            return
        save_checkpoint(self.run_dir / MODEL_FILE, self.model_dict())
        atomic_write_json(self.run_dir / "amps.json", {f"s{k}": a for k, a in enumerate(st.amps)})
        try:
            self._figure()
        except Exception as exc:  # a figure must never cost the run
            self.log.warning(f"could not draw {FIGURE_FILE}: {type(exc).__name__}: {exc}")
        try:
            from fewgan.report.html import write_report
        except ImportError:
            write_report = None
        if write_report is not None:
            try:
                path = write_report(self.run_dir)
                self.log.info(f"report: {path}")
            except Exception as exc:  # the report is a view of the run, not part of it
                self.log.warning(f"could not write the report: {type(exc).__name__}: {exc}")

    def _figure(self) -> None:
        """``scales.png``: one row per scale, real | reconstruction | two random samples."""
        import matplotlib

        matplotlib.use("Agg")
        import io

        import matplotlib.pyplot as plt

        from fewgan.run import atomic_write_bytes

        n = len(self.pyramid.sizes)
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + 999)
        fig, axes = plt.subplots(n, 4, figsize=(8, 2 * n), squeeze=False)
        # 16-bit and float data often fill a small part of their range: one display window from the
        # finest real image's 0.5-99.5 percentiles, the same for every panel (8-bit: the full range)
        lo, hi = -1.0, 1.0
        if str(self.meta.get("dtype", "uint8")) != "uint8":
            q = torch.quantile(self.state.reals[-1].float().flatten().cpu(), torch.tensor([0.005, 0.995]))
            if float(q[1]) > float(q[0]):
                lo, hi = float(q[0]), float(q[1])
        for k in range(n):
            row = [self.state.reals[k][0], self.reconstruct(k)[0], *self.sample(k, 2, g)]
            for col, (img, title) in enumerate(zip(row, ("real", "reconstruction", "sample", "sample"))):
                arr = ((img.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy()
                ax = axes[k, col]
                ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0:
                    ax.set_title(title, fontsize=9)
                if col == 0:
                    h, w = self.pyramid.sizes[k]
                    ax.set_ylabel(f"s{k}\n{h}x{w}", fontsize=8)
        if (lo, hi) != (-1.0, 1.0):
            fig.suptitle("display window: 0.5-99.5 percentiles of the real image", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(self.run_dir / FIGURE_FILE, buf.getvalue())


def _set_grads(params, first, second) -> None:
    """``p.grad = first + second`` in a fixed order (a gradient that does not reach ``p`` is None)."""
    for p, a, b in zip(params, first, second):
        if a is None and b is None:
            p.grad = None
        elif a is None or b is None:
            p.grad = (a if b is None else b).clone()
        else:
            p.grad = a + b


def _read_scale_ends(run_dir: Path) -> list[dict[str, Any]]:
    from fewgan.run import read_metrics

    return [r for r in read_metrics(run_dir) if r.get("event") == "scale_end"]


# ---------------------------------------------------------------------- entry point
def _resolve_channels(value: Any) -> str | int:
    value = str(value)
    return "auto" if value == "auto" else int(value)


def prepare(image: str | os.PathLike, config: SinGANConfig):
    """Read ``image`` and plan its pyramid: ``(tensor [C, H, W] in [-1, 1], ImageMeta, Pyramid)``."""
    from fewgan.data.images import read_image

    path = Path(image)
    if not path.is_file():
        raise FewganError(f"{path}: image not found")
    tensor, meta = read_image(path, channels=_resolve_channels(config.channels), data_range=config.data_range,
                              page=config.page)
    _, h, w = tensor.shape
    pyramid = plan_pyramid(h, w, config.min_size, config.max_size, config.scale_factor_init, config.receptive_field)
    return tensor, meta, pyramid


def train(image: str | os.PathLike | None = None, *, results: str | os.PathLike = "results",
          resume: str | os.PathLike | None = None, device: str = "cpu", quiet: bool = False,
          dry_run: bool = False, **options: Any) -> Path:
    """Train SinGAN on one image; returns the run folder.

    Parameters
    ----------
    image : PNG, TIFF or JPEG (8/16-bit, float TIFF; gray trains a 1-channel model).
    results : parent of the timestamped run folder.
    resume : a run folder to continue from its last checkpoint (``image`` and options are
        then taken from the run; only ``stop_after`` may be given).
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.
    quiet : no progress bar or log lines on the terminal, only a one-line status on stderr every
        30 s (files are still written).
    dry_run : print the resolved configuration and pyramid, train nothing (returns ``results``).
    options : any :class:`SinGANConfig` field (``steps``, ``min_size``, ``max_size``, ``lr``, ...).

    Returns the run folder, which holds ``config.json``, ``log.txt``, ``metrics.jsonl``,
    ``checkpoints/`` (per scale and the resume checkpoint), ``samples/``, ``generator.pt``,
    ``amps.json``, ``scales.png`` and the report.
    """
    dev = resolve_device(device)
    if resume is not None:
        return _resume(Path(resume), dev, quiet, options)
    if image is None:
        raise FewganError("no image given: fewgan singan train IMAGE (or --resume RUN)")
    config = SinGANConfig.from_dict(options).validate()
    tensor, meta, pyramid = prepare(image, config)
    if dry_run:
        import json

        print(json.dumps({"config": config.to_dict(), "pyramid": pyramid.to_dict(), "image": meta.to_dict()},
                         indent=2))
        return Path(results)
    run_dir = create_run_dir(results)
    write_run_config(run_dir, METHOD, config.to_dict(), data=meta.to_dict(), device=dev,
                     extra={"pyramid": pyramid.to_dict()})
    logger = RunLogger(run_dir, quiet=quiet)
    try:
        logger.info(f"fewgan singan: {meta.path or image} ({meta.height}x{meta.width}, {meta.channels} channel(s), "
                    f"{meta.dtype}) -> {run_dir}")
        for note in pyramid.repaired:
            logger.info(f"note: {note}")
        logger.info(f"pyramid: {len(pyramid.sizes)} scales, "
                    + ", ".join(f"s{k} {h}x{w}" for k, (h, w) in enumerate(pyramid.sizes))
                    + f" (scale factor {pyramid.scale_factor:.5f})")
        trainer = SinGANTrainer(config, pyramid, meta.to_dict(), run_dir, dev, logger)
        trainer.start(tensor)
        return _run_to_end(trainer, run_dir, logger)
    finally:
        logger.close()


def _run_to_end(trainer: SinGANTrainer, run_dir: Path, logger: RunLogger) -> Path:
    try:
        try:
            trainer.run()
        except _Stopped:
            logger.info(f"stopped after {trainer.state.steps_done} steps (stop_after); "
                        f"continue with: fewgan singan train --resume {run_dir}")
            return run_dir
        trainer.finish()
    finally:
        trainer.close()
    logger.info(f"done: {run_dir}")
    return run_dir


def _resume(run_dir: Path, dev: torch.device, quiet: bool, options: dict[str, Any]) -> Path:
    payload = read_run_config(run_dir, method=METHOD)
    ckpt_path = run_dir / CHECKPOINT_DIR / RESUME_FILE
    if not ckpt_path.is_file():
        raise FewganError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_DIR}/{RESUME_FILE} missing); "
                          "start a new run instead")
    saved = SinGANConfig.from_dict(payload["config"])
    allowed = {"stop_after", "log_every", "checkpoint_every"}
    changed = sorted(k for k, v in options.items() if k not in allowed and v is not None and
                     saved.to_dict().get(k, object()) != SinGANConfig.from_dict({k: v}).to_dict()[k])
    if changed:
        raise FewganError(f"--resume continues the run with its own options; cannot change {', '.join(changed)}")
    config = saved.replace(stop_after=options.get("stop_after"))
    d = load_checkpoint(ckpt_path, map_location="cpu")
    if d.get("format") != MODEL_FORMAT:
        raise FewganError(f"{ckpt_path}: not a fewgan SinGAN checkpoint")
    pyramid = Pyramid.from_dict(d["pyramid"])
    k, t, begun = int(d["scale"]), int(d["step"]), bool(d["begun"])
    # records logged after the checkpoint would appear twice (truncate before the logger opens the file)
    truncate_metrics(run_dir, lambda r: r.get("scale", -1) < k or
                     (begun and r.get("scale") == k and r.get("event") != "scale_end" and r.get("step", 0) < t))
    logger = RunLogger(run_dir, quiet=quiet)
    try:
        logger.info(f"resumed from {ckpt_path} at s{k}, step {t if begun else 0}")
        trainer = SinGANTrainer(config, pyramid, d["meta"], run_dir, dev, logger)
        trainer.load_state_dict(d)
        return _run_to_end(trainer, run_dir, logger)
    finally:
        logger.close()
