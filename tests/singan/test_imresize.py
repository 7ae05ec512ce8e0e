"""MATLAB-style bicubic resize: reference values, identities, sizes."""

from __future__ import annotations

import pytest
import torch

from fewgan.ops.imresize import cubic, imresize, resize_matrix, scaled_size


def test_matlab_reference_values():
    # MATLAB: imresize(reshape(0:15, 4, 4)', [3 3], 'bicubic') (antialiased)
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    y = imresize(x, size=(3, 3))[0, 0]
    expected = torch.tensor([[0.7506, 2.1004, 3.4503], [6.1501, 7.5000, 8.8499], [11.5497, 12.8996, 14.2494]],
                            dtype=torch.float64)
    assert torch.allclose(y, expected, atol=1e-4)


def test_keys_kernel():
    assert cubic(0.0) == 1.0 and cubic(1.0) == 0.0 and cubic(2.0) == 0.0
    assert cubic(0.5) == pytest.approx(0.5625) and cubic(1.5) == pytest.approx(-0.0625)


@pytest.mark.parametrize("n_in,n_out", [(7, 3), (13, 17), (200, 155), (16, 21), (5, 20), (40, 10)])
def test_rows_sum_to_one_and_constants_survive(n_in, n_out):
    m = resize_matrix(n_in, n_out, dtype=torch.float64)
    assert m.shape == (n_out, n_in)
    assert torch.allclose(m.sum(1), torch.ones(n_out, dtype=torch.float64), atol=1e-12)
    x = torch.full((2, 3, n_in, n_in), 0.3, dtype=torch.float64)
    assert torch.allclose(imresize(x, size=(n_out, n_out)), torch.full((2, 3, n_out, n_out), 0.3, dtype=torch.float64))


def test_sizes_round_up_and_identity():
    x = torch.randn(1, 3, 250, 200)
    s = 0.1 ** (1 / 9)
    assert imresize(x, s).shape[-2:] == (scaled_size(250, s), scaled_size(200, s)) == (194, 155)
    assert imresize(x, 1.0) is x
    assert imresize(x, (1.0, 2.0)).shape[-2:] == (250, 400)


def test_differentiable():
    x = torch.randn(1, 1, 9, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, size=(5, 15)), (x,))
