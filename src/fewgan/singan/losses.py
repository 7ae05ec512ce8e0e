"""SinGAN's losses as pure tensor functions: WGAN-GP critic, generator, noise amplitude.

WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of
Wasserstein GANs", NeurIPS 2017. SinGAN: Shaham, Dekel, Michaeli, ICCV 2019.
The gradient-penalty norm is taken over the channels at each pixel (the public
kligvasser/SinGAN code the seed ran), not over the whole image.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def critic_terms(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D_r, D_f) = (-mean D(real), mean D(fake))`` from the critic's score maps."""
    return -d_real.mean(), d_fake.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """``mean over pixels of (||grad_x D(x)||_2 over channels - 1)^2`` at ``x = alpha real + (1 - alpha) fake``.

    Parameters
    ----------
    critic : the discriminator.
    real, fake : ``[N, C, H, W]``; both are detached here.
    alpha : ``[N, 1, 1, 1]`` in [0, 1].

    Returns a scalar with a graph (``create_graph=True``) so that its gradient reaches the critic.
    """
    x = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores, x, grad_outputs=torch.ones_like(scores), create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def critic_loss(d_r: torch.Tensor, d_f: torch.Tensor, d_gp: torch.Tensor, gp_weight: float) -> torch.Tensor:
    """``D = D_r + D_f + gp_weight * D_gp``."""
    return d_r + d_f + gp_weight * d_gp


def reconstruction_loss(recon: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``G_recon``: mean squared error of the fixed-noise reconstruction (both in [-1, 1])."""
    return F.mse_loss(recon, real)


def generator_loss(g_recon: torch.Tensor, d_fake: torch.Tensor, recon_weight: float,
                   adv_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G, G_adv)`` with ``G_adv = -mean D(fake)`` and ``G = recon_weight * G_recon + adv_weight * G_adv``."""
    g_adv = -d_fake.mean()
    return recon_weight * g_recon + adv_weight * g_adv, g_adv


def noise_amplitude(upsampled_recon: torch.Tensor, real: torch.Tensor, noise_weight: float) -> float:
    """``amp(sk) = noise_weight * RMSE(upsampled reconstruction of s(k-1), real sk)``."""
    return float(noise_weight * torch.sqrt(F.mse_loss(upsampled_recon, real)))
