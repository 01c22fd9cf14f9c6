"""The elementwise kernels of compiled steps (gradient.backends.cpu_lowered) against NumPy,
bit for bit: b of a's shape, of its trailing dimensions (a bias, repeated over a's rows) and
0-d, in float32, float64 and 16-bit floats (as their bits)."""

import ml_dtypes
import numpy as np
import pytest

from gradient.backends import cpu_lowered
from gradient.backends.cpu_half import as_bits


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("op, b_shape", [("add", (3, 5, 7)), ("add", (5, 7)), ("add", (7,)),
                                         ("add", (1,)), ("mul", (3, 5, 7)), ("mul", (7,)),
                                         ("mul", ())])
def test_elementwise_kernels_give_numpys_bits(dtype, op, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 7)).astype(dtype)
    b = np.asarray(rng.standard_normal(b_shape)).astype(dtype)
    expected = (a + b) if op == "add" else (a * b)
    got = getattr(cpu_lowered, op)(as_bits(a), as_bits(np.ascontiguousarray(b)))
    assert got.shape == a.shape
    np.testing.assert_array_equal(got.view(np.uint8),
                                  as_bits(expected.astype(dtype)).view(np.uint8))


@pytest.mark.parametrize("op", ["add", "mul"])
def test_elementwise_kernels_take_empty_arrays(op):
    a = np.zeros((0, 4), np.float32)
    assert getattr(cpu_lowered, op)(a, np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert getattr(cpu_lowered, op)(a, np.ones(4, np.float32)).shape == (0, 4)
