"""GGML weights repacked row-interleaved, and the matrix products that read them.

GGML stores a weight row by row, each row a string of blocks (scale, maybe a minimum, then the
quantized values). A matrix-vector product over that layout needs, for every block of every
row, a horizontal sum of 32 products before the block's scale applies: SIMD lanes would hold
the 32 values of one row. Repacked so that the lanes hold **rows** instead, the same work needs
no horizontal sum at all: each int32 lane of a vector accumulates its own row of W, four
values at a time, with one ``vpdpbusd`` (VNNI: 64 multiply-adds of bytes into 16 int32 sums;
:mod:`gradient.backends.cpu_simd`, which falls back to pmaddubsw/pmaddwd without VNNI). llama.cpp
repacks in the same spirit (its "CPU_REPACK" buffers).

The layout (:class:`InterleavedWeight`), for ``G = LANES`` rows per group:

* ``codes`` uint8 (groups, blocks, quads, G, 4): the 4 bytes of a row's lane hold four
  consecutive codes of its block, so one 64-byte load holds 16 rows' four codes -- what one
  ``vpdpbusd`` multiplies by four activations broadcast to every lane.
* ``kind="nibble"`` (Q4_0, Q4_1, Q4_K): 4 quads; byte ``j`` (``quads * 4 + t``) of a 32-value
  block holds value ``j`` in its low nibble and value ``j + 16`` in its high nibble (as in
  Q4_0); a Q4_K super-block becomes its eight 32-value sub-blocks.
* ``kind="byte"`` (Q8_0, Q5_0, Q5_1, Q5_K with 32-value blocks; Q2_K, Q3_K with 16-value
  blocks): ``block / 4`` quads, one value per byte, stored unsigned (``code + offset``, see
  below): the unsigned operand of ``vpdpbusd``.
* ``kind="six"`` (Q6_K, 16-value blocks of 6-bit codes): 3 quads, 12 bytes a block as in the
  file. Byte ``j`` of quads 0 and 1 holds the low four bits of value ``j`` in its low nibble and
  of value ``j + 8`` in its high nibble; byte ``t`` of quad 2 the top two bits of values
  ``t``, ``t + 4``, ``t + 8``, ``t + 12`` (bits 0-1, 2-3, 4-5, 6-7). A kernel joins them into
  the byte codes as it reads them (:func:`~gradient.backends.cpu_simd.with_top_bits`).
* ``scale`` and ``minimum`` float16, kept as their uint16 bits as in the file (groups, blocks,
  G), widened to float32 as a kernel reads them: the value of a weight is
  ``scale * (code - offset) + minimum`` with ggml's own rounding (``offset`` 8 for Q4_0, 128
  for Q8_0, 16 for Q5_0, 4 for Q3_K, 32 for Q6_K, else 0; ``minimum`` is absent for the types
  without one).
* The k-quants keep ggml's two levels: ``scale`` and ``minimum`` hold each super-block's
  ``d`` and ``dmin`` (groups, super-blocks, G), and ``sub`` int8 (groups, blocks, 2, G) each
  block's integer scale and min; the kernels form ggml's float32 products ``d * sc`` and
  ``-(dmin * m)`` as they read a block, so dequantizing the repacked weight is still
  bit-exact with ``gguf.quants.dequantize``.
* Weights quantized in groups of consecutive values (gradient's weight-only int4 and int8,
  GPTQ's, AWQ's; :meth:`InterleavedWeight.from_groups`) take the Q4_0 and Q8_0 layouts with
  each block's scale its group's, or with zero points Q4_1's codes and ``sub`` int8 (groups,
  blocks, G) holding each block's zero point z: the minimum is ``-(scale * z)``, formed in
  float32 as a kernel reads the block (exact, as a float16 minimum would not be). Their
  scales keep the dtype they come in (a checkpoint's bfloat16 or float32 too, kept as
  gradient.backends.cpu_half's bits), and dequantizing gives ``(q - z) * scale`` exactly.

Repacking costs memory over GGML's layout only where a type packs codes tighter than a nibble
or a byte: one byte per value for the 5-bit types and Q2_K, Q3_K, and the k-quants' 6-bit
block scales and mins as whole bytes (Q4_K 148 bytes per 256 weights instead of 144). Q4_0,
Q4_1, Q8_0 and Q6_K take exactly their file's bytes.

Two products read the repacked weight:

* :func:`interleaved_matmul` with ``activations="int8"`` -- what llama.cpp does: each 32 values
  of a row of ``x`` are quantized to int8 with one scale (:func:`quantize_activations`,
  llama.cpp's ``Q8_1``: scale ``max|x| / 127`` stored as float16, and the float16 sum of the
  block), the dot products are integer sums per block, and the scales apply once per block.
  Fast, and close to llama.cpp's own logits; not exact (the activations lose ~1% precision).
* ``activations="float32"`` -- exact weights times float32 activations: per block, the
  float32 sum of its codes (minus their offset, small integers) times x, then its scale and
  minimum applied as the int8 products apply theirs; the same numbers as
  dequantize-then-matmul up to rounding order.

Any number of rows of ``x`` (a batch's decode step, a prompt) takes the same arithmetic per
row as one row: a prompt's logits are then those of its tokens decoded one at a time, bit for
bit, as in llama.cpp, whose prompt processing quantizes the activations too. Several rows
share each load of the weights: up to 8 rows of x go through 16 rows of W together, their
sums in registers (4 on machines with 16 vector registers), so the products of a few rows
cost little more than one's (see :func:`_tile`). Dequantized tiles stay for the backward
(:func:`interleaved_matmul_t`).

Example::

    >>> w = InterleavedWeight.from_blocks(blocks, GGMLType.Q4_1, 1536, 576)
    >>> y = interleaved_matmul(x, w)                      # x (1, 576) -> y (1, 1536)
    >>> w.dequantize()                                   # == gguf.quants.dequantize(...)
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numba
import numpy as np
from numba.core import types
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.extending import overload

from ..backends.cpu_compile import compile_kernel, compiled_already, in_threads
from ..backends.cpu_simd import (add_f32, add_i32, broadcast_4_bytes, broadcast_f32x16,
                                 bytes_as_f32, code_as_f32, fma_f32,
                                 broadcast_i32x16, dot4_u7_i8, dot4_u8_i8, high_nibbles,
                                 largest_magnitude, load_f16_as_f32x16, load_f32x16,
                                 load_i8_as_f32x16, load_i8x64, low_nibbles, mul_f32, neg_f32,
                                 prefetch, rint_f32, rounded_to_f16, store_f32x16,
                                 store_i32_as_i8, sum_i32, to_f32, to_i32, wide_registers,
                                 with_top_bits, zeros_f32x16, zeros_i32x16)
from ..backends.cpu_half import as_bits, load_bits_as_f32x16, widen
from ..backends.host_memory import pages_of_their_own
from ..errors import ArgumentValueError, ShapeError
from ..kernels.lowering import Lowered
from ..kernels.registry import prepares, register
from . import int8_numpy
from .code_layouts import BYTES, BYTES_16, LAYOUTS, NIBBLES, SIX_BITS, WHOLE_BYTES
from .ggml import GGMLType, UnsupportedQuantTypeError
from .matmul import (_as_blocks, _half_bits, _scale_min_k4, _threads, tile_rows,
                     tiled_matmul_t)

__all__ = ["InterleavedWeight", "interleaved_matmul", "int8_products", "quantize_activations",
           "dequantize_interleaved", "INTERLEAVED_TYPES", "LANES", "ACTIVATIONS"]

#: Rows interleaved per group: the 16 int32 lanes of a vector of sums (one 512-bit register, or
#: two of 256), so that each group's codes and scales are read as one sequential stream. The
#: kernels read it as a compile-time constant, not from the arrays' shapes: with the lane
#: loops' trip count known, LLVM vectorises them whole.
LANES = 16
#: Values of ``activations=``: int8 per 32 values (llama.cpp's), exact float32, or int8 with
#: one scale a row (SmoothQuant's dynamic per-token activations).
ACTIVATIONS = ("int8", "float32", "int8_per_token")

# type -> (kind, values per scale, offset, has a minimum, blocks per super-block: the
# k-quants' scales are a float16 per super-block times a small integer per block). The offset
# makes every stored code unsigned; all but Q8_0's are then below 128 (see cpu_simd.dot4_u7_i8).
_FORMATS = {
    GGMLType.Q4_0: ("nibble", 32, 8, False, 0),
    GGMLType.Q4_1: ("nibble", 32, 0, True, 0),
    GGMLType.Q4_K: ("nibble", 32, 0, True, 8),
    GGMLType.Q8_0: ("byte", 32, 128, False, 0),
    GGMLType.Q5_0: ("byte", 32, 16, False, 0),
    GGMLType.Q5_1: ("byte", 32, 0, True, 0),
    GGMLType.Q5_K: ("byte", 32, 0, True, 8),
    GGMLType.Q2_K: ("byte", 16, 0, True, 16),
    GGMLType.Q3_K: ("byte", 16, 4, False, 16),
    GGMLType.Q6_K: ("six", 16, 32, False, 16),
}
#: The GGML types :class:`InterleavedWeight` repacks (the float types are multiplied as they are).
INTERLEAVED_TYPES = tuple(_FORMATS)

# The inner trip counts (16, 32) are passed as arguments, not literals, for the reason given in
# gradient.quant.matmul (_N16): a constant count gets the loop fully unrolled, not vectorised.
_N16, _N32 = 16, 32

# ----------------------------------------------------------------------------- repacking
# Each packer reads the GGML rows of ``raw`` (rows, row bytes) and writes, for row r, lane
# r % G of group r // G; every scale and minimum of a block is a float16, kept as its bits.
# Offsets are bytes within a block, as in gradient.quant.matmul.

#: The dtypes a grouped weight's scales keep (:meth:`InterleavedWeight.from_groups`).
_SCALE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16))

@compile_kernel
def _pack_q4_0(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 18
            scale[g, b, lane] = _half_bits(row[o], row[o + 1])
            for j in range(n16):
                codes[g, b, j >> 2, lane, j & 3] = row[o + 2 + j]


@compile_kernel
def _pack_q4_1(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 20
            scale[g, b, lane] = _half_bits(row[o], row[o + 1])
            minimum[g, b, lane] = _half_bits(row[o + 2], row[o + 3])
            for j in range(n16):
                codes[g, b, j >> 2, lane, j & 3] = row[o + 4 + j]


@compile_kernel
def _pack_q4_k(raw, codes, scale, minimum, sub, n16):
    # sub-block 2q + h of a super-block: nibble h of qs[32q .. 32q + 31]; repacked as Q4_0's
    # nibble order (value j low, value j + 16 high)
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 8):
            o = sb * 144
            scale[g, sb, lane] = _half_bits(row[o], row[o + 1])
            minimum[g, sb, lane] = _half_bits(row[o + 2], row[o + 3])
            for q in range(4):
                for h in range(2):
                    b = sb * 8 + 2 * q + h
                    sc, mn = _scale_min_k4(row, o + 4, 2 * q + h)
                    sub[g, b, 0, lane], sub[g, b, 1, lane] = sc, mn
                    src = o + 16 + q * 32
                    for j in range(n16):
                        lo = (np.int32(row[src + j]) >> (4 * h)) & 15
                        hi = (np.int32(row[src + 16 + j]) >> (4 * h)) & 15
                        codes[g, b, j >> 2, lane, j & 3] = np.uint8(lo | (hi << 4))


@compile_kernel
def _pack_q8_0(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 34
            scale[g, b, lane] = _half_bits(row[o], row[o + 1])
            for j in range(2 * n16):
                codes[g, b, j >> 2, lane, j & 3] = row[o + 2 + j] ^ np.uint8(128)


@compile_kernel
def _u32(row, k):
    return (np.int64(row[k]) | (np.int64(row[k + 1]) << 8) | (np.int64(row[k + 2]) << 16)
            | (np.int64(row[k + 3]) << 24))


@compile_kernel
def _pack_q5_0(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 22
            scale[g, b, lane] = _half_bits(row[o], row[o + 1])
            qh = _u32(row, o + 2)
            for j in range(n16):
                q = np.int32(row[o + 6 + j])
                lo = (q & 15) | np.int32(((qh >> j) & 1) << 4)
                hi = (q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
                codes[g, b, j >> 2, lane, j & 3] = np.uint8(lo)
                codes[g, b, (j + 16) >> 2, lane, j & 3] = np.uint8(hi)


@compile_kernel
def _pack_q5_1(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 24
            scale[g, b, lane] = _half_bits(row[o], row[o + 1])
            minimum[g, b, lane] = _half_bits(row[o + 2], row[o + 3])
            qh = _u32(row, o + 4)
            for j in range(n16):
                q = np.int32(row[o + 8 + j])
                lo = (q & 15) | np.int32(((qh >> j) & 1) << 4)
                hi = (q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
                codes[g, b, j >> 2, lane, j & 3] = np.uint8(lo)
                codes[g, b, (j + 16) >> 2, lane, j & 3] = np.uint8(hi)


@compile_kernel
def _pack_q5_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 8):
            o = sb * 176
            scale[g, sb, lane] = _half_bits(row[o], row[o + 1])
            minimum[g, sb, lane] = _half_bits(row[o + 2], row[o + 3])
            for q in range(4):
                for h in range(2):
                    j = 2 * q + h
                    b = sb * 8 + j
                    sc, mn = _scale_min_k4(row, o + 4, j)
                    sub[g, b, 0, lane], sub[g, b, 1, lane] = sc, mn
                    for l in range(2 * n16):
                        v = ((np.int32(row[o + 48 + q * 32 + l]) >> (4 * h)) & 15) | \
                            (((np.int32(row[o + 16 + l]) >> j) & 1) << 4)
                        codes[g, b, l >> 2, lane, l & 3] = np.uint8(v)


@compile_kernel
def _pack_q2_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 84
            scale[g, sb, lane] = _half_bits(row[o + 80], row[o + 81])
            minimum[g, sb, lane] = _half_bits(row[o + 82], row[o + 83])
            for q in range(2):
                for s in range(4):
                    for half in range(2):
                        k = q * 8 + s * 2 + half
                        b = sb * 16 + k
                        sc = np.int32(row[o + k])
                        sub[g, b, 0, lane], sub[g, b, 1, lane] = sc & 15, sc >> 4
                        src = o + 16 + q * 32 + half * 16
                        for l in range(n16):
                            codes[g, b, l >> 2, lane, l & 3] = np.uint8(
                                (np.int32(row[src + l]) >> (2 * s)) & 3)


@compile_kernel
def _pack_q3_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 110
            scale[g, sb, lane] = _half_bits(row[o + 108], row[o + 109])
            for q in range(2):
                for s in range(4):
                    for half in range(2):
                        k = q * 8 + s * 2 + half
                        b = sb * 16 + k
                        low = (np.int32(row[o + 96 + k % 8]) >> (4 * (k // 8))) & 15
                        high = (np.int32(row[o + 104 + k % 4]) >> (2 * (k // 4))) & 3
                        sub[g, b, 0, lane] = (low | (high << 4)) - 32
                        src = o + 32 + q * 32 + half * 16
                        hsrc = o + half * 16
                        for l in range(n16):
                            ql = (np.int32(row[src + l]) >> (2 * s)) & 3
                            hbit = (np.int32(row[hsrc + l]) >> (q * 4 + s)) & 1
                            codes[g, b, l >> 2, lane, l & 3] = np.uint8(ql | (hbit << 2))


@compile_kernel
def _pack_q6_k(raw, codes, scale, minimum, sub, n16):
    # the 6-bit code of value l of sub-block k (0 .. 15): 4 low bits from ql, 2 from qh, as
    # ggml lays them out; stored in the "six" planes (see the module's docstring)
    G = LANES
    six = np.empty(16, np.int32)
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 210
            scale[g, sb, lane] = _half_bits(row[o + 208], row[o + 209])
            for q in range(2):
                for s in range(4):
                    for half in range(2):
                        k = q * 8 + s * 2 + half
                        b = sb * 16 + k
                        sub[g, b, 0, lane] = np.int8(row[o + 192 + k])
                        src = o + q * 64 + (s % 2) * 32 + half * 16
                        hsrc = o + 128 + q * 32 + half * 16
                        for l in range(n16):
                            lo = (np.int32(row[src + l]) >> (4 * (s // 2))) & 15
                            hi = (np.int32(row[hsrc + l]) >> (2 * s)) & 3
                            six[l] = lo | (hi << 4)
                        for j in range(8):
                            codes[g, b, j >> 2, lane, j & 3] = np.uint8(
                                (six[j] & 15) | ((six[j + 8] & 15) << 4))
                        for t in range(4):
                            codes[g, b, 2, lane, t] = np.uint8(
                                (six[t] >> 4) | ((six[t + 4] >> 4) << 2)
                                | ((six[t + 8] >> 4) << 4) | ((six[t + 12] >> 4) << 6))


_PACKERS = {GGMLType.Q4_0: _pack_q4_0, GGMLType.Q4_1: _pack_q4_1, GGMLType.Q4_K: _pack_q4_k,
            GGMLType.Q8_0: _pack_q8_0, GGMLType.Q5_0: _pack_q5_0, GGMLType.Q5_1: _pack_q5_1,
            GGMLType.Q5_K: _pack_q5_k, GGMLType.Q2_K: _pack_q2_k, GGMLType.Q3_K: _pack_q3_k,
            GGMLType.Q6_K: _pack_q6_k}


@dataclass(frozen=True, eq=False)
class InterleavedWeight:
    """A GGML weight of shape (out_features, in_features), repacked with ``LANES`` rows
    interleaved (see the module docstring for the layout). Build it with :meth:`from_blocks`.

    Example::

        >>> w = InterleavedWeight.from_blocks(reader.raw("blk.0.ffn_up.weight"), "Q4_1", 1536, 576)
        >>> w.nbytes, w.dequantize().shape
        (663552, (1536, 576))
    """

    qtype: GGMLType
    out_features: int
    in_features: int
    kind: str                    # "nibble", "six" or "byte"
    block: int                   # values per scale: 32 or 16
    offset: int                  # subtracted from the stored codes (see _FORMATS)
    codes: np.ndarray
    scale: np.ndarray            # per block; a k-quant's: per super-block (its d)
    minimum: np.ndarray          # the same, (0, 0, 0) when the type has none
    sub: np.ndarray | None       # a k-quant's integer scale and min per block, else None

    @classmethod
    def from_blocks(cls, blocks, qtype, out_features: int, in_features: int) -> "InterleavedWeight":
        """Repack the GGML bytes ``blocks`` (any contiguous array of the tensor's bytes, as
        :class:`~gradient.quant.QuantizedLinear` takes them) of one of
        :data:`INTERLEAVED_TYPES`. Rows past the last whole group are padded with zeros."""
        qtype = GGMLType(int(qtype)) if not isinstance(qtype, str) else GGMLType[qtype]
        if qtype not in _FORMATS:
            raise UnsupportedQuantTypeError(
                f"InterleavedWeight: {qtype.name} is not repacked; types: "
                f"{', '.join(t.name for t in INTERLEAVED_TYPES)}")
        raw = _as_blocks(blocks, int(qtype), out_features, in_features)
        kind, block, offset, has_min, per_super = _FORMATS[qtype]
        groups = -(-int(out_features) // LANES)
        n_blocks = int(in_features) // block
        quads = {"nibble": 4, "six": 3}.get(kind, block // 4)
        n_scales = n_blocks // per_super if per_super else n_blocks
        # long-lived: on pages of their own, outside the heap (see pages_of_their_own)
        codes = pages_of_their_own((groups, n_blocks, quads, LANES, 4), np.uint8)
        scale = pages_of_their_own((groups, n_scales, LANES), np.uint16)     # float16 bits
        minimum = pages_of_their_own((groups, n_scales, LANES) if has_min else (0, 0, 0),
                                     np.uint16)
        sub = pages_of_their_own((groups, n_blocks, 1 + has_min, LANES), np.int8) \
            if per_super else None
        if raw.size:
            _PACKERS[qtype](raw, codes, scale, minimum, sub, _N16)
        return cls(qtype, int(out_features), int(in_features), kind, block, offset,
                   codes, scale, minimum, sub)

    @classmethod
    def from_groups(cls, codes, scales, zeros, bits: int, in_features: int) -> "InterleavedWeight":
        """Repack a weight quantized in groups of consecutive values along its rows, as
        :class:`~gradient.quant.weight_only.PackedWeight` holds it (the scheme of GPTQ and AWQ):

        * ``codes``: for ``bits=4`` uint8 (out_features, in_features / 2), two codes a byte in
          blocks of 32 as Q4_0 packs them (byte j: code j low, code j + 16 high), stored
          offset by 8 when there are no zero points; for ``bits=8`` int8 (out_features,
          in_features);
        * ``scales``: float16, bfloat16 or float32 (out_features, groups), kept in their
          dtype (a checkpoint's scales are read as they are stored); ``zeros``: the uint8
          zero points of the same shape (4 bits; up to 16, which GPTQ's original format
          gives a zero point of 0), or None (symmetric).

        A group is a whole number of 32-value blocks, and each block takes its group's scale:
        a weight ``(q - z) * s`` is then Q4_0's arithmetic (symmetric int4, ``z = 8``), Q8_0's
        (int8), or, with zero points, Q4_1's with the minimum ``-(s * z)``, which a kernel
        forms from the block's scale and its zero point (kept in ``sub``, int8 (groups,
        blocks, LANES)) as it reads the block: exact in float32, as a float16 minimum would
        not be. The products then read it at the speed of the GGML types, and dequantizing
        gives ``(q - z) * s`` bit for bit. Bits a weight: 4.5 (symmetric int4), 4.75 (zero
        points), 8.5 (int8).

        Example: ``InterleavedWeight.from_groups(p.qweight, p.scales, p.zeros, 4, 576)``
        """
        if bits not in (4, 8) or (bits == 8 and zeros is not None):
            raise ArgumentValueError(
                f"InterleavedWeight.from_groups: expected 4 bits (with or without "
                f"zero points) or symmetric 8 bits, got bits={bits!r}")
        k = int(in_features)
        codes = np.asarray(codes).view(np.uint8)
        scales = np.asarray(scales)
        if scales.dtype not in _SCALE_DTYPES:
            scales = scales.astype(np.float16)
        m = codes.shape[0]
        n_blocks = k // 32
        if (k % 32 or codes.shape != (m, k * bits // 8) or scales.ndim != 2
                or scales.shape[0] != m or not scales.shape[1]
                or n_blocks % scales.shape[1]):
            raise ShapeError(f"InterleavedWeight.from_groups: codes {codes.shape} and scales "
                             f"{scales.shape} are not a {bits}-bit ({m}, {k}) weight in groups "
                             f"of whole 32-value blocks")
        per = n_blocks // scales.shape[1]           # blocks a group
        groups = -(-m // LANES)
        quads = 4 if bits == 4 else 8

        def interleaved(per_row, width, dtype):
            """(m, ...) rows -> (groups, blocks, [width,] LANES, ...) on pages of their own."""
            rows = np.zeros((groups * LANES,) + per_row.shape[1:], dtype)
            rows[:m] = per_row
            shape = (groups, n_blocks, quads, LANES, 4) if width else (groups, n_blocks, LANES)
            out = pages_of_their_own(shape, dtype)
            if width:
                out[...] = rows.reshape(groups, LANES, n_blocks, quads, 4).transpose(0, 2, 3, 1, 4)
            else:
                out[...] = rows.reshape(groups, LANES, n_blocks).transpose(0, 2, 1)
            return out

        stored = codes if bits == 4 else codes ^ np.uint8(128)      # Q8_0's unsigned codes
        packed_codes = interleaved(stored.reshape(m, n_blocks, quads * 4), True, np.uint8)
        bits_ = as_bits(np.ascontiguousarray(np.repeat(scales, per, axis=1)))
        scale = interleaved(bits_, False, bits_.dtype)
        sub = None
        if zeros is not None:
            zeros = np.asarray(zeros)
            if zeros.shape != scales.shape or (zeros.size and zeros.max() > 16):
                raise ArgumentValueError(
                    f"InterleavedWeight.from_groups: expected zero points 0..16 "
                    f"of the scales' shape {scales.shape}, got {zeros.shape}")
            sub = interleaved(np.repeat(zeros.astype(np.int8), per, axis=1), False, np.int8)
        qtype = (GGMLType.Q8_0 if bits == 8 else GGMLType.Q4_1 if zeros is not None
                 else GGMLType.Q4_0)
        kind, block, offset = ("byte", 32, 128) if bits == 8 else ("nibble", 32,
                                                                    0 if zeros is not None else 8)
        return cls(qtype, m, k, kind, block, offset, packed_codes, scale,
                   np.zeros((0, 0, 0), np.uint16), sub)

    def row_blocks(self) -> tuple:
        """The inverse of the repacking, for the formats that give every 32-value block its
        own factors (not the k-quants): ``(codes, scales, zero_points)`` with ``codes`` the
        row-major bytes of each block (uint8 (out_features, blocks, bytes a block): nibbles as
        in Q4_0, or a byte per code offset by 128), ``scales`` (out_features, blocks) in
        their dtype (float16, bfloat16 or float32)
        and ``zero_points`` int8 of the same shape (None unless built by
        :meth:`from_groups` with zero points).

        Example: ``codes, scales, zeros = w.row_blocks()``
        """
        if self.kind == "six" or (self.sub is not None and self.sub.ndim != 3):
            raise UnsupportedQuantTypeError(f"InterleavedWeight.row_blocks: {self.qtype.name}'s "
                                            f"blocks share super-block scales")
        m, (groups, n_blocks, quads) = self.out_features, self.codes.shape[:3]

        def rows(a):
            if a.ndim == 5:
                return a.transpose(0, 3, 1, 2, 4).reshape(groups * LANES, n_blocks, quads * 4)[:m]
            return a.transpose(0, 2, 1).reshape(groups * LANES, n_blocks)[:m]
        return (rows(self.codes), int8_numpy.as_floats(rows(self.scale)),
                None if self.sub is None else rows(self.sub))

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features

    @property
    def has_minimum(self) -> bool:
        """Whether a block's value has a minimum added (``scale * code + minimum``): stored,
        or formed from a zero point (:meth:`from_groups`)."""
        return self.minimum.size > 0 or (self.sub is not None and self.sub.ndim == 3)

    @property
    def nbytes(self) -> int:
        """Bytes held: codes, scales and minimums."""
        return int(self.codes.nbytes + self.scale.nbytes + self.minimum.nbytes
                   + (0 if self.sub is None else self.sub.nbytes))

    def block_factors(self) -> tuple:
        """``(scale, minimum)`` of every block as float32 (groups, blocks, LANES), the values
        the kernels multiply by (``minimum`` None for types without one)."""
        return int8_numpy.block_factors(self.scale, self.minimum, self.sub, self.has_minimum)

    def dequantize(self, start: int = 0, stop: int | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` as float32, bit-exact with ``gguf.quants.dequantize``."""
        stop = self.out_features if stop is None else stop
        if not 0 <= start <= stop <= self.out_features:
            raise ShapeError(f"InterleavedWeight.dequantize: rows {start}:{stop} are out of "
                             f"range for a weight with {self.out_features} rows")
        if out is None:
            out = np.empty((stop - start, self.in_features), np.float32)
        dequantize_interleaved(self, start, stop, out)
        return out

    def rows(self, ids) -> np.ndarray:
        """The rows ``ids`` (any int array, values in [0, out_features)) as float32 of shape
        ``ids.shape + (in_features,)``: an embedding lookup, bit-exact."""
        ids = np.asarray(ids)
        flat = ids.reshape(-1).astype(np.int64, copy=False)
        out = np.empty((flat.size, self.in_features), np.float32)
        if flat.size:
            _gather_rows(self.codes, self.scale, self.minimum, self.sub, self.has_minimum,
                         self.offset, self.kind == "nibble", self.block, flat, out)
        return out.reshape(ids.shape + (self.in_features,))


