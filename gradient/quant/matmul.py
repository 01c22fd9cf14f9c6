"""Matrix products with GGML-quantized weights, read block by block: ``y = x @ W.T``.

A GGUF weight ``W`` of shape (out_features, in_features) is stored row by row, each row a whole
number of blocks (see :mod:`gradient.quant.ggml` for the block layouts). Dequantizing all of it
to float32 for every product would multiply the memory traffic by 4 to 8; instead the kernels
here decode one row at a time into a buffer that stays in the L1/L2 cache and use it at once:

* **few rows of x** (``N <= SMALL_BATCH``: decoding, one token at a time) -- for each output row,
  decode its blocks (each block's scale and min are read once, then applied to its 32 or 256
  values) into a float32 row buffer, then take the dot products with the ``N`` activation
  rows from that buffer. The weight bytes are read once per call
  whatever ``N``; numba runs the rows in parallel (``prange`` over chunks of rows) when the
  matrix is large enough to pay for the thread launch, else serially.
* **many rows of x** (prefill) -- decode a tile of weight rows into a float32 scratch buffer and
  multiply the tile with BLAS (``numpy.matmul``), tile after tile: GEMM speed, while at most one
  tile of the float matrix exists at a time.

Why a row buffer and not the "factored" form ``d * sum(q * x) + m * sum(x)`` that llama.cpp's
SIMD code uses: numba cannot vectorise that form (a horizontal sum per 32 values), while it does
vectorise a block decode and a long dot product; measured, decode-then-dot was 1.5-3 times faster.

Accumulation is in float32, each dot product in 64 lanes (:mod:`gradient.backends.cpu_reduce`),
so its order differs from a sequential sum's (errors stay ~1e-6 relative) but is the same on
every machine and from every compiled copy. The row decoders reproduce ggml's arithmetic
exactly (no fused multiply-add), so :func:`dequantize_rows` is bit-exact with
``gguf.quants.dequantize``.

Supported types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (32-value blocks) and Q2_K, Q3_K,
Q4_K, Q5_K, Q6_K (256-value super-blocks, so ``in_features`` must be a multiple of 256).

Example::

    >>> import gguf                                     # the reference quantizer (tests only)
    >>> w = np.random.randn(1536, 576).astype(np.float32)
    >>> blocks = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)   # (1536, 612) uint8
    >>> y = quantized_matmul(np.ones((1, 576), np.float32), blocks, GGMLType.Q8_0, 1536, 576)
    >>> y.shape
    (1, 1536)
"""

from __future__ import annotations

import numba
import numpy as np

from ..backends.cpu_compile import compile_kernel
from ..backends.cpu_reduce import LANES, lane_dot
from ..errors import ShapeError
from ..kernels.registry import register
from .ggml import BLOCK_SIZES, GGMLType, UnsupportedQuantTypeError, type_name

__all__ = ["quantized_matmul", "quantized_matmul_t", "dequantize_rows", "MATMUL_TYPES",
           "SMALL_BATCH", "PARALLEL_MIN_WEIGHTS", "TILE_BYTES"]

QK_K = 256

#: The GGML types :func:`quantized_matmul` multiplies by.
MATMUL_TYPES = (GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
                GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K,
                GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K)

#: Up to this many rows of ``x``, the row-buffer kernel; above, dequantized tiles and BLAS
#: (measured crossover: 8 to 16 rows, on one core as on two).
SMALL_BATCH = 8
#: Matrices with fewer weights run on one thread: a numba parallel launch costs tens of
#: microseconds (milliseconds on an oversubscribed machine), as long as a 1M-weight matvec.
PARALLEL_MIN_WEIGHTS = 1 << 21
#: Size of the float32 scratch tile of the prefill path (a few rows more or less).
TILE_BYTES = 1 << 21

# The decoders take their inner trip count (16, and 32 = 2 * 16) as an argument, ``n16``, not a
# literal: with a constant 16, LLVM unrolls the loop completely and then cannot vectorise it
# (it cannot prove that the uint8 input and the float32 output do not overlap; only the loop
# vectoriser adds the runtime check that allows it). Measured: 3x faster this way.
_N16 = 16

