"""Training data-efficient StyleGAN2 on a small folder of images.

The loop follows Karras et al., "Analyzing and Improving the Image Quality of StyleGAN"
(CVPR 2020) with the seed document's numbers (``fewgan.stylegan2.config``), DiffAugment
(Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020)
and optionally ADA (Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020). One iteration runs four phases, as NVlabs' code does:

1. **Gmain**: ``softplus(-D(aug(G(z))))``; Adam step of G; EMA update.
2. **Greg** (every ``g_reg_every`` iterations): path-length penalty on half the batch,
   multiplied by the interval; Adam step of G; EMA update (the seed updates the EMA after
   the path-length step too).
3. **Dmain**: ``softplus(D(aug(G(z)))) + softplus(-D(aug(x)))``; Adam step of D.
4. **Dreg** (every ``d_reg_every`` iterations): R1 ``gamma/2 ||grad_x D(aug(x))||^2`` on the
   un-augmented reals (gradients through the augmentation), multiplied by the interval.

For a lazy interval ``k`` the optimiser's lr is multiplied by ``k/(k+1)`` and its betas raised
to that power (paper, appendix B). The trainer owns all state (optimisers, EMA, path-length
mean, ADA p, sampler position, image count, best metric, RNG states); a checkpoint holds it all,
so ``resume`` continues exactly (same final weights on CPU as a run that never stopped).

Randomness: everything drawn *for the batch* (image indices, latents, the style-mixing
cut-off, noise maps, path-length noise) comes from one ``torch.Generator`` seeded with the run
seed and is drawn for the **global** batch on every process, each process keeping its
contiguous slice; augmentation draws from the process's global RNG (seeded ``seed + rank``).
Under ``torchrun`` the global batch is split across processes; gradients are averaged with one
all-reduce per phase (a hand-made DistributedDataParallel: PyTorch's DDP wrapper cannot take
the double backward of R1 and path length, and each phase updates only one network); the
path-length mean, the ``w_avg`` update (in Gmain, before the EMA copies it) and ADA's statistics are all-reduced; minibatch-stddev
groups are consecutive samples, so contiguous slices form the same groups as one process.
Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from fewgan.errors import FewganError
from fewgan.run import (
    CHECKPOINT_DIR,
    SAMPLES_DIR,
    STYLEGAN2_BEST_FILES,
    STYLEGAN2_BEST_INFO,
    STYLEGAN2_LAST_CHECKPOINT,
    STYLEGAN2_TRAINING_LABELS_COUNT,
    STYLEGAN2_TRAINING_LABELS_DIR,
    RunLogger,
    atomic_write_json,
    create_run_dir,
    discard_failed_start,
    get_rng_state,
    load_checkpoint,
    log_offsets,
    nonfinite_loss_error,
    read_run_config,
    remove_stale_temps,
    resolve_device,
    save_checkpoint,
    set_rng_state,
    stylegan2_sample_grid,
    truncate_logs,
    truncate_metrics,
    write_run_config,
)
from fewgan.stylegan2.config import StyleGAN2Config, preset_overrides
from fewgan.stylegan2.losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, path_lengths, r1_penalty
from fewgan.model import count_parameters
from fewgan.stylegan2.nets import (CHECKPOINT_FORMAT, METHOD, WEIGHTS_FORMAT, Generator, LabelledCritic,
                                   build_networks)

MetricFn = Callable[[torch.Tensor], float]
MetricFactory = Callable[..., tuple[str, MetricFn, str]]


def lazy_adam(params, lr: float, betas: tuple[float, float], reg_every: int) -> torch.optim.Adam:
    """Adam with lr x ``k/(k+1)`` and betas ``** (k/(k+1))`` for a lazy interval ``k`` (Karras et al. 2020,
    appendix B: the regulariser's step folds into the same optimiser ``k+1`` times per ``k`` main steps)."""
    ratio = reg_every / (reg_every + 1) if reg_every > 1 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)