# ----------------------------------------------------------------------------- dequantizing
@compile_kernel(inline=True)
def _super_block(b, sub, scale):
    """The super-block of block ``b`` of a k-quant: 8 blocks of 32 values or 16 of 16 a
    super-block (a shift: an integer division per block cost as much as the block's sums)."""
    return b >> 3 if sub.shape[1] == 8 * scale.shape[1] else b >> 4


def _zero_points(sub) -> bool:
    """Whether the numba type of a weight's ``sub`` is the zero points of
    :meth:`InterleavedWeight.from_groups` (int8, 3 dimensions; a k-quant's has 4)."""
    return isinstance(sub, types.Array) and sub.ndim == 3


def _block_offset(sub, offset, g, b, lane):
    """In compiled kernels: what the codes of lane ``lane`` of block ``b`` of group ``g`` are
    offset by, the type's ``offset`` or the block's zero point (:meth:`InterleavedWeight.
    from_groups`): dequantizing computes ``scale * (q - offset)`` and so ``(q - z) * scale``
    exactly, whatever the scales' dtype."""
    raise NotImplementedError("_block_offset runs in compiled kernels only")


@overload(_block_offset, inline="always")
def _block_offset_typed(sub, offset, g, b, lane):
    if _zero_points(sub):
        return lambda sub, offset, g, b, lane: np.int32(sub[g, b, lane])
    return lambda sub, offset, g, b, lane: np.int32(offset)


