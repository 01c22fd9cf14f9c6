"""GGML weights repacked row-interleaved, and the matrix products that read them.

GGML stores a weight row by row, each row a string of blocks (scale, maybe a minimum, then the
quantized values). A matrix-vector product over that layout needs, for every block of every
row, a horizontal sum of 32 products before the block's scale applies: SIMD lanes would hold
the 32 values of one row, and numba cannot make LLVM emit the shuffles that llama.cpp writes
by hand. Repacked so that the lanes hold **32 rows** instead, the same work needs no horizontal
sum at all: value ``j`` of block ``b`` of rows ``32g .. 32g + 31`` sits in 32 consecutive bytes,
and each lane accumulates its own row. The int8 products then run on pmaddubsw/pmaddwd
(:mod:`gradient.backends.cpu_simd`; measured on SmolLM2's Q4_1 shapes: 37 billion weights/s
on one core, against 17 for LLVM's own vectorisation of the same loops). llama.cpp repacks
Q4_0 in the same spirit (its "CPU_REPACK" buffers).

The layout (:class:`InterleavedWeight`), for ``G = LANES`` rows per group:

* ``kind="nibble"`` (Q4_0, Q4_1, Q4_K): ``codes`` uint8 (groups, blocks, 16, G); byte ``j`` of a
  32-value block holds value ``j`` in its low nibble and value ``j + 16`` in its high nibble (as
  in Q4_0); a Q4_K super-block becomes its eight 32-value sub-blocks.
* ``kind="byte"`` (Q8_0, Q5_0, Q5_1, Q5_K with 32-value blocks; Q2_K, Q3_K, Q6_K with 16-value
  blocks): ``codes`` int8 (groups, blocks, block, G), one value per byte.
* ``scale`` and ``minimum`` float32 (groups, blocks, G): the value of a weight is
  ``scale * (code - offset) + minimum`` with ggml's own rounding (``offset`` is 8 for Q4_0,
  else 0; ``minimum`` is absent for the types without one).
* The k-quants keep ggml's two levels: ``scale`` and ``minimum`` hold each super-block's
  ``d`` and ``dmin`` (groups, super-blocks, G), and ``sub`` int8 (groups, blocks, 2, G) each
  block's integer scale and min; the kernels form ggml's float32 products ``d * sc`` and
  ``-(dmin * m)`` as they read a block, so dequantizing the repacked weight is still
  bit-exact with ``gguf.quants.dequantize``.

Repacking costs some memory over GGML's layout (scales stored as float32, not float16; one
byte per value for the 5- and 6-bit types): Q4_1 takes 24 bytes per 32 weights instead of 20,
Q4_K 19 instead of 18, Q6_K 34.5 instead of 26.25.

Two products read the repacked weight, for a few rows of ``x`` (decoding):

* :func:`interleaved_matmul` with ``activations="int8"`` -- what llama.cpp does: each 32 values
  of a row of ``x`` are quantized to int8 with one scale (:func:`quantize_activations`,
  llama.cpp's ``Q8_1``: scale ``max|x| / 127`` stored as float16, and the float16 sum of the
  block), the dot products are integer sums per block, and the scales apply once per block.
  Fast, and close to llama.cpp's own logits; not exact (the activations lose ~1% precision).
* ``activations="float32"`` -- the weights decoded exactly, float32 activations, float32
  accumulation: the same numbers as dequantize-then-matmul up to summation order.

Any number of rows of ``x`` (a prompt too) takes the same kernel as one row: a prompt's
logits are then those of its tokens decoded one at a time, bit for bit, as in llama.cpp,
whose prompt processing quantizes the activations too. Measured on SmolLM2's Q4_1 shapes,
2 threads: int8 at 128 and 512 rows in 0.9-1.1 times the time of BLAS on weights already
dequantized to float32; float32 activations in about twice that. Dequantized tiles stay for
the backward (:func:`interleaved_matmul_t`).

Example::

    >>> w = InterleavedWeight.from_blocks(blocks, GGMLType.Q4_1, 1536, 576)
    >>> y = interleaved_matmul(x, w)                      # x (1, 576) -> y (1, 1536)
    >>> w.dequantize()                                   # == gguf.quants.dequantize(...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from ..backends.cpu_compile import compile_kernel, compiled_already, in_threads
from ..backends.cpu_simd import (add, broadcast_i8_pair, broadcast_i16_pair, dot_i16, dot_u8_i8,
                                 high_nibbles, join, load_f32x8, load_i8_as_f32x8, load_i8x32,
                                 load_i16x16, low_nibbles, mul_f32, neg_f32, store_f32x8,
                                 store_i8x32, store_i16x16, store_zipped, widen_i8_high,
                                 widen_i8_low, widen_i16, zeros_i16x16, zeros_i32x8,
                                 zeros_i32x16, zip_high, zip_low)
from ..backends.host_memory import pages_of_their_own
from ..errors import ShapeError
from ..kernels.lowering import Lowered
from ..kernels.registry import prepares, register
from . import int8_numpy
from .ggml import GGMLType, UnsupportedQuantTypeError
from .matmul import (SMALL_BATCH, _as_blocks, _f16, _scale_min_k4, _threads, tile_rows,
                     tiled_matmul_t)

__all__ = ["InterleavedWeight", "interleaved_matmul", "int8_products", "quantize_activations",
           "dequantize_interleaved", "INTERLEAVED_TYPES", "LANES", "ACTIVATIONS"]

#: Rows interleaved per group: the SIMD lanes of the kernels (a 512-bit register of int16).
#: The kernels read it as a compile-time constant, not from the arrays' shapes: with the lane
#: loops' trip count known, LLVM vectorises them whole. Read from a shape, the count was
#: unknown and LLVM (on an AVX-512 AMD machine) chose 64-lane loops whose 8-lane remainder
#: then did all the work: the int8 products ran 1.4 times slower.
LANES = 32
#: Values of ``activations=``.
ACTIVATIONS = ("int8", "float32")

# type -> (kind, values per scale, offset, has a minimum, blocks per super-block: the
# k-quants' scales are a float16 per super-block times a small integer per block)
_FORMATS = {
    GGMLType.Q4_0: ("nibble", 32, 8, False, 0),
    GGMLType.Q4_1: ("nibble", 32, 0, True, 0),
    GGMLType.Q4_K: ("nibble", 32, 0, True, 8),
    GGMLType.Q8_0: ("byte", 32, 0, False, 0),
    GGMLType.Q5_0: ("byte", 32, 0, False, 0),
    GGMLType.Q5_1: ("byte", 32, 0, True, 0),
    GGMLType.Q5_K: ("byte", 32, 0, True, 8),
    GGMLType.Q2_K: ("byte", 16, 0, True, 16),
    GGMLType.Q3_K: ("byte", 16, 0, False, 16),
    GGMLType.Q6_K: ("byte", 16, 0, False, 16),
}
#: The GGML types :class:`InterleavedWeight` repacks (the float types are multiplied as they are).
INTERLEAVED_TYPES = tuple(_FORMATS)

# The inner trip counts (16, 32) are passed as arguments, not literals, for the reason given in
# gradient.quant.matmul (_N16): a constant count gets the loop fully unrolled, not vectorised.
_N16, _N32 = 16, 32


# ----------------------------------------------------------------------------- repacking
# Each packer reads the GGML rows of ``raw`` (rows, row bytes) and writes, for row r, lane
# r % G of group r // G. Offsets are bytes within a block, as in gradient.quant.matmul.

@compile_kernel
def _pack_q4_0(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 18
            scale[g, b, lane] = _f16(row[o], row[o + 1])
            for j in range(n16):
                codes[g, b, j, lane] = row[o + 2 + j]


@compile_kernel
def _pack_q4_1(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 20
            scale[g, b, lane] = _f16(row[o], row[o + 1])
            minimum[g, b, lane] = _f16(row[o + 2], row[o + 3])
            for j in range(n16):
                codes[g, b, j, lane] = row[o + 4 + j]


@compile_kernel
def _pack_q4_k(raw, codes, scale, minimum, sub, n16):
    # sub-block 2q + h of a super-block: nibble h of qs[32q .. 32q + 31]; repacked as Q4_0's
    # nibble order (value j low, value j + 16 high)
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 8):
            o = sb * 144
            scale[g, sb, lane] = _f16(row[o], row[o + 1])
            minimum[g, sb, lane] = _f16(row[o + 2], row[o + 3])
            for q in range(4):
                for h in range(2):
                    b = sb * 8 + 2 * q + h
                    sc, mn = _scale_min_k4(row, o + 4, 2 * q + h)
                    sub[g, b, 0, lane], sub[g, b, 1, lane] = sc, mn
                    src = o + 16 + q * 32
                    for j in range(n16):
                        lo = (np.int32(row[src + j]) >> (4 * h)) & 15
                        hi = (np.int32(row[src + 16 + j]) >> (4 * h)) & 15
                        codes[g, b, j, lane] = np.uint8(lo | (hi << 4))


@compile_kernel
def _pack_q8_0(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 34
            scale[g, b, lane] = _f16(row[o], row[o + 1])
            for j in range(2 * n16):
                codes[g, b, j, lane] = np.int8(row[o + 2 + j])


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
            scale[g, b, lane] = _f16(row[o], row[o + 1])
            qh = _u32(row, o + 2)
            for j in range(n16):
                q = np.int32(row[o + 6 + j])
                lo = (q & 15) | np.int32(((qh >> j) & 1) << 4)
                hi = (q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
                codes[g, b, j, lane] = np.int8(lo - 16)
                codes[g, b, j + 16, lane] = np.int8(hi - 16)


@compile_kernel
def _pack_q5_1(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for b in range(codes.shape[1]):
            o = b * 24
            scale[g, b, lane] = _f16(row[o], row[o + 1])
            minimum[g, b, lane] = _f16(row[o + 2], row[o + 3])
            qh = _u32(row, o + 4)
            for j in range(n16):
                q = np.int32(row[o + 8 + j])
                codes[g, b, j, lane] = np.int8((q & 15) | np.int32(((qh >> j) & 1) << 4))
                codes[g, b, j + 16, lane] = np.int8((q >> 4) |
                                                    np.int32(((qh >> (j + 16)) & 1) << 4))


@compile_kernel
def _pack_q5_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 8):
            o = sb * 176
            scale[g, sb, lane] = _f16(row[o], row[o + 1])
            minimum[g, sb, lane] = _f16(row[o + 2], row[o + 3])
            for q in range(4):
                for h in range(2):
                    j = 2 * q + h
                    b = sb * 8 + j
                    sc, mn = _scale_min_k4(row, o + 4, j)
                    sub[g, b, 0, lane], sub[g, b, 1, lane] = sc, mn
                    for l in range(2 * n16):
                        v = ((np.int32(row[o + 48 + q * 32 + l]) >> (4 * h)) & 15) | \
                            (((np.int32(row[o + 16 + l]) >> j) & 1) << 4)
                        codes[g, b, l, lane] = np.int8(v)


@compile_kernel
def _pack_q2_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 84
            scale[g, sb, lane] = _f16(row[o + 80], row[o + 81])
            minimum[g, sb, lane] = _f16(row[o + 82], row[o + 83])
            for q in range(2):
                for s in range(4):
                    for half in range(2):
                        k = q * 8 + s * 2 + half
                        b = sb * 16 + k
                        sc = np.int32(row[o + k])
                        sub[g, b, 0, lane], sub[g, b, 1, lane] = sc & 15, sc >> 4
                        src = o + 16 + q * 32 + half * 16
                        for l in range(n16):
                            codes[g, b, l, lane] = np.int8((np.int32(row[src + l]) >> (2 * s)) & 3)


@compile_kernel
def _pack_q3_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 110
            scale[g, sb, lane] = _f16(row[o + 108], row[o + 109])
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
                            codes[g, b, l, lane] = np.int8(ql - ((hbit ^ 1) << 2))


@compile_kernel
def _pack_q6_k(raw, codes, scale, minimum, sub, n16):
    G = LANES
    for r in range(raw.shape[0]):
        g, lane, row = r // G, r % G, raw[r]
        for sb in range(codes.shape[1] // 16):
            o = sb * 210
            scale[g, sb, lane] = _f16(row[o + 208], row[o + 209])
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
                            codes[g, b, l, lane] = np.int8((lo | (hi << 4)) - 32)


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
    kind: str                    # "nibble" or "byte"
    block: int                   # values per scale: 32 or 16
    offset: int                  # subtracted from the codes (8 for Q4_0)
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
        per_block = 16 if kind == "nibble" else block
        n_scales = n_blocks // per_super if per_super else n_blocks
        # long-lived: on pages of their own, outside the heap (see pages_of_their_own)
        codes = pages_of_their_own((groups, n_blocks, per_block, LANES),
                                   np.uint8 if kind == "nibble" else np.int8)
        scale = pages_of_their_own((groups, n_scales, LANES), np.float32)
        minimum = pages_of_their_own((groups, n_scales, LANES) if has_min else (0, 0, 0),
                                     np.float32)
        sub = pages_of_their_own((groups, n_blocks, 1 + has_min, LANES), np.int8) \
            if per_super else None
        if raw.size:
            _PACKERS[qtype](raw, codes, scale, minimum, sub, _N16)
        return cls(qtype, int(out_features), int(in_features), kind, block, offset,
                   codes, scale, minimum, sub)

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features

    @property
    def nbytes(self) -> int:
        """Bytes held: codes, scales and minimums."""
        return int(self.codes.nbytes + self.scale.nbytes + self.minimum.nbytes
                   + (0 if self.sub is None else self.sub.nbytes))

    def block_factors(self) -> tuple:
        """``(scale, minimum)`` of every block as float32 (groups, blocks, LANES), the values
        the kernels multiply by (``minimum`` None for types without one)."""
        return int8_numpy.block_factors(self.scale, self.minimum, self.sub,
                                        self.minimum.size > 0)

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
            _gather_rows(self.codes, self.scale, self.minimum, self.sub, self.minimum.size > 0,
                         self.offset, self.kind == "nibble", self.block, flat, out)
        return out.reshape(ids.shape + (self.in_features,))


# ----------------------------------------------------------------------------- dequantizing
@compile_kernel(inline=True)
def _super_block(b, sub, scale):
    """The super-block of block ``b`` of a k-quant: 8 blocks of 32 values or 16 of 16 a
    super-block (a shift: an integer division per block cost as much as the block's sums)."""
    return b >> 3 if sub.shape[1] == 8 * scale.shape[1] else b >> 4


def _factors(scale, minimum, sub, has_min, g, b, lane):
    """``(scale, minimum)`` of lane ``lane`` of block ``b`` of group ``g``, in compiled kernels:
    as stored (``sub`` None), or for a k-quant its super-block's ``d`` times the block's
    integer scale and ``-(dmin * m)``: ggml's own float32 products (the minimum is 0 without
    ``has_min``). Which of the two is decided when a kernel compiles, by ``sub``'s type."""
    raise NotImplementedError("_factors runs in compiled kernels only")


@overload(_factors, inline="always")
def _factors_typed(scale, minimum, sub, has_min, g, b, lane):
    if sub is types.none:
        def stored(scale, minimum, sub, has_min, g, b, lane):
            return scale[g, b, lane], (minimum[g, b, lane] if has_min else np.float32(0))
        return stored

    def two_levels(scale, minimum, sub, has_min, g, b, lane):
        sb = _super_block(b, sub, scale)
        s = scale[g, sb, lane] * np.float32(sub[g, b, 0, lane])
        if not has_min:
            return s, np.float32(0)
        return s, -(minimum[g, sb, lane] * np.float32(sub[g, b, 1, lane]))
    return two_levels


@compile_kernel(inline=True)
def _value(codes, s, m, has_min, offset, nibble, g, b, i, lane):
    """Value ``i`` of block ``b`` of row ``g * G + lane``, whose block has the scale ``s`` and
    minimum ``m`` (:func:`_factors`), as ggml rounds it."""
    if nibble:
        c = np.int32(codes[g, b, i % 16, lane])
        q = (c & 15) if i < 16 else (c >> 4)
    else:
        q = np.int32(codes[g, b, i, lane])
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
            for i in range(block):
                out[r - r0, b * block + i] = _value(codes, s, m, has_min, offset, nibble, g, b,
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
            for i in range(block):
                out[t, b * block + i] = _value(codes, s, m, has_min, offset, nibble, g, b, i,
                                               lane)


def dequantize_interleaved(w: InterleavedWeight, r0: int, r1: int, out: np.ndarray) -> None:
    """Rows ``r0:r1`` of ``w`` into ``out`` (float32, (r1 - r0, in_features)), bit-exact."""
    args = (w.codes, w.scale, w.minimum, w.sub, w.minimum.size > 0, w.offset, w.kind == "nibble",
            w.block)
    n_threads = _threads((r1 - r0) * w.in_features)
    if n_threads > 1:
        _dequant_parallel(*args, r0, r1, out, min(r1 - r0, n_threads))
    else:
        _dequant_groups(*args, r0, r1, out)


# ----------------------------------------------------------------------------- activations
@compile_kernel
def _round_f16(a):
    """Round float32 values to the nearest float16 (ties to even), in place, as float32."""
    u = a.view(np.uint32)
    for i in range(a.size):
        v = abs(a[i])
        if v < np.float32(2.0 ** -14):            # float16 subnormals: multiples of 2 ** -24
            r = np.float32(np.rint(v * np.float32(2.0 ** 24)) * np.float32(2.0 ** -24))
            a[i] = r if a[i] >= 0 else -r
        elif v >= np.float32(65520.0):
            a[i] = np.float32(np.inf) if a[i] > 0 else np.float32(-np.inf)
        elif v == v:                              # drop 13 mantissa bits, ties to even
            b = u[i]
            u[i] = (b + np.uint32(0x0FFF) + ((b >> np.uint32(13)) & np.uint32(1))) & \
                np.uint32(0xFFFFE000)


@compile_kernel
def _quantize_rows(x, xq, xd, xs, xs16, xsum):
    n, k = x.shape
    for i in range(n):
        for b in range(k // 32):
            amax = np.float32(0.0)
            for j in range(32):
                amax = max(amax, abs(x[i, b * 32 + j]))
            d = amax / np.float32(127.0)
            inv = np.float32(127.0) / amax if amax > 0 else np.float32(0.0)
            s0 = 0
            s1 = 0
            for j in range(16):
                q = np.int32(np.rint(x[i, b * 32 + j] * inv))
                xq[i, b * 32 + j] = q
                s0 += q
            for j in range(16, 32):
                q = np.int32(np.rint(x[i, b * 32 + j] * inv))
                xq[i, b * 32 + j] = q
                s1 += q
            xd[i, b] = d
            xsum[i, b] = s0 + s1
            xs[i, b] = np.float32(s0 + s1) * d
            xs16[i, 2 * b] = np.float32(s0) * d
            xs16[i, 2 * b + 1] = np.float32(s1) * d
    _round_f16(xd.reshape(-1))
    _round_f16(xs.reshape(-1))


def quantize_activations(x: np.ndarray):
    """Rows of ``x`` (n, k), k a multiple of 32, as llama.cpp's ``Q8_1`` blocks: int8 values
    ``rint(x * 127 / max|x|)`` per 32, the block scale ``max|x| / 127`` rounded to float16, and
    the block sum ``scale * sum(q)`` rounded to float16. Returns ``(q, scale, sum32, sum16,
    qsum)``: ``sum16`` the unrounded sums of each 16 values (for the types with a minimum per
    16), ``qsum`` the int32 sums of q per 32.

    Example: ``q, d, s, s16, qsum = quantize_activations(np.ones((1, 64), np.float32))``
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = x.shape[1]
    if k % 32:
        raise ShapeError(f"quantize_activations: rows of {k} values; int8 activations are "
                         f"quantized in blocks of 32, so k must be a multiple of 32")
    return _quantized(x)


@compile_kernel
def _quantized(x):
    """:func:`quantize_activations` of contiguous float32 rows, in new arrays."""
    n, k = x.shape
    xq = np.empty((n, k), np.int8)
    xd = np.empty((n, k // 32), np.float32)
    xs = np.empty((n, k // 32), np.float32)
    xs16 = np.empty((n, k // 16), np.float32)
    xsum = np.empty((n, k // 32), np.int32)
    _quantize_rows(x, xq, xd, xs, xs16, xsum)
    return xq, xd, xs, xs16, xsum


# ----------------------------------------------------------------------------- products
# The int8 products are llama.cpp's: per block of a row of W, the integer sum of its codes
# times x's int8 values, then ``(scale * x_scale) * sum (+ minimum * x_sum)``. The integer
# sums run on pmaddubsw/pmaddwd where the CPU has them (gradient.backends.cpu_simd): the 32
# rows of a group are 32 lanes, and codes j and j+1 of every lane, zipped into pairs, meet
# the pair x[j], x[j+1]. Every sum is exact, so the results are the bits of the plain loops
# (the NumPy twin, gradient.quant.int8_numpy) on any CPU.
#
# One row of x runs straight from the codes. Several rows (a batch's decode step, a prompt)
# unzip each block's codes once into ``planes`` and take every row through them: a block is
# read and unpacked once, not once per row (measured on SmolLM2's Q4_1 shapes: 8 rows in
# 0.58 of the time of 8 single rows).

#: Rows of x taken through a chunk's weights together: their int8 values stay in the cache
#: while every block of the chunk meets them.
ROW_TILE = 32


def _block_factors(scale, minimum, sub, has_min, g, b, made):
    """In compiled kernels: ``made[0]``, ``made[1]``, the scales and minimums of the 32 lanes
    of block b of group g (:func:`_factors`; the minimums only with ``has_min``)."""
    raise NotImplementedError("_block_factors runs in compiled kernels only")


@overload(_block_factors, inline="always")
def _block_factors_typed(scale, minimum, sub, has_min, g, b, made):
    if sub is types.none:
        def stored(scale, minimum, sub, has_min, g, b, made):
            for r in range(made.shape[1]):
                made[0, r] = scale[g, b, r]
            if has_min:
                for r in range(made.shape[1]):
                    made[1, r] = minimum[g, b, r]
        return stored

    # (the trip count read from made's shape: a constant 32 got the loops fully unrolled
    # into scalar code instead of vectorised)
    def two_levels(scale, minimum, sub, has_min, g, b, made):
        # written with cpu_simd's float vectors: as loops, inlined into the products, LLVM
        # left them scalar (the Q4_K product took three times as long)
        sb = _super_block(b, sub, scale)
        lanes = scale.shape[2]
        at = (g * scale.shape[1] + sb) * lanes
        sub_at = ((g * sub.shape[1] + b) * sub.shape[2]) * lanes
        for r in range(0, lanes, 8):
            store_f32x8(made, r, mul_f32(load_f32x8(scale, at + r),
                                         load_i8_as_f32x8(sub, sub_at + r)))
        if has_min:
            for r in range(0, lanes, 8):
                store_f32x8(made, lanes + r, neg_f32(mul_f32(
                    load_f32x8(minimum, at + r), load_i8_as_f32x8(sub, sub_at + lanes + r))))
    return two_levels


def _two_level_factors(scale, minimum, sub, has_min, g, b, made):
    """In compiled kernels: a k-quant block's scales and minimums into ``made`` (see
    :func:`_block_factors`), once for every row of x that meets the block; nothing for the
    types that store them."""
    raise NotImplementedError("_two_level_factors runs in compiled kernels only")


@overload(_two_level_factors, inline="always")
def _two_level_factors_typed(scale, minimum, sub, has_min, g, b, made):
    if sub is types.none:
        return lambda scale, minimum, sub, has_min, g, b, made: None
    return lambda scale, minimum, sub, has_min, g, b, made: _block_factors(
        scale, minimum, sub, has_min, g, b, made)


def _block_epilogue(isum, scale, minimum, sub, made, has_min, g, b, sx, sm, shift, acc):
    """``acc[r] += (scale * sx) * (isum[r] - shift) (+ minimum * sm)`` for the 32 lanes of
    block b of group g, in compiled kernels (the subtraction in int32: LLVM then converts 8
    lanes at a time): the scales and minimums as stored, or a k-quant's from ``made``
    (:func:`_two_level_factors`). Which, is chosen by ``sub``'s type when a kernel compiles:
    with both loops in one kernel behind a branch, LLVM laid out the integer loop before them
    worse (the single-row Q4_0 product took twice the time)."""
    raise NotImplementedError("_block_epilogue runs in compiled kernels only")


@overload(_block_epilogue, inline="always")
def _block_epilogue_typed(isum, scale, minimum, sub, made, has_min, g, b, sx, sm, shift, acc):
    if sub is types.none:
        def stored(isum, scale, minimum, sub, made, has_min, g, b, sx, sm, shift, acc):
            for r in range(LANES):
                t = (scale[g, b, r] * sx) * np.float32(np.int32(isum[r] - shift))
                if has_min:
                    t += minimum[g, b, r] * sm
                acc[r] += t
        return stored

    def made_here(isum, scale, minimum, sub, made, has_min, g, b, sx, sm, shift, acc):
        for r in range(LANES):
            t = (made[0, r] * sx) * np.float32(np.int32(isum[r] - shift))
            if has_min:
                t += made[1, r] * sm
            acc[r] += t
    return made_here


@compile_kernel(inline=True)
def _nibble_step(low_a, high_a, low_b, high_b, xq, o, sums_a, sums_b):
    """Codes j, j+1 (low nibbles) and j+16, j+17 (high nibbles) of the 32 lanes, zipped
    (``_a``: zip_low's lanes, ``_b``: zip_high's), times x's pairs at ``o`` and ``o + 16``,
    added to the int16 sums of the two halves of the lanes."""
    x_low = broadcast_i8_pair(xq, o)
    x_high = broadcast_i8_pair(xq, o + 16)
    sums_a = add(sums_a, add(dot_u8_i8(low_a, x_low), dot_u8_i8(high_a, x_high)))
    sums_b = add(sums_b, add(dot_u8_i8(low_b, x_low), dot_u8_i8(high_b, x_high)))
    return sums_a, sums_b


@compile_kernel(inline=True)
def _byte_step(a_low, a_high, b_low, b_high, xq, o, sums):
    """Codes j, j+1 of the 32 lanes, zipped and widened to int16 (``a_low``: zip_low's first
    8 lanes ...), times x's pair at ``o``, added to the four int32 sums."""
    x = broadcast_i16_pair(xq, o)
    s0, s1, s2, s3 = sums
    return (add(s0, dot_i16(a_low, x)), add(s1, dot_i16(a_high, x)),
            add(s2, dot_i16(b_low, x)), add(s3, dot_i16(b_high, x)))


@compile_kernel
def _nibble_row(codes, scale, minimum, sub, has_min, offset, xq, xd, xs, xsum, y, i, g0, g1):
    """Row ``i`` of y, its columns of groups g0..g1, for nibble codes (Q4_0's offset comes
    off the sums as ``offset * sum(x_q)``)."""
    nb, k = codes.shape[1], xq.shape[1]
    isum = np.empty(LANES, np.int32)
    acc = np.empty(LANES, np.float32)
    made = np.empty((2, LANES), np.float32)     # a k-quant block's scales, minimums
    for g in range(g0, g1):
        acc[:] = 0
        for b in range(nb):
            at, o = (g * nb + b) * 16 * LANES, i * k + b * 32
            low, high = zeros_i32x16(), zeros_i32x16()
            for half in range(2):      # int16 sums of 16 products: |sum| <= 16 * 15 * 128
                sums_a, sums_b = zeros_i16x16(), zeros_i16x16()
                for s in range(4):
                    j = 8 * half + 2 * s
                    v0 = load_i8x32(codes, at + j * LANES)
                    v1 = load_i8x32(codes, at + (j + 1) * LANES)
                    za, zb = zip_low(v0, v1), zip_high(v0, v1)
                    sums_a, sums_b = _nibble_step(low_nibbles(za), high_nibbles(za),
                                                  low_nibbles(zb), high_nibbles(zb),
                                                  xq, o + j, sums_a, sums_b)
                low, high = add(low, widen_i16(sums_a)), add(high, widen_i16(sums_b))
            store_zipped(isum, 0, low, high)
            _two_level_factors(scale, minimum, sub, has_min, g, b, made)
            _block_epilogue(isum, scale, minimum, sub, made, has_min, g, b, xd[i, b], xs[i, b],
                            np.int32(offset * xsum[i, b]), acc)
        for r in range(min(LANES, y.shape[1] - g * LANES)):
            y[i, g * LANES + r] = acc[r]


@compile_kernel
def _nibble_rows(codes, scale, minimum, sub, has_min, offset, xq, xd, xs, xsum, y, i0, i1,
                 g0, g1):
    """Rows ``i0 .. i1-1`` of y, as :func:`_nibble_row` computes each: every block's
    nibbles zipped once into ``planes``, then taken through by every row."""
    nb, k, n = codes.shape[1], xq.shape[1], i1 - i0
    planes = np.empty(8 * 4 * 32, np.uint8)     # per step of two codes: 4 vectors of 32
    isum = np.empty((n, LANES), np.int32)
    acc = np.empty((n, LANES), np.float32)
    made = np.empty((2, LANES), np.float32)     # a k-quant block's scales, minimums
    for g in range(g0, g1):
        acc[:, :] = 0
        for b in range(nb):
            at = (g * nb + b) * 16 * LANES
            for s in range(8):
                v0 = load_i8x32(codes, at + 2 * s * LANES)
                v1 = load_i8x32(codes, at + (2 * s + 1) * LANES)
                za, zb = zip_low(v0, v1), zip_high(v0, v1)
                store_i8x32(planes, 128 * s, low_nibbles(za))
                store_i8x32(planes, 128 * s + 32, high_nibbles(za))
                store_i8x32(planes, 128 * s + 64, low_nibbles(zb))
                store_i8x32(planes, 128 * s + 96, high_nibbles(zb))
            for ii in range(n):
                o = (i0 + ii) * k + b * 32
                low, high = zeros_i32x16(), zeros_i32x16()
                for half in range(2):
                    sums_a, sums_b = zeros_i16x16(), zeros_i16x16()
                    for t in range(4):
                        s = 4 * half + t
                        sums_a, sums_b = _nibble_step(
                            load_i8x32(planes, 128 * s), load_i8x32(planes, 128 * s + 32),
                            load_i8x32(planes, 128 * s + 64), load_i8x32(planes, 128 * s + 96),
                            xq, o + 2 * s, sums_a, sums_b)
                    low, high = add(low, widen_i16(sums_a)), add(high, widen_i16(sums_b))
                store_zipped(isum, ii * LANES, low, high)
            _two_level_factors(scale, minimum, sub, has_min, g, b, made)
            for ii in range(n):
                i = i0 + ii
                _block_epilogue(isum[ii], scale, minimum, sub, made, has_min, g, b, xd[i, b],
                                xs[i, b], np.int32(offset * xsum[i, b]), acc[ii])
        for ii in range(n):
            for r in range(min(LANES, y.shape[1] - g * LANES)):
                y[i0 + ii, g * LANES + r] = acc[ii, r]


@compile_kernel
def _byte_row(codes, scale, minimum, sub, has_min, xq, xd, xs, xs16, y, i, g0, g1, nj):
    """As :func:`_nibble_row` for one-byte codes in blocks of ``nj`` (16 or 32) values."""
    nb, k = codes.shape[1], xq.shape[1]
    isum = np.empty(LANES, np.int32)
    acc = np.empty(LANES, np.float32)
    made = np.empty((2, LANES), np.float32)     # a k-quant block's scales, minimums
    for g in range(g0, g1):
        acc[:] = 0
        for b in range(nb):
            at, o = (g * nb + b) * nj * LANES, i * k + b * nj
            sums = (zeros_i32x8(), zeros_i32x8(), zeros_i32x8(), zeros_i32x8())
            for s in range(nj // 2):
                v0 = load_i8x32(codes, at + 2 * s * LANES)
                v1 = load_i8x32(codes, at + (2 * s + 1) * LANES)
                za, zb = zip_low(v0, v1), zip_high(v0, v1)
                sums = _byte_step(widen_i8_low(za), widen_i8_high(za), widen_i8_low(zb),
                                  widen_i8_high(zb), xq, o + 2 * s, sums)
            store_zipped(isum, 0, join(sums[0], sums[1]), join(sums[2], sums[3]))
            sm = xs[i, b] if nj == 32 else xs16[i, b]
            _two_level_factors(scale, minimum, sub, has_min, g, b, made)
            _block_epilogue(isum, scale, minimum, sub, made, has_min, g, b,
                            xd[i, (b * nj) // 32], sm, np.int32(0), acc)
        for r in range(min(LANES, y.shape[1] - g * LANES)):
            y[i, g * LANES + r] = acc[r]


@compile_kernel
def _byte_rows(codes, scale, minimum, sub, has_min, xq, xd, xs, xs16, y, i0, i1, g0, g1, nj):
    """Rows ``i0 .. i1-1`` of y, as :func:`_byte_row` computes each, through ``planes`` of
    every block's codes zipped and widened to int16 once."""
    nb, k, n = codes.shape[1], xq.shape[1], i1 - i0
    planes = np.empty(16 * 4 * 16, np.int16)    # per step of two codes: 4 vectors of 16
    isum = np.empty((n, LANES), np.int32)
    acc = np.empty((n, LANES), np.float32)
    made = np.empty((2, LANES), np.float32)     # a k-quant block's scales, minimums
    for g in range(g0, g1):
        acc[:, :] = 0
        for b in range(nb):
            at = (g * nb + b) * nj * LANES
            for s in range(nj // 2):
                v0 = load_i8x32(codes, at + 2 * s * LANES)
                v1 = load_i8x32(codes, at + (2 * s + 1) * LANES)
                za, zb = zip_low(v0, v1), zip_high(v0, v1)
                store_i16x16(planes, 64 * s, widen_i8_low(za))
                store_i16x16(planes, 64 * s + 16, widen_i8_high(za))
                store_i16x16(planes, 64 * s + 32, widen_i8_low(zb))
                store_i16x16(planes, 64 * s + 48, widen_i8_high(zb))
            for ii in range(n):
                o = (i0 + ii) * k + b * nj
                sums = (zeros_i32x8(), zeros_i32x8(), zeros_i32x8(), zeros_i32x8())
                for s in range(nj // 2):
                    sums = _byte_step(load_i16x16(planes, 64 * s),
                                      load_i16x16(planes, 64 * s + 16),
                                      load_i16x16(planes, 64 * s + 32),
                                      load_i16x16(planes, 64 * s + 48), xq, o + 2 * s, sums)
                store_zipped(isum, ii * LANES, join(sums[0], sums[1]), join(sums[2], sums[3]))
            _two_level_factors(scale, minimum, sub, has_min, g, b, made)
            for ii in range(n):
                i = i0 + ii
                sm = xs[i, b] if nj == 32 else xs16[i, b]
                _block_epilogue(isum[ii], scale, minimum, sub, made, has_min, g, b,
                                xd[i, (b * nj) // 32], sm, np.int32(0), acc[ii])
        for ii in range(n):
            for r in range(min(LANES, y.shape[1] - g * LANES)):
                y[i0 + ii, g * LANES + r] = acc[ii, r]


@compile_kernel
def _float_groups(codes, scale, minimum, sub, has_min, offset, nibble, x, y, g0, g1, nj):
    """y[:, rows of groups g0..g1] with float32 activations: each weight decoded exactly
    (``scale * (q - offset) + minimum``), float32 products and sums."""
    n = x.shape[0]
    nb, G = codes.shape[1], LANES
    m = y.shape[1]
    acc = np.empty((n, G), np.float32)
    wa = np.empty(G, np.float32)
    wb = np.empty(G, np.float32)
    made = np.empty((2, G), np.float32)
    off = np.float32(offset)
    for g in range(g0, g1):
        acc[:, :] = 0
        for b in range(nb):
            _block_factors(scale, minimum, sub, has_min, g, b, made)
            for j in range(nj):
                q = codes[g, b, j]
                for r in range(G):
                    if nibble:
                        c = np.int32(q[r])
                        wa[r] = made[0, r] * (np.float32(c & 15) - off)
                        wb[r] = made[0, r] * (np.float32(c >> 4) - off)
                    else:
                        wa[r] = made[0, r] * np.float32(q[r])
                    if has_min:
                        wa[r] += made[1, r]
                        wb[r] += made[1, r]
                for i in range(n):
                    if nibble:
                        xa = x[i, b * 32 + j]
                        xb = x[i, b * 32 + 16 + j]
                        for r in range(G):
                            acc[i, r] += wa[r] * xa + wb[r] * xb
                    else:
                        xa = x[i, b * nj + j]
                        for r in range(G):
                            acc[i, r] += wa[r] * xa
        for i in range(n):
            for r in range(min(G, m - g * G)):
                y[i, g * G + r] = acc[i, r]


@compile_kernel
def _product_groups(codes, scale, minimum, sub, has_min, offset, nibble, nj, xq, xd, xs, xs16, xsum,
                    y, i0, i1, lo, hi):
    """Rows i0..i1-1 of y, their columns of groups lo..hi (none when lo >= hi), int8
    activations."""
    if lo >= hi:
        return
    if i1 - i0 == 1:
        if nibble:
            _nibble_row(codes, scale, minimum, sub, has_min, offset, xq, xd, xs, xsum, y, i0, lo, hi)
        else:
            _byte_row(codes, scale, minimum, sub, has_min, xq, xd, xs, xs16, y, i0, lo, hi, nj)
    elif nibble:
        _nibble_rows(codes, scale, minimum, sub, has_min, offset, xq, xd, xs, xsum, y, i0, i1, lo,
                     hi)
    else:
        _byte_rows(codes, scale, minimum, sub, has_min, xq, xd, xs, xs16, y, i0, i1, lo, hi, nj)


@compile_kernel
def _int8_chunk(xq, xd, xs, xs16, xsum, codes, scale, minimum, sub, has_min, offset, nibble, y, nj,
                c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of an int8 product of the quantized rows (xq, xd, ...): its
    groups of rows of W, for tiles of ``ROW_TILE`` rows of x one after the other (the chunk's
    weights, a few hundred KB, stay in the L2 cache between tiles)."""
    groups = codes.shape[0]
    step = (groups + n_chunks - 1) // n_chunks
    g0, g1 = c * step, min(groups, (c + 1) * step)
    n = xq.shape[0]
    for i0 in range(0, n, ROW_TILE):
        _product_groups(codes, scale, minimum, sub, has_min, offset, nibble, nj, xq, xd, xs, xs16,
                        xsum, y, i0, min(n, i0 + ROW_TILE), g0, g1)


@compile_kernel(parallel=True)
def _int8_product(x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj):
    # the rows of x quantized first (one pass, on one thread: a few microseconds for a decode
    # step's row), then the chunks in parallel (numba's threads: in compiled steps)
    xq, xd, xs, xs16, xsum = _quantized(x)
    for c in numba.prange(n_chunks):
        _int8_chunk(xq, xd, xs, xs16, xsum, codes, scale, minimum, sub, has_min, offset, nibble, y,
                    nj, c, n_chunks)


def _int8_threads(x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj):
    """:func:`_int8_product` called from Python; where it is not compiled yet (see
    :func:`~gradient.backends.cpu_compile.compiled_already`), its NumPy twin
    (:mod:`.int8_numpy`), so that no int8 kernel is compiled before a first token; the same
    bits."""
    args = (x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj)
    if compiled_already(_int8_product, args):
        _int8_product(*args)
    else:
        int8_numpy.product(int8_numpy.quantize_rows(x), codes, scale, minimum, sub, has_min, offset,
                           nibble, nj, y)


@compile_kernel
def _products_chunk(xq, xd, xs, xs16, xsum,
                    ac, as_, am, asub, a_min, a_off, a_nib, a_nj, ay,
                    bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, by,
                    cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, cy, c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of three int8 products of the same quantized rows: the
    groups of rows of the three weights, taken as one list, each computed as
    :func:`_int8_chunk` computes it."""
    n = xq.shape[0]
    na, nb, nc = ac.shape[0], bc.shape[0], cc.shape[0]
    total = na + nb + nc
    step = (total + n_chunks - 1) // n_chunks
    g0, g1 = c * step, min(total, (c + 1) * step)
    for i0 in range(0, n, ROW_TILE):
        i1 = min(n, i0 + ROW_TILE)
        _product_groups(ac, as_, am, asub, a_min, a_off, a_nib, a_nj, xq, xd, xs, xs16, xsum, ay,
                        i0, i1, g0, min(g1, na))
        _product_groups(bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, xq, xd, xs, xs16, xsum, by,
                        i0, i1, max(g0, na) - na, min(g1, na + nb) - na)
        _product_groups(cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, xq, xd, xs, xs16, xsum, cy,
                        i0, i1, max(g0, na + nb) - na - nb, min(g1, total) - na - nb)


@compile_kernel(parallel=True)
def _int8_products(x, n_chunks,
                   ac, as_, am, asub, a_min, a_off, a_nib, a_nj, ay,
                   bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, by,
                   cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, cy):
    # three products of the same rows x (q, k and v; gate and up with an empty third): x
    # quantized once, then one parallel loop over the groups of rows of all three weights
    xq, xd, xs, xs16, xsum = _quantized(x)
    for c in numba.prange(n_chunks):
        _products_chunk(xq, xd, xs, xs16, xsum, ac, as_, am, asub, a_min, a_off, a_nib, a_nj, ay,
                        bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, by,
                        cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, cy, c, n_chunks)


def int8_products(x: np.ndarray, weights: list) -> tuple:
    """``(x @ W.T for W in weights)`` with int8 activations, for two or three weights of one
    ``in_features`` and a few contiguous float32 rows x: one compiled call that quantizes x
    once and runs the products in one parallel loop (the q, k and v projections of a decode
    step, as llama.cpp runs them), each result bit for bit :func:`interleaved_matmul`'s.

    Example: ``q, k, v = int8_products(h, [wq, wk, wv])``
    """
    if not 2 <= len(weights) <= 3:
        raise ValueError(f"int8_products: expected two or three weights, got {len(weights)}")
    ys = [np.empty((x.shape[0], w.out_features), np.float32) for w in weights]
    args = []
    for w, y in zip(weights, ys):
        _, head, (_, nj) = _product_call(w, "int8")
        args += [*head, nj, y]
    if len(weights) == 2:      # no third product: the first weight with no groups
        args += [a[:0] if isinstance(a, np.ndarray) and a.ndim else a for a in args[:9]]
    groups = sum(w.codes.shape[0] for w in weights)
    n_chunks = min(groups, _threads(sum(w.out_features for w in weights) * x.shape[1]) * 2)
    if compiled_already(_int8_products, (x, n_chunks, *args)):
        _int8_products(x, n_chunks, *args)
    else:      # not compiled yet: each product's NumPy twin (see _int8_threads)
        quantized = int8_numpy.quantize_rows(x)
        for w, y in zip(weights, ys):
            _, head, (_, nj) = _product_call(w, "int8")
            int8_numpy.product(quantized, *head, nj, y)
    return tuple(ys)


@compile_kernel
def int8_product_compiled(x, rows, out_shape, codes, scale, minimum, sub, has_min, offset, nibble,
                          n_chunks, nj):
    """What a :class:`~gradient.quant.QuantizedLinear` with int8 activations computes for a few
    rows, inside a compiled step (see :mod:`gradient.kernels.lowering`): x reshaped to
    ``rows``, times W.T, reshaped to ``out_shape``."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    y = np.empty((rows[0], out_shape[len(out_shape) - 1]), np.float32)
    _int8_product(x2, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj)
    return y.reshape(out_shape)


@compile_kernel
def float_product_compiled(x, rows, out_shape, codes, scale, minimum, sub, has_min, offset, nibble,
                           n_chunks, nj):
    """:func:`int8_product_compiled` with float32 activations."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    y = np.empty((rows[0], out_shape[len(out_shape) - 1]), np.float32)
    _float_product(x2, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj)
    return y.reshape(out_shape)


@compile_kernel
def products_compiled(x, rows, n_chunks,
                      ac, as_, am, asub, a_min, a_off, a_nib, a_nj, a_shape,
                      bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, b_shape,
                      cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, c_shape):
    """:func:`int8_products` of three weights inside a compiled step."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    n = rows[0]
    ay = np.empty((n, a_shape[len(a_shape) - 1]), np.float32)
    by = np.empty((n, b_shape[len(b_shape) - 1]), np.float32)
    cy = np.empty((n, c_shape[len(c_shape) - 1]), np.float32)
    _int8_products(x2, n_chunks, ac, as_, am, asub, a_min, a_off, a_nib, a_nj, ay,
                   bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, by,
                   cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, cy)
    return ay.reshape(a_shape), by.reshape(b_shape), cy.reshape(c_shape)


@compile_kernel
def two_products_compiled(x, rows, n_chunks,
                          ac, as_, am, asub, a_min, a_off, a_nib, a_nj, a_shape,
                          bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, b_shape,
                          cc, cs, cm, csub, c_min, c_off, c_nib, c_nj):
    """:func:`int8_products` of two weights inside a compiled step (``c``: a weight with no
    groups, as :func:`int8_products` passes it)."""
    x2 = np.ascontiguousarray(x).reshape(rows)
    n = rows[0]
    ay = np.empty((n, a_shape[len(a_shape) - 1]), np.float32)
    by = np.empty((n, b_shape[len(b_shape) - 1]), np.float32)
    _int8_products(x2, n_chunks, ac, as_, am, asub, a_min, a_off, a_nib, a_nj, ay,
                   bc, bs, bm, bsub, b_min, b_off, b_nib, b_nj, by,
                   cc, cs, cm, csub, c_min, c_off, c_nib, c_nj, ay)
    return ay.reshape(a_shape), by.reshape(b_shape)


def lowered_products(x, rows, weights, out_shapes) -> Lowered:
    """The compiled form (:mod:`gradient.kernels.lowering`) of ``int8_products`` of x
    reshaped to ``rows`` by two or three weights, each result reshaped to its out shape: the
    kernel's arguments as :func:`int8_products` makes them (the same compiled specialization)."""
    args = []
    for w, shape in zip(weights, out_shapes):
        _, head, (_, nj) = _product_call(w, "int8")
        args += [*head, nj, tuple(shape)]
    groups = sum(w.codes.shape[0] for w in weights)
    n_chunks = min(groups, _threads(sum(w.out_features for w in weights) * rows[1]) * 2)
    if len(weights) == 2:      # no third product: the first weight with no groups
        args += [a[:0] if isinstance(a, np.ndarray) and a.ndim else a for a in args[:8]]
    fn = products_compiled if len(weights) == 3 else two_products_compiled
    return Lowered(fn, (x, tuple(rows), n_chunks, *args),
                   trace=("interleaved_matmul", "numba", len(weights)))


def lowered_product(x, rows, w, activations, out_shape) -> Lowered:
    """The compiled form of ``interleaved_matmul(x.reshape(rows), w, activations)`` reshaped
    to ``out_shape`` (a prepared product: see ``_prepare``)."""
    kernel, head, (n_chunks, nj) = _product_call(w, activations)
    fn = int8_product_compiled if kernel is _int8_threads else float_product_compiled
    return Lowered(fn, (x, tuple(rows), tuple(out_shape), *head, n_chunks, nj),
                   trace=("interleaved_matmul", "numba"))


@compile_kernel
def _float_chunk(x, codes, scale, minimum, sub, has_min, offset, nibble, y, nj, c, n_chunks):
    """Chunk ``c`` of ``n_chunks`` of a float32-activation product: its groups of rows of W."""
    groups = codes.shape[0]
    step = (groups + n_chunks - 1) // n_chunks
    _float_groups(codes, scale, minimum, sub, has_min, offset, nibble, x, y, c * step,
                  min(groups, (c + 1) * step), nj)


@compile_kernel(parallel=True)
def _float_product(x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj):
    for c in numba.prange(n_chunks):
        _float_chunk(x, codes, scale, minimum, sub, has_min, offset, nibble, y, nj, c, n_chunks)


def _float_threads(x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj):
    """:func:`_float_product` called from Python, on Python threads (as :func:`_int8_threads`)."""
    args = (x, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj)
    if compiled_already(_float_product, args):
        _float_product(*args)
        return
    in_threads(_float_chunk, (x, codes, scale, minimum, sub, has_min, offset, nibble, y, nj),
               n_chunks, _threads(x.shape[0] * y.shape[1] * x.shape[1]))


def _product_call(w: InterleavedWeight, activations: str) -> tuple:
    """``(kernel, head, tail)``: y = x @ W.T for contiguous float32 rows x is
    ``kernel(x, *head, y, *tail)``, one compiled call."""
    nibble = w.kind == "nibble"
    return (_int8_threads if activations == "int8" else _float_threads,
            (w.codes, w.scale, w.minimum, w.sub, w.minimum.size > 0, w.offset, nibble),
            (min(w.codes.shape[0], _threads(w.out_features * w.in_features) * 2),
             16 if nibble else w.block))


@register("interleaved_matmul", "cpu", "numba")
def interleaved_matmul(x: np.ndarray, w: InterleavedWeight,
                       activations: str = "int8") -> np.ndarray:
    """``x @ W.T`` (float32, shape (n, out_features)) for x (n, in_features).

    ``activations="int8"``: the rows of x quantized as llama.cpp does (see the module
    docstring); ``"float32"``: exact weights times float32 x. Either way each row's result
    is the same bits whatever the number of rows.

    Example: ``y = interleaved_matmul(np.ones((1, 576), np.float32), w)``
    """
    if activations not in ACTIVATIONS:
        raise ValueError(f"activations must be one of {ACTIVATIONS}, got {activations!r}")
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
    captured decode step): the compiled call alone; None where the general path is needed."""
    if not (type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and x.ndim == 2 and 0 < x.shape[0] <= SMALL_BATCH and x.shape[1] == w.in_features
            and w.out_features > 0 and activations in ACTIVATIONS):
        return None
    shape, out_shape = x.shape, (x.shape[0], w.out_features)
    kernel, (codes, scale, minimum, sub, has_min, offset, nibble), (n_chunks, nj) = \
        _product_call(w, activations)

    def prepared(x_, w_, activations_="int8"):
        if (x_.shape != shape or w_ is not w or activations_ != activations
                or type(x_) is not np.ndarray or x_.dtype != np.float32
                or not x_.flags.c_contiguous):
            return None
        y = np.empty(out_shape, np.float32)
        kernel(x_, codes, scale, minimum, sub, has_min, offset, nibble, y, n_chunks, nj)
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