def lr_multiplier(done: float, rampdown: float) -> float:
    """Learning-rate factor after ``done`` (fraction of the budget) with a ramp-down over the last
    ``rampdown`` of it: 1 before the ramp, then a half cosine to 0 at the end (0: constant, StyleGAN2's
    schedule). The shape is the ramp-down of Karras et al.'s StyleGAN2 projector (CVPR 2020, code),
    applied here to training: the generator settles as the steps shrink, so late snapshots differ less
    from one another (issue 13 point 5: labelled runs, bench/README.md)."""
    if rampdown <= 0:
        return 1.0
    r = min(1.0, max(0.0, (1.0 - done) / rampdown))
    return 0.5 - 0.5 * math.cos(math.pi * r)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``p_ema <- p + decay (p_ema - p)`` for every parameter; buffers (``w_avg``, noise maps) copied."""
    ema_p = list(ema.parameters())
    p = [q.detach() for q in model.parameters()]
    torch._foreach_lerp_(ema_p, p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


# --------------------------------------------------------------------------- sampler
class InfiniteSampler:
    """Indices of a data set of ``n`` images in reshuffled passes, for any batch size (even > n).

    State (``perm``, ``pos``) is plain tensors; randomness comes from the trainer's generator.
    """

    def __init__(self, n: int, generator: torch.Generator):
        self.n = n
        self.generator = generator
        self.perm = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self, batch: int) -> torch.Tensor:
        out = []
        need = batch
        while need > 0:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.generator)
                self.pos = 0
            take = min(need, self.n - self.pos)
            out.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm.clone(), "pos": torch.tensor(self.pos)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])


# --------------------------------------------------------------------------- distributed
@dataclasses.dataclass
class DistInfo:
    """Process group facts: ``rank``, ``world`` (1 without torchrun); ``owns_group``: this run
    joined the group (:func:`dist_from_env`) and so leaves it when it ends (:meth:`close`)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return t
        import torch.distributed as dist

        t = t.detach().clone()
        dist.all_reduce(t)
        return t / self.world

    def all_reduce_sum_(self, t: torch.Tensor) -> None:
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t)

    def close(self, finished: bool = True) -> None:
        """Leave the process group this run joined. A process that exits with a live gloo group
        can abort at interpreter shutdown ("terminate called without an active exception",
        SIGABRT: pytorch/pytorch#190489), failing the torchrun job after training finished.

        ``finished``: every rank got here without an error, so they first wait for one another
        (a barrier): rank 0 writes the checkpoint and the report after the last step, and a rank
        that left the group and exited meanwhile aborted once in CI (2026-12-05, a loaded 2-core
        machine). After an error there is no barrier: the other ranks may be stuck in a collective."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                if finished and self.active:
                    dist.barrier()
                dist.destroy_process_group()
            self.owns_group = False

    @contextlib.contextmanager
    def joined(self):
        """The body of a run: on leaving, :meth:`close` (with the barrier only when nothing was raised)."""
        try:
            yield self
        except BaseException:
            self.close(finished=False)
            raise
        self.close(finished=True)

    def average_gradients(self, module: torch.nn.Module) -> None:
        """One flat all-reduce of every gradient, divided by ``world``.

        A parameter without a gradient (e.g. toRGB biases in the path-length phase) keeps
        ``None`` rather than a zero: Adam skips it, as it does in one process (a zero would
        advance its step count and change its later bias correction). Every rank builds the
        same graph, so the set of gradients is the same on all of them.
        """
        if not self.active:
            return
        import torch.distributed as dist

        params = [p for p in module.parameters() if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p))
            offset += n


def dist_from_env(device: str) -> tuple[DistInfo, str]:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE > 1); NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(rank=rank, world=world, owns_group=owns), device


# --------------------------------------------------------------------------- augmentation
def build_augmentation(cfg: StyleGAN2Config, channels: int):
    """``(diffaugment or None, ada or None, classical or None)`` from the config (see :mod:`fewgan.augment`).

    ``channels``: the image channels (1 or 3); a labelled config's label channels follow them and
    are moved with the image, never colour-changed."""
    from fewgan.augment import build

    aug = build(diffaugment=cfg.diffaugment if cfg.diffaugment_on else None, ada=cfg.ada, classical=cfg.classical,
                channels=channels, ada_target=cfg.ada_target, ada_kimg=cfg.ada_kimg, ada_interval=cfg.ada_interval,
                label_channels=cfg.label_channels)
    return aug.diffaugment, aug.ada, aug.classical


# --------------------------------------------------------------------------- trainer
class Trainer:
    """All training state of one StyleGAN2 run, and the four phases of an iteration.

    Parameters
    ----------
    cfg : the resolved :class:`StyleGAN2Config`.
    images : ``[N, C, R, R]`` float tensor in [-1, 1] (the whole data set, in memory); with
        ``cfg.labels`` the last ``cfg.label_channels`` channels are the encoded labels
        (:func:`fewgan.data.labels.encode_instances`), which G makes and D sees beside the image.
    device : 'cpu', 'cuda', 'cuda:N'.
    dist : process group facts (``DistInfo()`` for one process).
    augment : ``(diffaugment, ada, classical)`` callables or None each; default from the config.
    """

    def __init__(self, cfg: StyleGAN2Config, images: torch.Tensor, *, device: str = "cpu",
                 dist: DistInfo | None = None, augment=None):
        if images.ndim != 4 or images.shape[2] != cfg.resolution or images.shape[3] != cfg.resolution:
            raise FewganError(f"training images must be [N, C, {cfg.resolution}, {cfg.resolution}], "
                              f"got {tuple(images.shape)}")
        self.cfg = cfg
        self.dist = dist or DistInfo()
        if cfg.batch % self.dist.world:
            raise FewganError(f"--batch {cfg.batch} is not divisible by the {self.dist.world} processes; "
                              "choose a global batch that is a multiple of the process count")
        self.device = torch.device(device)
        self.seed = seed = cfg.seed
        self.images = images.to(self.device)
        self.n_images = images.shape[0]
        self.channels = images.shape[1]  # image + label channels: what G makes and D sees
        self.image_channels = self.channels - cfg.label_channels
        if self.image_channels not in (1, 3):
            raise FewganError(f"training images must have 1 or 3 image channels (+{cfg.label_channels} label "
                              f"channels), got {self.channels} channels")
        self.local_batch = cfg.batch // self.dist.world
        torch.manual_seed(seed)
        G, D = build_networks(cfg, self.channels)
        self.G = G.to(self.device)
        self.D = D.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        if cfg.channels_last:
            for m in (self.G, self.D, self.G_ema):
                m.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = lazy_adam(self.G.parameters(), cfg.lr_g, betas, cfg.g_reg_every if cfg.pl_weight > 0 else 1)
        self.opt_D = lazy_adam(self.D.parameters(), cfg.lr_d, betas, cfg.d_reg_every if cfg.r1_gamma > 0 else 1)
        # each group's full rate (a checkpoint's stored rate may be a ramped one)
        self.base_lr = {opt: [g["lr"] for g in opt.param_groups] for opt in (self.opt_G, self.opt_D)}
        self.diffaug, self.ada, self.classical = augment if augment is not None else build_augmentation(cfg, self.image_channels)
        if self.ada is not None:
            self.ada.to(self.device)
        # everything drawn for the global batch comes from here (same on every rank)
        self.gen = torch.Generator().manual_seed(seed)
        self.sampler = InfiniteSampler(self.n_images, self.gen)
        torch.manual_seed(seed + self.dist.rank)  # augmentation randomness (per process)
        self.pl_mean = torch.zeros((), device=self.device)
        self.step = 0
        self.images_seen = 0
        self.seconds = 0.0
        self.best: dict[str, Any] | None = None
        self.last: dict[str, torch.Tensor] = {}
        self.autocast = cfg.amp and self.device.type == "cuda"

    # -- budget
    @property
    def total_images(self) -> int:
        cfg = self.cfg
        return int(round(cfg.kimg * 1000)) if cfg.kimg is not None else cfg.epochs * self.n_images

    @property
    def total_steps(self) -> int:
        return max(1, math.ceil(self.total_images / self.cfg.batch))

    @property
    def epoch(self) -> float:
        return self.images_seen / self.n_images

    # -- random draws for the global batch, sliced for this process
    def _slice(self, n_global: int) -> slice:
        n_local = n_global // self.dist.world
        return slice(self.dist.rank * n_local, (self.dist.rank + 1) * n_local)

    def _randn(self, *shape: int) -> torch.Tensor:
        """``randn`` of the global shape from the trainer's generator; this rank's slice (dim 0)."""
        x = torch.randn(*shape, generator=self.gen)
        return x[self._slice(shape[0])].to(self.device, non_blocking=True)

    def _latents(self, n_global: int):
        z = self._randn(n_global, self.cfg.z_dim)
        z2 = self._randn(n_global, self.cfg.z_dim)
        num_ws = self.G.num_ws
        cutoff = int(torch.randint(1, num_ws, (), generator=self.gen))
        mix = float(torch.rand((), generator=self.gen)) < self.cfg.style_mixing
        noise = [self._randn(n_global, 1, h, w) for h, w in self.G.synthesis.noise_shapes()]
        return z, (z2 if mix else None), cutoff, noise

    def _run_G(self, G: Generator, z, z2, cutoff, noise, return_ws: bool = False):
        ws = G.mapping(z)
        if z2 is not None:
            ws = torch.cat([ws[:, :cutoff], G.mapping(z2)[:, cutoff:]], dim=1)
        img = G.synthesis(ws, noise=noise)
        return (img, ws) if return_ws else img

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.ada is not None:
            x = self.ada(x)
        if self.diffaug is not None:
            x = self.diffaug(x)
        return x

    def _D(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.D(self._augment(x))
        return out.float()

    def _real_batch(self) -> torch.Tensor:
        idx = self.sampler.next(self.cfg.batch)[self._slice(self.cfg.batch)].to(self.device)
        real = self.images[idx]
        if self.classical is not None:
            real = self.classical(real)
        return real

    @property
    def lr_scale(self) -> float:
        """The learning-rate factor of the next step (:func:`lr_multiplier` of the budget done)."""
        return lr_multiplier(self.images_seen / self.total_images, self.cfg.lr_rampdown)

    # -- one iteration
    def train_step(self) -> None:
        cfg, G, D = self.cfg, self.G, self.D
        i = self.step
        scale = self.lr_scale
        for opt, base in self.base_lr.items():
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * scale
        B = cfg.batch
        # Gmain
        G.requires_grad_(True)
        D.requires_grad_(False)
        z, z2, cutoff, noise = self._latents(B)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            fake, ws = self._run_G(G, z, z2, cutoff, noise, return_ws=True)
        # running mean of w for truncation, before the EMA copies the buffers into G_ema
        G.mapping.update_w_avg(self.dist.all_reduce_mean(ws[:, 0].detach().float().mean(dim=0)))
        loss_G = g_nonsaturating_loss(self._D(fake.float()))
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.dist.average_gradients(G)
        self.opt_G.step()
        ema_update(self.G_ema, G, cfg.ema_decay)
        self.last["loss_G"] = loss_G.detach()
        # Greg: path length on a shrunken batch (fp32)
        if cfg.pl_weight > 0 and i % cfg.g_reg_every == 0:
            nb = max(B // cfg.pl_batch_shrink, self.dist.world)
            nb -= nb % self.dist.world
            z, z2, cutoff, noise = self._latents(nb)
            fake, ws = self._run_G(G, z, z2, cutoff, noise, return_ws=True)
            _, c, h, w = fake.shape
            pl_noise = self._randn(nb, c, h, w) / math.sqrt(h * w)
            lengths = path_lengths(fake, ws, pl_noise=pl_noise)
            global_mean = self.dist.all_reduce_mean(lengths.detach().mean())
            penalty, new_mean = path_length_penalty(lengths, self.pl_mean, cfg.pl_decay, global_mean)
            self.opt_G.zero_grad(set_to_none=True)
            (penalty * (cfg.pl_weight * cfg.g_reg_every)).backward()
            self.dist.average_gradients(G)
            self.opt_G.step()
            self.pl_mean = new_mean
            ema_update(self.G_ema, G, cfg.ema_decay)
            self.last["pl"] = penalty.detach()
        # Dmain
        G.requires_grad_(False)
        D.requires_grad_(True)
        z, z2, cutoff, noise = self._latents(B)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            fake = self._run_G(G, z, z2, cutoff, noise)
        real = self._real_batch()
        fake_logits = self._D(fake.float())
        real_logits = self._D(real)
        loss_real, loss_fake = d_logistic_loss(real_logits, fake_logits)
        loss_D = loss_real + loss_fake
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.dist.average_gradients(D)
        self.opt_D.step()
        if self.ada is not None:
            self.ada.accumulate(real_logits)
        self.last["loss_D"] = loss_D.detach()
        self.last["D_real"] = real_logits.detach().mean()
        self.last["D_fake"] = fake_logits.detach().mean()
        # Dreg: R1 on the un-augmented reals, gradient taken through the augmentation (fp32)
        if cfg.r1_gamma > 0 and i % cfg.d_reg_every == 0:
            real_ = real.detach().requires_grad_(True)
            autocast, self.autocast = self.autocast, False
            logits = self._D(real_)
            self.autocast = autocast
            r1 = r1_penalty(logits, real_, cfg.r1_gamma)
            self.opt_D.zero_grad(set_to_none=True)
            (r1 * cfg.d_reg_every).backward()
            self.dist.average_gradients(D)
            self.opt_D.step()
            self.last["r1"] = r1.detach()
        self.step += 1
        self.images_seen += B
        # ADA: adjust p from sign(D(real)) every ada_interval steps (statistics all-reduced)
        if self.ada is not None and self.step % cfg.ada_interval == 0:
            self.dist.all_reduce_sum_(self.ada.stat_sum)
            self.dist.all_reduce_sum_(self.ada.stat_count)
            self.ada.update()

    # -- state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as plain data (``torch.load(weights_only=True)`` loads it)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "ada": self.ada.state_dict() if self.ada is not None else None,
            "pl_mean": self.pl_mean.detach().cpu(),
            "step": self.step,
            "images_seen": self.images_seen,
            "seconds": self.seconds,
            "best": dict(self.best) if self.best else None,
            "sampler": self.sampler.state_dict(),
            "generator": self.gen.get_state(),
            "rng": get_rng_state(self.device),
            "config": self.cfg.to_dict(),
            "img_channels": self.channels,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if self.ada is not None and state.get("ada") is not None:
            self.ada.load_state_dict(state["ada"])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.step = int(state["step"])
        self.images_seen = int(state["images_seen"])
        self.seconds = float(state.get("seconds", 0.0))
        self.best = state.get("best")
        self.sampler.load_state_dict(state["sampler"])
        self.gen.set_state(state["generator"])
        rng = state["rng"]
        if self.dist.active:
            # per-process augmentation streams: rank r continues from its own seed stream
            torch.manual_seed(self.seed + self.dist.rank + 1000003 * self.step)
        else:
            set_rng_state(rng, self.device)

    # -- evaluation
    @torch.no_grad()
    def generate_eval(self, n: int, batch: int, seed: int) -> torch.Tensor:
        """``n`` images of G_ema (``[n, C, R, R]``, CPU float32) from fixed seeds; training RNG untouched."""
        gen = torch.Generator().manual_seed(seed)
        out = []
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, n, batch):
                m = min(batch, n - start)
                z = torch.randn(m, self.cfg.z_dim, generator=gen).to(self.device)
                out.append(self.G_ema(z, noise_mode="random").float().cpu())
        return torch.cat(out)


# --------------------------------------------------------------------------- files of a run
def _net_file(kind: str, module: torch.nn.Module, trainer: Trainer, extra: dict | None = None) -> dict[str, Any]:
    return {"format": WEIGHTS_FORMAT, "kind": kind, "state_dict": module.state_dict(),
            "config": trainer.cfg.to_dict(), "img_channels": trainer.channels, "step": trainer.step,
            "images_seen": trainer.images_seen, **(extra or {})}


def _save_best(run_dir: Path, trainer: Trainer, info: dict[str, Any]) -> None:
    # best_info.json is the group's manifest, renamed into place last: readers trust a best_*.pt
    # only when its step is the manifest's (generate.StyleGAN2Model.load), so a kill between
    # the files never mixes a generator of one evaluation with the record of another
    ck = run_dir / CHECKPOINT_DIR
    save_checkpoint(ck / STYLEGAN2_BEST_FILES["G_ema"], _net_file("G_ema", trainer.G_ema, trainer))
    save_checkpoint(ck / STYLEGAN2_BEST_FILES["G"], _net_file("G", trainer.G, trainer))
    save_checkpoint(ck / STYLEGAN2_BEST_FILES["D"], _net_file("D", trainer.D, trainer))
    atomic_write_json(ck / STYLEGAN2_BEST_INFO, info)


def _save_last(run_dir: Path, trainer: Trainer) -> None:
    # the log sizes at this checkpoint: a resume cuts log.txt / metrics.jsonl back to them
    save_checkpoint(run_dir / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT,
                    {**trainer.state_dict(), "log_offsets": log_offsets(run_dir)})


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and after // every > before // every


# --------------------------------------------------------------------------- the entry point
def train(
    folder=None,
    *,
    results: str | os.PathLike = "results",
    resume: str | os.PathLike | None = None,
    device: str = "cpu",
    quiet: bool = False,
    metric_fn: MetricFn | None = None,
    metric_name: str | None = None,
    metric_factory: MetricFactory | None = None,
    on_finish: Callable[[Path, RunLogger], None] | None = None,
    preset: str | None = None,
    dry_run: bool = False,
    images: torch.Tensor | None = None,
    augment=None,
    max_steps: int | None = None,
    **options: Any,
) -> Path:
    """Train StyleGAN2 on a folder of images; returns the run folder.

    Parameters
    ----------
    folder : folder of PNG / TIFF / JPEG images (8/16-bit, float TIFF; gray or RGB; any size,
        fitted to ``resolution`` by ``fit``). Optional with ``resume`` (the run's folder is used).
    results : where run folders are created.
    resume : a run folder to continue from its ``checkpoints/last.pt`` (exactly); only the run-time
        settings :attr:`StyleGAN2Config.RUNTIME_FIELDS` may be given, and they apply from there on.
    device : 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. Under ``torchrun`` each process takes
        ``cuda:LOCAL_RANK`` (NCCL) or the CPU (gloo).
    metric_fn : selection metric ``fn(fake [N, C, R, R] in [-1, 1]) -> float`` (lower is better);
        ``metric_name`` names it in logs and ``best_info.json``.
    metric_factory : or a function that builds ``(name, fn, why)`` from the real images once they
        are loaded, ``factory(images, kind, feature_batch=, device=, dtype=)``; the API passes
        :func:`fewgan.metrics.selection.selection_metric` (FID with Inception weights, else SWD).
        With ``eval_every > 0`` one of the two is required: the trainer builds no metric itself.
    on_finish : called as ``on_finish(run_dir, logger)`` on rank 0 when the budget is done (the API
        writes the report there).
    preset : 'default' or 'seed' (the seed document exactly, its classical augmentation included).
    dry_run : print the resolved config and return without training (nothing is written).
    images : ``[N, C, R, R]`` tensor in [-1, 1] instead of ``folder`` (tests, notebooks).
    augment : ``(diffaugment, ada, classical)`` to use instead of the config's (tests).
    max_steps : stop after this many iterations in this call (the budget is unchanged, so a
        later ``resume`` continues; used by tests to simulate an interruption).
    **options : any :class:`StyleGAN2Config` field (``seed`` included).
    """
    device = str(resolve_device(device))
    dist, device = dist_from_env(device)
    with dist.joined():  # leaves the process group this run joined, however it ends
        rank0 = dist.rank == 0
        # ---- config (fresh or resumed)
        state = None
        data_meta: dict[str, Any] = {}
        if resume is not None:
            run_dir = Path(resume)
            payload = read_run_config(run_dir, method=METHOD)
            ckpt = run_dir / CHECKPOINT_DIR / STYLEGAN2_LAST_CHECKPOINT
            if not ckpt.is_file():
                raise FewganError(f"{run_dir}: no checkpoint to resume from ({ckpt} missing); start a new run")
            stored = dict(payload["config"])
            if "seed" not in stored and "seed" in payload:  # run folders from before the seed was a config field
                stored["seed"] = int(payload["seed"])
            # the one resume rule (fewgan.config.Config.resume_with)
            cfg = StyleGAN2Config.from_stored(stored).resume_with(options, run=run_dir)
            data_meta = payload.get("data", {})
            if folder is None and images is None:
                folder = data_meta.get("root")
            state = load_checkpoint(ckpt, map_location="cpu")
        else:
            base = preset_overrides(preset or "default")
            base.update({k: v for k, v in options.items() if v is not None})
            cfg = StyleGAN2Config.from_dict(base)
            run_dir = None
        if dry_run:
            import json

            plan: dict[str, Any] = {"method": METHOD, "seed": cfg.seed, "config": cfg.to_dict()}
            if folder is not None or images is not None:
                plan["plan"] = dry_run_plan(cfg, folder, images)
            print(json.dumps(plan, indent=2))
            return Path(resume) if resume else Path(results)
        if metric_fn is None and metric_factory is None and cfg.eval_every > 0:
            raise FewganError("eval_every > 0 needs a selection metric: pass metric_fn or metric_factory "
                              "(fewgan.train_stylegan2 passes fewgan.metrics.selection.selection_metric), "
                              "or eval_every=0")
        # ---- data
        label_meta = folder_meta = None
        if images is None:
            if folder is None:
                raise FewganError("no image folder given: fewgan stylegan2 train FOLDER")
            from fewgan.data.folder import load_folder

            channels = "auto" if cfg.channels == "auto" else int(cfg.channels)
            images, meta = load_folder(folder, resolution=cfg.resolution, channels=channels, fit=cfg.fit,
                                       recursive=cfg.recursive)
            folder_meta = meta
            if cfg.labels != "none":
                labels, label_meta = folder_labels(cfg, meta.files, images)
                images = torch.cat([images, labels], dim=1)
            if not data_meta:
                data_meta = meta.to_dict()
                if label_meta is not None:
                    data_meta["labels"] = label_meta
        else:
            images = images.float()
            if not data_meta:
                # in-memory images of a labelled config carry their label channels last
                data_meta = {"root": None, "count": int(images.shape[0]), "resolution": cfg.resolution,
                             "image": {"format": "png", "dtype": "uint8", "bit_depth": 8, "channels": int(images.shape[1]) - cfg.label_channels,
                                       "source_channels": int(images.shape[1]) - cfg.label_channels, "data_range": [0.0, 255.0],
                                       "height": cfg.resolution, "width": cfg.resolution}}
        if images.shape[0] == 0:
            raise FewganError(f"{folder}: no images to train on")
        # ---- run folder (rank 0 creates it; the others learn its name)
        if run_dir is None:
            if rank0:
                run_dir = create_run_dir(results)
            if dist.active:
                import torch.distributed as tdist

                box = [str(run_dir) if rank0 else None]
                tdist.broadcast_object_list(box, src=0)
                run_dir = Path(box[0])
        logger = None
        try:
            if rank0 and label_meta is not None:
                write_training_labels(run_dir, folder_meta, images)
            trainer = Trainer(cfg, images, device=device, dist=dist, augment=augment)
            logger = RunLogger(run_dir, quiet=quiet, enabled=rank0)
            return _train_loop(trainer, run_dir, logger, cfg, data_meta, state, cfg.seed, device, metric_fn, metric_name,
                               metric_factory, on_finish, resume is not None, max_steps)
        except Exception:
            if logger is not None:
                logger.close()
            if rank0 and resume is None:
                discard_failed_start(run_dir)  # no checkpoint yet: nothing to resume, no folder left behind
            raise
        finally:
            if logger is not None:
                logger.close()


def folder_labels(cfg: StyleGAN2Config, files: list[str], images: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The label channels ``[N, 2, R, R]`` for a folder's images and what the run config records of them.

    ``cfg.labels``: 'beside' or a folder (:func:`fewgan.data.folder.load_folder_labels`), or 'auto':
    fewgan's particle analysis (:func:`fewgan.metrics.particles.measure_set`, default
    :class:`~fewgan.metrics.particles.ParticleConfig`, Otsu threshold of the pooled set) of the
    training images ``[N, C, R, R]`` at the training resolution; its parameters and the threshold
    are recorded.
    """
    from fewgan.data.labels import encode_instances

    if cfg.labels != "auto":
        from fewgan.data.folder import load_folder_labels

        source = "beside" if cfg.labels == "beside" else str(Path(cfg.labels).resolve())
        return load_folder_labels(files, cfg.labels, cfg.resolution, cfg.fit), {"source": source}
    from fewgan.metrics.particles import ParticleConfig, measure_set

    particles = ParticleConfig()
    found = measure_set(images, particles, keep_labels=True)
    empty = [Path(f).name for f, lab in zip(files, found["labels"]) if lab.max() == 0]
    if empty:
        raise FewganError(f"--labels auto: the particle analysis found no particle in {empty[0]} "
                          f"({len(empty)} of {len(files)} images); label the images (--labels beside or DIR)")
    labels = torch.stack([torch.from_numpy(encode_instances(lab)) for lab in found["labels"]])
    threshold = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in found["threshold"].items()}
    return labels, {"source": "auto", "particles": particles.to_dict(), "threshold": threshold,
                    "counts": [int(c) for c in found["count"]]}


