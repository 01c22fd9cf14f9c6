"""Vectors in compiled kernels (gradient.backends.cpu_simd): each operation against NumPy, on
this machine's instructions and, in child processes that compile for other CPUs (AVX2 without
VNNI: pmaddubsw/pmaddwd; a generic x86-64: LLVM's generic vector code), the same bits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numba
import numpy as np
import pytest

from gradient.backends.cpu_compile import compile_kernel
from gradient.backends.cpu_half import as_bits
from gradient.backends.cpu_simd import (add_f32, add_i32, broadcast_4_bytes, broadcast_f32x16,
                                        bytes_as_f32, code_as_f32, fma_f32, transpose_16x16,
                                        broadcast_i32x16, dot4_u7_i8, dot4_u8_i8, high_nibbles,
                                        dot2_bf16, dot2_bf16_fmas, features,
                                        load_bf16_as_f32x16, load_f16_as_f32x16,
                                        load_f16_as_f32x16_by_integers, load_f32x16,
                                        load_pairs_i32x16,
                                        load_i8_as_f32x16,
                                        load_i8x64, low_nibbles, prefetch, prefetch_to_l2,
                                        largest_magnitude, mul_f32, neg_f32, rint_f32,
                                        with_top_bits,
                                        rounded_to_f16, store_f32x16, store_i32_as_i8,
                                        store_i32x16, sum_i32, to_f32, to_i32, wide_registers,
                                        zeros_f32x16, zeros_i32x16)

ROOT = Path(__file__).resolve().parents[2]


@compile_kernel
def _products(u, s, start, out_u8, out_u7):
    """Row r: ``start[r] + dot4(u[r], four bytes of s[r] broadcast)`` by both products (the
    u7 one on u's bytes below 128 only)."""
    for r in range(u.shape[0]):
        x = broadcast_4_bytes(s, 4 * r)
        acc = broadcast_i32x16(start[r])
        store_i32x16(out_u8, 16 * r, dot4_u8_i8(acc, load_i8x64(u, 64 * r), x))
        store_i32x16(out_u7, 16 * r, dot4_u7_i8(acc, load_i8x64(u, 64 * r), x))


def _product_cases(seed=0, rows=32):
    """Random rows, and rows at the ends of the ranges: bytes 255 and 127 times -128 and 127."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 256, (rows, 64)).astype(np.uint8)
    s = rng.integers(-128, 128, (rows, 4)).astype(np.int8)
    start = rng.integers(-2 ** 20, 2 ** 20, rows).astype(np.int32)
    u[0], s[0] = 255, -128
    u[1], s[1] = 255, 127
    u[2], s[2] = 127, -128
    u[3], s[3] = 127, 127
    return u, s, start


def _expected(u, s, start):
    products = u.reshape(len(u), 16, 4).astype(np.int64) * s[:, None, :].astype(np.int64)
    return (start[:, None] + products.sum(-1)).astype(np.int32)


def _run(u, s, start):
    out_u8 = np.empty((len(u), 16), np.int32)
    out_u7 = np.empty((len(u), 16), np.int32)
    _products(u, s, start, out_u8, out_u7)
    return out_u8, out_u7


def test_products_are_numpys_integer_products():
    u, s, start = _product_cases()
    out_u8, out_u7 = _run(u, s, start)
    np.testing.assert_array_equal(out_u8, _expected(u, s, start))
    small = (u < 128).all(axis=1)            # dot4_u7_i8's promise: every byte below 128
    assert small[2:4].all()
    np.testing.assert_array_equal(out_u7[small], _expected(u, s, start)[small])
    low = u & 127                            # the same, on bytes made small
    np.testing.assert_array_equal(_run(low, s, start)[1], _expected(low, s, start))


#: CPUs to compile for in a child: AVX2 without VNNI, and numba's generic x86-64.
OTHER_CPUS = {
    "avx2": ("haswell", "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,+mmx,"
                        "+movbe,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave"),
    "generic": ("generic", ""),
}


@pytest.mark.parametrize("cpu", sorted(OTHER_CPUS))
def test_products_compiled_for_other_cpus_give_the_same_bits(cpu, tmp_path):
    """pmaddubsw/pmaddwd (AVX2) and the generic vector code that stand in for vpdpbusd where
    the CPU lacks VNNI, compiled in a child (its own, empty cache)."""
    name, cpu_features = OTHER_CPUS[cpu]
    child = ("import json; import numpy as np\n"
             "from numba.core.registry import cpu_target\n"
             "from gradient.backends.cpu_simd import features\n"
             "from tests.backends.test_cpu_simd import _product_cases, _run\n"
             "u, s, start = _product_cases()\n"
             "out = _run(u, s, start) + _run(u & 127, s, start)\n"
             "from tests.backends.test_cpu_simd import _codes_as_floats, _fused, _fma_cases\n"
             "a = np.arange(64, dtype=np.uint8) * 37; codes = np.empty(192, np.float32)\n"
             "_codes_as_floats(a, np.float32(-8), codes); f = np.empty(64, np.float32)\n"
             "_fused(*_fma_cases(), f)\n"
             "out = out + (codes.view(np.int32), f.view(np.int32))\n"
             "from tests.backends.test_cpu_simd import _dot2_cases, _dot2\n"
             "out = out + tuple(o.view(np.int32) for o in _dot2(*_dot2_cases())[:1])\n"
             "print(json.dumps({'features': sorted(features(cpu_target.target_context)),\n"
             "                  'out': [o.tolist() for o in out]}))\n")
    env = dict(os.environ, NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES=cpu_features,
               NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert "+avx512vnni" not in report["features"] and "+avxvnni" not in report["features"]
    assert ("+avx2" in report["features"]) == (cpu == "avx2")
    u, s, start = _product_cases()
    here = _run(u, s, start) + _run(u & 127, s, start)
    valid = [np.ones(len(u), bool), (u < 128).all(axis=1), np.ones(len(u), bool),
             np.ones(len(u), bool)]
    for got, mine, rows in zip(report["out"], here, valid):
        np.testing.assert_array_equal(np.array(got, np.int32)[rows], mine[rows])
    # the codes as floats (vpermps with AVX-512, shifts and conversions elsewhere), and the
    # fused multiply-add (vfmadd, or a correctly rounded call without FMA)
    a = np.arange(64, dtype=np.uint8) * 37
    np.testing.assert_array_equal(np.array(report["out"][4], np.int32).view(np.float32),
                                  _codes_expected(a, 8))
    f = np.empty(64, np.float32)
    _fused(*_fma_cases(), f)
    np.testing.assert_array_equal(np.array(report["out"][5], np.int32).view(np.float32), f)
    # bfloat16 pairs: FMAs there, vdpbf16ps here where the CPU has AVX512_BF16
    np.testing.assert_array_equal(np.array(report["out"][6], np.int32),
                                  _dot2(*_dot2_cases())[0].view(np.int32))


@compile_kernel
def _lanes(a, x, nibbles, broadcast, counts):
    v = load_i8x64(a, 0)
    store_i32x16(nibbles, 0, zeros_i32x16())
    # the nibbles through a product with ones: lane l sums bytes 4l .. 4l+3
    ones = broadcast_4_bytes(x, 0)
    store_i32x16(nibbles, 16, dot4_u7_i8(zeros_i32x16(), low_nibbles(v), ones))
    store_i32x16(nibbles, 32, dot4_u7_i8(zeros_i32x16(), high_nibbles(v), ones))
    store_i32x16(broadcast, 0, add_i32(broadcast_i32x16(counts[0]), broadcast_i32x16(counts[1])))
    return wide_registers()


def test_nibbles_broadcasts_and_lane_order():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, 64).astype(np.uint8)
    x = np.ones(4, np.int8)
    nibbles, broadcast = np.empty(48, np.int32), np.empty(16, np.int32)
    wide = _lanes(a, x, nibbles, broadcast, np.array([5, -7], np.int32))
    np.testing.assert_array_equal(nibbles[16:32], (a & 15).reshape(16, 4).sum(-1))
    np.testing.assert_array_equal(nibbles[32:], (a >> 4).reshape(16, 4).sum(-1))
    np.testing.assert_array_equal(broadcast, np.full(16, -2))
    assert isinstance(wide, bool)


@compile_kernel
def _six_bit_codes(a, top, one_hot, out):
    """The bytes of with_top_bits(low nibbles of a, top, shift) for the four shifts, read back
    through products with one-hot activations (lane l, position p: byte 4l + p)."""
    low, high = low_nibbles(load_i8x64(a, 0)), load_i8x64(top, 0)
    codes = (with_top_bits(low, high, 0), with_top_bits(low, high, 2),
             with_top_bits(low, high, 4), with_top_bits(low, high, 6))
    for k in range(4):
        for p in range(4):
            store_i32x16(out, 64 * k + 16 * p,
                         dot4_u7_i8(zeros_i32x16(), codes[k], broadcast_4_bytes(one_hot, 4 * p)))


def test_six_bit_codes_join_a_nibble_and_two_top_bits():
    rng = np.random.default_rng(3)
    a, top = (rng.integers(0, 256, 64).astype(np.uint8) for _ in range(2))
    one_hot = np.eye(4, dtype=np.int8).reshape(-1)
    out = np.empty(256, np.int32)
    _six_bit_codes(a, top, one_hot, out)
    for k, shift in enumerate((0, 2, 4, 6)):
        expected = (a & 15) | (((top >> shift) & 3) << 4)
        got = out[64 * k:64 * (k + 1)].reshape(4, 16).T.reshape(-1)     # byte 4l + p
        np.testing.assert_array_equal(got, expected)


@compile_kernel
def _bytes_as_floats(a, out):
    for t in range(4):
        store_f32x16(out, 16 * t, bytes_as_f32(load_i8x64(a, 0))[t])


def test_bytes_of_each_lane_become_its_floats():
    a = np.random.default_rng(4).integers(0, 256, 64).astype(np.uint8)
    a[:4] = (0, 255, 128, 127)                    # the ends: unsigned, exact
    out = np.empty(64, np.float32)
    _bytes_as_floats(a, out)
    np.testing.assert_array_equal(out.reshape(4, 16), a.reshape(16, 4).T.astype(np.float32))


@compile_kernel
def _codes_as_floats(a, minus_offset, out):
    """Each nibble (shifts 0, 4, ... 28) and each byte (shifts 0, 8, 16, 24) of the 16 lanes."""
    v = load_i8x64(a, 0)
    for j in range(8):
        store_f32x16(out, 16 * j, code_as_f32(v, 4 * j, 4, minus_offset))
    for t in range(4):
        store_f32x16(out, 128 + 16 * t, code_as_f32(v, 8 * t, 8, minus_offset))


def _codes_expected(a, offset):
    lanes = a.view(np.uint32).astype(np.int64)
    nibbles = [((lanes >> (4 * j)) & 15) - offset for j in range(8)]
    bytes_ = [((lanes >> (8 * t)) & 255) - offset for t in range(4)]
    return np.concatenate(nibbles + bytes_).astype(np.float32)


@pytest.mark.parametrize("offset", [0, 8, 128])
def test_codes_of_each_lane_become_floats_minus_an_offset(offset):
    a = np.random.default_rng(5).integers(0, 256, 64).astype(np.uint8)
    a[:4] = (0, 255, 15, 240)                      # the ends of nibbles and bytes
    out = np.empty(192, np.float32)
    _codes_as_floats(a, np.float32(-offset), out)
    np.testing.assert_array_equal(out, _codes_expected(a, offset))


@compile_kernel
def _fused(a, b, c, out):
    for r in range(0, a.size, 16):
        store_f32x16(out, r, fma_f32(load_f32x16(a, r), load_f32x16(b, r), load_f32x16(c, r)))


def _fma_cases():
    """Random products, and one whose fused sum differs from the separately rounded one:
    a*b = 1 + 2^-22 + 2^-46 exactly, c = -(1 + 2^-22): fused 2^-46, rounded first 0."""
    rng = np.random.default_rng(6)
    a, b, c = (rng.standard_normal(64).astype(np.float32) for _ in range(3))
    a[0] = b[0] = np.float32(1 + 2.0 ** -23)
    c[0] = -np.float32(1 + 2.0 ** -22)
    return a, b, c


def test_fused_multiply_add_rounds_once():
    a, b, c = _fma_cases()
    out = np.empty(64, np.float32)
    _fused(a, b, c, out)
    exact = (a.astype(np.float64) * b + c).astype(np.float32)   # a*b + c exact in double here
    np.testing.assert_array_equal(out, exact)
    assert out[0] == 2.0 ** -46 and np.float32(a[0] * b[0]) + c[0] == 0


def test_types_are_checked_when_a_kernel_compiles():
    import numba

    @numba.njit
    def wrong(a):
        return load_f32x16(a, 0)          # a byte array: no float32 vector in it
    with pytest.raises(numba.core.errors.TypingError):
        wrong(np.zeros(64, np.uint8))


@compile_kernel
def _scaled(scale, codes, value, out):
    for r in range(0, scale.size, 16):
        product = mul_f32(load_f32x16(scale, r), load_i8_as_f32x16(codes, r))
        store_f32x16(out, r, product)
        store_f32x16(out, scale.size + r, neg_f32(product))
        store_f32x16(out, 2 * scale.size + r,
                     add_f32(to_f32(broadcast_i32x16(codes[r])), broadcast_f32x16(value)))
        store_f32x16(out, 3 * scale.size + r, add_f32(zeros_f32x16(), product))


def test_float_vectors_are_numpys_float32_arithmetic():
    rng = np.random.default_rng(2)
    scale = (rng.standard_normal(32) * 1e-3).astype(np.float32)
    scale[:3] = (np.inf, np.float32(1e-40), 0)                # inf, a subnormal, zero
    codes = rng.integers(-128, 128, 32).astype(np.int8)
    out = np.empty(128, np.float32)
    value = np.float32(0.1)
    with np.errstate(invalid="ignore"):
        _scaled(scale, codes, value, out)
        expected = scale * codes.astype(np.float32)
    np.testing.assert_array_equal(out[:32], expected)
    np.testing.assert_array_equal(out[32:64], -expected)
    np.testing.assert_array_equal(out[64:96], np.repeat(codes[::16].astype(np.float32) + value, 16))
    np.testing.assert_array_equal(out[96:], np.float32(0) + expected)


@compile_kernel
def _rounded(a):
    for i in range(a.size):
        a[i] = rounded_to_f16(a[i])


def test_float16_rounding_matches_numpy():
    rng = np.random.default_rng(6)
    v = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-9, 6, 2000),
                        [0.0, -0.0, 65504.0, 65519.0, 65520.0, 1e9, -1e9, 2.0 ** -25,
                         2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
                         np.inf, -np.inf]]).astype(np.float32)
    a = v.copy()
    _rounded(a)
    with np.errstate(over="ignore"):
        expected = v.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(a, expected)


@compile_kernel
def _widened(bits, out):
    for i in range(0, bits.size, 16):
        store_f32x16(out, i, load_f16_as_f32x16(bits, i))


@compile_kernel
def _widened_by_integers(bits, out):
    for i in range(0, bits.size, 16):
        store_f32x16(out, i, load_f16_as_f32x16_by_integers(bits, i))


@compile_kernel
def _bf16_widened(bits, out):
    for i in range(0, bits.size, 16):
        store_f32x16(out, i, load_bf16_as_f32x16(bits, i))


@pytest.mark.parametrize("dtype,widened", [(np.float16, _widened),
                                           (ml_dtypes.bfloat16, _bf16_widened)])
def test_16_bit_floats_widen_as_numpy_converts_them(dtype, widened):
    """Every float16 (the scales of repacked GGML weights) and bfloat16: subnormals,
    infinities, both zeros; NaNs stay NaNs."""
    values = np.arange(2 ** 16, dtype=np.uint16).view(dtype)
    out = np.empty(values.size, np.float32)
    widened(as_bits(values), out)
    expected = values.astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(out), nan)
    np.testing.assert_array_equal(out[~nan].view(np.uint32), expected[~nan].view(np.uint32))


def test_float16_widened_by_integers_keeps_every_bit():
    """The integer widening is NumPy's conversion bit for bit, NaN payloads included (the
    CPU's vcvtph2ps sets a signalling NaN's quiet bit: a product makes every NaN quiet, so
    the products of both are the same bits)."""
    bits = np.arange(2 ** 16, dtype=np.uint16)
    out = np.empty(bits.size, np.float32)
    _widened_by_integers(bits, out)
    np.testing.assert_array_equal(out.view(np.uint32),
                                  bits.view(np.float16).astype(np.float32).view(np.uint32))


@compile_kernel
def _quantized_lanes(x, q, sums, largest):
    for r in range(x.shape[0]):
        v0, v1 = load_f32x16(x, 32 * r), load_f32x16(x, 32 * r + 16)
        largest[r] = largest_magnitude(v0, v1)
        q0 = to_i32(rint_f32(v0))
        store_i32_as_i8(q, 32 * r, q0)
        store_i32_as_i8(q, 32 * r + 16, to_i32(rint_f32(v1)))
        sums[r] = sum_i32(q0)


def test_magnitudes_rounding_narrowing_and_sums_are_numpys():
    """What the activations' quantization uses: the largest |x| (NaN if any lane is NaN, as
    NumPy's max), rint (ties to even), the low byte of each int32, a lane sum."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 32)) * 100).astype(np.float32)
    x[0, :4] = (0.5, 1.5, -2.5, 300.0)                  # ties to even; 300 wraps to 44
    x[1, 7] = -1e4                                      # the largest magnitude, negative
    x[2, 30] = np.nan
    x[3] = 0
    q, sums, largest = np.empty((5, 32), np.int8), np.empty(5, np.int32), np.empty(5, np.float32)
    _quantized_lanes(x, q, sums, largest)
    with np.errstate(invalid="ignore"):
        expected = np.abs(x).max(axis=1)
    np.testing.assert_array_equal(largest, expected)
    finite = [0, 1, 3, 4]
    as_int = np.rint(x[finite]).astype(np.int32)
    np.testing.assert_array_equal(q[finite], as_int.astype(np.int8))
    np.testing.assert_array_equal(sums[finite], as_int[:, :16].sum(axis=1))