_T_F32, _T_F16, _T_BF16 = int(GGMLType.F32), int(GGMLType.F16), int(GGMLType.BF16)
_T_Q8_0, _T_Q4_0, _T_Q4_1 = int(GGMLType.Q8_0), int(GGMLType.Q4_0), int(GGMLType.Q4_1)
_T_Q5_0, _T_Q5_1 = int(GGMLType.Q5_0), int(GGMLType.Q5_1)
_T_Q2_K, _T_Q3_K, _T_Q4_K = int(GGMLType.Q2_K), int(GGMLType.Q3_K), int(GGMLType.Q4_K)
_T_Q5_K, _T_Q6_K = int(GGMLType.Q5_K), int(GGMLType.Q6_K)


# ----------------------------------------------------------------------------- scalars
# 2 ** (e - 25) for the 5-bit exponent e of a float16 (e = 0: subnormals, 2 ** -24)
_F16_POW2 = np.array([2.0 ** -24] + [2.0 ** (e - 25) for e in range(1, 32)], dtype=np.float32)


@compile_kernel(inline=True)
def _half_bits(lo, hi):
    """The float16 stored little-endian in bytes ``lo``, ``hi``: its uint16 bits."""
    return np.uint16(np.int32(lo) | (np.int32(hi) << 8))


@compile_kernel(inline=True)
def _f16(lo, hi):
    """The float16 stored little-endian in bytes ``lo``, ``hi``, as float32 (exact)."""
    h = np.int32(_half_bits(lo, hi))
    e = (h >> 10) & 31
    m = h & 1023
    if e == 0:                                      # zero and subnormals: m * 2 ** -24
        v = np.float32(m) * _F16_POW2[0]
    elif e == 31:
        v = np.float32(np.inf) if m == 0 else np.float32(np.nan)
    else:                                           # (1024 + m) * 2 ** (e - 25)
        v = np.float32(m | 1024) * _F16_POW2[e]
    return -v if h & 0x8000 else v


@compile_kernel(inline=True)
def _u32(row, k):
    """The little-endian uint32 at ``row[k:k + 4]``."""
    return (np.uint32(row[k]) | (np.uint32(row[k + 1]) << 8) | (np.uint32(row[k + 2]) << 16)
            | (np.uint32(row[k + 3]) << 24))


@compile_kernel(inline=True)
def _scale_min_k4(row, base, j):
    """Scale and min ``j`` (0..7) of Q4_K/Q5_K: eight 6-bit pairs packed in the 12 bytes at
    ``row[base:]``. j < 4: low 6 bits of bytes j and j + 4; j >= 4: a nibble of byte j + 4 with
    the top 2 bits of bytes j - 4 (scale) and j (min)."""
    if j < 4:
        sc = np.int32(row[base + j]) & 63
        mn = np.int32(row[base + j + 4]) & 63
    else:
        sc = (np.int32(row[base + j + 4]) & 15) | ((np.int32(row[base + j - 4]) >> 2) & 48)
        mn = (np.int32(row[base + j + 4]) >> 4) | ((np.int32(row[base + j]) >> 2) & 48)
    return sc, mn


# ----------------------------------------------------------------------------- row decoders
# Each decoder turns one weight row (its bytes, 1-d uint8) into float32 values w (1-d, length
# in_features), with ggml's arithmetic. Offsets in the comments are bytes within one block.