def write_training_labels(run_dir: Path, meta, images: torch.Tensor) -> Path:
    """The first :data:`~fewgan.run.STYLEGAN2_TRAINING_LABELS_COUNT` training images of a labelled run
    as trained (at the training resolution, in the data's dtype and range) with their instances,
    ``NAME.tif`` + ``NAME_masks.tif`` (the Cellpose convention) in
    :data:`~fewgan.run.STYLEGAN2_TRAINING_LABELS_DIR`: what the report overlays, so that the user can
    check the labels the model learnt from, ``--labels auto`` (particle analysis) above all.

    ``images``: ``[N, C + 2, R, R]``, the label channels last; their instances come back by
    :func:`fewgan.data.labels.decode_instances`, which returns encoded instances unchanged.
    """
    import numpy as np

    from fewgan.data.images import write_array, write_image
    from fewgan.data.labels import LABEL_CHANNELS, decode_instances

    folder = run_dir / STYLEGAN2_TRAINING_LABELS_DIR
    folder.mkdir(exist_ok=True)
    c = int(images.shape[1]) - LABEL_CHANNELS
    for f, x in zip(meta.files[:STYLEGAN2_TRAINING_LABELS_COUNT], images):
        stem = Path(f).stem
        write_image(folder / f"{stem}.tif", x[:c], meta.image, format="tiff")
        instances = decode_instances(x[c:].numpy()).astype(np.uint16)
        write_array(folder / f"{stem}_masks.tif", instances[..., None], "tiff")
    return folder


