"""Products of float weights with a few rows of x (gradient.backends.cpu_float_rows): NumPy's
float64 product on odd shapes for every weight dtype, the same bits for a row whatever the rows
around it or the threads, and the cases it leaves to the caller's GEMM."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import gradient
from gradient.backends import cpu_float_rows
from gradient.backends.cpu_float_gemm import GEMM_FROM, HALF_FROM, float_gemm
from gradient.backends.cpu_float_rows import (MAX_FLOAT32_ROWS, MAX_ROWS, MIN_FLOAT32_WEIGHTS,
                                              _chunks, _parallel, bfloat16_rows_compiled,
                                              bfloat16_rows_product, float_rows_product,
                                              weight_bits)

from .one_thread import on_one_thread

DTYPES = [np.float32, ml_dtypes.bfloat16, np.float16]


def _product(x, w):
    """The kernel itself on any weight (the entry point leaves small float32 ones to BLAS)."""
    out = np.empty((x.shape[0], w.shape[0]), np.float32)
    _parallel(np.ascontiguousarray(x, np.float32), weight_bits(w), out, _chunks(w))
    return out


def _case(seed, rows, m, k, dtype):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, k)).astype(np.float32),
            rng.standard_normal((m, k)).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m, k", [(1, 1), (3, 15), (5, 16), (7, 17), (33, 100), (130, 257)])
def test_products_are_numpys_float64_products(dtype, m, k):
    for rows in (1, 2, 3, MAX_ROWS):
        x, w = _case(m * k + rows, rows, m, k, dtype)
        y = _product(x, w)
        exact = x.astype(np.float64) @ w.astype(np.float64).T     # the weight widened exactly
        assert y.dtype == np.float32 and y.shape == (rows, m)
        # float32 sums of k products: a few ulps of the sum of magnitudes
        bound = 4 * k * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w.astype(np.float64)).T)
        assert (np.abs(y - exact) <= bound + 1e-30).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_row_gets_the_same_bits_alone_in_a_batch_and_on_any_threads(dtype):
    x, w = _case(1, MAX_ROWS, 70, 83, dtype)
    together = _product(x, w)
    alone = np.concatenate([_product(x[i:i + 1], w) for i in range(MAX_ROWS)])
    np.testing.assert_array_equal(together, alone)
    for n in (2, 3, 5, 6, 7):        # tiles of 4 rows of x, then of 2, then 1
        np.testing.assert_array_equal(_product(x[:n], w), together[:n])
    np.testing.assert_array_equal(on_one_thread(_product, x, w), together)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16], ids=lambda d: np.dtype(d).name)
def test_a_16_bit_weight_takes_a_prompts_many_rows_a_block_at_a_time(dtype, monkeypatch):
    """Past MAX_ROWS rows of x (a prompt) a 16-bit weight still goes through the kernel
    within rows_alone, a block of rows at a time, in place of a float32 copy and BLAS: each
    row the bits it gets alone, for float32 x, bfloat16 x (a bfloat16 model) and x rounded to
    bfloat16. Outside it a prompt's rows go to the register-blocked product (its own sums),
    except bfloat16 rows where the CPU has vdpbf16ps: they stay here (twice as fast)."""
    rows = 2 * MAX_ROWS + 3
    x, w = _case(7, rows, 70, 83, dtype)
    with gradient.kernels.rows_alone():
        y = float_rows_product(x, w)
    alone = np.concatenate([_product(x[i:i + 1], w) for i in range(rows)])
    np.testing.assert_array_equal(y, alone)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    bound = 4 * 83 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w.astype(np.float64)).T)
    assert (np.abs(y - exact) <= bound + 1e-30).all()
    np.testing.assert_array_equal(float_rows_product(x, w), float_gemm(x, weight_bits(w)))
    if dtype is ml_dtypes.bfloat16:
        x16 = x.astype(dtype)
        by_rows = np.concatenate([float_rows_product(x16[i:i + 1], w) for i in range(rows)])
        with gradient.kernels.rows_alone():
            np.testing.assert_array_equal(float_rows_product(x16, w), by_rows)
            np.testing.assert_array_equal(bfloat16_rows_product(x, w), by_rows)
        widened = x16.astype(np.float32)            # exactly
        # either kind of CPU, on this one (without the instruction, FMAs give the pairs' bits)
        for has_instruction, expected in ((True, by_rows),
                                          (False, float_gemm(widened, weight_bits(w)))):
            monkeypatch.setattr(cpu_float_rows, "_has_pairs_instruction",
                                lambda: has_instruction)
            np.testing.assert_array_equal(float_rows_product(x16, w), expected)
            np.testing.assert_array_equal(bfloat16_rows_product(x, w), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_which_rows_go_to_the_register_blocked_product(dtype):
    """Outside rows_alone a prompt's rows go to cpu_float_gemm: from GEMM_FROM rows by a
    float32 weight, from HALF_FROM by a 16-bit one (fewer are faster here); fewer rows, and
    any within rows_alone, get the bits each gets alone. (No matrix tiles: k = 83.)"""
    first = GEMM_FROM if dtype is np.float32 else HALF_FROM
    x, w = _case(9, first, 800, 83, dtype)      # enough float32 values not to be BLAS's
    alone = np.concatenate([_product(x[i:i + 1], w) for i in range(first)])
    np.testing.assert_array_equal(float_rows_product(x[:first - 1], w), alone[:first - 1])
    y = float_rows_product(x, w)
    np.testing.assert_array_equal(y, float_gemm(x, weight_bits(w)))
    assert not np.array_equal(y, alone)          # (other sums: the test can tell them apart)
    with gradient.kernels.rows_alone():
        np.testing.assert_array_equal(float_rows_product(x, w), alone)


def test_special_values_widen_exactly():
    """Infinities, signed zeros, subnormals and the largest float16: every product and sum
    here is exact, so the result is NumPy's float64 one, NaN where inf meets 0."""
    w = np.array([[np.inf, -0.0, 1.0, 65504.0], [2.0 ** -24, -1.0, 0.5, 3.0]], np.float16)
    for dtype in DTYPES:
        ww = w.astype(dtype)
        for x in ([[1.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 1.0]], [[0.0, 2.0, 4.0, 0.0]]):
            x = np.array(x, np.float32)
            with np.errstate(invalid="ignore"):
                expected = (x.astype(np.float64) @ ww.astype(np.float64).T).astype(np.float32)
            np.testing.assert_array_equal(_product(x, ww), expected)


