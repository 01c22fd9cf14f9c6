"""Integer vectors in compiled kernels (gradient.backends.cpu_simd): each operation against
NumPy's integers, on this machine's instructions and, in a child process that compiles for a
generic x86-64 (no AVX2), on LLVM's generic vector code: the same bits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradient.backends.cpu_compile import compile_kernel
from gradient.backends.cpu_simd import (add, broadcast_i8_pair, broadcast_i16_pair, dot_i16,
                                        dot_u8_i8, high_nibbles, join, load_f32x8,
                                        load_i8_as_f32x8, load_i8x32, load_i16x16, low_nibbles,
                                        mul_f32, neg_f32, store_f32x8, store_i8x32,
                                        store_i16x16, store_i32x16, store_zipped, widen_i8_high,
                                        widen_i8_low, widen_i16, zeros_i32x8, zip_high, zip_low)

ROOT = Path(__file__).resolve().parents[2]


@compile_kernel
def _products(u, s, a, b, out16, out32):
    """Row r: dot_u8_i8 of u[r], s[r] (widened) and dot_i16 of a[r], b[r], two at a time
    into one i32x16."""
    for r in range(u.shape[0]):
        store_i32x16(out16, 16 * r, widen_i16(dot_u8_i8(load_i8x32(u, 32 * r),
                                                        load_i8x32(s, 32 * r))))
        low = dot_i16(load_i16x16(a, 32 * r), load_i16x16(b, 32 * r))
        high = add(zeros_i32x8(), dot_i16(load_i16x16(a, 32 * r + 16), load_i16x16(b, 32 * r + 16)))
        store_i32x16(out32, 16 * r, join(low, high))


def _product_cases(seed=0, rows=64):
    """Random rows, and rows at the ends of the ranges the kernels use: nibbles 0..15 times any
    int8 in dot_u8_i8; any byte times int8 where the pair sums fit int16; any int16 in dot_i16
    but the pair (-32768, -32768) twice."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 256, (rows, 32)).astype(np.uint8)
    s = rng.integers(-128, 128, (rows, 32)).astype(np.int8)
    u[0], s[0] = 15, -128                                  # the nibble kernels' extremes
    u[1], s[1] = 15, 127
    u[2], s[2] = 255, 64                                   # 2 * 255 * 64 = 32640 <= 32767
    u[3], s[3] = 255, -64
    big = (u.astype(np.int32) * np.abs(s.astype(np.int32))).reshape(rows, 16, 2).sum(-1) > 32767
    s[4:] = np.where(np.repeat(big[4:], 2, axis=1), s[4:] // 2, s[4:])   # keep sums in int16
    a = rng.integers(-32768, 32768, (rows, 32)).astype(np.int16)
    b = rng.integers(-32768, 32768, (rows, 32)).astype(np.int16)
    a[0], b[0] = -32768, 32767
    a[1], b[1] = 32767, 32767
    return u, s, a, b


def _expected(u, s, a, b):
    pairs = (u.astype(np.int64) * s.astype(np.int64)).reshape(len(u), 16, 2).sum(-1)
    assert np.abs(pairs).max() <= 32767, "a case outside dot_u8_i8's range"
    wide = (a.astype(np.int64) * b.astype(np.int64)).reshape(len(a), 16, 2).sum(-1)
    return pairs.astype(np.int32), wide.astype(np.int32)


def _run(u, s, a, b):
    out16 = np.empty((len(u), 16), np.int32)
    out32 = np.empty((len(u), 16), np.int32)
    _products(u, s, a, b, out16, out32)
    return out16, out32


def test_products_are_numpys_integer_products():
    cases = _product_cases()
    for got, expected in zip(_run(*cases), _expected(*cases)):
        np.testing.assert_array_equal(got, expected)


def test_products_compiled_without_avx2_give_the_same_bits(tmp_path):
    """The generic vector code that stands in for pmaddubsw/pmaddwd where the CPU lacks
    them, compiled in a child for numba's generic CPU (its own, empty cache)."""
    child = ("import json, sys; import numpy as np\n"
             "from numba.core.registry import cpu_target\n"
             "from gradient.backends.cpu_simd import uses_avx2\n"
             "from tests.backends.test_cpu_simd import _product_cases, _run\n"
             "out = _run(*_product_cases())\n"
             "print(json.dumps({'avx2': uses_avx2(cpu_target.target_context),\n"
             "                  'out': [o.tolist() for o in out]}))\n")
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["avx2"] is False
    for got, here in zip(report["out"], _run(*_product_cases())):
        np.testing.assert_array_equal(np.array(got, np.int32), here)


@compile_kernel
def _lanes(a, b, pairs, zipped, nibbles, widened, unzipped):
    va, vb = load_i8x32(a, 0), load_i8x32(b, 0)
    store_i8x32(pairs, 0, broadcast_i8_pair(a, 3))
    store_i16x16(widened, 32, broadcast_i16_pair(b, 5))
    za, zb = zip_low(va, vb), zip_high(va, vb)
    store_i8x32(zipped, 0, za)
    store_i8x32(zipped, 32, zb)
    store_i8x32(nibbles, 0, low_nibbles(va))
    store_i8x32(nibbles, 32, high_nibbles(va))
    store_i16x16(widened, 0, widen_i8_low(vb))
    store_i16x16(widened, 16, widen_i8_high(vb))
    # lane r of zip_low/zip_high's order holds r itself: store_zipped puts 0 .. 31 in order
    ones = load_i8x32(a, 32)             # bytes 1, 0, 1, 0, ...: dot_u8_i8 picks a[2l]
    store_zipped(unzipped, 0, widen_i16(dot_u8_i8(zip_low(load_i8x32(a, 64), va), ones)),
                 widen_i16(dot_u8_i8(zip_high(load_i8x32(a, 64), va), ones)))


def test_loads_broadcasts_zips_nibbles_widening_and_lane_order():
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.integers(0, 256, 32), np.tile([1, 0], 16),
                        np.arange(32)]).astype(np.uint8)
    b = rng.integers(-128, 128, 32).astype(np.int8)
    pairs, zipped, nibbles = (np.empty(n, np.uint8) for n in (32, 64, 64))
    widened, unzipped = np.empty(48, np.int16), np.empty(32, np.int32)
    _lanes(a, b, pairs, zipped, nibbles, widened, unzipped)
    np.testing.assert_array_equal(pairs, np.tile(a[3:5], 16))
    np.testing.assert_array_equal(widened[32:], np.tile(b[5:7].astype(np.int16), 8))
    va, vb = a[:32], b.view(np.uint8)
    order_low = np.r_[0:8, 16:24]
    order_high = np.r_[8:16, 24:32]
    np.testing.assert_array_equal(zipped[:32].reshape(16, 2), np.c_[va[order_low], vb[order_low]])
    np.testing.assert_array_equal(zipped[32:].reshape(16, 2),
                                  np.c_[va[order_high], vb[order_high]])
    np.testing.assert_array_equal(nibbles, np.r_[va & 15, va >> 4])
    np.testing.assert_array_equal(widened[:32], b.astype(np.int16))
    np.testing.assert_array_equal(unzipped, np.arange(32))


def test_types_are_checked_when_a_kernel_compiles():
    import numba

    @numba.njit
    def wrong(a):
        return load_i16x16(a, 0)          # a byte array: no int16 vector in it
    with pytest.raises(numba.core.errors.TypingError):
        wrong(np.zeros(32, np.uint8))


@compile_kernel
def _scaled(scale, codes, out):
    for r in range(0, scale.size, 8):
        product = mul_f32(load_f32x8(scale, r), load_i8_as_f32x8(codes, r))
        store_f32x8(out, r, product)
        store_f32x8(out, scale.size + r, neg_f32(product))


def test_float_vectors_are_numpys_float32_products():
    rng = np.random.default_rng(2)
    scale = (rng.standard_normal(32) * 1e-3).astype(np.float32)
    scale[:3] = (np.inf, np.float32(1e-40), 0)                # inf, a subnormal, zero
    codes = rng.integers(-128, 128, 32).astype(np.int8)
    out = np.empty(64, np.float32)
    with np.errstate(invalid="ignore"):
        _scaled(scale, codes, out)
        expected = scale * codes.astype(np.float32)
    np.testing.assert_array_equal(out[:32], expected)
    np.testing.assert_array_equal(out[32:], -expected)
