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


def _specials(dtype):
    """Values of ``dtype`` that round or overflow in a sum or product: extremes, subnormals,
    infinities, a NaN, zeros of both signs, and ordinary numbers."""
    info = ml_dtypes.finfo(dtype)
    values = [0.0, -0.0, 1.0, -2.5, float(info.max), -float(info.max), float(info.tiny),
              float(info.smallest_subnormal), np.inf, -np.inf, np.nan, 3.0e-3, 7.0]
    return np.array(values, np.float32).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("a_shape, b_shape", [((6, 13), (6, 13)), ((6, 13), (13,)),
                                              ((13,), (6, 13)), ((2, 3, 13), ()),
                                              ((0, 13), (13,))])
def test_half_binary_gives_the_numpy_backends_bits(dtype, op, a_shape, b_shape):
    # the eager kernel of two half-precision arrays against the NumPy backend's own way
    # (both widened to float32, the operation, one rounding), specials included; the
    # result takes the broadcast shape whichever operand repeats
    from gradient.backends.numpy_backend import cpu_backend
    rng = np.random.default_rng(1)
    pool = np.concatenate([_specials(dtype), rng.standard_normal(200).astype(dtype)])
    a = rng.choice(pool, a_shape).astype(dtype)
    b = np.asarray(rng.choice(pool, b_shape)).astype(dtype)
    with np.errstate(all="ignore"):
        wide = getattr(np, {"add": "add", "mul": "multiply"}[op])(a.astype(np.float32),
                                                                 b.astype(np.float32))
        expected = wide.astype(dtype)
    got = cpu_lowered.half_binary(op, a, b)
    assert got is not None and got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_array_equal(as_bits(got), as_bits(expected))
    np.testing.assert_array_equal(as_bits(cpu_backend.binary(op, a, b)), as_bits(expected))


def test_half_binary_declines_what_it_does_not_take():
    x = np.ones((4, 8), ml_dtypes.bfloat16)
    assert cpu_lowered.half_binary("sub", x, x) is None                       # not add or mul
    assert cpu_lowered.half_binary("add", x, x.astype(np.float16)) is None    # two dtypes
    assert cpu_lowered.half_binary("add", x, np.ones(8, np.float32)) is None
    assert cpu_lowered.half_binary("add", x, np.ones((4, 1), ml_dtypes.bfloat16)) is None
    assert cpu_lowered.half_binary("mul", x[:, ::2], x[:, ::2]) is None      # not contiguous
    assert cpu_lowered.half_binary("add", x.astype(np.float32), x.astype(np.float32)) is None