#: time of a labelled step with the image-only critic over one without it (1.75 and 1.83 measured at 32 px,
#: one thread, AMD EPYC; bench/stylegan2_label_cost.py, interleaved; bench/README.md)
IMAGE_CRITIC_COST = 1.8


def dry_run_plan(cfg: StyleGAN2Config, folder, images) -> dict[str, Any]:
    """What ``--dry-run`` promises about a run: image count, budget, steps, a rough CPU time."""
    if images is not None:
        n = int(images.shape[0])
    else:
        from fewgan.data.folder import list_images

        try:
            n = len(list_images(folder, recursive=cfg.recursive))
        except FewganError as exc:  # the dry run reports it; a real start stops with it
            return {"images": 0, "problem": str(exc)}
    total = int(round(cfg.kimg * 1000)) if cfg.kimg is not None else cfg.epochs * n
    # bench/README.md: about 130 CPU-seconds per 1000 images at 64 px on one thread of a 2-core EPYC;
    # the cost grows with the image area
    seconds = total / 1000 * 130 * (cfg.resolution / 64) ** 2
    if cfg.label_channels and cfg.image_critic:
        seconds *= IMAGE_CRITIC_COST  # a second critic's passes (bench/stylegan2_label_cost.py)
    took = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(seconds / 60, 1):.0f} min"
    return {"images": n, "total_images": total, "epochs": round(total / max(n, 1), 2),
            "steps": max(1, math.ceil(total / cfg.batch)), "batch": cfg.batch, "cpu_seconds": round(seconds),
            "estimate": f"about {took} on one CPU thread (measured 130 CPU-s per 1000 images at 64 px, "
                        "scaled by area; a GPU is much faster); set the length with --kimg or --epochs"}