@compile_kernel
def _blocks_transposed(src, dst):
    transpose_16x16(src, 3, 20, dst, 0, 16)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
def test_a_block_of_16_by_16_transposes_exactly(dtype):
    src = np.random.default_rng(5).standard_normal(3 + 16 * 20).astype(dtype)
    dst = np.empty(256, np.float32)
    _blocks_transposed(as_bits(src), dst)
    block = src[3:3 + 16 * 20].reshape(16, 20)[:, :16].astype(np.float32)
    np.testing.assert_array_equal(dst.reshape(16, 16), block.T)


@compile_kernel
def _dot2_kernel(acc, a, b, out, out_fmas):
    for i in range(0, a.size, 32):
        start = load_f32x16(acc, i // 2)
        x, y = load_pairs_i32x16(a, i), load_pairs_i32x16(b, i)
        store_f32x16(out, i // 2, dot2_bf16(start, x, y))
        store_f32x16(out_fmas, i // 2, dot2_bf16_fmas(start, x, y))


def _dot2(acc, a, b):
    """``(dot2_bf16, dot2_bf16_fmas)`` of the cases, float32 (16 lanes per 32 pairs' values)."""
    out, out_fmas = np.empty(acc.size, np.float32), np.empty(acc.size, np.float32)
    _dot2_kernel(acc, as_bits(a), as_bits(b), out, out_fmas)
    return out, out_fmas


def _dot2_cases(n=32 * 512):
    """Sums and bfloat16 pairs: normal values; a tie (1 + half an ulp, then a little more:
    two roundings give 1, one rounding would not); subnormal values and sums; and any bits
    (infinities and NaNs among them)."""
    rng = np.random.default_rng(11)
    q = n // 4
    a = rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    acc = rng.standard_normal(n // 2).astype(np.float32)
    tie = slice(q, 2 * q)
    a[tie][1::2], b[tie][1::2] = 2.0 ** -12, 2.0 ** -12
    a[tie][0::2] = 2.0 ** -15
    b[tie][0::2] = (2.0 ** -15 * rng.uniform(1, 2, q // 2)).astype(ml_dtypes.bfloat16)
    acc[q // 2:q] = 1.0
    tiny = slice(2 * q, 3 * q)
    a[tiny] = (rng.standard_normal(q) * 1e-38).astype(ml_dtypes.bfloat16)
    acc[q:3 * q // 2] = (rng.standard_normal(q // 2) * 1e-38).astype(np.float32)
    bits = slice(3 * q, n)
    a[bits] = rng.integers(0, 1 << 16, q).astype(np.uint16).view(ml_dtypes.bfloat16)
    b[bits] = rng.integers(0, 1 << 16, q).astype(np.uint16).view(ml_dtypes.bfloat16)
    acc[3 * q // 2:] = rng.integers(0, 1 << 32, q // 2, dtype=np.uint64).astype(
        np.uint32).view(np.float32)
    return acc, a, b


def _flush(v):
    v = np.asarray(v, np.float32)
    return np.where(np.abs(v) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), v), v)


def test_bfloat16_pairs_are_two_fused_multiply_adds_odd_first():
    """dot2_bf16 (vdpbf16ps where the CPU has AVX512_BF16) and its FMAs agree bit for bit on
    every case, NaN for NaN; and on normal values both are NumPy's: the odd pair's product
    added to the sum and rounded to float32, then the even one's (products of bfloat16 are
    exact, a float64 sum of these rounds once), subnormal inputs and results zero."""
    acc, a, b = _dot2_cases()
    out, out_fmas = _dot2(acc, a, b)
    both_nan = np.isnan(out) & np.isnan(out_fmas)
    assert ((out.view(np.int32) == out_fmas.view(np.int32)) | both_nan).all()
    n = acc.size // 2                                       # the normal and tie cases
    a64, b64 = (_flush(v.astype(np.float32)).astype(np.float64) for v in (a, b))
    expected = _flush(acc[:n])
    for part in (1, 0):                                     # the odd element first
        products = a64[part::2][:n] * b64[part::2][:n]
        expected = _flush((expected.astype(np.float64) + products).astype(np.float32))
    np.testing.assert_array_equal(out[:n], expected)
    assert (out[n // 2:n] == 1.0).all()                     # the ties: two roundings
    tiny = out[n:n + n // 2]
    assert not ((tiny != 0) & (np.abs(tiny) < np.finfo(np.float32).tiny)).any()
    from numba.core.registry import cpu_target
    if "+avx512bf16" in features(cpu_target.target_context):   # (a fresh compile to read)
        fresh = numba.njit(_dot2_kernel.py_func)
        fresh(acc, as_bits(a), as_bits(b), out, out_fmas)
        assert "vdpbf16ps" in fresh.inspect_asm(fresh.signatures[0])


def test_prefetches_ask_for_lines_into_their_cache_levels_and_change_nothing():
    """prefetch asks for a line into every level (llvm.prefetch locality 3: prefetcht0 on
    x86), prefetch_to_l2 into L2 and beyond (locality 2: prefetcht1); an index past the
    array's end is only a hint, and the arrays read are unchanged."""
    def kernel(a, i):
        prefetch(a, i)
        prefetch_to_l2(a, i + 1000)
        return a[i]
    fresh = numba.njit(kernel)
    a = np.arange(64, dtype=np.float32)
    assert fresh(a, 5) == 5.0 and (a == np.arange(64)).all()
    calls = [line for line in fresh.inspect_llvm(fresh.signatures[0]).splitlines()
             if "call void @llvm.prefetch" in line]
    assert [call.split(", ")[2] for call in calls] == ["i32 3", "i32 2"]