def _factors(scale, minimum, sub, has_min, g, b, lane):
    """``(scale, minimum)`` of lane ``lane`` of block ``b`` of group ``g``, in compiled kernels:
    as stored (``sub`` None), or for a k-quant its super-block's ``d`` times the block's
    integer scale and ``-(dmin * m)``: ggml's own float32 products (the minimum is 0 without
    ``has_min``, and for zero points, which :func:`_block_offset` gives). Which is decided
    when a kernel compiles, by ``sub``'s type."""
    raise NotImplementedError("_factors runs in compiled kernels only")


@overload(_factors, inline="always")
def _factors_typed(scale, minimum, sub, has_min, g, b, lane):
    if _zero_points(sub):     # the zero point is the block's offset (see _block_offset)
        return lambda scale, minimum, sub, has_min, g, b, lane: (widen(scale[g, b, lane]),
                                                                  np.float32(0))
    if sub is types.none:
        def stored(scale, minimum, sub, has_min, g, b, lane):
            return widen(scale[g, b, lane]), (widen(minimum[g, b, lane]) if has_min
                                              else np.float32(0))
        return stored

    def two_levels(scale, minimum, sub, has_min, g, b, lane):
        sb = _super_block(b, sub, scale)
        s = widen(scale[g, sb, lane]) * np.float32(sub[g, b, 0, lane])
        if not has_min:
            return s, np.float32(0)
        return s, -(widen(minimum[g, sb, lane]) * np.float32(sub[g, b, 1, lane]))
    return two_levels


