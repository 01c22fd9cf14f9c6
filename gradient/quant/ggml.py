"""GGML's tensor types: the block formats of GGUF files, and their dequantization to float32.

A quantized GGML tensor is a sequence of fixed-size *blocks*; each block stores ``block_size``
consecutive values of a row as small integers plus one or a few scales. Rows hold whole blocks,
so a tensor of ``n`` values of type ``t`` takes ``n // block_size * type_size`` bytes.

===========  =====  =====  =================================================================
type         block  bytes  one block, in the order of its bytes
===========  =====  =====  =================================================================
F32 F16 BF16     1  4 2 2  the value (BF16: the top half of a float32)
Q8_0            32     34  f16 d, 32 x int8 q                          -> q * d
Q4_0            32     18  f16 d, 16 bytes of 4-bit q (low nibbles are values 0..15, high
                           nibbles values 16..31)                      -> (q - 8) * d
Q4_1            32     20  f16 d, f16 m, 16 bytes of 4-bit q           -> q * d + m
Q5_0            32     22  f16 d, 32 bits of 5th bits, 16 bytes of low nibbles -> (q - 16) * d
Q5_1            32     24  f16 d, f16 m, 32 bits of 5th bits, low nibbles      -> q * d + m
Q2_K           256     84  16 x (4-bit scale | 4-bit min << 4), 64 bytes of 2-bit q,
                           f16 d, f16 dmin    -> d * scale * q - dmin * min   (per 16 values)
Q3_K           256    110  32 bytes of high bits, 64 bytes of 2-bit low bits, 12 bytes of
                           sixteen 6-bit scales, f16 d  -> d * (scale - 32) * (q - 4 * !hbit)
Q4_K           256    144  f16 d, f16 dmin, 12 bytes of eight 6-bit scales and mins,
                           128 bytes of 4-bit q -> d * scale * q - dmin * min  (per 32 values)
Q5_K           256    176  as Q4_K, plus 32 bytes of fifth bits before the nibbles
Q6_K           256    210  128 bytes of low nibbles, 64 bytes of 2-bit high parts,
                           16 x int8 scale, f16 d  -> d * scale * (q - 32)   (per 16 values)
===========  =====  =====  =================================================================

The super-blocks (``*_K``) interleave their bits so that a SIMD kernel unpacks 32 or 64 values
with one shift: in Q2_K, say, byte ``l`` of a 32-byte group holds values ``l``, ``l + 32``,
``l + 64``, ``l + 96`` in its four 2-bit fields. The kernels below spell out, per value, which
bits it comes from.

Dequantization is bit-exact with ggml (and with ``gguf.quants.dequantize``, which the tests
compare against): the arithmetic is done in float32 in the same order (``d * q + m`` is a
float32 multiply rounded, then an add rounded; no fused multiply-add, which would round once).
Each block format is one numba kernel that runs over the blocks in parallel (large tensors
only: see ``PARALLEL_MIN_VALUES``).

Example::

    >>> raw = ...                                    # uint8 bytes of a Q4_K tensor of 4096 x 4096
    >>> w = dequantize(raw, GGMLType.Q4_K, (4096, 4096))    # float32 (4096, 4096)
"""

from __future__ import annotations

import enum

import numba
import numpy as np

from ..backends.cpu_compile import compile_kernel
from ..errors import ArgumentValueError, FileFormatError

__all__ = ["GGMLType", "BLOCK_SIZES", "DEQUANTIZABLE", "UnsupportedQuantTypeError",
           "dequantize", "tensor_nbytes", "type_name"]

QK_K = 256  # values per super-block of the k-quants