@compile_kernel
def _row_q8_0(row, w, n16):
    # d | 32 x int8 q                       w = q * d
    n32 = 2 * n16
    for b in range(w.size // 32):
        o, base = b * 34, b * 32
        d = _f16(row[o], row[o + 1])
        for j in range(n32):
            w[base + j] = np.float32(np.int8(row[o + 2 + j])) * d


@compile_kernel
def _row_q4_0(row, w, n16):
    # d | 16 bytes: value j in the low nibble of byte j, value j + 16 in its high nibble
    #                                       w = d * (q - 8)
    for b in range(w.size // 32):
        o, base = b * 18, b * 32
        d = _f16(row[o], row[o + 1])
        for j in range(n16):
            q = np.int32(row[o + 2 + j])
            w[base + j] = d * np.float32((q & 15) - 8)
            w[base + 16 + j] = d * np.float32((q >> 4) - 8)


@compile_kernel
def _row_q4_1(row, w, n16):
    # d | m | 16 bytes of nibbles as Q4_0     w = d * q + m
    for b in range(w.size // 32):
        o, base = b * 20, b * 32
        d = _f16(row[o], row[o + 1])
        m = _f16(row[o + 2], row[o + 3])
        for j in range(n16):
            q = np.int32(row[o + 4 + j])
            w[base + j] = d * np.float32(q & 15) + m
            w[base + 16 + j] = d * np.float32(q >> 4) + m


@compile_kernel
def _row_q5_0(row, w, n16):
    # d | qh (uint32: bit j is the fifth bit of value j) | nibbles as Q4_0    w = d * (q - 16)
    for b in range(w.size // 32):
        o, base = b * 22, b * 32
        d = _f16(row[o], row[o + 1])
        qh = np.int64(_u32(row, o + 2))
        for j in range(n16):
            q = np.int32(row[o + 6 + j])
            lo = (q & 15) | np.int32(((qh >> j) & 1) << 4)
            hi = (q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            w[base + j] = d * np.float32(lo - 16)
            w[base + 16 + j] = d * np.float32(hi - 16)


@compile_kernel
def _row_q5_1(row, w, n16):
    # d | m | qh | nibbles                   w = d * q + m
    for b in range(w.size // 32):
        o, base = b * 24, b * 32
        d = _f16(row[o], row[o + 1])
        m = _f16(row[o + 2], row[o + 3])
        qh = np.int64(_u32(row, o + 4))
        for j in range(n16):
            q = np.int32(row[o + 8 + j])
            lo = (q & 15) | np.int32(((qh >> j) & 1) << 4)
            hi = (q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            w[base + j] = d * np.float32(lo) + m
            w[base + 16 + j] = d * np.float32(hi) + m


@compile_kernel
def _row_q2_k(row, w, n16):
    # scales[16] (4-bit scale | 4-bit min << 4, one per 16 values) | qs[64] | d | dmin.
    # Value g * 128 + s * 32 + l: bits 2s..2s+1 of qs[g * 32 + l].   w = d*sc * q - dmin*min
    for b in range(w.size // QK_K):
        o, base = b * 84, b * QK_K
        d = _f16(row[o + 80], row[o + 81])
        dmin = _f16(row[o + 82], row[o + 83])
        for g in range(2):
            for s in range(4):
                for half in range(2):
                    k = g * 8 + s * 2 + half
                    sc = np.int32(row[o + k])
                    dl = d * np.float32(sc & 15)
                    ml = dmin * np.float32(sc >> 4)
                    src = o + 16 + g * 32 + half * 16
                    dst = base + g * 128 + s * 32 + half * 16
                    for l in range(n16):
                        q = (np.int32(row[src + l]) >> (2 * s)) & 3
                        w[dst + l] = dl * np.float32(q) - ml


@compile_kernel
def _row_q3_k(row, w, n16):
    # hmask[32] | qs[64] | scales[12] | d. Low 2 bits as Q2_K; the third bit of value e is bit
    # e // 32 of hmask[e % 32], and a *clear* bit subtracts 4. Sixteen 6-bit scales: low 4 bits
    # nibble k // 8 of scales[k % 8], high 2 bits field k // 4 of scales[8 + k % 4], minus 32.
    #                                       w = d * (sc - 32) * q
    for b in range(w.size // QK_K):
        o, base = b * 110, b * QK_K
        d = _f16(row[o + 108], row[o + 109])
        for g in range(2):
            for s in range(4):
                for half in range(2):
                    k = g * 8 + s * 2 + half
                    low = (np.int32(row[o + 96 + k % 8]) >> (4 * (k // 8))) & 15
                    high = (np.int32(row[o + 104 + k % 4]) >> (2 * (k // 4))) & 3
                    dl = d * np.float32((low | (high << 4)) - 32)
                    src = o + 32 + g * 32 + half * 16
                    hsrc = o + half * 16
                    hshift = g * 4 + s
                    dst = base + g * 128 + s * 32 + half * 16
                    for l in range(n16):
                        ql = (np.int32(row[src + l]) >> (2 * s)) & 3
                        hbit = (np.int32(row[hsrc + l]) >> hshift) & 1
                        w[dst + l] = dl * np.float32(ql - ((hbit ^ 1) << 2))


@compile_kernel
def _row_q4_k(row, w, n16):
    # d | dmin | scales[12] (eight 6-bit scales and mins) | qs[128]. Value g * 64 + h * 32 + l:
    # nibble h of qs[g * 32 + l], sub-block 2g + h.   w = d*sc * q - dmin*min
    n32 = 2 * n16
    for b in range(w.size // QK_K):
        o, base = b * 144, b * QK_K
        d = _f16(row[o], row[o + 1])
        dmin = _f16(row[o + 2], row[o + 3])
        for g in range(4):
            for h in range(2):
                sc, mn = _scale_min_k4(row, o + 4, 2 * g + h)
                dl = d * np.float32(sc)
                ml = dmin * np.float32(mn)
                src = o + 16 + g * 32
                dst = base + g * 64 + h * 32
                for l in range(n32):
                    q = (np.int32(row[src + l]) >> (4 * h)) & 15
                    w[dst + l] = dl * np.float32(q) - ml


@compile_kernel
def _row_q5_k(row, w, n16):
    # d | dmin | scales[12] | qh[32] | qs[128]: Q4_K plus a fifth bit, bit j of qh[l] for
    # value j * 32 + l.                       w = d*sc * q - dmin*min
    n32 = 2 * n16
    for b in range(w.size // QK_K):
        o, base = b * 176, b * QK_K
        d = _f16(row[o], row[o + 1])
        dmin = _f16(row[o + 2], row[o + 3])
        for g in range(4):
            for h in range(2):
                j = 2 * g + h
                sc, mn = _scale_min_k4(row, o + 4, j)
                dl = d * np.float32(sc)
                ml = dmin * np.float32(mn)
                src = o + 48 + g * 32
                dst = base + j * 32
                for l in range(n32):
                    q = ((np.int32(row[src + l]) >> (4 * h)) & 15) | \
                        (((np.int32(row[o + 16 + l]) >> j) & 1) << 4)
                    w[dst + l] = dl * np.float32(q) - ml


@compile_kernel
def _row_q6_k(row, w, n16):
    # ql[128] | qh[64] | scales[16] (int8, one per 16 values) | d. Value g * 128 + r: low nibble
    # r // 64 of ql[g * 64 + r % 64], high 2 bits field r // 32 of qh[g * 32 + r % 32].
    #                                       w = d*sc * (q - 32)
    for b in range(w.size // QK_K):
        o, base = b * 210, b * QK_K
        d = _f16(row[o + 208], row[o + 209])
        for g in range(2):
            for s in range(4):
                for half in range(2):
                    k = g * 8 + s * 2 + half
                    dl = d * np.float32(np.int8(row[o + 192 + k]))
                    src = o + g * 64 + (s % 2) * 32 + half * 16
                    shift = 4 * (s // 2)
                    hsrc = o + 128 + g * 32 + half * 16
                    dst = base + g * 128 + s * 32 + half * 16
                    for l in range(n16):
                        lo = (np.int32(row[src + l]) >> shift) & 15
                        hi = (np.int32(row[hsrc + l]) >> (2 * s)) & 3
                        w[dst + l] = dl * np.float32((lo | (hi << 4)) - 32)


@compile_kernel
def _row_f16(row, w, n16):
    # Three vectorisable passes over the row, in the integer and float views of w:
    # 1. move exponent and mantissa into float32 position, rebias the exponent (+112);
    # 2. exponent 31 (inf/nan) -> 255; exponent 0 (zero/subnormal): the rebias made them
    #    2**-14 * (1 + m/1024); subtracting 2**-14 leaves m * 2**-24 exactly, with no float32
    #    subnormal arithmetic (which flush-to-zero modes would break);
    # 3. the sign bit.
    h16 = row.view(np.uint16)
    wi = w.view(np.uint32)
    for k in range(w.size):
        h = np.uint32(h16[k])
        e = h & np.uint32(0x7C00)
        bits = ((h & np.uint32(0x7FFF)) << np.uint32(13)) + np.uint32(112 << 23)
        if e == np.uint32(0x7C00):
            bits += np.uint32(112 << 23)
        elif e == np.uint32(0):
            bits += np.uint32(1 << 23)
        wi[k] = bits
    magic = np.float32(2.0 ** -14)
    for k in range(w.size):
        if (h16[k] & np.uint16(0x7C00)) == np.uint16(0):
            w[k] = w[k] - magic
    for k in range(w.size):
        wi[k] = wi[k] | ((np.uint32(h16[k]) & np.uint32(0x8000)) << np.uint32(16))


@compile_kernel
def _row_bf16(row, w, n16):
    # bfloat16 is the top half of a float32
    h16 = row.view(np.uint16)
    wi = w.view(np.uint32)
    for k in range(w.size):
        wi[k] = np.uint32(h16[k]) << np.uint32(16)


@compile_kernel
def _row_f32(row, w, n16):
    f = row.view(np.float32)
    for k in range(w.size):
        w[k] = f[k]


@compile_kernel
def _decode_row(qtype, row, w, n16):
    """Decode one row of type ``qtype`` (its bytes ``row``) into float32 ``w``."""
    if qtype == _T_Q4_1:
        _row_q4_1(row, w, n16)
    elif qtype == _T_Q8_0:
        _row_q8_0(row, w, n16)
    elif qtype == _T_Q6_K:
        _row_q6_k(row, w, n16)
    elif qtype == _T_Q4_K:
        _row_q4_k(row, w, n16)
    elif qtype == _T_Q4_0:
        _row_q4_0(row, w, n16)
    elif qtype == _T_Q5_K:
        _row_q5_k(row, w, n16)
    elif qtype == _T_Q5_0:
        _row_q5_0(row, w, n16)
    elif qtype == _T_Q5_1:
        _row_q5_1(row, w, n16)
    elif qtype == _T_Q2_K:
        _row_q2_k(row, w, n16)
    elif qtype == _T_Q3_K:
        _row_q3_k(row, w, n16)
    elif qtype == _T_F16:
        _row_f16(row, w, n16)
    elif qtype == _T_BF16:
        _row_bf16(row, w, n16)
    else:
        _row_f32(row, w, n16)


# ----------------------------------------------------------------------------- drivers
@compile_kernel(inline=True)
def _dot_rows(w, x, y, r, acc):
    """``y[:, r] = x @ w`` for one decoded weight row ``w`` (float32, length k) and every row of
    ``x`` (n, k), each in lanes (``acc``: LANES float32 of scratch); ``w`` is in the L1 cache
    by then. The weight-only int4 kernels share it."""
    for i in range(x.shape[0]):
        y[i, r] = lane_dot(w, x[i], acc)


@compile_kernel
def _matvec_rows(qtype, blocks, x, y, r0, r1, n16):
    """y[:, r] = x @ w_r for rows r0 <= r < r1, each row decoded once into an L1-sized buffer."""
    k = x.shape[1]
    w = np.empty(k, dtype=np.float32)
    acc = np.empty(LANES, dtype=np.float32)
    for r in range(r0, r1):
        _decode_row(qtype, blocks[r], w, n16)
        _dot_rows(w, x, y, r, acc)


@compile_kernel(parallel=True)
def _matvec_parallel(qtype, blocks, x, y, n_chunks, n16):
    rows = blocks.shape[0]
    step = (rows + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        _matvec_rows(qtype, blocks, x, y, c * step, min(rows, (c + 1) * step), n16)


@compile_kernel
def _dequant_rows(qtype, blocks, r0, r1, out, n16):
    """out[r - r0] = row r of the weight, decoded, for r0 <= r < r1."""
    for r in range(r0, r1):
        _decode_row(qtype, blocks[r], out[r - r0], n16)


@compile_kernel(parallel=True)
def _dequant_parallel(qtype, blocks, r0, r1, out, n_chunks, n16):
    step = (r1 - r0 + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        a = r0 + c * step
        _dequant_rows(qtype, blocks, a, min(r1, a + step), out[a - r0:], n16)


# ----------------------------------------------------------------------------- entry points
def _qtype(qtype) -> int:
    """The GGML type ``qtype`` (a GGMLType, its number or its name) as a number."""
    try:
        t = GGMLType[qtype] if isinstance(qtype, str) else GGMLType(int(qtype))
    except (KeyError, ValueError, TypeError):
        t = None
    if t not in MATMUL_TYPES:
        shown = t.name if t is not None else (repr(qtype) if isinstance(qtype, str)
                                              else type_name(int(qtype)))
        raise UnsupportedQuantTypeError(
            f"quantized_matmul: GGML type {shown} is not "
            f"supported; supported: {', '.join(m.name for m in MATMUL_TYPES)}. Dequantize the "
            f"weight (gradient.quant.dequantize) and use a float matmul instead")
    return int(t)


def _row_bytes(qtype: int, in_features: int) -> int:
    block, nbytes = BLOCK_SIZES[GGMLType(qtype)]
    if in_features % block:
        hint = f"; types with 32-value blocks (Q8_0, Q4_0 ...) fit {in_features}" \
            if block == QK_K and in_features % 32 == 0 else ""
        raise ShapeError(f"{type_name(qtype)} stores rows in blocks of {block} values, but "
                         f"in_features={in_features} is not a multiple of {block}: the weight "
                         f"cannot be {type_name(qtype)}{hint}")
    return in_features // block * nbytes


def _as_blocks(blocks, qtype: int, out_features: int, in_features: int) -> np.ndarray:
    """The weight's bytes as a read-only (out_features, row bytes) uint8 array, without a copy
    when ``blocks`` is contiguous (a memory-mapped array stays memory-mapped). Always read-only,
    so numba compiles each kernel for one array type only."""
    if isinstance(out_features, bool) or not isinstance(out_features, (int, np.integer)) or \
            isinstance(in_features, bool) or not isinstance(in_features, (int, np.integer)) or \
            out_features < 0 or in_features < 0:
        raise ShapeError(f"quantized_matmul: out_features and in_features must be non-negative "
                         f"ints, got {out_features!r} and {in_features!r}")
    row_bytes = _row_bytes(qtype, int(in_features))
    raw = np.asarray(blocks)
    if not raw.flags.c_contiguous:
        raw = np.ascontiguousarray(raw)
    raw = raw.reshape(-1).view(np.uint8)
    expected = int(out_features) * row_bytes
    if raw.size != expected:
        raise ShapeError(f"quantized_matmul: a {type_name(qtype)} weight of shape "
                         f"({out_features}, {in_features}) takes {expected} bytes "
                         f"({row_bytes} per row), got {raw.size}")
    raw = raw.reshape(int(out_features), row_bytes)
    if raw.flags.writeable:
        raw = raw.view()
        raw.flags.writeable = False
    return raw


def _threads(weights: int, minimum: int | None = None) -> int:
    """Threads for a kernel touching ``weights`` weights: 1 below ``minimum`` (default
    PARALLEL_MIN_WEIGHTS)."""
    if weights < (PARALLEL_MIN_WEIGHTS if minimum is None else minimum):
        return 1
    return numba.get_num_threads()


def _dequant_into(qtype: int, raw: np.ndarray, r0: int, r1: int, out: np.ndarray) -> None:
    n_threads = _threads((r1 - r0) * out.shape[1])
    if n_threads > 1:
        _dequant_parallel(qtype, raw, r0, r1, out, min(r1 - r0, n_threads), _N16)
    else:
        _dequant_rows(qtype, raw, r0, r1, out, _N16)


def dequantize_rows(blocks, qtype, out_features: int, in_features: int, start: int = 0,
                    stop: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``start:stop`` of a GGML weight as float32 (out_features, in_features) values.

    Bit-exact with ``gguf.quants.dequantize``; ``out`` (float32, C-contiguous, shape
    (stop - start, in_features)) receives the values when given.

    Example::

        >>> w = dequantize_rows(blocks, GGMLType.Q4_K, 4096, 4096, 0, 64)   # (64, 4096)
    """
    qtype = _qtype(qtype)
    raw = _as_blocks(blocks, qtype, out_features, in_features)
    stop = raw.shape[0] if stop is None else stop
    if not 0 <= start <= stop <= raw.shape[0]:
        raise ShapeError(f"dequantize_rows: rows {start}:{stop} are out of range for a weight "
                         f"with {raw.shape[0]} rows")
    shape = (stop - start, int(in_features))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ShapeError(f"dequantize_rows: out must be a C-contiguous float32 array of shape "
                         f"{shape}, got {out.dtype} {out.shape}")
    if out.size:
        _dequant_into(qtype, raw, start, stop, out)
    return out


@register("quant_matmul", "cpu", "numba")
def quantized_matmul(x, blocks, qtype, out_features: int, in_features: int) -> np.ndarray:
    """``x @ W.T`` in float32, where ``W`` (out_features, in_features) is a GGML tensor stored
    as ``blocks``, its raw bytes as in the GGUF file (any contiguous array: uint8 of shape
    (out_features, row bytes) as ``gguf.quants.quantize`` returns it, a flat memory map ...).

    ``x`` has shape (N, in_features) (or (in_features,), or (..., in_features)); the result has
    x's leading shape and out_features columns. For N <= :data:`SMALL_BATCH` each weight row is
    decoded once into a cache-sized buffer and dotted with the N rows of x; for larger N,
    tiles of rows are dequantized and multiplied with BLAS. Float32 accumulation.

    Raises :class:`~gradient.quant.ggml.UnsupportedQuantTypeError` for types not in
    :data:`MATMUL_TYPES`, :class:`~gradient.errors.ShapeError` for shapes that do not match.

    Example::

        >>> y = quantized_matmul(x, blocks, GGMLType.Q4_1, 1536, 576)   # x (1, 576) -> y (1, 1536)
    """
    qtype = _qtype(qtype)
    raw = _as_blocks(blocks, qtype, out_features, in_features)
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] != _in_features(raw, qtype):
        raise ShapeError(f"quantized_matmul: x of shape {x.shape} does not match a weight of "
                         f"shape ({out_features}, {in_features}): expected x of shape "
                         f"(N, {in_features})")
    y = _matmul_2d(x.reshape(-1, x.shape[-1]), raw, qtype)
    return y.reshape(x.shape[:-1] + (raw.shape[0],))


def _in_features(raw: np.ndarray, qtype: int) -> int:
    """in_features of a weight whose rows are ``raw.shape[1]`` bytes of type ``qtype``."""
    block, nbytes = BLOCK_SIZES[GGMLType(qtype)]
    return raw.shape[1] // nbytes * block


def _matmul_2d(x, raw: np.ndarray, qtype: int) -> np.ndarray:
    """``x @ W.T`` for x (N, in_features) of any float dtype and ``raw`` from _as_blocks:
    the path QuantizedLinear takes after checking its weight once."""
    m, k = raw.shape[0], _in_features(raw, qtype)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.flags.writeable:       # one array type for numba (see _as_blocks)
        x = x.view()
        x.flags.writeable = False
    n = x.shape[0]
    if n == 0 or m == 0 or k == 0:
        return np.zeros((n, m), dtype=np.float32)
    if qtype == _T_F32:         # already float32: BLAS on the bytes as they are
        return np.matmul(x, raw.view(np.float32).T)
    if n <= SMALL_BATCH:
        y = np.empty((n, m), dtype=np.float32)
        n_threads = _threads(m * k)
        if n_threads > 1:
            _matvec_parallel(qtype, raw, x, y, min(m, n_threads), _N16)
        else:
            _matvec_rows(qtype, raw, x, y, 0, m, _N16)
        return y
    # prefill: dequantized tiles of rows into BLAS
    return tiled_matmul(x, m, k, lambda r0, r1, w: _dequant_into(qtype, raw, r0, r1, w))


def tile_rows(m: int, k: int, multiple: int = 1) -> int:
    """Rows of a float32 tile of about :data:`TILE_BYTES` for a weight of m rows of k values:
    at least 16 (or ``multiple``), a multiple of ``multiple``, at most m (rounded up)."""
    return max(16 if multiple == 1 else multiple,
               min(m, TILE_BYTES // (4 * k)) // multiple * multiple)


def tiled_matmul(x: np.ndarray, m: int, k: int, dequant_into, rows: int | None = None):
    """``x @ W.T`` (n, m) for float32 x (n, k) and a weight W (m, k) that exists only as
    ``dequant_into(r0, r1, out)``, which writes rows r0:r1 of it as float32 into ``out``: one
    tile of ``rows`` rows (default :func:`tile_rows`) at a time, ``(tile, k) @ (k, n)`` with
    BLAS into contiguous rows of y.T. At most one tile of the float weight exists at a time;
    every quantized format's prefill path goes through here."""
    rows = tile_rows(m, k) if rows is None else rows
    buf = np.empty((rows, k), dtype=np.float32)
    yt = np.empty((m, x.shape[0]), dtype=np.float32)
    xt = x.T
    for r0 in range(0, m, rows):
        r1 = min(m, r0 + rows)
        w = buf[:r1 - r0]
        dequant_into(r0, r1, w)
        np.matmul(w, xt, out=yt[r0:r1])
    return np.ascontiguousarray(yt.T)


def tiled_matmul_t(g: np.ndarray, m: int, k: int, dequant_into, rows: int | None = None):
    """``g @ W`` (n, k) for float32 g (n, m), W given as for :func:`tiled_matmul`, tile by
    tile: the input gradient of that product."""
    out = np.zeros((g.shape[0], k), dtype=np.float32)
    if out.size == 0 or m == 0:
        return out
    rows = tile_rows(m, k) if rows is None else rows
    buf = np.empty((rows, k), dtype=np.float32)
    for r0 in range(0, m, rows):
        r1 = min(m, r0 + rows)
        w = buf[:r1 - r0]
        dequant_into(r0, r1, w)
        out += g[:, r0:r1] @ w
    return out


def quantized_matmul_t(g, blocks, qtype, out_features: int, in_features: int) -> np.ndarray:
    """``g @ W`` in float32 (W itself, not its transpose): g has shape (..., out_features), the
    result (..., in_features). This is the gradient of :func:`quantized_matmul` with respect to
    its input; it runs tile by tile (dequantized tiles of rows of W, BLAS), never holding all of
    W in float32.

    Example::

        >>> gx = quantized_matmul_t(grad_y, blocks, GGMLType.Q4_K, 4096, 4096)   # (N, 4096)
    """
    qtype = _qtype(qtype)
    raw = _as_blocks(blocks, qtype, out_features, in_features)
    g = np.asarray(g)
    if g.ndim == 0 or g.shape[-1] != raw.shape[0]:
        raise ShapeError(f"quantized_matmul_t: g of shape {g.shape} does not match a weight of "
                         f"shape ({out_features}, {in_features}): expected g of shape "
                         f"(N, {out_features})")
    out = _matmul_t_2d(g.reshape(-1, g.shape[-1]), raw, qtype)
    return out.reshape(g.shape[:-1] + (int(in_features),))


def _matmul_t_2d(g, raw: np.ndarray, qtype: int) -> np.ndarray:
    """``g @ W`` for g (N, out_features) and ``raw`` from _as_blocks."""
    m, k = raw.shape[0], _in_features(raw, qtype)
    g = np.ascontiguousarray(g, dtype=np.float32)
    if g.shape[0] == 0 or k == 0 or m == 0:
        return np.zeros((g.shape[0], k), dtype=np.float32)
    if qtype == _T_F32:
        return np.matmul(g, raw.view(np.float32))
    return tiled_matmul_t(g, m, k, lambda r0, r1, w: _dequant_into(qtype, raw, r0, r1, w))