@compile_kernel(inline=True)
def _six_code(codes, g, b, i, lane):
    """The 6-bit code of value ``i`` of a "six" block (see the module's docstring)."""
    j = i & 7
    c = np.int32(codes[g, b, j >> 2, lane, j & 3])
    low = (c & 15) if i < 8 else (c >> 4)
    return low | (((np.int32(codes[g, b, 2, lane, i & 3]) >> (2 * (i >> 2))) & 3) << 4)


@compile_kernel(inline=True)
def _value(codes, s, m, has_min, offset, nibble, g, b, i, lane):
    """Value ``i`` of block ``b`` of row ``g * G + lane``, whose block has the scale ``s`` and
    minimum ``m`` (:func:`_factors`), as ggml rounds it."""
    if nibble:
        j = i & 15
        c = np.int32(codes[g, b, j >> 2, lane, j & 3])
        q = (c & 15) if i < 16 else (c >> 4)
    elif codes.shape[2] == 3:
        q = _six_code(codes, g, b, i, lane)
    else:
        q = np.int32(codes[g, b, i >> 2, lane, i & 3])
    v = s * np.float32(q - offset)
    if has_min:
        v = v + m
    return v


@compile_kernel
def _dequant_groups(codes, scale, minimum, sub, has_min, offset, nibble, block, r0, r1, out):
    G = LANES
    for r in range(r0, r1):
        g, lane = r // G, r % G
        for b in range(codes.shape[1]):
            s, m = _factors(scale, minimum, sub, has_min, g, b, lane)
            off = _block_offset(sub, offset, g, b, lane)
            for i in range(block):
                out[r - r0, b * block + i] = _value(codes, s, m, has_min, off, nibble, g, b,
                                                    i, lane)