def test_what_it_leaves_to_the_gemm():
    x, w = _case(2, 2, 8, 16, np.float32)
    assert float_rows_product(x, w.astype(np.float64)) is None           # no float64 kernel
    assert float_rows_product(x, np.asfortranarray(w.astype(np.float16))) is None
    assert float_rows_product(x, np.asfortranarray(w)) is None          # rows not contiguous
    assert float_rows_product(x[:, :15], w) is None                      # shapes disagree
    assert float_rows_product(x, w[:0]) is None
    assert float_rows_product(x, w) is None                              # small: BLAS's
    big = np.ones((MIN_FLOAT32_WEIGHTS // 16, 16), np.float32)
    np.testing.assert_array_equal(float_rows_product(x, big), _product(x, big))
    assert float_rows_product(np.ones((MAX_FLOAT32_ROWS + 1, 16), np.float32), big) is None
    assert float_rows_product(x.ravel(), w) is None
    assert float_rows_product(x, w.astype(ml_dtypes.bfloat16)) is not None   # 16-bit: any size


def test_a_linear_layer_decodes_through_it_as_a_gemm_would():
    """A float32 Linear of a few rows runs the kernel (its bias added after), the same values
    as the GEMM it stands for, up to float32 rounding; many rows still take the GEMM."""
    gradient.manual_seed(0)
    layer = gradient.nn.Linear(300, 256)
    x = gradient.randn(2, 3, 300)
    with gradient.no_grad(), gradient.kernels.trace() as t:
        y = layer(x).numpy()
    assert t.calls("float_rows_product") == {"numba": 1}
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    expected = x.numpy().astype(np.float64) @ weight.T.astype(np.float64) + bias
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    with gradient.no_grad(), gradient.kernels.trace() as t:
        layer(gradient.randn(MAX_FLOAT32_ROWS + 1, 300))
        gradient.nn.Linear(40, 24)(gradient.randn(1, 40))     # a small float32 weight: BLAS
    assert "numba" not in t.calls("float_rows_product")     # declined: the GEMM ran


def _pairs_reference(x, w):
    """The bfloat16 pairs' arithmetic in NumPy: lane l sums, 32 values at a time, the product
    of values 2l+1 then of 2l (each added to the float32 sum and rounded once; bfloat16
    products are exact), from -0.0, x padded with -0.0 and w with 0; the lanes folded by
    halves. (Normal values: no subnormal to flush.)"""
    k = x.shape[1]
    pad = -k % 32
    x64 = np.pad(x.astype(np.float64), ((0, 0), (0, pad)), constant_values=-0.0)
    w64 = np.pad(w.astype(np.float64), ((0, 0), (0, pad)))
    xs = x64.reshape(len(x), 1, -1, 16, 2)
    ws = w64.reshape(1, len(w), -1, 16, 2)
    acc = np.full((len(x), len(w), 16), -0.0, np.float32)
    for c in range(xs.shape[2]):
        for part in (1, 0):
            products = xs[:, :, c, :, part] * ws[:, :, c, :, part]
            acc = (acc.astype(np.float64) + products).astype(np.float32)
    width = 16
    while width > 1:
        width //= 2
        acc = acc[..., :width] + acc[..., width:2 * width]
    return acc[..., 0]


@pytest.mark.parametrize("m, k", [(1, 1), (5, 16), (7, 17), (33, 100), (130, 257)])
def test_bfloat16_rows_by_bfloat16_weights_are_the_pairs_arithmetic(m, k):
    """A bfloat16 model's products (x bfloat16 too): vdpbf16ps where the CPU has it, FMAs
    elsewhere, the arithmetic of _pairs_reference either way; and a row's bits do not depend
    on the rows beside it."""
    rng = np.random.default_rng(m * k)
    w = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    x = rng.standard_normal((MAX_ROWS, k)).astype(ml_dtypes.bfloat16)
    with gradient.kernels.rows_alone():      # (a prompt's rows: the register-blocked product)
        together = float_rows_product(x, w)
    np.testing.assert_array_equal(together, _pairs_reference(x, w))
    for rows in (1, 2, 3, 5):
        np.testing.assert_array_equal(float_rows_product(x[:rows], w), together[:rows])
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    bound = 4 * k * np.finfo(np.float32).eps * (np.abs(x.astype(np.float64)) @
                                                 np.abs(w.astype(np.float64)).T)
    assert (np.abs(together - exact) <= bound + 1e-30).all()
    # float32 rows by the same weight keep the one-FMA-a-value arithmetic
    with gradient.kernels.rows_alone():
        np.testing.assert_array_equal(float_rows_product(x.astype(np.float32), w),
                                      _product(x.astype(np.float32), w))


def test_float32_rows_rounded_to_bfloat16_are_a_bfloat16_models_product():
    """llama.cpp's product for a BF16 weight: x rounded to bfloat16 (nearest even, as ml_dtypes
    rounds: ties, NaN, infinities, subnormals), then the pairs' arithmetic; the module graph's
    call, the prepared call and the compiled step's give the same bits."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((70, 83)).astype(ml_dtypes.bfloat16)
    x = rng.standard_normal((MAX_ROWS, 83)).astype(np.float32)
    bits = x.view(np.uint32)
    bits[0, :4] = (bits[0, :4] & 0xFFFF0000) | 0x8000            # exact ties: to even
    x[1, :5] = [np.nan, np.inf, -np.inf, 1e-40, -3e-39]          # special and subnormal values
    x[2, :2] = [np.finfo(np.float32).max, -np.finfo(np.float32).max]   # round to infinity
    rounded = x.astype(ml_dtypes.bfloat16)
    with gradient.kernels.rows_alone():      # (a prompt's rows: the register-blocked product)
        y = bfloat16_rows_product(x, w)
        np.testing.assert_array_equal(y, float_rows_product(rounded, w))
    np.testing.assert_array_equal(y[3:], _pairs_reference(rounded[3:], w))
    for rows in (1, 2, 3, 5):
        np.testing.assert_array_equal(bfloat16_rows_product(x[:rows], w), y[:rows])
    compiled = bfloat16_rows_compiled(x.reshape(4, 16, 83), (MAX_ROWS, 83), (4, 16, 70),
                                      weight_bits(w), _chunks(w))
    np.testing.assert_array_equal(compiled, y.reshape(4, 16, 70))
    prepared = gradient.kernels.prepare("bfloat16_rows_product", "cpu", x, w)
    np.testing.assert_array_equal(prepared(x, w), y)
    # what it leaves to the caller: another weight dtype, other x
    assert bfloat16_rows_product(x, w.astype(np.float32)) is None
    assert bfloat16_rows_product(x.astype(np.float64), w) is None
    assert bfloat16_rows_product(x[:, :80], w) is None
