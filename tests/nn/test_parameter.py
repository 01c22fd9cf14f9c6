"""Parameter and Buffer: leaf tensors that share storage, plain tensors out of ops, PyTorch's repr."""

import copy

import numpy as np
import pytest
import torch

import gradient
from gradient.nn import Buffer, Parameter


def test_parameter_is_a_leaf_tensor_that_requires_grad_and_shares_storage():
    data = gradient.tensor([1.0, 2.0, 3.0])
    p = Parameter(data)
    assert isinstance(p, gradient.Tensor) and type(p) is Parameter
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert not data.requires_grad  # the wrapped tensor is left alone
    with gradient.no_grad():
        p.mul_(2)
    np.testing.assert_array_equal(data.numpy(), [2.0, 4.0, 6.0])  # same storage, as in PyTorch


def test_parameter_of_a_non_leaf_is_detached_from_its_graph():
    x = gradient.tensor([1.0, 2.0], requires_grad=True)
    p = Parameter(x * 3)
    assert p.is_leaf and p.requires_grad
    (p * p).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [6.0, 12.0])
    assert x.grad is None


def test_ops_on_parameters_return_plain_tensors():
    p = Parameter(gradient.randn(2, 3))
    for out in (p * 2, p + p, p.sum(), p.T, p[0], p.reshape(-1), p.detach(), p.clone(), p.exp(),
                p @ p.T, -p):
        assert type(out) is gradient.Tensor, out


def test_gradient_accumulates_into_the_parameter():
    p = Parameter(gradient.tensor([1.0, -2.0]))
    (p * p).sum().backward()
    (p * 3).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [2.0 + 3.0, -4.0 + 3.0])
    assert type(p.grad) is gradient.Tensor


def test_requires_grad_false_and_integer_parameters_like_torch():
    p = Parameter(gradient.tensor([1.0]), requires_grad=False)
    assert not p.requires_grad
    q = Parameter(gradient.tensor([1, 2]), requires_grad=False)
    assert q.dtype is gradient.int64 and not q.requires_grad
    with pytest.raises(RuntimeError):  # torch raises RuntimeError too
        Parameter(gradient.tensor([1, 2]))
    with pytest.raises(RuntimeError):
        torch.nn.Parameter(torch.tensor([1, 2]))


def test_parameter_of_none_is_empty_like_torch():
    p = Parameter()
    assert tuple(p.shape) == tuple(torch.nn.Parameter().shape) == (0,)
    assert p.dtype is gradient.float32 and p.requires_grad


def test_parameter_from_numpy_copies():
    arr = np.ones(3, dtype=np.float32)
    p = Parameter(arr)
    with gradient.no_grad():
        p.zero_()
    assert arr[0] == 1.0 and p.dtype is gradient.float32


def test_repr_matches_torch():
    p = Parameter(gradient.tensor([1.0, 2.0]))
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")


def test_parameters_can_carry_attributes():
    p = Parameter(gradient.zeros(2))
    p._no_weight_decay = True
    assert p._no_weight_decay


def test_deepcopy_copies_data_and_requires_grad_but_not_grad():
    p = Parameter(gradient.tensor([1.0, 2.0]))
    p.sum().backward()
    q = copy.deepcopy(p)
    assert type(q) is Parameter and q is not p and q.requires_grad and q.grad is None
    with gradient.no_grad():
        q.add_(1)
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])
    tp = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    tp.sum().backward()
    assert copy.deepcopy(tp).grad is None  # the behaviour we copy


def test_hash_and_identity_are_by_object():
    a, b = Parameter(gradient.zeros(2)), Parameter(gradient.zeros(2))
    assert len({a, b}) == 2 and a in {a}


def test_buffer_shares_data_and_records_persistence():
    data = gradient.zeros(3)
    b = Buffer(data, persistent=False)
    assert isinstance(b, gradient.Tensor) and isinstance(b, Buffer)
    assert b.persistent is False and not b.requires_grad
    b.fill_(5.0)
    assert data.tolist() == [5.0, 5.0, 5.0]
    assert Buffer(gradient.zeros(1)).persistent is True
    assert type(b + 1) is gradient.Tensor
    assert tuple(Buffer().shape) == (0,)