@compile_kernel(parallel=True)
def _dequant_parallel(codes, scale, minimum, sub, has_min, offset, nibble, block, r0, r1, out,
                      n_chunks):
    step = (r1 - r0 + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        a = r0 + c * step
        b = min(r1, a + step)
        _dequant_groups(codes, scale, minimum, sub, has_min, offset, nibble, block, a, b,
                        out[a - r0:b - r0])


@compile_kernel
def _gather_rows(codes, scale, minimum, sub, has_min, offset, nibble, block, ids, out):
    G = LANES
    for t in range(ids.size):
        g, lane = ids[t] // G, ids[t] % G
        for b in range(codes.shape[1]):
            s, m = _factors(scale, minimum, sub, has_min, g, b, lane)
            off = _block_offset(sub, offset, g, b, lane)
            for i in range(block):
                out[t, b * block + i] = _value(codes, s, m, has_min, off, nibble, g, b, i,
                                               lane)


def dequantize_interleaved(w: InterleavedWeight, r0: int, r1: int, out: np.ndarray) -> None:
    """Rows ``r0:r1`` of ``w`` into ``out`` (float32, (r1 - r0, in_features)), bit-exact."""
    args = (w.codes, w.scale, w.minimum, w.sub, w.has_minimum, w.offset, w.kind == "nibble",
            w.block)
    n_threads = _threads((r1 - r0) * w.in_features)
    if n_threads > 1:
        _dequant_parallel(*args, r0, r1, out, min(r1 - r0, n_threads))
    else:
        _dequant_groups(*args, r0, r1, out)


# ----------------------------------------------------------------------------- activations
@compile_kernel
def _quantize_rows(x, xq, xd, xs, xs16, xsum, xsum16, per_token):
    """The rows of x (contiguous, k a multiple of 32) quantized per 32 values, 16 lanes at a
    time: each value's operations are the scalar ones (``x * inv``, ``rint``), and a block's
    largest magnitude and integer sums are exact in any order (a NaN makes the block's scale
    NaN, as in NumPy: NaN in, NaN out). ``per_token``: with one scale a row instead,
    ``max|x_row| / 127`` (SmoothQuant's dynamic per-token activations), kept in float32 (each
    block of the row repeats it, and its sums are not rounded to float16)."""
    n, k = x.shape
    for i in range(n):
        row_max = np.float32(0.0)
        if per_token:
            for b in range(k // 32):
                m = largest_magnitude(load_f32x16(x, i * k + b * 32),
                                      load_f32x16(x, i * k + b * 32 + 16))
                if m > row_max or m != m:            # (a NaN stays the row's)
                    row_max = m
        for b in range(k // 32):
            o = i * k + b * 32
            v0, v1 = load_f32x16(x, o), load_f32x16(x, o + 16)
            amax = row_max if per_token else largest_magnitude(v0, v1)
            d = amax / np.float32(127.0)
            inv = np.float32(127.0) / amax if amax > 0 else np.float32(0.0)
            q0 = to_i32(rint_f32(mul_f32(v0, broadcast_f32x16(inv))))
            q1 = to_i32(rint_f32(mul_f32(v1, broadcast_f32x16(inv))))
            store_i32_as_i8(xq, o, q0)
            store_i32_as_i8(xq, o + 16, q1)
            s0, s1 = sum_i32(q0), sum_i32(q1)
            xsum[i, b] = s0 + s1
            xsum16[i, 2 * b] = s0
            xsum16[i, 2 * b + 1] = s1
            xs16[i, 2 * b] = np.float32(s0) * d
            xs16[i, 2 * b + 1] = np.float32(s1) * d
            if per_token:
                xd[i, b] = d
                xs[i, b] = np.float32(s0 + s1) * d
            else:
                xd[i, b] = rounded_to_f16(d)
                xs[i, b] = rounded_to_f16(np.float32(s0 + s1) * d)


def quantize_activations(x: np.ndarray):
    """Rows of ``x`` (n, k), k a multiple of 32, as llama.cpp's ``Q8_1`` blocks: int8 values
    ``rint(x * 127 / max|x|)`` per 32, the block scale ``max|x| / 127`` rounded to float16, and
    the block sum ``scale * sum(q)`` rounded to float16. Returns ``(q, scale, sum32, sum16,
    qsum, qsum16)``: ``sum16`` the unrounded sums of each 16 values (for the types with a
    minimum per 16), ``qsum`` and ``qsum16`` the int32 sums of q per 32 and per 16 (what a
    type's offset takes off its integer sums).

    Example: ``q, d, s, s16, qsum, qsum16 = quantize_activations(np.ones((1, 64), np.float32))``
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = x.shape[1]
    if k % 32:
        raise ShapeError(f"quantize_activations: rows of {k} values; int8 activations are "
                         f"quantized in blocks of 32, so k must be a multiple of 32")
    return _quantized(x, False)


@compile_kernel
def _quantized(x, per_token):
    """:func:`quantize_activations` of contiguous float32 rows, in new arrays (``per_token``:
    see :func:`_quantize_rows`)."""
    n, k = x.shape
    xq = np.empty((n, k), np.int8)
    xd = np.empty((n, k // 32), np.float32)
    xs = np.empty((n, k // 32), np.float32)
    xs16 = np.empty((n, k // 16), np.float32)
    xsum = np.empty((n, k // 32), np.int32)
    xsum16 = np.empty((n, k // 16), np.int32)
    _quantize_rows(x, xq, xd, xs, xs16, xsum, xsum16, per_token)
    return xq, xd, xs, xs16, xsum, xsum16


# ----------------------------------------------------------------------------- products
# The int8 products are llama.cpp's: per block of a row of W, the integer sum of its codes
# times x's int8 values, then ``(scale * x_scale) * sum (+ minimum * x_sum)``. A vector of 16
# int32 lanes holds the sums of a group's 16 rows of W, and one dot4_u*_i8 (vpdpbusd with VNNI)
# adds four codes of each row times four values of a row of x, broadcast. The stored codes are
# unsigned (code + offset): the sums start from ``-offset * sum(x_q)`` over the block. Every
# integer sum is exact, so the results are the bits of the plain loops (the NumPy twin,
# gradient.quant.int8_numpy) on any CPU; the float epilogue is the same float32 operations in
# the same order, lane by lane.

#: How far ahead of the block being multiplied its codes (and scales) are asked into the
#: caches. The weights of a model come from memory, not from the caches, at every step: with
#: the hardware's prefetching alone, a step of 8 rows of SmolLM2's Q4_1 products took 13.3 ms
#: (30 layers' weights, more than the caches hold), with 1 KiB ahead 10.9 ms; one row, 8.4 and
#: 8.1. On a model of TinyLlama-1.1B's shape (Q4_K_M, 650 MiB of weights, a whole decode
#: step, 2 threads): 1 KiB ahead 18.8 ms (float32 activations) and 16.8 ms (int8), 4 KiB
#: 15.9 and 13.9, 8 KiB 17.7 and 16.8.
PREFETCH_BYTES = 4096

#: Groups of rows of W that the row tiles of x go through before the next ones: their codes
#: (16 rows x in_features / 2 bytes each) stay in the L1/L2 cache for every tile.
GROUPS_AT_ONCE = 8


@compile_kernel(inline=True)
def _sub_integers(sub, g, b, which):
    """A k-quant block's integer scales (``which`` 0) or mins (1) of group g, as float32."""
    return load_i8_as_f32x16(sub, ((g * sub.shape[1] + b) * sub.shape[2] + which) * LANES)


def _group_factors(scale, minimum, sub, g, b):
    """In compiled kernels: ``(scale, minimum)`` of the rows of group g, block b, as f32x16
    vectors (the minimum None for the types without one): as stored, or for a k-quant its
    super-block's ``d`` times the block's integers, ``d * sc`` and ``-(dmin * m)``
    (:func:`_factors`' products, lane by lane). Chosen by the types of ``sub`` and
    ``minimum`` when a kernel compiles."""
    raise NotImplementedError("_group_factors runs in compiled kernels only")


@overload(_group_factors, inline="always")
def _group_factors_typed(scale, minimum, sub, g, b):
    if _zero_points(sub):
        def from_zero_points(scale, minimum, sub, g, b):
            at = (g * scale.shape[1] + b) * LANES
            s = load_bits_as_f32x16(scale, at)
            return s, neg_f32(mul_f32(s, load_i8_as_f32x16(sub, at)))
        return from_zero_points
    with_min = minimum is not types.none
    if sub is types.none:
        if with_min:
            def stored(scale, minimum, sub, g, b):
                at = (g * scale.shape[1] + b) * LANES
                return load_f16_as_f32x16(scale, at), load_f16_as_f32x16(minimum, at)
            return stored
        return lambda scale, minimum, sub, g, b: (
            load_bits_as_f32x16(scale, (g * scale.shape[1] + b) * LANES), None)

    if with_min:
        def two_levels(scale, minimum, sub, g, b):
            at = (g * scale.shape[1] + _super_block(b, sub, scale)) * LANES
            return (mul_f32(load_f16_as_f32x16(scale, at), _sub_integers(sub, g, b, 0)),
                    neg_f32(mul_f32(load_f16_as_f32x16(minimum, at),
                                    _sub_integers(sub, g, b, 1))))
        return two_levels

    def two_levels_scale(scale, minimum, sub, g, b):
        at = (g * scale.shape[1] + _super_block(b, sub, scale)) * LANES
        return mul_f32(load_f16_as_f32x16(scale, at), _sub_integers(sub, g, b, 0)), None
    return two_levels_scale


def _plus_minimum(t, minimum, x_sum):
    """In compiled kernels: ``t + minimum * x_sum`` lane by lane; t itself where the type has no
    minimum (``minimum`` None, decided when the kernel compiles)."""
    raise NotImplementedError("_plus_minimum runs in compiled kernels only")


@overload(_plus_minimum, inline="always")
def _plus_minimum_typed(t, minimum, x_sum):
    if minimum is types.none:
        return lambda t, minimum, x_sum: t
    return lambda t, minimum, x_sum: add_f32(t, mul_f32(minimum, broadcast_f32x16(x_sum)))


@compile_kernel(inline=True)
def _codes(codes, at, s, steps, nibble, six):
    """The two unsigned operands of step ``s`` of a block whose codes start at flat ``at``: a
    nibble block's quad s split into its low and high nibbles (values 4s.. and 16 + 4s..), a
    "six" block's the same of its 16 values (4s.. and 8 + 4s..) with their top bits from
    quad 2 joined, a byte block's quads s and s + steps (values 4s.. and 4(s + steps)..)."""
    if nibble:
        v = load_i8x64(codes, at + 4 * LANES * s)
        return low_nibbles(v), high_nibbles(v)
    if six:
        v = load_i8x64(codes, at + 4 * LANES * s)
        top = load_i8x64(codes, at + 8 * LANES)
        if s == 0:       # (the shifts literal: a byte vector's shift by a variable is slow)
            return with_top_bits(low_nibbles(v), top, 0), with_top_bits(high_nibbles(v), top, 4)
        return with_top_bits(low_nibbles(v), top, 2), with_top_bits(high_nibbles(v), top, 6)
    return load_i8x64(codes, at + 4 * LANES * s), load_i8x64(codes, at + 4 * LANES * (s + steps))


@compile_kernel(inline=True)
def _dot(z, u, x, small):
    """``z + u . x`` per lane (``small``: every code below 128)."""
    return dot4_u7_i8(z, u, x) if small else dot4_u8_i8(z, u, x)


@compile_kernel(inline=True)
def _store_tile(y, acc, i, g):
    """A tile's sums ``acc`` (one f32x16 per row of x, rows i ...) into y's columns of group g:
    16 lanes at once, or the lanes y has past its last whole group."""
    m = y.shape[1]
    for r in range(len(acc)):
        if LANES * (g + 1) <= m:
            store_f32x16(y, (i + r) * m + LANES * g, acc[r])
        else:                          # the last rows of W, past which y has no columns
            last = np.empty(LANES, np.float32)
            store_f32x16(last, 0, acc[r])
            for lane in range(m - LANES * g):
                y[i + r, LANES * g + lane] = last[lane]


@compile_kernel(inline=True)
def _reads(layout):
    """``(nibble, six, small, quads, steps)`` of a layout (:mod:`.code_layouts`): whether its
    codes are nibbles or six bits, all below 128, the quads of a block, the steps of a block's
    sums (two operands each). Constants in a kernel compiled for the layout."""
    form = layout.ndim
    quads = 8 if form == BYTES or form == WHOLE_BYTES else (3 if form == SIX_BITS else 4)
    steps = 4 if form <= WHOLE_BYTES else 2
    return form == NIBBLES, form == SIX_BITS, form != WHOLE_BYTES, quads, steps


@compile_kernel
def _tile(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum, xsum16, y,
          i, g0, g1, zero_f, zero_i):
    """Rows ``i .. i + R - 1`` of y, their columns of groups g0..g1, where R is the length of the
    tuple ``zero_f`` (R f32x16 zeros). Each row's sums are values of tuples that LLVM keeps in
    registers (the loops over them have trip counts known when the kernel compiles, and
    unroll), so a step's codes are loaded and unpacked once for the R rows. ``zero_i`` holds
    R i32x16 zeros, or 2R: then each row has two integer sums (its low and high operands), two
    chains of dependent vpdpbusd instead of one, for the tiles of few rows. ``layout``: how
    the codes are read (:mod:`.code_layouts`), a constant of the compilation."""
    nb, k = codes.shape[1], xq.shape[1]
    nibble, six, small, quads, steps = _reads(layout)
    values = 8 * steps                       # per block: 32, or 16 for the k-quants' 16
    rows = len(zero_f)
    split = len(zero_i) == 2 * rows
    for g in range(g0, g1):
        acc = zero_f
        for b in range(nb):
            at = (g * nb + b) * quads * 4 * LANES
            for line in range(quads):      # the codes a few blocks on (see PREFETCH_BYTES)
                prefetch(codes, at + PREFETCH_BYTES + 4 * LANES * line)
            prefetch(scale, (g * scale.shape[1] + b) * LANES + PREFETCH_BYTES // 2)
            sums = zero_i
            for r in range(rows):      # the integer sums start at -offset * sum(x_q)
                x_sum = xsum[i + r, b] if values == 32 else xsum16[i + r, b]
                sums = tuple_setitem(sums, r, broadcast_i32x16(-offset * x_sum))
            for s in range(steps):
                low, high = _codes(codes, at, s, steps, nibble, six)
                o = i * k + b * values + 4 * s
                for r in range(rows):
                    x_low = broadcast_4_bytes(xq, o + r * k)
                    x_high = broadcast_4_bytes(xq, o + r * k + 4 * steps)
                    if split:
                        sums = tuple_setitem(sums, r, _dot(sums[r], low, x_low, small))
                        sums = tuple_setitem(sums, rows + r,
                                             _dot(sums[rows + r], high, x_high, small))
                    else:
                        sums = tuple_setitem(sums, r, _dot(_dot(sums[r], low, x_low, small),
                                                           high, x_high, small))
            w_scale, w_min = _group_factors(scale, minimum, sub, g, b)
            for r in range(rows):
                total = add_i32(sums[r], sums[rows + r]) if split else sums[r]
                x_scale = xd[i + r, (b * values) >> 5]
                x_sum = xs[i + r, b] if values == 32 else xs16[i + r, b]
                t = mul_f32(mul_f32(w_scale, broadcast_f32x16(x_scale)), to_f32(total))
                acc = tuple_setitem(acc, r, add_f32(acc[r], _plus_minimum(t, w_min, x_sum)))
        _store_tile(y, acc, i, g)


@compile_kernel
def _groups(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum, xsum16, y,
            g0, g1):
    """Every row of y, its columns of groups g0..g1 (none when g0 >= g1): tiles of 8 rows of x
    (where the machine has 32 vector registers), 4, 2 and 1, through :data:`GROUPS_AT_ONCE`
    groups at a time."""
    n = xq.shape[0]
    f, z = zeros_f32x16(), zeros_i32x16()
    for first in range(g0, g1, GROUPS_AT_ONCE):
        last = min(g1, first + GROUPS_AT_ONCE)
        # the 8-row tiles by a range's index, not ``while i + 8 <= n``: numba types a while
        # loop's first call with i the literal 0, and compiled the largest tile twice
        i = 0
        if wide_registers():
            eights = n - n % 8
            for i in range(0, eights, 8):
                _tile(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                      xsum16, y, i, first, last, (f, f, f, f, f, f, f, f),
                      (z, z, z, z, z, z, z, z))
            i = eights
        while i + 4 <= n:
            _tile(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                  xsum16, y, i, first, last, (f, f, f, f), (z, z, z, z))
            i += 4
        if i + 2 <= n:
            _tile(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                  xsum16, y, i, first, last, (f, f), (z, z, z, z))
            i += 2
        if i < n:
            _tile(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                  xsum16, y, i, first, last, (f,), (z, z))


@compile_kernel
def _int8_chunk(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                xsum16, y, c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of an int8 product of the quantized rows (xq, xd, ...): its
    groups of rows of W."""
    groups = codes.shape[0]
    step = (groups + n_chunks - 1) // n_chunks
    _groups(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum, xsum16, y,
            c * step, min(groups, (c + 1) * step))


@compile_kernel(parallel=True)
def _int8_product(x, codes, scale, minimum, sub, offset, layout, y, n_chunks, per_token):
    # the rows of x quantized first (one pass, on one thread: a few microseconds for a decode
    # step's row; per 32 values, or per row: ``"int8_per_token"``), then the chunks in
    # parallel (numba's threads: in compiled steps)
    xq, xd, xs, xs16, xsum, xsum16 = _quantized(x, per_token)
    for c in numba.prange(n_chunks):
        _int8_chunk(codes, scale, minimum, sub, offset, layout, xq, xd, xs, xs16, xsum,
                    xsum16, y, np.int64(c), n_chunks)


def _int8_threads(x, codes, scale, minimum, sub, offset, layout, y, n_chunks, per_token):
    """:func:`_int8_product` called from Python; where it is not compiled yet (see
    :func:`~gradient.backends.cpu_compile.compiled_already`), its NumPy twin
    (:mod:`.int8_numpy`), so that no int8 kernel is compiled before a first token; the same
    bits."""
    args = (x, codes, scale, minimum, sub, offset, layout, y, n_chunks, per_token)
    if compiled_already(_int8_product, args):
        _int8_product(*args)
    else:
        int8_numpy.product(int8_numpy.quantize_rows(x, per_token), codes, scale, minimum, sub,
                           offset, layout, y)


@compile_kernel
def _products_chunk(xq, xd, xs, xs16, xsum, xsum16,
                    ac, as_, am, asub, a_off, a_layout, ay,
                    bc, bs, bm, bsub, b_off, b_layout, by,
                    cc, cs, cm, csub, c_off, c_layout, cy, c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of three int8 products of the same quantized rows: the
    groups of rows of the three weights, taken as one list, each computed as
    :func:`_int8_chunk` computes it."""
    na, nb, nc = ac.shape[0], bc.shape[0], cc.shape[0]
    total = na + nb + nc
    step = (total + n_chunks - 1) // n_chunks
    g0, g1 = c * step, min(total, (c + 1) * step)
    _groups(ac, as_, am, asub, a_off, a_layout, xq, xd, xs, xs16, xsum, xsum16, ay,
            g0, min(g1, na))
    _groups(bc, bs, bm, bsub, b_off, b_layout, xq, xd, xs, xs16, xsum, xsum16, by,
            max(g0, na) - na, min(g1, na + nb) - na)
    _groups(cc, cs, cm, csub, c_off, c_layout, xq, xd, xs, xs16, xsum, xsum16, cy,
            max(g0, na + nb) - na - nb, min(g1, total) - na - nb)


@compile_kernel(parallel=True)
def _int8_products(x, n_chunks,
                   ac, as_, am, asub, a_off, a_layout, ay,
                   bc, bs, bm, bsub, b_off, b_layout, by,
                   cc, cs, cm, csub, c_off, c_layout, cy):
    # three products of the same rows x (q, k and v; gate and up with an empty third): x
    # quantized once, then one parallel loop over the groups of all three weights
    xq, xd, xs, xs16, xsum, xsum16 = _quantized(x, False)
    for c in numba.prange(n_chunks):
        _products_chunk(xq, xd, xs, xs16, xsum, xsum16,
                        ac, as_, am, asub, a_off, a_layout, ay,
                        bc, bs, bm, bsub, b_off, b_layout, by,
                        cc, cs, cm, csub, c_off, c_layout, cy, np.int64(c), n_chunks)


def _chunks(weights, in_features: int) -> int:
    """Chunks of one parallel int8 product of these weights: two per thread (the threads
    finish together), at most one group each."""
    groups = sum(w.codes.shape[0] for w in weights)
    return min(groups, _threads(sum(w.out_features for w in weights) * in_features) * 2)


def _no_groups(head: tuple) -> tuple:
    """A weight's int8 arguments with no rows (its arrays cut to none): the empty third
    product of :func:`int8_products` for two weights."""
    return tuple(a[:0] if isinstance(a, np.ndarray) and a.ndim else a for a in head)


def int8_products(x: np.ndarray, weights: list) -> tuple:
    """``(x @ W.T for W in weights)`` with int8 activations, for two or three weights of one
    ``in_features`` and a few contiguous float32 rows x: one compiled call that quantizes x
    once and runs the products in one parallel loop (the q, k and v projections of a decode
    step, as llama.cpp runs them), each result bit for bit :func:`interleaved_matmul`'s.

    Example: ``q, k, v = int8_products(h, [wq, wk, wv])``
    """
    if not 2 <= len(weights) <= 3:
        raise ArgumentValueError(
            f"int8_products: expected two or three weights, got {len(weights)}")
    ys = [np.empty((x.shape[0], w.out_features), np.float32) for w in weights]
    args = []
    for w, y in zip(weights, ys):
        args += [*_int8_head(w), y]
    if len(weights) == 2:      # no third product: the first weight with no groups
        args += [*_no_groups(_int8_head(weights[0])), ys[0]]
    n_chunks = _chunks(weights, x.shape[1])
    if compiled_already(_int8_products, (x, n_chunks, *args)):
        _int8_products(x, n_chunks, *args)
    else:      # not compiled yet: each product's NumPy twin (see _int8_threads)
        quantized = int8_numpy.quantize_rows(x)
        for w, y in zip(weights, ys):
            int8_numpy.product(quantized, *_int8_head(w), y)
    return tuple(ys)


@compile_kernel
def int8_product_compiled(x, rows, out_shape, codes, scale, minimum, sub, offset, layout,
                          n_chunks, per_token):
    """What a :class:`~gradient.quant.QuantizedLinear` with int8 activations (per 32 values,
    or ``per_token``) computes for a few rows, inside a compiled step (see
    :mod:`gradient.kernels.lowering`): x reshaped to ``rows``, times W.T, reshaped to
    ``out_shape``."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    y = np.empty((rows[0], out_shape[len(out_shape) - 1]), np.float32)
    _int8_product(x2, codes, scale, minimum, sub, offset, layout, y, n_chunks, per_token)
    return y.reshape(out_shape)


@compile_kernel
def float_product_compiled(x, rows, out_shape, codes, scale, minimum, sub, offset, nibble,
                           n_chunks):
    """:func:`int8_product_compiled` with float32 activations."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    y = np.empty((rows[0], out_shape[len(out_shape) - 1]), np.float32)
    _float_product(x2, codes, scale, minimum, sub, offset, nibble, y, n_chunks)
    return y.reshape(out_shape)


@compile_kernel
def products_compiled(x, rows, n_chunks,
                      ac, as_, am, asub, a_off, a_layout, a_shape,
                      bc, bs, bm, bsub, b_off, b_layout, b_shape,
                      cc, cs, cm, csub, c_off, c_layout, c_shape):
    """:func:`int8_products` of three weights inside a compiled step."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    n = rows[0]
    ay = np.empty((n, a_shape[len(a_shape) - 1]), np.float32)
    by = np.empty((n, b_shape[len(b_shape) - 1]), np.float32)
    cy = np.empty((n, c_shape[len(c_shape) - 1]), np.float32)
    _int8_products(x2, n_chunks, ac, as_, am, asub, a_off, a_layout, ay,
                   bc, bs, bm, bsub, b_off, b_layout, by,
                   cc, cs, cm, csub, c_off, c_layout, cy)
    return ay.reshape(a_shape), by.reshape(b_shape), cy.reshape(c_shape)


@compile_kernel
def two_products_compiled(x, rows, n_chunks,
                          ac, as_, am, asub, a_off, a_layout, a_shape,
                          bc, bs, bm, bsub, b_off, b_layout, b_shape,
                          cc, cs, cm, csub, c_off, c_layout):
    """:func:`int8_products` of two weights inside a compiled step (``c``: a weight with no
    groups, as :func:`int8_products` passes it)."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    n = rows[0]
    ay = np.empty((n, a_shape[len(a_shape) - 1]), np.float32)
    by = np.empty((n, b_shape[len(b_shape) - 1]), np.float32)
    _int8_products(x2, n_chunks, ac, as_, am, asub, a_off, a_layout, ay,
                   bc, bs, bm, bsub, b_off, b_layout, by,
                   cc, cs, cm, csub, c_off, c_layout, ay)
    return ay.reshape(a_shape), by.reshape(b_shape)


def lowered_products(x, rows, weights, out_shapes) -> Lowered:
    """The compiled form (:mod:`gradient.kernels.lowering`) of ``int8_products`` of x
    reshaped to ``rows`` by two or three weights, each result reshaped to its out shape: the
    kernel's arguments as :func:`int8_products` makes them (the same compiled specialization)."""
    args = []
    for w, shape in zip(weights, out_shapes):
        args += [*_int8_head(w), tuple(shape)]
    if len(weights) == 2:      # no third product: the first weight with no groups
        args += _no_groups(_int8_head(weights[0]))
    fn = products_compiled if len(weights) == 3 else two_products_compiled
    return Lowered(fn, (x, tuple(rows), _chunks(weights, rows[1]), *args),
                   trace=("interleaved_matmul", "numba", len(weights)))


def lowered_product(x, rows, w, activations, out_shape) -> Lowered:
    """The compiled form of ``interleaved_matmul(x.reshape(rows), w, activations)`` reshaped
    to ``out_shape`` (a prepared product: see ``_prepare``)."""
    kernel, head, tail = _product_call(w, activations)
    fn = int8_product_compiled if kernel is _int8_threads else float_product_compiled
    return Lowered(fn, (x, tuple(rows), tuple(out_shape), *head, *tail),
                   trace=("interleaved_matmul", "numba"))


# ----------------------------------------------------------------------------- float32 products
# With float32 activations a block of a row of W adds ``scale * sum((code - offset) * x) +
# minimum * sum(x)``: the codes minus their offset are small integers, exact as floats, so the
# only roundings are the float32 products and sums, and the block's factors apply once, as in
# the int8 products. The lanes hold 16 rows of W as there; each value's codes become floats
# once for all the rows of x in a tile.

@compile_kernel
def _block_sums(x, values):
    """``sum(x)`` over each block of ``values`` values of each row of x, in order: (n, k //
    values), what a block's minimum multiplies."""
    n, k = x.shape
    out = np.empty((n, k // values), np.float32)
    for i in range(n):
        for b in range(k // values):
            total = np.float32(0.0)
            for j in range(b * values, (b + 1) * values):
                total += x[i, j]
            out[i, b] = total
    return out


@compile_kernel(inline=True)
def _value_floats(codes, at, s, steps, nibble, six, minus_offset):
    """Step s of a block whose codes start at flat ``at``, as two tuples of four f32x16, the
    codes minus the type's offset (exact): its low values ``4s + t`` and its high values
    ``4s + t + 4 * steps`` (t = 0 .. 3) for the 16 rows of the group."""
    if nibble:
        v = load_i8x64(codes, at + 4 * LANES * s)
        return ((code_as_f32(v, 0, 4, minus_offset), code_as_f32(v, 8, 4, minus_offset),
                 code_as_f32(v, 16, 4, minus_offset), code_as_f32(v, 24, 4, minus_offset)),
                (code_as_f32(v, 4, 4, minus_offset), code_as_f32(v, 12, 4, minus_offset),
                 code_as_f32(v, 20, 4, minus_offset), code_as_f32(v, 28, 4, minus_offset)))
    low, high = _codes(codes, at, s, steps, nibble, six)
    lows, highs = bytes_as_f32(low), bytes_as_f32(high)
    m = broadcast_f32x16(minus_offset)
    return ((add_f32(lows[0], m), add_f32(lows[1], m), add_f32(lows[2], m),
             add_f32(lows[3], m)),
            (add_f32(highs[0], m), add_f32(highs[1], m), add_f32(highs[2], m),
             add_f32(highs[3], m)))


@compile_kernel(inline=True)
def _step_sum(lows, highs, x, row, c, half):
    """One row of x times a step's values: two chains of fused multiply-adds, values t = 0, 1
    and t = 2, 3 (each its low value, then its high one), added."""
    p01 = fma_f32(highs[1], broadcast_f32x16(x[row, c + half + 1]),
                  fma_f32(lows[1], broadcast_f32x16(x[row, c + 1]),
                          fma_f32(highs[0], broadcast_f32x16(x[row, c + half]),
                                  mul_f32(lows[0], broadcast_f32x16(x[row, c])))))
    p23 = fma_f32(highs[3], broadcast_f32x16(x[row, c + half + 3]),
                  fma_f32(lows[3], broadcast_f32x16(x[row, c + 3]),
                          fma_f32(highs[2], broadcast_f32x16(x[row, c + half + 2]),
                                  mul_f32(lows[2], broadcast_f32x16(x[row, c + 2])))))
    return add_f32(p01, p23)


@compile_kernel
def _float_tile(codes, scale, minimum, sub, offset, nibble, x, xsum, y, i, g, zero_f):
    """:func:`_tile` with float32 activations: rows ``i .. i + R - 1`` of y (R the length of
    ``zero_f``, at most 4), the columns of group g. A step's codes become floats once
    (:func:`_value_floats`) for every row of the tile; each row adds its step's sum
    (:func:`_step_sum`: two short chains, so that even a tile of one row is not held up by
    the latency of one long chain) to the block's, and the block's scale and minimum apply
    to that as in the int8 products. A row's arithmetic is the same in every tile, so a
    prompt's rows get the bits of its tokens multiplied one at a time. (Eight rows, as the
    int8 tiles take, ran 2-3x slower: LLVM no longer unrolled the loop over them.)"""
    nb, quads = codes.shape[1], codes.shape[2]
    six = quads == 3                         # Q6_K's 6-bit codes in two planes
    steps = 4 if nibble else (2 if six else quads >> 1)
    values = 8 * steps
    rows = len(zero_f)
    minus_offset = np.float32(-offset)
    acc = zero_f
    for b in range(nb):
        at = (g * nb + b) * quads * 4 * LANES
        for line in range(quads):          # the codes a few blocks on (see PREFETCH_BYTES)
            prefetch(codes, at + PREFETCH_BYTES + 4 * LANES * line)
        parts = zero_f
        for s in range(steps):
            lows, highs = _value_floats(codes, at, s, steps, nibble, six, minus_offset)
            for r in range(rows):
                parts = tuple_setitem(parts, r, add_f32(parts[r], _step_sum(
                    lows, highs, x, i + r, b * values + 4 * s, 4 * steps)))
        w_scale, w_min = _group_factors(scale, minimum, sub, g, b)
        for r in range(rows):
            acc = tuple_setitem(acc, r, add_f32(acc[r], _plus_minimum(
                mul_f32(w_scale, parts[r]), w_min, xsum[i + r, b])))
    _store_tile(y, acc, i, g)


@compile_kernel
def _float_groups(codes, scale, minimum, sub, offset, nibble, x, xsum, y, g0, g1):
    """Every row of y, its columns of groups g0..g1: tiles of 4 rows of x, 2 and 1 (more rows
    would not stay in registers), through :data:`GROUPS_AT_ONCE` groups at a time."""
    n = x.shape[0]
    f = zeros_f32x16()
    for first in range(g0, g1, GROUPS_AT_ONCE):
        last = min(g1, first + GROUPS_AT_ONCE)
        fours = n - n % 4         # (a range's index: see _groups)
        for i in range(0, fours, 4):
            for g in range(first, last):
                _float_tile(codes, scale, minimum, sub, offset, nibble, x, xsum, y, i, g,
                            (f, f, f, f))
        i = fours
        if i + 2 <= n:
            for g in range(first, last):
                _float_tile(codes, scale, minimum, sub, offset, nibble, x, xsum, y, i, g,
                            (f, f))
            i += 2
        if i < n:
            for g in range(first, last):
                _float_tile(codes, scale, minimum, sub, offset, nibble, x, xsum, y, i, g,
                            (f,))


@compile_kernel
def _float_chunk(x, xsum, codes, scale, minimum, sub, offset, nibble, y, c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of a float32-activation product: its groups of rows of W."""
    groups = codes.shape[0]
    step = (groups + n_chunks - 1) // n_chunks
    _float_groups(codes, scale, minimum, sub, offset, nibble, x, xsum, y, c * step,
                  min(groups, (c + 1) * step))


@compile_kernel
def _float_chunk_by_rows(x, xsum, codes, scale, minimum, sub, offset, nibble, y, c, n_chunks):
    """:func:`_float_chunk` a row of x at a time (tiles of one row only: the same bits, a
    row's arithmetic being the same in every tile). What a first run computes on Python
    threads while a child process compiles :func:`_float_product`: one tile compiles in
    about a third of the time of three, and this compile comes before the first token."""
    groups = codes.shape[0]
    step = (groups + n_chunks - 1) // n_chunks
    f = zeros_f32x16()
    for first in range(c * step, min(groups, (c + 1) * step), GROUPS_AT_ONCE):
        last = min(groups, (c + 1) * step, first + GROUPS_AT_ONCE)
        for i in range(x.shape[0]):
            for g in range(first, last):
                _float_tile(codes, scale, minimum, sub, offset, nibble, x, xsum, y, i, g, (f,))


@compile_kernel
def _values_per_block(codes, nibble):
    """The values of one block of a repacked weight: 32, or 16 for Q6_K, Q2_K and Q3_K."""
    quads = codes.shape[2]
    return 32 if nibble else (16 if quads == 3 else 4 * quads)


@compile_kernel(parallel=True)
def _float_product(x, codes, scale, minimum, sub, offset, nibble, y, n_chunks):
    xsum = _block_sums(x, _values_per_block(codes, nibble))
    for c in numba.prange(n_chunks):
        _float_chunk(x, xsum, codes, scale, minimum, sub, offset, nibble, y, np.int64(c),
                     n_chunks)


def _float_threads(x, codes, scale, minimum, sub, offset, nibble, y, n_chunks):
    """:func:`_float_product` called from Python; where it is not compiled yet (see
    :func:`~gradient.backends.cpu_compile.compiled_already`), its chunks a row of x at a time
    on Python threads (:func:`_float_chunk_by_rows`): the same bits."""
    args = (x, codes, scale, minimum, sub, offset, nibble, y, n_chunks)
    if compiled_already(_float_product, args):
        _float_product(*args)
        return
    xsum = _block_sums(x, _values_per_block(codes, nibble))
    in_threads(_float_chunk_by_rows, (x, xsum, codes, scale, minimum, sub, offset, nibble, y),
               n_chunks, _threads(x.shape[0] * y.shape[1] * x.shape[1]))


def _layout(w: InterleavedWeight) -> np.ndarray:
    """How the int8 kernels read w's codes (:mod:`.code_layouts`), as the array that carries
    it to them: every stored code is below 128 but Q8_0's."""
    if w.kind != "byte":
        number = NIBBLES if w.kind == "nibble" else SIX_BITS
    elif w.block == 16:
        number = BYTES_16
    else:
        number = WHOLE_BYTES if w.qtype == GGMLType.Q8_0 else BYTES
    return LAYOUTS[number]


def _int8_head(w: InterleavedWeight) -> tuple:
    """The int8 kernels' arguments for the weight w: ``(codes, scale, minimum, sub, offset,
    layout)``, the minimum None for the types without one (the kernels are compiled without
    its term), ``layout`` how its codes are read (:func:`_layout`)."""
    return (w.codes, w.scale, w.minimum if w.minimum.size else None, w.sub, w.offset,
            _layout(w))


def _product_call(w: InterleavedWeight, activations: str) -> tuple:
    """``(kernel, head, tail)``: y = x @ W.T for contiguous float32 rows x is
    ``kernel(x, *head, y, *tail)``, one compiled call."""
    if activations in ("int8", "int8_per_token"):
        return (_int8_threads, _int8_head(w),
                (_chunks([w], w.in_features), activations == "int8_per_token"))
    # (the float32 products read the layout at run time: compiled for each layout, they were
    # 4-8% faster, and compiling every type's took twice as long)
    return (_float_threads, (*_int8_head(w)[:5], w.kind == "nibble"),
            (min(w.codes.shape[0], _threads(w.out_features * w.in_features) * 2),))


@register("interleaved_matmul", "cpu", "numba")
def interleaved_matmul(x: np.ndarray, w: InterleavedWeight,
                       activations: str = "int8") -> np.ndarray:
    """``x @ W.T`` (float32, shape (n, out_features)) for x (n, in_features).

    ``activations="int8"``: the rows of x quantized as llama.cpp does (see the module
    docstring); ``"float32"``: exact weights times float32 x; ``"int8_per_token"``: each row
    of x quantized to int8 with one scale (``max|x_row| / 127``, as SmoothQuant's W8A8), the
    products then as with ``"int8"``. Each row's result is the same bits whatever the number
    of rows.

    Example: ``y = interleaved_matmul(np.ones((1, 576), np.float32), w)``
    """
    if activations not in ACTIVATIONS:
        raise ArgumentValueError(f"activations must be one of {ACTIVATIONS}, got {activations!r}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != w.in_features:
        raise ShapeError(f"interleaved_matmul: x of shape {x.shape} does not match a weight of "
                         f"shape {w.shape}: expected x of shape (N, {w.in_features})")
    n, m = x.shape[0], w.out_features
    if n == 0 or m == 0 or w.in_features == 0:
        return np.zeros((n, m), np.float32)
    y = np.empty((n, m), np.float32)
    kernel, head, tail = _product_call(w, activations)
    kernel(x, *head, y, *tail)
    return y


@prepares("interleaved_matmul", "cpu")
def _prepare(x, w, activations="int8"):
    """:func:`interleaved_matmul` for later calls on rows of x's shape and the same weight (a
    captured step: a decode step's rows, drafts to check, a prompt's tail after a cache): the
    compiled call alone, the same for any number of rows; None where the general path is
    needed."""
    if not (type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and x.ndim == 2 and x.shape[0] > 0 and x.shape[1] == w.in_features
            and w.out_features > 0 and activations in ACTIVATIONS):
        return None
    shape, out_shape = x.shape, (x.shape[0], w.out_features)
    kernel, head, tail = _product_call(w, activations)

    def prepared(x_, w_, activations_="int8"):
        if (x_.shape != shape or w_ is not w or activations_ != activations
                or type(x_) is not np.ndarray or x_.dtype != np.float32
                or not x_.flags.c_contiguous):
            return None
        y = np.empty(out_shape, np.float32)
        kernel(x_, *head, y, *tail)
        return y
    return prepared


def _rows_into(w: InterleavedWeight):
    """``dequant_into(r0, r1, out)`` for :func:`gradient.quant.matmul.tiled_matmul_t`; tiles of
    whole groups of rows."""
    return (lambda r0, r1, out: dequantize_interleaved(w, r0, r1, out),
            tile_rows(w.out_features, w.in_features, LANES))


def interleaved_matmul_t(g: np.ndarray, w: InterleavedWeight) -> np.ndarray:
    """``g @ W`` (the input gradient of :func:`interleaved_matmul`), tile by tile."""
    into, rows = _rows_into(w)
    return tiled_matmul_t(np.ascontiguousarray(g, dtype=np.float32), w.out_features,
                          w.in_features, into, rows)
