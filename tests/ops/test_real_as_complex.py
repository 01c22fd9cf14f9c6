"""The complex-number API on real tensors (conj, real, angle ...), the dense tensor's side of
the sparse API (to_dense, sparse_dim, sparse_mask) and dim_order, against torch."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import LayoutError

VALUES = [[1.5, -2.0, 0.0], [-0.0, float("nan"), 4.0]]


@pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])
def test_conjugation_gives_a_real_tensor_back(lib):
    x = lib.tensor(VALUES, requires_grad=True)
    for method in ("conj", "conj_physical", "resolve_conj", "resolve_neg"):
        assert getattr(x, method)() is x or lib is torch and method == "conj_physical"
    assert not x.is_conj() and not x.is_neg()
    assert x.real is x and lib.real(x) is x and lib.conj(x) is x
    with pytest.raises((TypeError, RuntimeError), match="non-complex"):
        x.imag


def test_angle_and_its_zero_gradient_as_torchs():
    ours = gradient.tensor(VALUES, dtype=gradient.float64, requires_grad=True)
    theirs = torch.tensor(VALUES, dtype=torch.float64, requires_grad=True)
    a, b = gradient.angle(ours), torch.angle(theirs)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    assert gradient.angle(gradient.tensor([-3, 2])).dtype is gradient.float32
    assert gradient.autograd.gradcheck(gradient.angle, (gradient.tensor([-1.0, 2.0], dtype=gradient.float64, requires_grad=True),))


def test_a_dense_tensor_answers_the_sparse_api():
    values = np.arange(12.0).reshape(3, 4)
    mask_indices = [[0, 2, 2], [1, 0, 3]]
    for lib in (gradient, torch):
        x = lib.tensor(values)
        assert x.to_dense() is x and x.sparse_dim() == 0 and x.dense_dim() == 2
    ours = gradient.tensor(values).sparse_mask(
        gradient.sparse_coo_tensor(mask_indices, [9.0, 9.0, 9.0], (3, 4)))
    theirs = torch.tensor(values).sparse_mask(
        torch.sparse_coo_tensor(mask_indices, [9.0, 9.0, 9.0], (3, 4)).coalesce())
    np.testing.assert_array_equal(ours.to_dense().numpy(), theirs.to_dense().numpy())
    # a mask with dense dimensions: whole rows
    rows = gradient.tensor(values).sparse_mask(gradient.tensor(values).to_sparse(1))
    assert rows.sparse_dim() == 1 and rows.values().shape == (3, 4)
    with pytest.raises(LayoutError, match="sparse COO"):
        gradient.ones(2).sparse_mask(gradient.ones(2))


def test_dim_order_as_torch():
    for make in (lambda m: m.zeros(2, 3, 4, 5), lambda m: m.zeros(2, 3).t(),
                 lambda m: m.zeros(2, 3, 4, 5).to(memory_format=m.channels_last),
                 lambda m: m.zeros(3, 4).unsqueeze(0).permute(2, 0, 1)):
        assert make(gradient).dim_order() == make(torch).dim_order()
    x = gradient.ones(3)
    assert x.const_data_ptr() == x.data_ptr()
