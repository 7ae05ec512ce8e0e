"""Losses against closed forms and a direct autograd computation."""

import math

import torch
import torch.nn.functional as F

from fewgan.stylegan2.losses import (d_logistic_loss, g_nonsaturating_loss, path_length_penalty, path_lengths,
                                     r1_penalty)


def test_logistic_losses_closed_form():
    logits = torch.tensor([[0.0], [2.0]])
    assert math.isclose(g_nonsaturating_loss(logits).item(), (math.log(2) + math.log(1 + math.exp(-2))) / 2,
                        rel_tol=1e-6)
    real, fake = d_logistic_loss(torch.tensor([[1.0]]), torch.tensor([[-1.0]]))
    assert math.isclose(real.item(), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    assert math.isclose(fake.item(), math.log(1 + math.exp(-1)), rel_tol=1e-6)


def test_r1_of_a_linear_discriminator_is_gamma_half_norm_squared():
    torch.manual_seed(0)
    a = torch.randn(1, 2, 4, 4)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    logits = (x * a).sum(dim=[1, 2, 3]).unsqueeze(1)
    r1 = r1_penalty(logits, x, gamma=5.0)
    assert math.isclose(r1.item(), 2.5 * a.square().sum().item(), rel_tol=1e-5)


def test_r1_matches_direct_autograd_through_an_augmentation():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.randn(4, 1, 6, 6, requires_grad=True)

    def D(img):
        aug = img.flip(3) * 1.3 + 0.1  # stands in for an augmentation the gradient goes through
        return F.softplus(conv(aug)).mean(dim=[1, 2, 3]).unsqueeze(1)

    r1 = r1_penalty(D(x), x, gamma=5.0)
    direct = 0.0
    for n in range(4):
        xn = x[n:n + 1].detach().requires_grad_(True)
        # D has no cross-sample terms, so per-sample gradients are those of the batch sum
        others = torch.cat([x[:n].detach(), xn, x[n + 1:].detach()])
        (g,) = torch.autograd.grad(D(others).sum(), xn)
        direct += g.square().sum().item()
    assert math.isclose(r1.item(), 2.5 * direct / 4, rel_tol=1e-5)
    r1.backward()  # differentiable (create_graph=True)
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_path_lengths_match_a_linear_generator_closed_form():
    torch.manual_seed(2)
    n, num_ws, w_dim, c, h = 3, 2, 5, 1, 4
    A = torch.randn(num_ws * w_dim, c * h * h)
    ws = torch.randn(n, num_ws, w_dim, requires_grad=True)
    fake = (ws.reshape(n, -1) @ A).reshape(n, c, h, h)
    y = torch.randn(n, c, h, h) / h
    lengths = path_lengths(fake, ws, pl_noise=y)
    # J^T y = A y for a linear map; squared norm summed over w_dim, averaged over num_ws
    jty = (y.reshape(n, -1) @ A.t()).reshape(n, num_ws, w_dim)
    expected = jty.square().sum(2).mean(1).sqrt()
    assert torch.allclose(lengths, expected, atol=1e-5)


def test_path_length_penalty_and_mean_update():
    lengths = torch.tensor([1.0, 3.0], requires_grad=True)
    pen, new_mean = path_length_penalty(lengths, torch.tensor(0.5), decay=0.01)
    a = 0.5 + 0.01 * (2.0 - 0.5)
    assert math.isclose(new_mean.item(), a, rel_tol=1e-6)
    assert math.isclose(pen.item(), ((1 - a) ** 2 + (3 - a) ** 2) / 2, rel_tol=1e-6)
    # an all-reduced batch mean replaces the local one
    _, m2 = path_length_penalty(lengths, torch.tensor(0.5), decay=0.01, batch_length_mean=torch.tensor(4.0))
    assert math.isclose(m2.item(), 0.5 + 0.01 * 3.5, rel_tol=1e-6)
    pen.backward()
    assert torch.allclose(lengths.grad, torch.tensor([1 - a, 3 - a]), atol=1e-6)


def test_r1_of_two_critics_side_by_side_is_the_mean_of_their_own_penalties():
    """Columns of ``[N, 2]`` logits are two critics (LabelledCritic): each is penalised on its own
    gradient, gamma/2 (|a|^2 + |b|^2) / 2, not on the gradient of their sum (|a + b|^2 has a cross term)."""
    torch.manual_seed(3)
    a, b = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    logits = torch.stack([(x * a).sum(dim=[1, 2, 3]), (x * b).sum(dim=[1, 2, 3])], dim=1)
    r1 = r1_penalty(logits, x, gamma=5.0)
    own = 2.5 * (a.square().sum() + b.square().sum()).item() / 2
    summed = 2.5 * (a + b).square().sum().item() / 2
    assert math.isclose(r1.item(), own, rel_tol=1e-5) and not math.isclose(own, summed, rel_tol=1e-2)
    # the adversarial losses average the critics the same way
    assert math.isclose(g_nonsaturating_loss(logits).item(),
                        (g_nonsaturating_loss(logits[:, :1]) + g_nonsaturating_loss(logits[:, 1:])).item() / 2,
                        rel_tol=1e-6)
