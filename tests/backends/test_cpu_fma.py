"""The fused multiply-add kernel: a * b + c rounded once, as PyTorch's add with alpha, addcmul
and lerp compute it."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from gradient.backends import cpu_fma


def _exact(a, b, c):
    """a * b + c of float64 values in exact rational arithmetic, rounded once to float64."""
    return np.array([float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)])


def test_float64_is_rounded_once():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(3000) for _ in range(3))
    out = cpu_fma.fma(a, b, c, np.float64)
    assert np.array_equal(out, _exact(a, b, c))
    assert not np.array_equal(out, a * b + c)          # two roundings differ somewhere


def test_float32_is_rounded_once():
    # a float32 product is exact in float64, and so is its sum with a float32 whose exponent
    # is near: then one rounding of that float64 sum to float32 is the fused result
    rng = np.random.default_rng(1)
    a, b, c = (rng.uniform(1, 2, 20000).astype(np.float32) for _ in range(3))
    out = cpu_fma.fma(a, b, c, np.float32)
    wide = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
    assert np.array_equal(out, wide.astype(np.float32))
    assert (out != a * b + c).mean() > 0.05


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_16_bit_floats_in_float32_rounded_once(dtype):
    rng = np.random.default_rng(2)
    a, b, c = (rng.uniform(1, 2, 5000).astype(dtype) for _ in range(3))
    out = cpu_fma.fma(a, b, c, dtype)
    assert out.dtype == dtype
    wide = (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64))
    assert np.array_equal(out.astype(np.float32), wide.astype(np.float32).astype(dtype)
                          .astype(np.float32))


def test_broadcasting_scalars_and_mixed_operands():
    a = np.asarray(2.0, np.float32)
    b = np.arange(3, dtype=np.float32)[:, None]
    c = np.ones(4, ml_dtypes.bfloat16)
    out = cpu_fma.fma(a, b, c, ml_dtypes.bfloat16)     # a float32 factor, a bfloat16 addend
    assert out.shape == (3, 4) and out.dtype == ml_dtypes.bfloat16
    assert np.array_equal(out.astype(np.float32), np.broadcast_to([[1], [3], [5]], (3, 4)))
    assert cpu_fma.fma(a, b[:0], c, np.float32).shape == (0, 4)


def test_what_it_declines():
    f32 = np.ones(3, np.float32)
    assert cpu_fma.fma(np.ones(3), f32, f32, np.float32) is None       # float64 into float32
    assert cpu_fma.fma(np.ones(3, np.int64), f32, f32, np.float32) is None
    assert cpu_fma.fma(f32, f32, f32, np.int32) is None