class GGMLType(enum.IntEnum):
    """GGML tensor type ids, as stored in GGUF tensor infos (ggml.h's ``enum ggml_type``)."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39


# (values per block, bytes per block) of every type, including those not dequantized here:
# a GGUF reader needs them to check that each tensor's bytes lie inside the file.
BLOCK_SIZES: dict[GGMLType, tuple[int, int]] = {
    GGMLType.F32: (1, 4), GGMLType.F16: (1, 2), GGMLType.BF16: (1, 2), GGMLType.F64: (1, 8),
    GGMLType.I8: (1, 1), GGMLType.I16: (1, 2), GGMLType.I32: (1, 4), GGMLType.I64: (1, 8),
    GGMLType.Q4_0: (32, 18), GGMLType.Q4_1: (32, 20), GGMLType.Q5_0: (32, 22),
    GGMLType.Q5_1: (32, 24), GGMLType.Q8_0: (32, 34), GGMLType.Q8_1: (32, 40),
    GGMLType.Q2_K: (QK_K, 84), GGMLType.Q3_K: (QK_K, 110), GGMLType.Q4_K: (QK_K, 144),
    GGMLType.Q5_K: (QK_K, 176), GGMLType.Q6_K: (QK_K, 210), GGMLType.Q8_K: (QK_K, 292),
    GGMLType.IQ2_XXS: (QK_K, 66), GGMLType.IQ2_XS: (QK_K, 74), GGMLType.IQ3_XXS: (QK_K, 98),
    GGMLType.IQ1_S: (QK_K, 50), GGMLType.IQ4_NL: (32, 18), GGMLType.IQ3_S: (QK_K, 110),
    GGMLType.IQ2_S: (QK_K, 82), GGMLType.IQ4_XS: (QK_K, 136), GGMLType.IQ1_M: (QK_K, 56),
    GGMLType.TQ1_0: (QK_K, 54), GGMLType.TQ2_0: (QK_K, 66), GGMLType.MXFP4: (32, 17),
}


class UnsupportedQuantTypeError(FileFormatError, NotImplementedError):
    """A tensor of a GGML type gradient cannot dequantize (yet): the message names the tensor,
    the type and the types that are supported."""


def type_name(ggml_type: int) -> str:
    """``"Q4_K"`` for 12; ``"unknown type 99"`` for ids GGML does not define."""
    try:
        return GGMLType(ggml_type).name
    except ValueError:
        return f"unknown type {ggml_type}"


def tensor_nbytes(ggml_type: int, n_elements: int) -> int:
    """Bytes that ``n_elements`` values of ``ggml_type`` take (a whole number of blocks).

    Raises ``ValueError`` when the type is unknown or ``n_elements`` is not a multiple of the
    block size.

    Example: ``tensor_nbytes(GGMLType.Q4_0, 4096) == 4096 // 32 * 18``
    """
    sizes = BLOCK_SIZES.get(ggml_type)
    if sizes is None:
        raise ArgumentValueError(f"GGML type id {ggml_type} is unknown; known types: "
                                 f"{', '.join(f'{t.name}={int(t)}' for t in BLOCK_SIZES)}")
    block, nbytes = sizes
    if n_elements % block:
        raise ArgumentValueError(
            f"{n_elements} values of {type_name(ggml_type)} are not a whole number of "
            f"{block}-value blocks")
    return n_elements // block * nbytes


# ----------------------------------------------------------------------------- kernels
# Every kernel takes the blocks as a (n_blocks, type_size) uint8 array, the float16 -> float32
# table, and writes a (n_blocks, block_size) float32 array. Integers are converted to float32
# explicitly before any float arithmetic: numba would otherwise promote an int64 times a float32
# to float64, and round differently from ggml. Blocks are independent: one prange over them.

# float16 bits -> float32, all 65536 of them (exact: every float16 is a float32). A table
# lookup is the fastest exact conversion in a kernel and keeps NaN payloads as NumPy does.
_F16_TO_F32 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


@compile_kernel(inline=True)
def _f16(lut, lo, hi):
    return lut[np.int64(lo) | (np.int64(hi) << 8)]


@compile_kernel(parallel=True)
def _dequant_q8_0(blocks, lut, out):
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        for j in range(32):
            out[i, j] = np.float32(np.int8(b[2 + j])) * d


@compile_kernel(parallel=True)
def _dequant_q4_0(blocks, lut, out):
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        for j in range(16):
            q = b[2 + j]
            out[i, j] = d * np.float32(np.int32(q & 0x0F) - 8)
            out[i, j + 16] = d * np.float32(np.int32(q >> 4) - 8)


@compile_kernel(parallel=True)
def _dequant_q4_1(blocks, lut, out):
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        m = _f16(lut, b[2], b[3])
        for j in range(16):
            q = b[4 + j]
            out[i, j] = d * np.float32(q & 0x0F) + m
            out[i, j + 16] = d * np.float32(q >> 4) + m


@compile_kernel(inline=True)
def _u32(b, k):
    return (np.uint32(b[k]) | (np.uint32(b[k + 1]) << 8) | (np.uint32(b[k + 2]) << 16)
            | (np.uint32(b[k + 3]) << 24))


@compile_kernel(parallel=True)
def _dequant_q5_0(blocks, lut, out):
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        qh = _u32(b, 2)   # bit j is the fifth bit of value j
        for j in range(16):
            q = b[6 + j]
            lo = np.int32(q & 0x0F) | np.int32(((qh >> j) & 1) << 4)
            hi = np.int32(q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            out[i, j] = d * np.float32(lo - 16)
            out[i, j + 16] = d * np.float32(hi - 16)


@compile_kernel(parallel=True)
def _dequant_q5_1(blocks, lut, out):
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        m = _f16(lut, b[2], b[3])
        qh = _u32(b, 4)
        for j in range(16):
            q = b[8 + j]
            lo = np.int32(q & 0x0F) | np.int32(((qh >> j) & 1) << 4)
            hi = np.int32(q >> 4) | np.int32(((qh >> (j + 16)) & 1) << 4)
            out[i, j] = d * np.float32(lo) + m
            out[i, j + 16] = d * np.float32(hi) + m


@compile_kernel(parallel=True)
def _dequant_q2_k(blocks, lut, out):
    # bytes: scales[16] | qs[64] | d | dmin. Value e (0..255): group g = e // 128 of 32 bytes,
    # field s = (e % 128) // 32 of byte l = e % 32 in that group; sub-block e // 16.
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[80], b[81])
        dmin = _f16(lut, b[82], b[83])
        for e in range(QK_K):
            sc = b[e // 16]
            dl = d * np.float32(sc & 0x0F)
            ml = dmin * np.float32(sc >> 4)
            g, s, l = e // 128, (e % 128) // 32, e % 32
            q = (b[16 + g * 32 + l] >> (2 * s)) & 3
            out[i, e] = dl * np.float32(q) - ml


@compile_kernel(parallel=True)
def _dequant_q3_k(blocks, lut, out):
    # bytes: hmask[32] | qs[64] | scales[12] | d. Sixteen 6-bit scales: the low 4 bits of scale k
    # are nibble k // 8 of scales[k % 8], the high 2 bits are field k // 4 of scales[8 + k % 4].
    # Value e: 2-bit low part as in Q2_K; its third bit is bit e // 32 of hmask[e % 32], and
    # a *clear* bit subtracts 4.
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[108], b[109])
        for e in range(QK_K):
            k = e // 16
            low = (b[96 + k % 8] >> (4 * (k // 8))) & 0x0F
            high = (b[104 + k % 4] >> (2 * (k // 4))) & 0x03
            dl = d * np.float32(np.int32(low | (high << 4)) - 32)
            g, s, l = e // 128, (e % 128) // 32, e % 32
            ql = np.int32((b[32 + g * 32 + l] >> (2 * s)) & 3)
            hbit = np.int32((b[l] >> (e // 32)) & 1)
            out[i, e] = dl * np.float32(ql - ((hbit ^ 1) << 2))


@compile_kernel(inline=True)
def _scale_min_k4(b, base, j):
    """Scale and min j (0..7) of the 12 packed bytes at b[base:]: 6 bits each. j < 4: low 6 bits
    of bytes j and 4 + j; j >= 4: a nibble of byte 8 + j - 4 plus the top 2 bits of j - 4's."""
    if j < 4:
        sc = b[base + j] & 63
        mn = b[base + 4 + j] & 63
    else:
        sc = (b[base + 4 + j] & 0x0F) | ((b[base + j - 4] >> 2) & 0x30)
        mn = (b[base + 4 + j] >> 4) | ((b[base + j] >> 2) & 0x30)
    return sc, mn


