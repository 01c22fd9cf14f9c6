"""A prompt's rows by a float weight, register-blocked (gradient.backends.cpu_float_gemm): its
arithmetic exactly (sequential fused multiply-adds in steps of KC values) on odd shapes for
every weight dtype, NumPy's float64 product within float32's rounding, a row's bits whatever
rows share its call or threads, special values, and what it refuses."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from gradient.backends.cpu_float_gemm import GEMM_FROM, GROUP, KC, float_gemm
from gradient.backends.cpu_float_rows import weight_bits
from gradient.errors import ShapeError

from .one_thread import on_one_thread

DTYPES = [np.float32, ml_dtypes.bfloat16, np.float16]


def _short(rng, shape, bits):
    """Normal values with ``bits`` bits of significand: products of two such values are exact
    in float32 (bits + bits <= 24), so each fused multiply-add rounds once, where NumPy's
    float64 sum of the float32 sum and the product then rounded to float32 rounds the same."""
    v = rng.standard_normal(shape)
    e = np.floor(np.log2(np.abs(v)))
    return (np.round(v / 2.0 ** e * 2 ** (bits - 1)) * 2.0 ** (e - bits + 1)).astype(np.float32)


def _reference(x, w):
    """The kernel's arithmetic in NumPy: for each step of KC values, a float32 sum from -0.0
    of the products in order (each added and rounded once), added to the row's sum (from
    -0.0)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    total = np.full((len(x), len(w)), -0.0, np.float32)
    for c0 in range(0, x.shape[1], KC):
        part = np.full_like(total, -0.0)
        for c in range(c0, min(x.shape[1], c0 + KC)):
            part = (part.astype(np.float64) + np.outer(x64[:, c], w64[:, c])).astype(np.float32)
        total = total + part
    return total


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m, n, k", [(16, 1, 1), (16, 50, 131), (17, 5, 15), (33, 47, 16),
                                     (48, 48, 17), (64, 49, 100), (65, 97, 257),
                                     (130, 24, 300)])
def test_the_arithmetic_is_sequential_sums_in_steps_of_kc(dtype, m, n, k):
    rng = np.random.default_rng(m * n * k)
    bits = 11 if dtype is np.float32 else 8      # bfloat16 holds 8, float16 11
    x = _short(rng, (m, k), 24 - bits)
    w = _short(rng, (n, k), bits).astype(dtype)
    y = float_gemm(x, weight_bits(w))
    assert y.dtype == np.float32 and y.shape == (m, n)
    np.testing.assert_array_equal(y, _reference(x, w))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_products_are_numpys_float64_products_within_float32_rounding(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((70, 600)).astype(np.float32)
    w = rng.standard_normal((2 * GROUP + 5, 600)).astype(dtype)
    y = float_gemm(x, weight_bits(w))
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    # sums of KC terms, then of k / KC of those: a few ulps of the sum of magnitudes each
    bound = 2 * (KC + 600 // KC + 1) * np.finfo(np.float32).eps * (
        np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T)
    assert (np.abs(y - exact) <= bound).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_row_gets_the_same_bits_whatever_rows_share_its_call_and_on_any_threads(dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((150, 130)).astype(np.float32)
    w = rng.standard_normal((3 * GROUP + 7, 130)).astype(dtype)
    together = float_gemm(x, weight_bits(w))
    for start, stop in ((0, 16), (16, 33), (5, 70), (54, 150), (100, 150)):   # any blocks
        np.testing.assert_array_equal(float_gemm(x[start:stop], weight_bits(w)),
                                      together[start:stop])
    np.testing.assert_array_equal(on_one_thread(float_gemm, x, weight_bits(w)), together)


def test_special_values_are_ieee_sums():
    """Infinities, NaN, signed zeros and subnormal values: every product and sum here is exact,
    so the result is NumPy's float64 one (NaN where inf meets 0 or -inf), except that a sum of
    -0.0 products is -0.0 (IEEE's sum of them; NumPy's starts from +0.0)."""
    w = np.array([[np.inf, -0.0, 1.0, 65504.0], [2.0 ** -24, -1.0, 0.5, 3.0],
                  [-0.0, -0.0, -0.0, -0.0]], np.float16)
    x = np.zeros((GEMM_FROM, 4), np.float32)
    x[0, 0] = 1.0
    x[1, 3] = 1.0
    x[2, 1:3] = [2.0, 4.0]
    x[3, 0] = np.nan
    x[4] = [1e-45, 0.0, 0.0, 0.0]
    x[5, 1] = -np.inf
    for dtype in DTYPES:
        ww = w.astype(dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            expected = (x.astype(np.float64) @ ww.astype(np.float64).T).astype(np.float32)
            expected[:, 2] = np.where(np.isnan(expected[:, 2]), np.nan, -0.0)   # -0.0 products
        got = float_gemm(x, weight_bits(ww))
        np.testing.assert_array_equal(got, expected)
        numbers = ~np.isnan(expected)
        np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))


def test_what_it_refuses():
    x = np.ones((GEMM_FROM, 8), np.float32)
    w = np.ones((4, 8), np.float32)
    for bad_x, bad_w in ((x[:GEMM_FROM - 1], w), (x.astype(np.float64), w), (x, w[:, :7]),
                         (x, w.astype(np.float64)), (x, np.asfortranarray(np.ones((8, 8)))),
                         (x.ravel(), w), (x[:, :0], w[:, :0]), ([[1.0]], w)):
        with pytest.raises(ShapeError, match="float_gemm takes float32 x of at least 16 rows"):
            float_gemm(bad_x, bad_w)