def _train_loop(trainer: Trainer, run_dir: Path, logger: RunLogger, cfg: StyleGAN2Config, data_meta: dict,
                state: dict | None, seed: int, device: str, metric_fn, metric_name, metric_factory,
                on_finish, resumed: bool, max_steps: int | None) -> Path:
    rank0 = trainer.dist.rank == 0
    if rank0 and not resumed:
        write_run_config(run_dir, METHOD, cfg.to_dict(), data=data_meta, device=device,
                         extra={"seed": seed, "world_size": trainer.dist.world})
    # ---- selection metric
    why = "given by the caller"
    if metric_fn is None and cfg.eval_every > 0 and rank0:
        metric_name, metric_fn, why = metric_factory(trainer.images[:, :trainer.image_channels].cpu(), cfg.metric,
                                                     feature_batch=cfg.feature_batch, device=device,
                                                     dtype=data_meta.get("image", {}).get("dtype"))
    metric_name = metric_name or ("metric" if metric_fn is not None else None)
    # ---- start-up lines
    G_groups = trainer.G.parameter_groups()
    logger.info(f"fewgan StyleGAN2: run folder {run_dir}, device {device}")
    logger.info(f"data: {trainer.n_images} images, {trainer.image_channels} channel(s), {cfg.resolution}x{cfg.resolution}, "
                f"{data_meta.get('image', {}).get('dtype', '?')} from {data_meta.get('root')}")
    logger.info(f"G parameters: {count_parameters(trainer.G):,} (mapping {G_groups['mapping']:,}, const "
                f"{G_groups['const']:,}, toRGB {G_groups['torgb']:,}, synthesis {G_groups['synthesis']:,}); "
                f"D parameters: {count_parameters(trainer.D):,}")
    if cfg.label_channels:
        extra = label_parameters(trainer)
        logger.info(f"labels: {data_meta.get('labels', {}).get('source', 'in-memory channels')}, "
                    f"{cfg.label_channels} label channels (foreground, distance) beside the image, "
                    f"{cfg.label_head} label head: +{extra['G']:,} G parameters (toRGB), +{extra['D']:,} D parameters "
                    f"(fromRGB {extra['D_fromrgb']:,}"
                    + (f", image-only critic {extra['D_image_critic']:,})" if cfg.image_critic else "; no image-only critic)"))
    logger.info(f"DiffAugment: {'on (policy ' + cfg.diffaugment + ')' if trainer.diffaug is not None else 'off'}")
    logger.info(f"EMA: on (decay {cfg.ema_decay}, updated after every G step and after the path-length step)")
    logger.info(f"ADA: {'on (target ' + str(cfg.ada_target) + ')' if trainer.ada is not None else 'off'}")
    logger.info(f"classical augmentation of the reals: {cfg.classical}")
    for note in data_meta.get("notes", []) if not resumed else []:
        logger.warning(note)  # e.g. images of other sizes cropped or resized to the resolution
    if cfg.amp and not trainer.autocast:
        logger.warning("--amp is for GPUs (bfloat16 autocast); ignored on the CPU, training runs in float32")
    leak = trainer.classical.leak_warning() if trainer.classical is not None else None
    if leak:
        logger.warning(leak)
    if metric_fn is not None:
        logger.info(f"selection metric: {metric_name} ({why}), every {cfg.eval_every} epochs on "
                    f"{cfg.eval_images} EMA images")
    else:
        logger.info("selection metric: none (--eval-every 0); the last checkpoint is the result")
    logger.info(f"budget: {trainer.total_images:,} images = {trainer.total_steps:,} steps of batch {cfg.batch}"
                f"{' over ' + str(trainer.dist.world) + ' processes' if trainer.dist.active else ''}, "
                f"{trainer.total_images / trainer.n_images:.1f} epochs")
    if cfg.lr_rampdown > 0:
        logger.info(f"learning rates: {cfg.lr_g:g} (G), {cfg.lr_d:g} (D), falling to 0 along a half cosine over the "
                    f"last {cfg.lr_rampdown:.0%} of the budget, from {trainer.total_images * (1 - cfg.lr_rampdown) / 1000:.1f}"
                    " kimg (extending the run re-spreads the ramp over the new budget)")
    if state is not None:
        trainer.load_state_dict(state)
        done_step, done_kimg = trainer.step, trainer.images_seen / 1000
        if rank0 and "log_offsets" in state:
            # in place: this process's logger already has the files open (and wrote the start-up
            # lines above, which the cut removes: they are in the log once, from the first start)
            remove_stale_temps(run_dir)
            truncate_logs(run_dir, state["log_offsets"])
        elif rank0:  # a checkpoint from before log offsets were stored
            truncate_metrics(run_dir, lambda r: (r.get("step", -1) <= done_step if "step" in r
                                                 else r.get("kimg", 0) <= done_kimg + 1e-9))
        logger.info(f"resumed from step {trainer.step} ({trainer.images_seen:,} images, epoch {trainer.epoch:.2f})")
    # ---- loop
    t0 = time.perf_counter() - trainer.seconds
    progress = logger.progress(trainer.total_images, desc="stylegan2", unit="img", initial=trainer.images_seen)
    steps_here = 0
    fixed_z_seed = seed + 7
    try:
        while trainer.step < trainer.total_steps:
            if max_steps is not None and steps_here >= max_steps:
                break
            epoch_before = trainer.images_seen // trainer.n_images
            images_before = trainer.images_seen
            trainer.train_step()
            error = nonfinite_loss_error(trainer.last, f"step {trainer.step}", run_dir if rank0 else None, METHOD)
            if error is not None:
                logger.info(f"error: {error}", console=False)
                raise error
            steps_here += 1
            trainer.seconds = time.perf_counter() - t0
            epoch_after = trainer.images_seen // trainer.n_images
            final = trainer.step >= trainer.total_steps
            progress.update(trainer.images_seen - images_before, epoch=f"{trainer.epoch:.2f}",
                            kimg=f"{trainer.images_seen / 1000:.2f}")
            if trainer.step % cfg.log_every == 0 or final or trainer.step == 1:
                _log_step(trainer, logger)
            if metric_fn is not None and (_crossed(epoch_before, epoch_after, cfg.eval_every) or final):
                if rank0:
                    _evaluate(trainer, run_dir, logger, metric_fn, metric_name, seed)
            if cfg.sample_every > 0 and (_crossed(epoch_before, epoch_after, cfg.sample_every) or final) and rank0:
                _sample_grid(trainer, run_dir, logger, fixed_z_seed)
            if (_crossed(epoch_before, epoch_after, cfg.checkpoint_every) or final
                    or (cfg.checkpoint_every_steps > 0 and trainer.step % cfg.checkpoint_every_steps == 0)):
                if rank0:
                    _save_last(run_dir, trainer)
    finally:
        progress.close()
    if trainer.step >= trainer.total_steps:
        best = trainer.best
        logger.info(f"done: {trainer.step} steps, {trainer.images_seen:,} images, {trainer.seconds:.0f} s"
                    + (f"; best {best['metric']} {best['value']:.4g} at epoch {best['epoch']:.1f}" if best else ""))
        if rank0 and on_finish is not None:
            on_finish(run_dir, logger)
    return run_dir