@compile_kernel(parallel=True)
def _dequant_q4_k(blocks, lut, out):
    # bytes: d | dmin | scales[12] | qs[128]. Value e: 32-byte group g = e // 64, nibble
    # h = (e % 64) // 32 of byte l = e % 32; sub-block j = e // 32.
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        dmin = _f16(lut, b[2], b[3])
        for j in range(8):
            sc, mn = _scale_min_k4(b, 4, j)
            dl = d * np.float32(sc)
            ml = dmin * np.float32(mn)
            g, h = j // 2, j % 2
            for l in range(32):
                q = (b[16 + g * 32 + l] >> (4 * h)) & 0x0F
                out[i, j * 32 + l] = dl * np.float32(q) - ml


@compile_kernel(parallel=True)
def _dequant_q5_k(blocks, lut, out):
    # bytes: d | dmin | scales[12] | qh[32] | qs[128]. Nibbles as Q4_K; the fifth bit of value e
    # is bit e // 32 of qh[e % 32].
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[0], b[1])
        dmin = _f16(lut, b[2], b[3])
        for j in range(8):
            sc, mn = _scale_min_k4(b, 4, j)
            dl = d * np.float32(sc)
            ml = dmin * np.float32(mn)
            g, h = j // 2, j % 2
            for l in range(32):
                q = ((b[48 + g * 32 + l] >> (4 * h)) & 0x0F) | (((b[16 + l] >> j) & 1) << 4)
                out[i, j * 32 + l] = dl * np.float32(q) - ml


