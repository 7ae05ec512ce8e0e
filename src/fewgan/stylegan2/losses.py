"""StyleGAN2 losses as pure tensor functions; the trainer decides when to call them.

- Non-saturating logistic loss: Goodfellow et al., "Generative Adversarial Nets", NeurIPS
  2014 (the "-log D" trick), in the softplus form of Karras et al., CVPR 2019.
- R1 penalty: Mescheder et al., "Which Training Methods for GANs do actually Converge?",
  ICML 2018: ``gamma / 2 * ||grad_x D(x)||^2`` on real images.
- Path-length regularisation: Karras et al., "Analyzing and Improving the Image Quality of
  StyleGAN", CVPR 2020, section 3.2: ``(||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I) / sqrt(H W)``
  and ``a`` an exponential moving average of the lengths (decay 0.01).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean softplus(-D(G(z)))`` = ``-mean log sigmoid(D(G(z)))``; logits ``[N, K]`` -> scalar (K critics
    side by side: the mean of their losses)."""
    return F.softplus(-fake_logits).mean()


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean softplus(-D(x)), mean softplus(D(G(z))))``: the real and fake halves of D's loss."""
    return F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma / 2 * mean_n ||d D(x_n) / d x_n||^2`` (differentiable: ``create_graph=True``).

    ``real_images`` ``[N, C, H, W]`` must require grad and be the *un-augmented* reals;
    ``real_logits`` ``[N, K]`` is D of the (possibly augmented) reals, so the gradient flows
    through the augmentation (Karras et al., NeurIPS 2020, ADA). ``K`` critics side by side
    (:class:`fewgan.stylegan2.nets.LabelledCritic`) are each penalised on their own gradient and the
    penalties averaged, as the logistic losses are: each critic gets the R1 it would get alone.
    """
    total = real_logits.new_zeros(())
    K = real_logits.shape[1]
    for k in range(K):
        (grad,) = torch.autograd.grad(real_logits[:, k].sum(), real_images, create_graph=True)
        total = total + grad.square().sum(dim=[1, 2, 3]).mean()
    return total * (gamma / 2 / K)


def path_lengths(fake: torch.Tensor, ws: torch.Tensor, generator: torch.Generator | None = None,
                 pl_noise: torch.Tensor | None = None) -> torch.Tensor:
    """``||J_w^T y||`` per sample: ``[N]``, differentiable.

    ``fake`` ``[N, C, H, W]`` = synthesis(ws), ``ws`` ``[N, num_ws, w_dim]`` requiring grad;
    ``y`` = ``pl_noise`` or ``randn_like(fake) / sqrt(H W)``. The squared norm is summed over
    ``w_dim`` and averaged over the ``num_ws`` copies before the square root, as in the paper.
    """
    if pl_noise is None:
        pl_noise = torch.randn(fake.shape, generator=generator, device=fake.device, dtype=fake.dtype)
        pl_noise = pl_noise / (fake.shape[2] * fake.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((fake * pl_noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, decay: float = 0.01,
                        batch_length_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean (lengths - a)^2, a)`` with ``a = pl_mean + decay (mean(lengths) - pl_mean)``.

    ``batch_length_mean`` overrides ``mean(lengths)`` (the trainer passes the mean over all
    processes under DDP, so that ``a`` stays equal on every rank). Returns the penalty (scalar,
    differentiable through ``lengths``) and the new ``a`` (detached, to store).
    """
    mean = lengths.detach().mean() if batch_length_mean is None else batch_length_mean.detach()
    new_mean = pl_mean.detach() + decay * (mean - pl_mean.detach())
    return (lengths - new_mean).square().mean(), new_mean