def label_parameters(trainer: Trainer) -> dict[str, int]:
    """Parameters the labels add, by place: ``G_torgb`` (each toRGB layer's 1x1 weight and bias gain
    ``L x (in + 1)``), ``D_fromrgb`` (the joint critic's fromRGB 1x1 weight gains ``L x out``; its bias
    is per output) and ``D_image_critic`` (the whole image-only critic, 0 without one); ``G`` and ``D``
    are the sums per network. G's tanh label head has no parameters."""
    L = trainer.cfg.label_channels
    out = {"G_torgb": sum(L * (b.torgb.weight.shape[1] + 1) for b in trainer.G.synthesis.blocks),
           "D_fromrgb": sum(L * blk.fromrgb.weight.shape[0] for blk in trainer.D.blocks if blk.fromrgb is not None),
           "D_image_critic": count_parameters(trainer.D.image) if isinstance(trainer.D, LabelledCritic) else 0}
    return {**out, "G": out["G_torgb"], "D": out["D_fromrgb"] + out["D_image_critic"]}


def _log_step(trainer: Trainer, logger: RunLogger) -> None:
    # under DDP the logged losses are means over the processes (every rank takes part)
    last = {k: float(trainer.dist.all_reduce_mean(v)) for k, v in sorted(trainer.last.items())}
    record = {
        "kimg": trainer.images_seen / 1000, "epoch": trainer.epoch, "step": trainer.step,
        "loss_G": last.get("loss_G"), "loss_D": last.get("loss_D"), "r1": last.get("r1"), "pl": last.get("pl"),
        "ada_p": float(trainer.ada.p) if trainer.ada is not None else 0.0,
        "lr": trainer.cfg.lr_g * trainer.lr_scale, "seconds": trainer.seconds,
        "D_real": last.get("D_real"), "D_fake": last.get("D_fake"), "pl_mean": float(trainer.pl_mean),
    }
    logger.metrics(record)
    logger.scalars(trainer.step, {k: v for k, v in record.items() if isinstance(v, float)}, prefix="train/")

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    logger.info(f"step {trainer.step} kimg {record['kimg']:.2f} epoch {record['epoch']:.2f} loss_G {fmt(record['loss_G'])} "
                f"loss_D {fmt(record['loss_D'])} r1 {fmt(record['r1'])} pl {fmt(record['pl'])} "
                f"ada_p {record['ada_p']:.3f} {trainer.seconds:.0f}s")


