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
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fewgan.errors import FewganError
from fewgan.run import (CHECKPOINT_DIR, SINGAN_LOSS_KEYS, SINGAN_RESUME_FILE, RunLogger, create_run_dir,
                        discard_failed_start, get_rng_state, load_checkpoint, log_offsets, nonfinite_loss_error,
                        read_run_config, release_memory, remove_stale_temps, resolve_device, save_checkpoint,
                        set_rng_state, truncate_logs, truncate_metrics, write_run_config)
from fewgan.singan import losses, outputs
from fewgan.singan.config import SinGANConfig
from fewgan.model import count_parameters
from fewgan.singan.nets import (GRAY_TRAINING_CHANNELS, METHOD, MODEL_FORMAT, RECONSTRUCTION_RULE, SAMPLING_RULE,
                                Discriminator, Generator, make_noise)
from fewgan.singan.pyramid import (Pyramid, TrainedScales, build_reals, fixed_noise, fixed_noise_window, plan_pyramid,
                                   random_noise, window_noise)



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
        self._t_start = time.perf_counter()
        self._standing: dict[int, list] = {}
        self._pool = None
        if config.concurrent and device.type == "cpu" and torch.get_num_threads() >= 2:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="singan-branch",
                                            initializer=torch.set_num_threads, initargs=(1,))

    # ------------------------------------------------------------------ set-up
    @property
    def channels(self) -> int:
        return int(self.state.reals[0].shape[1])

    @property
    def image_channels(self) -> int:
        """The image's channels (the first ones); the label channels, if any, follow them."""
        return self.channels - self.cfg.label_channels

    @property
    def scales(self) -> TrainedScales:
        """The scales trained so far (and the current one), for :meth:`TrainedScales.coarse_to_fine`."""
        st = self.state
        return TrainedScales(st.generators, st.amps, self.pyramid.sizes, self.pyramid.scale_factor,
                             standing=self.standing_statistics)

    def standing_statistics(self, k: int) -> list:
        """Scale ``k``'s standing statistics (:meth:`TrainedScales.standing_statistics`, the sampling rule's
        last scale): computed from their own fixed noise stream, never the training's, so training is the
        same with or without them; kept once scale ``k`` is frozen (a scale still training gets them anew)."""
        st = self.state
        frozen = k < st.scale or (k == st.scale and not st.begun)
        if k not in self._standing or not frozen:
            self._standing[k] = self.scales.standing_statistics(k, channels=self.channels, device=self.device,
                                                                tile=self.cfg.crop or None)
        return self._standing[k]

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
        return Discriminator(self.channels, features, self.cfg.num_blocks, self.cfg.kernel_size,
                             conv=self.cfg.conv, norm=self.cfg.critic_norm).to(self.device)

    def _new_generator(self, features: int) -> Generator:
        return Generator(self.channels, features, self.cfg.num_blocks, self.cfg.kernel_size,
                         conv=self.cfg.conv).to(self.device)

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
                if cfg.crop and max(self.pyramid.sizes[k - 1]) > cfg.crop:
                    up = self._tiled_train_mode(prev, k - 1, b)
                else:
                    up = self.scales.coarse_to_fine(fixed_noise(st.fixed_noises), start=k - 1, stop=k - 1,
                                                    image=st.fixed_prev.expand(b, -1, -1, -1), to_next=True)
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
            if cfg.label_channels:
                g_extra, d_extra = label_parameter_counts(cfg, f)
                self.log.info(f"of which for the {cfg.label_channels} label channels: generator {g_extra}, "
                              f"discriminator {d_extra}")

    def _tiled_train_mode(self, gen: Generator, j: int, batch: int) -> torch.Tensor:
        """Scale ``j`` in train mode on its fixed-noise input, upsampled to ``j + 1``, in ``crop`` px tiles.

        What the untiled train-mode forward of :meth:`_begin_scale` computes for a scale larger than
        the crop: BatchNorm normalises by the whole image's statistics (found over the tiles,
        :meth:`TrainedScales.tiled`), and the running averages move once by them, as PyTorch's
        train-mode BatchNorm moves them for a batch of ``batch`` copies of the image (unbiased
        variance over ``batch`` x the map's pixels). Returns ``[batch, C, h, w]``.
        """
        st = self.state
        found: list = []
        up = self.scales.tiled(fixed_noise(st.fixed_noises), start=j, stop=j, image=st.fixed_prev, to_next=True,
                               tile=self.cfg.crop, statistics=found)
        for block, (mean, var, count) in zip(gen.features, found[0]):
            norm, n = block.norm, batch * count
            m = norm.momentum
            norm.running_mean.mul_(1 - m).add_(m * mean[0].to(norm.running_mean.dtype))
            norm.running_var.mul_(1 - m).add_(m * (var[0] * n / (n - 1)).to(norm.running_var.dtype))
            norm.num_batches_tracked.add_(1)
        return up.expand(batch, -1, -1, -1)

    def _whole(self, noise, **kwargs) -> torch.Tensor:
        """:meth:`TrainedScales.coarse_to_fine` of whole images; in ``crop`` px tiles where a scale is larger."""
        return self.scales.whole(noise, tile=self.cfg.crop or None, **kwargs)

    def _fixed_prev(self, k: int) -> torch.Tensor:
        """The frozen scales' reconstruction from the fixed noises, upsampled to scale k (``[1, C, h, w]``)."""
        with torch.no_grad():
            return self._whole(fixed_noise(self.state.fixed_noises), stop=k - 1, channels=self.channels,
                               device=self.device, to_next=True)

    def crop_window(self, k: int) -> tuple[int, int, int, int] | None:
        """A random ``crop x crop`` window ``(y0, y1, x0, x1)`` of scale k (global RNG), or None: train on the whole scale.

        Scales whose long side is at most ``config.crop`` (and every scale with ``crop`` 0) are whole.
        The border rows and columns are in a crop as often as the interior ones: the corner is drawn
        from ``-(crop - 1) .. size - 1`` and clipped into the image, so a crop touches each border with
        probability ``crop / (size + crop - 1)``, the chance of any line at least a crop from the
        borders (the lines between are covered up to twice as often). (A corner drawn uniformly from
        ``0 .. size - crop`` touches the top border once in ``size - crop + 1`` steps: a 512 px scale
        with 64 px crops then trained its border ~64x less often than its interior, and the samples
        of a 60-step native run showed bright and dark lines along all four borders, where the
        generator's zero padding meets the image; bench/README.md, "Side by side".)
        """
        h, w = self.pyramid.sizes[k]
        c = self.cfg.crop
        if not c or max(h, w) <= c:
            return None
        ch, cw = min(c, h), min(c, w)
        y0 = min(max(int(torch.randint(1 - ch, h, ())), 0), h - ch)
        x0 = min(max(int(torch.randint(1 - cw, w, ())), 0), w - cw)
        return y0, y0 + ch, x0, x0 + cw

    def _random_prev(self, k: int, batch: int) -> torch.Tensor:
        """The frozen scales fed with fresh noise (global RNG), upsampled to scale k (``[B, C, h, w]``)."""
        with torch.no_grad():
            return self.scales.coarse_to_fine(random_noise(device=self.device), stop=k - 1, batch=batch,
                                              channels=self.channels, device=self.device, to_next=True)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, torch.Tensor]:
        """One critic step and (every ``critic_steps``) one generator step at the current scale and step."""
        st, cfg = self.state, self.cfg
        k, t, b = st.scale, st.step, cfg.batch_size
        gen, dis = st.generators[k], st.discriminator
        lr = cfg.lr_at(t)
        for opt in (st.g_opt, st.d_opt):
            for group in opt.param_groups:
                group["lr"] = lr
        do_g = t % cfg.critic_steps == 0
        window = self.crop_window(k)
        if window is None:
            real = st.reals[k].expand(b, -1, -1, -1)
            # critic
            y = self._random_prev(k, b)
            with torch.set_grad_enabled(do_g):
                fake = self.scales.coarse_to_fine(random_noise(device=self.device), start=k, stop=k, image=y)
        else:
            # a random crop: the real image, the frozen scales' fake (computed on the crop and the
            # margins it needs only) and the fixed reconstruction input, all cut at the same place
            y0, y1, x0, x1 = window
            real = st.reals[k][..., y0:y1, x0:x1].expand(b, -1, -1, -1)
            grown = self.scales.input_windows(window, stop=k, start=k)[k][0]
            noise = window_noise(random_noise(device=self.device))
            with torch.no_grad():
                y = (self.scales.coarse_to_fine_window(noise, stop=k - 1, window=grown, to_next=True, batch=b,
                                                       channels=self.channels, device=self.device) if k > 0 else
                     torch.zeros((b, self.channels, grown[1] - grown[0], grown[3] - grown[2]), device=self.device))
            with torch.set_grad_enabled(do_g):
                fake = self.scales.coarse_to_fine_window(noise, start=k, stop=k, window=window, image=y)
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

            # each half is the serial loss function with the other half's terms at zero, so the two
            # gradients add up to the serial one
            def penalty():
                gp = losses.gradient_penalty(dis, real, fake, alpha)
                half = losses.critic_loss(0.0, 0.0, gp, cfg.gp_weight)
                return gp.detach(), torch.autograd.grad(half, params, allow_unused=True)

            with self._single_thread():
                job = self._pool.submit(penalty)
                d_r, d_f = losses.critic_terms(dis(real), dis(fake.detach()))
                grads = torch.autograd.grad(losses.critic_loss(d_r, d_f, 0.0, cfg.gp_weight), params)
                d_gp, grads_gp = job.result()
            _set_grads(params, grads, grads_gp)
            d_total = losses.critic_loss(d_r.detach(), d_f.detach(), d_gp, cfg.gp_weight)
        st.d_opt.step()
        dis.requires_grad_(False)
        out = {"D": d_total.detach(), "D_r": d_r.detach(), "D_f": d_f.detach(), "D_gp": d_gp.detach()}

        # generator
        if do_g:
            st.g_opt.zero_grad(set_to_none=True)
            if window is None:
                y_fixed = st.fixed_prev.expand(b, -1, -1, -1)

                def reconstruction():
                    return self.scales.coarse_to_fine(fixed_noise(st.fixed_noises), start=k, stop=k, image=y_fixed)
            else:
                y_fixed = st.fixed_prev[..., grown[0]:grown[1], grown[2]:grown[3]].expand(b, -1, -1, -1)

                def reconstruction():
                    return self.scales.coarse_to_fine_window(fixed_noise_window(st.fixed_noises), start=k, stop=k,
                                                             window=window, image=y_fixed)

            if self._pool is None:
                recon = reconstruction()
                g_recon = losses.reconstruction_loss(recon, real)
                g_total, g_adv = losses.generator_loss(g_recon, dis(fake), cfg.recon_weight, cfg.adv_weight)
                g_total.backward()
            else:
                params = list(gen.parameters())

                no_scores = torch.zeros((), device=self.device)  # the adversarial half's term at zero

                def adversarial():
                    scores = dis(fake)
                    half, _ = losses.generator_loss(0.0, scores, cfg.recon_weight, cfg.adv_weight)
                    return scores.detach(), torch.autograd.grad(half, params, allow_unused=True)

                with self._single_thread():
                    job = self._pool.submit(adversarial)
                    recon = reconstruction()
                    g_recon = losses.reconstruction_loss(recon, real)
                    half, _ = losses.generator_loss(g_recon, no_scores, cfg.recon_weight, cfg.adv_weight)
                    grads = torch.autograd.grad(half, params, allow_unused=True)
                    scores, grads_adv = job.result()
                _set_grads(params, grads, grads_adv)
                g_recon = g_recon.detach()
                g_total, g_adv = losses.generator_loss(g_recon, scores, cfg.recon_weight, cfg.adv_weight)
            st.g_opt.step()
            out.update({"G": g_total.detach(), "G_recon": g_recon.detach(), "G_adv": g_adv.detach()})
        return out

    def _single_thread(self):
        """Both workers single-threaded for the concurrent phase; the thread count is restored after."""
        from fewgan.run import torch_threads

        return torch_threads(1)

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
                    release_memory()  # what the set-up passes freed (fewgan.run.release_memory)
                    h, w = self.pyramid.sizes[k]
                    self.log.info(f"Scale #{k + 1}")
                    crop = (f", on random {min(cfg.crop, h)}x{min(cfg.crop, w)} crops"
                            if cfg.crop and max(h, w) > cfg.crop else "")
                    self.log.info(f"s{k}: {h}x{w}, {cfg.features_at(k)} features, amp {st.amps[k]:.3f}, "
                                  f"{cfg.steps + 1} steps{crop}")
                    st.scale_elapsed0 = st.elapsed
                scale_bar = self.log.progress(cfg.steps + 1, desc=f"  s{k} {self.pyramid.sizes[k][0]}x"
                                              f"{self.pyramid.sizes[k][1]}", unit="step", initial=st.step) \
                    if progress else None
                while st.step <= cfg.steps:
                    t0 = time.perf_counter()
                    values = self.train_step()
                    error = nonfinite_loss_error(values, f"scale {k}, step {st.step}", self.run_dir, METHOD)
                    if error is not None:
                        self.log.info(f"error: {error}", console=False)
                        raise error
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
                        release_memory()  # bounds what varying crop windows leave behind over a long scale
                if scale_bar is not None:
                    scale_bar.close()
                    scale_bar = None
                release_memory()  # what the steps freed, before the end passes (whole-image, tiled) allocate
                outputs.end_of_scale(self, k)
                release_memory()  # what the end passes freed
                st.scale, st.step, st.begun = k + 1, 0, False
                self.save_resume()
        finally:
            if scale_bar is not None:
                scale_bar.close()
            if bar is not None:
                bar.close()

    def _log_step(self, k: int, t: int) -> None:
        last = {key: float(v) for key, v in self.state.last.items()}
        for key in SINGAN_LOSS_KEYS:
            last.setdefault(key, float("nan"))
        self.log.info(
            f"Iteration {t}, D: {last['D']:.6f}, D_r: {last['D_r']:.6f}, D_f: {last['D_f']:.6f}, "
            f"D_gp: {last['D_gp']:.6f}, G: {last['G']:.5f}, G_recon: {last['G_recon']:.5f}, G_adv: {last['G_adv']:.5f}"
        )
        record = {"scale": k, "step": t, **{key: last[key] for key in SINGAN_LOSS_KEYS}, "amp": self.state.amps[k],
                  "lr": self.cfg.lr_at(t), "seconds": round(self.state.elapsed, 4)}
        self.log.metrics(record)
        self.log.scalars(k * (self.cfg.steps + 1) + t, {f"s{k}/{key}": last[key] for key in SINGAN_LOSS_KEYS})

    # ------------------------------------------------------------------ scale end, evaluation
    @torch.no_grad()
    def reconstruct(self, k: int) -> torch.Tensor:
        """Fixed-noise reconstruction at scale k: ``[1, C, h, w]``.

        :data:`fewgan.singan.nets.RECONSTRUCTION_RULE`: the frozen scales in eval mode, scale k with the
        image's own statistics, as the reconstruction loss ran it.
        """
        st = self.state
        gen = st.generators[k]
        was = gen.training
        gen.eval()
        out = self._whole(fixed_noise(st.fixed_noises), stop=k, rule=RECONSTRUCTION_RULE)
        gen.train(was)
        return out

    @torch.no_grad()
    def sample(self, k: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random images at scale k (noise from ``generator``): ``[n, C, h, w]``.

        The sampling rule of ``fewgan singan sample`` (:data:`fewgan.singan.nets.SAMPLING_RULE`:
        scale k normalises with its standing statistics, the frozen scales with their running
        averages), so the per-scale grids and ``scales.png`` show what the sampler draws.
        """
        st = self.state
        gen = st.generators[k]
        was = gen.training
        gen.eval()
        y = self._whole(random_noise(generator, self.device), stop=k, batch=n, channels=self.channels,
                        rule=SAMPLING_RULE)
        gen.train(was)
        return y

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
            g = Generator(int(d["reals"][0].shape[1]), int(f), self.cfg.num_blocks, self.cfg.kernel_size,
                          conv=self.cfg.conv).to(dev)
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
                                             self.cfg.kernel_size, conv=self.cfg.conv,
                                             norm=self.cfg.critic_norm).to(dev)
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
            # the log sizes at this checkpoint: a resume cuts log.txt / metrics.jsonl back to them
            save_checkpoint(self.run_dir / CHECKPOINT_DIR / SINGAN_RESUME_FILE,
                            {**self.state_dict(), "log_offsets": log_offsets(self.run_dir)})

    def model_dict(self) -> dict[str, Any]:
        """What sampling needs: the frozen pyramid of generators and its noise amplitudes."""
        st = self.state
        return {"format": MODEL_FORMAT, "config": self.cfg.to_dict(), "pyramid": self.pyramid.to_dict(),
                "meta": self.meta, "channels": self.channels, "amps": list(st.amps),
                "features": [g.feature_count for g in st.generators],
                "generators": [g.state_dict() for g in st.generators],
                "reals": [r.cpu() for r in st.reals], "fixed_noises": [n.cpu() for n in st.fixed_noises],
                "standing": {k: [[m.cpu(), v.cpu()] for m, v in self.standing_statistics(k)]
                             for k in range(len(st.generators))}}

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        """Every generator to eval mode; the model file, amps and the scale table (:func:`outputs.end_of_run`)."""
        for g in self.state.generators:
            g.eval()
        outputs.end_of_run(self)


def _set_grads(params, first, second) -> None:
    """``p.grad = first + second`` in a fixed order (a gradient that does not reach ``p`` is None)."""
    for p, a, b in zip(params, first, second):
        if a is None and b is None:
            p.grad = None
        elif a is None or b is None:
            p.grad = (a if b is None else b).clone()
        else:
            p.grad = a + b


# ---------------------------------------------------------------------- entry point
def _resolve_channels(value: Any) -> str | int:
    value = str(value)
    return "auto" if value == "auto" else int(value)


def resolve_labels(image: Path, tensor: torch.Tensor, spec: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The instances ``[H, W]`` int32 of the training image for ``--labels`` ``spec`` and what to record of them.

    ``spec``: a label image or binary mask file (same height and width), ``'beside'`` (the Cellpose
    ``NAME_masks.tif|png`` next to the image) or ``'auto'`` (fewgan's particle analysis of ``tensor``
    ``[C, H, W]`` in [-1, 1], :func:`fewgan.metrics.particles.measure_set` with the default
    :class:`~fewgan.metrics.particles.ParticleConfig`). Raises :class:`FewganError` (one line) when
    there are no usable labels.
    """
    from fewgan.data.labels import labels_beside, read_labels

    h, w = tensor.shape[-2:]
    if spec == "auto":
        from fewgan.metrics.particles import ParticleConfig, measure_set

        particle_config = ParticleConfig()
        detected = measure_set(tensor[None].float(), particle_config, keep_labels=True)
        instances = np.asarray(detected["labels"][0], np.int32)
        if instances.max() == 0:
            raise FewganError(f"{image}: --labels auto found no particles in the image; give a label file instead")
        return instances, {"source": "auto", "particles": particle_config.to_dict(),
                           "threshold": detected["threshold"], "instances": int(instances.max())}
    if spec == "beside":
        found = labels_beside(image)
        if found is None:
            raise FewganError(f"{image}: --labels beside found no {image.stem}_masks.tif or {image.stem}_masks.png "
                              "next to the image; give the label file with --labels PATH")
        spec = str(found)
    instances = read_labels(spec, (h, w))
    return instances, {"source": str(Path(spec).resolve()), "instances": int(instances.max())}


def label_parameter_counts(config: SinGANConfig, features: int) -> tuple[int, int]:
    """Parameters the label channels add to a generator and a critic of ``features`` features.

    The generator's first conv reads and its last conv writes ``L`` more channels
    (``2 * L * F * k * k + L``: weights both ways, the last conv's bias); the critic's first conv
    reads them (``L * F * k * k``); no other layer changes.
    """
    extra, f, k = config.label_channels, features, config.kernel_size
    return 2 * extra * f * k * k + extra, extra * f * k * k


def prepare(image: str | os.PathLike, config: SinGANConfig, record: dict[str, Any] | None = None):
    """Read ``image`` and plan its pyramid: ``(tensor [C, H, W] in [-1, 1], ImageMeta, Pyramid)``.

    With ``config.labels`` the tensor has ``C + 2`` channels: the image's, then its encoded
    instances (:func:`resolve_labels`, :func:`fewgan.data.labels.encode_instances`) at full
    resolution, resized with the image by the pyramid (the encoding is smooth, so bicubic is fine);
    ``meta`` describes the image channels only; ``record`` (a dict, if given) receives what
    :func:`resolve_labels` records under ``'labels'``.
    """
    from fewgan.data.images import read_image

    path = Path(image)
    if path.is_dir():
        raise FewganError(f"{path}: is a folder; SinGAN trains on one image file (a folder of images is for "
                          "fewgan stylegan2 train)")
    if not path.is_file():
        raise FewganError(f"{path}: image not found")
    tensor, meta = read_image(path, channels=_resolve_channels(config.channels), data_range=config.data_range,
                              page=config.page)
    _, h, w = tensor.shape
    if tensor.shape[0] == 1 and str(config.channels) == "auto" and config.labels is None:
        # a gray image is trained as three identical channels, as the seed ran it (issue 17:
        # nets.GRAY_TRAINING_CHANNELS); meta stays the image's, so outputs come back gray
        tensor = tensor.expand(GRAY_TRAINING_CHANNELS, h, w).contiguous()
    if config.labels is not None:  # the label channels follow the image channels; ImageMeta stays the image's
        from fewgan.data.labels import instances_to_channels

        instances, info = resolve_labels(path, tensor, config.labels)
        if record is not None:
            record["labels"] = info
        tensor = torch.cat([tensor.float(), instances_to_channels(instances)], 0)
    max_size = max(h, w) if config.native else config.max_size
    pyramid = plan_pyramid(h, w, config.min_size, max_size, config.scale_factor_init, config.receptive_field)
    if tuple(pyramid.sizes[-1]) != (h, w):  # trained (and sampled) at the finest scale: its pixels are larger
        meta = meta.resampled(*pyramid.sizes[-1])
    return tensor, meta, pyramid


def resolution_lines(config: SinGANConfig, pyramid: Pyramid, meta, native: tuple[int, int]) -> list[str]:
    """The first lines of a run on resolution: what the model works at, any resize, and the crops.

    ``meta`` is the :class:`fewgan.data.images.ImageMeta` of the finest scale (after any resize),
    ``native`` the input's ``(h, w)``.
    """
    h0, w0 = native
    h, w = pyramid.sizes[-1]
    unit = meta.pixel_unit or ""
    pixel = f", pixel size {meta.pixel_size:g} {unit}".rstrip() if meta.pixel_size else ""
    lines = []
    if (h0, w0) != (h, w):
        factor = w0 / w  # the factor ImageMeta.resampled applies to the pixel size
        change = (f"; pixel size {meta.pixel_size / factor:g} -> {meta.pixel_size:g} {unit}".rstrip()
                  if meta.pixel_size else f"; each pixel becomes {factor:.3g}x larger")
        lines.append(f"note: the image is resized from {h0}x{w0} to {h}x{w} px (--max-size {config.max_size}){change},"
                     f" features {factor:.3g}x smaller in pixels; to keep the native size use --native")
    lines.append(f"resolution: the model works at {h}x{w} px{pixel}" + (" (native)" if (h0, w0) == (h, w) else ""))
    cropped = [k for k, s in enumerate(pyramid.sizes) if config.crop and max(s) > config.crop]
    if cropped:
        lines.append(f"crops: scales s{cropped[0]}..s{cropped[-1]} (larger than --crop {config.crop}) train on random "
                     f"{config.crop}x{config.crop} crops; s0..s{cropped[0] - 1} see the whole image")
    return lines


def train(image: str | os.PathLike | None = None, *, results: str | os.PathLike = "results",
          resume: str | os.PathLike | None = None, device: str = "cpu", quiet: bool = False,
          dry_run: bool = False, on_finish: Callable[[Path, RunLogger], None] | None = None,
          **options: Any) -> Path:
    """Train SinGAN on one image; returns the run folder.

    Parameters
    ----------
    image : PNG, TIFF or JPEG (8/16-bit, float TIFF; gray is trained as three identical channels
        and sampled gray, see ``channels``).
    results : parent of the timestamped run folder.
    resume : a run folder to continue from its last checkpoint (``image`` and options are
        then taken from the run; only the run-time settings :attr:`SinGANConfig.RUNTIME_FIELDS`
        may be given, and they apply from the resumed step on).
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.
    quiet : no progress bar or log lines on the terminal, only a one-line status on stderr every
        30 s (files are still written).
    dry_run : print the resolved configuration and pyramid, train nothing (returns ``results``).
    options : any :class:`SinGANConfig` field (``steps``, ``min_size``, ``max_size``, ``lr``, ...).

    Returns the run folder, which holds ``config.json``, ``log.txt``, ``metrics.jsonl``,
    ``checkpoints/`` (per scale and the resume checkpoint), ``samples/``, ``generator.pt``,
    ``amps.json`` and ``scales.png``; ``on_finish(run_dir, logger)`` is called when the last scale is
    done (the API writes the report there).
    """
    dev = resolve_device(device)
    if resume is not None:
        return _resume(Path(resume), dev, quiet, options, on_finish)
    if image is None:
        raise FewganError("no image given: fewgan singan train IMAGE (or --resume RUN)")
    config = SinGANConfig.from_dict(options)
    record: dict[str, Any] = {}
    tensor, meta, pyramid = prepare(image, config, record)
    if "crop" in options and config.crop > max(pyramid.sizes[-1]):
        h, w = pyramid.sizes[-1]
        raise FewganError(f"--crop {config.crop} is larger than the image the model trains on ({h}x{w} px); "
                          f"use --crop {max(h, w)} or less (or 0 for whole images)")
    if dry_run:
        import json

        print(json.dumps({"config": config.to_dict(), "pyramid": pyramid.to_dict(), "image": meta.to_dict(),
                          **record}, indent=2))
        return Path(results)
    run_dir = create_run_dir(results)
    write_run_config(run_dir, METHOD, config.to_dict(), data=meta.to_dict(), device=dev,
                     extra={"pyramid": pyramid.to_dict(), **record})
    logger = RunLogger(run_dir, quiet=quiet)
    try:
        h0, w0 = tensor.shape[-2:]
        logger.info(f"fewgan singan: {meta.path or image} ({h0}x{w0}, {meta.channels} channel(s), "
                    f"{meta.dtype}) -> {run_dir}, device {dev}")
        for line in resolution_lines(config, pyramid, meta, (h0, w0)):
            logger.info(line)
        if int(tensor.shape[0]) - config.label_channels != meta.channels:
            logger.info(f"gray image: trained as {GRAY_TRAINING_CHANNELS} identical channels (as the seed ran it), "
                        "sampled back gray (their mean); --channels 1 trains one channel")
        if "labels" in record:
            logger.info(f"labels: {record['labels']['source']}, {record['labels']['instances']} instances, trained as "
                        f"{config.label_channels} extra channels (foreground, normalised distance)")
        for note in pyramid.repaired:
            logger.info(f"note: {note}")
        logger.info(f"pyramid: {len(pyramid.sizes)} scales, "
                    + ", ".join(f"s{k} {h}x{w}" for k, (h, w) in enumerate(pyramid.sizes))
                    + f" (scale factor {pyramid.scale_factor:.5f})")
        trainer = SinGANTrainer(config, pyramid, meta.to_dict(), run_dir, dev, logger)
        trainer.start(tensor)
        return _run_to_end(trainer, run_dir, logger, on_finish)
    except Exception:
        logger.close()
        discard_failed_start(run_dir)  # no checkpoint yet: nothing to resume, no folder left behind
        raise
    finally:
        logger.close()


def _run_to_end(trainer: SinGANTrainer, run_dir: Path, logger: RunLogger, on_finish=None) -> Path:
    try:
        try:
            trainer.run()
        except _Stopped:
            logger.info(f"stopped after {trainer.state.steps_done} steps (stop_after); "
                        f"continue with: fewgan singan train --resume {run_dir}")
            return run_dir
        trainer.finish()
        # the model file holds what is left to use: drop the training state (every scale's reals and
        # noises, the critic, the optimisers) before the figure and the report load the model again
        trainer.state = None
        release_memory()
        if on_finish is not None:
            on_finish(run_dir, logger)
    finally:
        trainer.close()
    logger.info(f"done: {run_dir}")
    return run_dir


def _resume(run_dir: Path, dev: torch.device, quiet: bool, options: dict[str, Any], on_finish=None) -> Path:
    payload = read_run_config(run_dir, method=METHOD)
    ckpt_path = run_dir / CHECKPOINT_DIR / SINGAN_RESUME_FILE
    if not ckpt_path.is_file():
        raise FewganError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_DIR}/{SINGAN_RESUME_FILE} missing); "
                          "start a new run instead")
    # the one resume rule (fewgan.config.Config.resume_with); stop_after is of this call only
    config = SinGANConfig.from_stored(payload["config"]).resume_with(options, run=run_dir)
    config = config.replace(stop_after=options.get("stop_after"))
    d = load_checkpoint(ckpt_path, map_location="cpu")
    if d.get("format") != MODEL_FORMAT:
        raise FewganError(f"{ckpt_path}: not a fewgan SinGAN checkpoint")
    pyramid = Pyramid.from_dict(d["pyramid"])
    k, t, begun = int(d["scale"]), int(d["step"]), bool(d["begun"])
    # lines logged after the checkpoint would appear twice (cut before the logger opens the files)
    remove_stale_temps(run_dir)
    if "log_offsets" in d:
        truncate_logs(run_dir, d["log_offsets"])
    else:  # a checkpoint from before log offsets were stored
        truncate_metrics(run_dir, lambda r: r.get("scale", -1) < k or
                     (begun and r.get("scale") == k and r.get("event") != "scale_end" and r.get("step", 0) < t))
    logger = RunLogger(run_dir, quiet=quiet)
    try:
        logger.info(f"resumed from {ckpt_path} at s{k}, step {t if begun else 0}")
        trainer = SinGANTrainer(config, pyramid, d["meta"], run_dir, dev, logger)
        trainer.load_state_dict(d)
        return _run_to_end(trainer, run_dir, logger, on_finish)
    finally:
        logger.close()
