import pytest
import torch

from fewgan.run import torch_threads

TINY = dict(resolution=16, batch=4, z_dim=16, w_dim=32, cbase=256, cmax=32, classical="none",
            eval_every=0, sample_every=0, checkpoint_every=0, log_every=1000, g_reg_every=2, d_reg_every=2)


@pytest.fixture
def tiny():
    return dict(TINY)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 16, 16, generator=g) * 2 - 1


@pytest.fixture
def one_thread():
    with torch_threads(1):
        yield
