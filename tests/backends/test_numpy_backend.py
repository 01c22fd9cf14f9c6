"""The NumPy backend implements the whole primitive contract, with the documented semantics."""

import inspect

import ml_dtypes
import numpy as np
import pytest

import gradient
from gradient.backends import Backend, cpu_backend, get_backend, register_backend
from gradient.backends.base import BINARY_OPS, REDUCE_OPS, UNARY_OPS
from gradient.errors import DeviceError


def _primitives():
    return [name for name, fn in inspect.getmembers(Backend, inspect.isfunction)
            if not name.startswith("_") and name != "synchronize"]


def test_the_contract_is_small():
    assert 30 <= len(_primitives()) <= 45


@pytest.mark.parametrize("name", _primitives())
def test_every_primitive_is_implemented(name):
    assert getattr(type(cpu_backend), name) is not getattr(Backend, name), f"{name} is not implemented"


@pytest.mark.parametrize("op", sorted(UNARY_OPS))
def test_every_unary_op_runs(op):
    x = np.array([0.25, 0.5], dtype=np.float32) if op not in ("bitwise_not", "logical_not") \
        else np.array([1, 0], dtype=np.int32)
    out = cpu_backend.unary(op, x)
    assert isinstance(out, np.ndarray) and out.shape == (2,)


@pytest.mark.parametrize("op", sorted(BINARY_OPS))
def test_every_binary_op_runs(op):
    kind = np.int32 if op.startswith("bitwise") else np.float32
    a, b = np.array([1, 2], dtype=kind), np.array([3, 1], dtype=kind)
    assert cpu_backend.binary(op, a, b).shape == (2,)


@pytest.mark.parametrize("op", sorted(REDUCE_OPS))
def test_every_reduction_runs_and_keeps_dims(op):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    axis = 1 if op.startswith("arg") else (1,)
    assert cpu_backend.reduce(op, x, axis, True).shape == (2, 1)


def test_zero_dim_results_are_arrays_not_numpy_scalars():
    x = np.array(2.0, dtype=np.float32)
    assert type(cpu_backend.unary("exp", x)) is np.ndarray
    assert type(cpu_backend.binary("add", x, x)) is np.ndarray
    assert type(cpu_backend.reduce("sum", np.ones(3, np.float32), None, False)) is np.ndarray


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_low_precision_computes_in_float32_and_rounds_back(dtype):
    a = np.array([1.0, 3.0], dtype=dtype)
    out = cpu_backend.binary("div", a, np.array([3.0, 7.0], dtype=dtype))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, (np.array([1.0, 3.0], np.float32) / [3.0, 7.0]).astype(dtype))
    big = np.full(4096, 1.0, dtype=dtype)
    total = cpu_backend.reduce("sum", big, None, False)
    assert total.dtype == np.dtype(dtype) and float(total) == 4096.0  # float16 alone would stall at 2048


def test_windows_is_the_im2col_view():
    x = np.arange(10, dtype=np.float32)
    w = cpu_backend.windows(x, (0,), (3,), (2,), (1,))
    np.testing.assert_array_equal(w, [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8]])
    d = cpu_backend.windows(x, (0,), (2,), (3,), (2,))
    np.testing.assert_array_equal(d, [[0, 2], [3, 5], [6, 8]])


def test_scatter_add_and_sort():
    x = np.zeros((2, 3), np.float32)
    cpu_backend.scatter_add(x, 1, np.array([[0, 0], [2, 1]]), np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(x, [[2, 0, 0], [0, 1, 1]])
    values, idx = cpu_backend.sort(np.array([3, 1, 3, 2]), 0, True, True)
    assert values.tolist() == [3, 3, 2, 1] and idx.tolist() == [0, 2, 3, 1]


def test_device_registry():
    assert get_backend("cpu") is cpu_backend
    with pytest.raises(DeviceError, match="unknown device type 'npu'"):
        get_backend("npu")

    class Fake(type(cpu_backend)):
        pass

    register_backend("fake", lambda: Fake(np, "fake"))
    t = gradient.ones(2, device="fake")
    assert t.device.type == "fake" and t._backend.name == "fake"
    moved = t.to("cpu")
    assert moved.device.type == "cpu" and moved.tolist() == [1.0, 1.0]
    with pytest.raises(DeviceError, match="same device"):
        gradient.ones(2) + gradient.ones(2, device="fake")


def test_backward_stays_on_the_tensors_device():
    class Other(type(cpu_backend)):
        pass

    register_backend("other", lambda: Other(np, "other"))
    x = gradient.tensor([0.5, 1.0], device="other", requires_grad=True)
    y = x.exp() * x.tanh()  # exp and tanh save their outputs, rebuilt on unpack
    y.sum().backward()
    assert x.grad.device.type == "other"
    ref = gradient.tensor([0.5, 1.0], requires_grad=True)
    (ref.exp() * ref.tanh()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axes", [((64, 5), (0,)), ((4, 16, 3), (0, 1)), ((40, 3, 2), (0,)),
                                        ((3, 5), (0,)), ((20, 6), (1,)), ((20, 6), (0, 1))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sums_over_leading_axes_equal_numpy(dtype, shape, axes, keepdims):
    """Sums down the rows (bias gradients) go through a matrix-vector product from 16 rows on;
    every reduction still equals NumPy's, to rounding, in shape and value."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    for a in (x, np.asfortranarray(x)):   # a non-contiguous array takes NumPy's own sum
        ours = cpu_backend.reduce("sum", a, axes, keepdims)
        expected = a.sum(axis=axes, keepdims=keepdims)
        assert ours.shape == expected.shape and ours.dtype == expected.dtype
        np.testing.assert_allclose(ours, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    ints = np.arange(64 * 3).reshape(64, 3)
    assert cpu_backend.reduce("sum", ints, (0,), False).dtype == np.int64
    np.testing.assert_array_equal(cpu_backend.reduce("sum", ints, (0,), False), ints.sum(0))
