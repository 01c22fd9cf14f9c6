"""A prompt's products by bfloat16 weights on the CPU's matrix tiles
(gradient.backends.cpu_tiles): NumPy's float64 product on odd shapes, a row's bits whatever
rows share its call or how many threads run, float32 rows to float32's accuracy, and the
vector kernel's bits wherever a row must get what it gets alone. The tests of the tiles
themselves run where the CPU has AMX (an Intel Xeon from Sapphire Rapids on); elsewhere they
are skipped, and what a CPU without tiles must do (leave every product to the vector kernel)
is checked here."""

from __future__ import annotations

import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import gradient
from gradient.backends import cpu_tiles
from gradient.backends.cpu_float_gemm import float_gemm
from gradient.backends.cpu_float_rows import (bfloat16_rows_product, float_rows_product,
                                              weight_bits)
from gradient.backends.cpu_half import as_bits
from gradient.errors import ShapeError

from .one_thread import on_one_thread

amx = pytest.mark.skipif(not cpu_tiles.available(), reason="this CPU lends no AMX tiles")
EPS = np.finfo(np.float32).eps


def _case(seed, rows, n, k, x_dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    x *= rng.uniform(0.01, 100, (rows, 1)).astype(np.float32)     # rows of unlike sizes
    return x.astype(x_dtype), rng.standard_normal((n, k)).astype(ml_dtypes.bfloat16)


def _bound(x, w, k):
    """float32 sums of k exact products: a few ulps of the sum of their magnitudes."""
    return 4 * k * EPS * (np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T)


def _vector(x, w):
    """The vector kernel's product (each row as it gets it alone)."""
    with gradient.kernels.rows_alone():
        return float_rows_product(x, w)


@amx
@pytest.mark.parametrize("rows, n, k", [(16, 1, 32), (17, 31, 64), (33, 33, 96), (64, 100, 576),
                                        (100, 70, 160), (40, 1536, 576)])
def test_bfloat16_rows_are_numpys_float64_products(rows, n, k):
    x, w = _case(rows * n + k, rows, n, k, ml_dtypes.bfloat16)
    y = cpu_tiles.bfloat16_tile_product(as_bits(x), as_bits(w))
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    assert y.dtype == np.float32 and y.shape == (rows, n)
    assert (np.abs(y - exact) <= _bound(x, w, k) + 1e-30).all()
    np.testing.assert_array_equal(float_rows_product(x, w), y)      # the entry point's


@amx
@pytest.mark.parametrize("rows, n, k", [(16, 5, 32), (17, 33, 96), (64, 100, 576), (50, 40, 1536)])
def test_float32_rows_are_numpys_float64_products_to_float32s_accuracy(rows, n, k):
    x, w = _case(rows + n + k, rows, n, k)
    y = float_rows_product(x, w)
    np.testing.assert_array_equal(y, cpu_tiles.float32_tile_product(x, weight_bits(w)))
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    bound = _bound(x, w, k)
    assert (np.abs(y - exact) <= bound + 1e-30).all()
    # no worse than the vector kernel's float32 sums, by more than float32 rounding allows
    assert np.abs(y - exact).max() <= 4 * np.abs(_vector(x, w) - exact).max() + 1e-30
    # rounding x to bfloat16 first (one part instead of three) is hundreds of times further
    rounded = cpu_tiles.bfloat16_tile_product(as_bits(x.astype(ml_dtypes.bfloat16)),
                                              weight_bits(w))
    assert np.abs(rounded - exact).max() > 100 * np.abs(y - exact).max()


def test_three_bfloat16_parts_sum_to_every_float32_exactly():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((7, 64)) * 10.0 ** rng.integers(-30, 30, (7, 64))).astype(np.float32)
    x[0, :6] = [0.0, -0.0, 1.0, np.finfo(np.float32).max / 4, np.finfo(np.float32).tiny, -3e-7]
    parts, exact = cpu_tiles._parts(x, np.empty(0, np.int16))
    assert exact
    widened = parts.view(ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_array_equal(widened[2] + widened[1] + widened[0], x.astype(np.float64))
    for bad in (np.inf, -np.inf, np.nan, np.finfo(np.float32).max):
        y = x.copy()
        y[3, 5] = bad
        assert not cpu_tiles._parts(y, np.empty(0, np.int16))[1]


@amx
def test_values_the_parts_cannot_hold_go_to_the_register_blocked_product():
    x, w = _case(5, 30, 9, 64)
    x[4, 7] = np.inf
    x[9, 1] = np.nan
    assert cpu_tiles.float32_tile_product(x, weight_bits(w)) is None
    np.testing.assert_array_equal(float_rows_product(x, w), float_gemm(x, weight_bits(w)))


@amx
@pytest.mark.parametrize("x_dtype", [np.float32, ml_dtypes.bfloat16], ids=["float32", "bfloat16"])
def test_a_row_gets_the_same_bits_whatever_rows_share_its_call_and_on_any_threads(x_dtype):
    x, w = _case(11, 70, 77, 128, x_dtype)
    together = float_rows_product(x, w)
    for start, stop in ((0, 16), (16, 33), (5, 70), (54, 70)):    # blocks cut anywhere
        np.testing.assert_array_equal(float_rows_product(x[start:stop], w),
                                      together[start:stop])
    np.testing.assert_array_equal(on_one_thread(float_rows_product, x, w), together)


@amx
def test_products_of_fewer_rows_or_within_rows_alone_are_the_vector_kernels():
    """A row's bits from the tiles differ from its bits alone (the sums' order); where a row
    must get what it gets alone, no tiles."""
    x, w = _case(2, 40, 64, 96)
    alone = np.concatenate([float_rows_product(x[i:i + 1], w) for i in range(40)])
    assert not np.array_equal(float_rows_product(x, w), alone)      # the tiles' own sums
    np.testing.assert_array_equal(_vector(x, w), alone)
    np.testing.assert_array_equal(float_rows_product(x[:15], w), alone[:15])
    with gradient.kernels.rows_alone():
        np.testing.assert_array_equal(bfloat16_rows_product(x, w),
                                      np.concatenate([bfloat16_rows_product(x[i:i + 1], w)
                                                      for i in range(40)]))


@amx
def test_shapes_the_tiles_do_not_take_are_refused_or_left_to_the_register_blocked_product():
    x, w = _case(4, 30, 8, 48)                  # 48 values: not whole steps of 32
    np.testing.assert_array_equal(float_rows_product(x, w), float_gemm(x, weight_bits(w)))
    with pytest.raises(ShapeError, match="at least 16 rows"):
        cpu_tiles.bfloat16_tile_product(as_bits(x[:3].astype(ml_dtypes.bfloat16)),
                                        weight_bits(w))
    x, w = _case(4, 20, 8, 64)
    with pytest.raises(ShapeError, match="as many"):
        cpu_tiles.bfloat16_tile_product(as_bits(x.astype(ml_dtypes.bfloat16)),
                                        weight_bits(w)[:, :32])


def test_without_tiles_no_product_is_the_tiles():
    """GRADIENT_AMX=0 (as a CPU without AMX): available() says so, and a prompt's product is
    the register-blocked one (each row its bits alone within rows_alone)."""
    code = ("import numpy as np, ml_dtypes\n"
            "from gradient.backends import cpu_tiles\n"
            "from gradient.backends.cpu_float_gemm import float_gemm\n"
            "from gradient.backends.cpu_float_rows import float_rows_product, weight_bits\n"
            "assert not cpu_tiles.available()\n"
            "rng = np.random.default_rng(0)\n"
            "x = rng.standard_normal((40, 64)).astype(np.float32)\n"
            "w = rng.standard_normal((9, 64)).astype(ml_dtypes.bfloat16)\n"
            "alone = np.concatenate([float_rows_product(x[i:i + 1], w) for i in range(40)])\n"
            "with gradient.kernels.rows_alone():\n"
            "    assert np.array_equal(float_rows_product(x, w), alone)\n"
            "assert np.array_equal(float_rows_product(x, w), float_gemm(x, weight_bits(w)))\n"
            "try:\n"
            "    cpu_tiles.bfloat16_tile_product(np.zeros((16, 32), np.int16),\n"
            "                                    np.zeros((1, 32), np.int16))\n"
            "except gradient.errors.DeviceError as e:\n"
            "    assert 'no AMX tiles' in str(e)\n"
            "else:\n"
            "    raise AssertionError('no error')\n")
    env = dict(os.environ, GRADIENT_AMX="0")
    done = subprocess.run([sys.executable, "-c", "import gradient\n" + code], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