def _evaluate(trainer: Trainer, run_dir: Path, logger: RunLogger, metric_fn, metric_name, seed: int) -> None:
    cfg = trainer.cfg
    fake = trainer.generate_eval(cfg.eval_images, cfg.eval_batch, seed=seed + 1)
    with torch.random.fork_rng(devices=[]):
        value = float(metric_fn(fake[:, :trainer.image_channels]))
    is_best = math.isfinite(value) and (trainer.best is None or value < trainer.best["value"])
    record = {"event": "eval", "epoch": trainer.epoch, "kimg": trainer.images_seen / 1000, "step": trainer.step,
              "metric": metric_name, "value": value, "best": is_best}
    logger.metrics(record)
    logger.scalars(trainer.step, {f"eval/{metric_name}": value})
    if is_best:
        trainer.best = {"metric": metric_name, "value": value, "epoch": trainer.epoch, "step": trainer.step,
                        "kimg": trainer.images_seen / 1000}
        info = {"epoch": trainer.epoch, "step": trainer.step, "kimg": trainer.images_seen / 1000,
                "metric": metric_name, "value": value, metric_name: value, "ema": True,
                "diffaugment": trainer.diffaug is not None,
                "diffaugment_policy": cfg.diffaugment if trainer.diffaug is not None else None,
                "ada": trainer.ada is not None, "classical": cfg.classical, "eval_images": cfg.eval_images}
        _save_best(run_dir, trainer, info)
    logger.info(f"eval epoch {trainer.epoch:.2f}: {metric_name} {value:.4g}" + (" (best so far, saved)" if is_best else
                f" (best {trainer.best['value']:.4g} at epoch {trainer.best['epoch']:.2f})" if trainer.best else ""))


def _sample_grid(trainer: Trainer, run_dir: Path, logger: RunLogger, seed: int) -> None:
    from fewgan.data.images import save_grid, make_grid

    fake = trainer.generate_eval(16, 16, seed=seed)[:, :trainer.image_channels]
    save_grid(run_dir / SAMPLES_DIR / stylegan2_sample_grid(trainer.step), fake, nrow=4)
    logger.image("samples", make_grid(fake.clamp(-1, 1), nrow=4, pad_value=1.0), trainer.step)