@compile_kernel(parallel=True)
def _dequant_q6_k(blocks, lut, out):
    # bytes: ql[128] | qh[64] | scales[16] (int8) | d. Value e: half g = e // 128, r = e % 128;
    # low nibble h = r // 64 of ql[g * 64 + r % 64]; high 2 bits field r // 32 of
    # qh[g * 32 + r % 32]; sub-block e // 16.
    for i in numba.prange(blocks.shape[0]):
        b = blocks[i]
        d = _f16(lut, b[208], b[209])
        for e in range(QK_K):
            dl = d * np.float32(np.int8(b[192 + e // 16]))
            g, r = e // 128, e % 128
            lo = (b[g * 64 + r % 64] >> (4 * (r // 64))) & 0x0F
            hi = (b[128 + g * 32 + r % 32] >> (2 * (r // 32))) & 0x03
            out[i, e] = dl * np.float32(np.int32(lo | (hi << 4)) - 32)


_KERNELS = {
    GGMLType.Q8_0: _dequant_q8_0, GGMLType.Q4_0: _dequant_q4_0, GGMLType.Q4_1: _dequant_q4_1,
    GGMLType.Q5_0: _dequant_q5_0, GGMLType.Q5_1: _dequant_q5_1, GGMLType.Q2_K: _dequant_q2_k,
    GGMLType.Q3_K: _dequant_q3_k, GGMLType.Q4_K: _dequant_q4_k, GGMLType.Q5_K: _dequant_q5_k,
    GGMLType.Q6_K: _dequant_q6_k,
}
DEQUANTIZABLE = (GGMLType.F32, GGMLType.F16, GGMLType.BF16, *_KERNELS)

# Tensors smaller than this run on one thread. A parallel region waits for its slowest thread,
# and on a busy machine that is a scheduler time slice: loading SmolLM2-135M (210 tensors under
# a million values each) took 1.7 s on two shared cores with two threads, 0.15 s with one.
# Past a few million values (~2 ms of work) the threads pay for themselves.
PARALLEL_MIN_VALUES = 1 << 22


def _run(kernel, blocks, out, n_values: int) -> None:
    if n_values >= PARALLEL_MIN_VALUES or numba.get_num_threads() == 1:
        kernel(blocks, _F16_TO_F32, out)
        return
    threads = numba.get_num_threads()
    numba.set_num_threads(1)   # per calling thread: other threads' settings are untouched
    try:
        kernel(blocks, _F16_TO_F32, out)
    finally:
        numba.set_num_threads(threads)


# ----------------------------------------------------------------------------- entry point
def dequantize(data, ggml_type: int, shape, name: str = "tensor") -> np.ndarray:
    """Float32 values of a GGML tensor stored as ``data`` (its raw little-endian bytes).

    ``shape`` is the tensor's shape in NumPy order (GGUF lists dimensions innermost first:
    reverse them); ``name`` goes into error messages. The result is a new array, except for
    F32, where it is a view of ``data`` when ``data`` is aligned.

    Raises :class:`UnsupportedQuantTypeError` for types not in :data:`DEQUANTIZABLE` and
    ``ValueError`` when the byte count does not match the shape.

    Example::

        >>> q = gguf.quants.quantize(np.ones((2, 32), np.float32), GGMLType.Q8_0)
        >>> dequantize(q, GGMLType.Q8_0, (2, 32))[0, :3]
        array([1., 1., 1.], dtype=float32)
    """
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    if ggml_type not in DEQUANTIZABLE:
        raise UnsupportedQuantTypeError(
            f"{name}: cannot dequantize GGML type {type_name(ggml_type)} (type id "
            f"{int(ggml_type)}); gradient reads {', '.join(t.name for t in DEQUANTIZABLE)}. "
            f"Use a GGUF file quantized with one of those (llama-quantize can convert it)")
    raw = np.ascontiguousarray(np.asarray(data)).reshape(-1).view(np.uint8)
    try:
        expected = tensor_nbytes(ggml_type, n)
    except ValueError as e:
        raise ArgumentValueError(f"{name}: shape {shape}: {e}") from None
    if raw.size != expected:
        raise ArgumentValueError(
            f"{name}: {type_name(ggml_type)} values of shape {shape} take {expected} "
            f"bytes, got {raw.size}")
    ggml_type = GGMLType(ggml_type)
    if ggml_type == GGMLType.F32:
        return raw.view("<f4").astype(np.float32, copy=False).reshape(shape)
    if ggml_type == GGMLType.F16:
        return raw.view("<f2").astype(np.float32).reshape(shape)
    if ggml_type == GGMLType.BF16:
        # bfloat16 is the top half of a float32: shift it into place
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    block, nbytes = BLOCK_SIZES[ggml_type]
    out = np.empty((n // block, block), dtype=np.float32)
    if n:
        _run(_KERNELS[ggml_type], raw.reshape(-1, nbytes), out, n)
    return out.reshape(shape)
