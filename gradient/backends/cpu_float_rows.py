"""Products of float weights with a few rows of x, reading the weight once, in place.

Decoding a token multiplies every weight matrix by one row of activations (or a few: a batch,
speculative drafts): each weight is read once from memory and used once, so the product can
only be as fast as the memory. OpenBLAS's matrix-vector product streams float32 weights at
about 20 GB/s on two cores where the memory gives 30-40, and NumPy has no half-precision
product at all (a bfloat16 weight was converted to a float32 copy first, on every call). Here
the weight, float32, bfloat16 or float16, is read row by row as it is stored, 16 values a
vector, widened to float32 in registers (bfloat16: a 16-bit shift; float16: F16C's vcvtph2ps
where the CPU has it), and multiplied into float32 sums with fused multiply-adds, on numba's
threads (chunks of weight rows). A prompt's many rows by a 16-bit weight go through the same
kernel, a block of rows at a time (:data:`MAX_ROWS`), where each row's result must be the one
it gets alone (within :func:`gradient.kernels.rows_alone`). Elsewhere 16 rows and more go to
products with sums of their own order: register-blocked (:mod:`.cpu_float_gemm`), or on the
matrix tiles of CPUs with Intel's AMX for a bfloat16 weight (:mod:`.cpu_tiles`); bfloat16
rows stay here where the CPU has the bfloat16 dot product (``_pairs_stay``).

The arithmetic of one output ``y[i, r] = x[i] . w[r]``: lane ``l`` sums, in order, the products
``w[r, c] * x[i, c]`` for ``c = l, l + 16, ...`` (one fused multiply-add each, from -0.0; a
last partial vector is read padded), then the 16 lanes are folded by halves
(:func:`~gradient.backends.cpu_simd.fold_halves`). Where x is bfloat16 too (a bfloat16 model's
activations) lane ``l`` sums pairs instead, ``c = 2l+1`` then ``2l``, ``2l+33`` then ``2l+32``
..., subnormal values and sums taken as zero: the arithmetic of the CPU's bfloat16 dot product
(``vdpbf16ps``, twice float32's multiply-adds a cycle), from FMAs where the CPU lacks it. The
same for every row, whatever the number of rows of x or of w a call takes, and the same bits
on every CPU (a fused multiply-add rounds once everywhere).

Example::

    >>> y = float_rows_product(x, w)    # x (1, 576) float32, w (1536, 576) bfloat16 -> (1, 1536)
"""

from __future__ import annotations

import functools

import ml_dtypes
import numba
import numpy as np
from numba.core import types
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.extending import overload

from ..kernels.lowering import Lowered
from ..kernels.registry import prepares, register
from ..kernels.row_bits import rows_alone_required
from . import cpu_float_gemm, cpu_tiles
from .cpu_compile import compile_kernel
from .cpu_half import (HALF_DTYPES, as_bits, load_bits_as_f32x16, narrow, narrowed,
                       narrowed_like, widen, widened)
from .cpu_simd import (broadcast_f32x16, dot2_bf16, f32x16, fma_f32, fold_halves,
                       has_dot2_bf16, i32x16, load_f16_as_f32x16_by_integers,
                       load_pairs_i32x16, prefetch_to_l2)

__all__ = ["float_rows_product", "bfloat16_rows_product", "lowered_float_rows",
           "lowered_float_rows_linear", "lowered_bfloat16_rows", "MAX_ROWS", "MAX_FLOAT32_ROWS",
           "MIN_FLOAT32_WEIGHTS", "weight_bits"]

#: The most rows of x a call takes with a float32 weight: a decode step of a batch, drafted
#: tokens, a short prompt; past that BLAS's GEMM. SmolLM2's four shapes, 2 threads, this
#: kernel's time over OpenBLAS 0.3.31's when the limit was 32: 16 rows 0.6-0.9x, 32 rows
#: 0.6-1.0x, 64 rows 0.7-1.2x; measured again on an AMD EPYC (Zen 5), with OpenBLAS's
#: threads no longer spinning between calls: 0.55-0.66x, 0.55-0.92x and 0.65-0.87x
#: (120-180 GFMA/s against OpenBLAS's 80-120; a 64-token F32 prefill 100 -> 74 ms).
MAX_FLOAT32_ROWS = 64
#: Rows of x a call of the kernel takes with a bfloat16 or float16 weight (a short prompt:
#: SmolLM2's BF16 prefill of 16 tokens went from 0.27x to 0.84x llama.cpp's speed with this at
#: 64 instead of 8). :func:`float_rows_product` and :func:`bfloat16_rows_product` take any
#: number, this many at a time: the alternative, a float32 copy of the weight and BLAS's GEMM,
#: was slower at every length measured. SmolLM2's seven matrices of 30 layers in float16, 2
#: threads, an AMD EPYC (Zen 4): 128 rows 348 -> 151 ms, 512 rows 735 -> 610 ms (bfloat16,
#: 128 rows: 386 -> 150 ms); the copy of every weight is gone too.
MAX_ROWS = 64
#: float32 weights of fewer values are left to BLAS: their product is no matter of the
#: memory's speed, and BLAS's order of sums is what the libraries a small layer is checked
#: against (PyTorch) use too. (bfloat16 and float16 weights of every size come here.)
MIN_FLOAT32_WEIGHTS = 1 << 16

#: The weight dtypes this module reads; a kernel receives float32 as it is and 16-bit floats
#: as their bits (:func:`~.cpu_half.as_bits`: float16 as uint16, bfloat16 as int16).
_WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16))


def weight_bits(w: np.ndarray) -> np.ndarray:
    """The array a kernel of this module takes for the weight ``w`` (float32, bfloat16 or
    float16): a view, never a copy."""
    return as_bits(w)


# ----------------------------------------------------------------------------- kernels
# A tile is J rows of w by R rows of x, a tuple of J * R sums (one f32x16 each, sum ``j * R +
# q`` for weight row r + j and x row i + q): the weight rows' vectors are loaded and widened
# once for the tile's rows of x, and its sums are independent chains of fused multiply-adds.
# A group of W_ROWS weight rows goes through every row of x (tiles of 4 rows of x, then 2,
# then 1) before the next group: the group comes from memory once, then from the L1 cache,
# and the next group's lines are asked for while this one is read (a prefetch). SmolLM2's head
# shape (49,152 x 576), 2 threads: bfloat16, 8 rows of x 4.9 -> 1.5 ms (each pair of rows
# read the whole weight again); 1 row 1.2 -> 0.8 ms with the prefetch (a Zen 5 EPYC). One or
# two rows of x take groups of one weight row (see GROUPED_FROM). The prefetch brings the
# lines into L2, not L1, where they would compete with the current group's and x's lines
# (measured, not modelled: faster at every number of rows of x from 2). SmolLM2's seven
# matrices of 30 layers (weights from memory), 2 threads, an AMD EPYC (Zen 4), L2 over L1,
# medians: bfloat16 with 3-4 rows of x 0.69-0.70, 8 rows 0.84, 16 rows 0.90, 64 rows 0.95;
# float16 6 rows 0.78; float32 16 rows 0.83.

#: Weight rows a group (and a tile) reads side by side: 16 sums with 4 rows of x (more than
#: LLVM unrolls would leave sums in memory).
W_ROWS = 4
#: Rows of x from which the weight rows go in groups of W_ROWS; one or two rows of x (a decode
#: step) take the weight one row at a time, one stream from memory, which the prefetchers
#: follow better than four side by side. All of SmolLM2's matrices by one row of x, 2 threads,
#: an AMD EPYC (Zen 4): float32 25.1 -> 23.1 ms, bfloat16 16.4 -> 14.2 ms (two rows: 27.9 ->
#: 25.5 and 18.9 -> 15.4); three rows and more are faster in groups. One row goes through the
#: plainest loop (:func:`_rows_of_one`): float32 18.6 -> 13.5 ms, bfloat16 11.2 -> 10.3 ms in
#: another run. It asks for the line W_ROWS rows ahead into L2, as a group does: on an Intel
#: Xeon (AVX-512, avx512_bf16), the same matrices, medians of 15 passes, bfloat16 14.7 ->
#: 12.2 ms, float16 17.7 -> 12.4 ms, float32 20.4 -> 19.9 ms (the prefetchers alone did not
#: keep the 16-bit loops fed: measured, not modelled); SmolLM2's BF16 decode 0.88x -> 1.15x
#: llama.cpp's speed there, F16 0.88x -> 1.27x, F32 0.97x -> 1.03x.
GROUPED_FROM = 3


# Rows of x of bfloat16 (a bfloat16 model's activations, by a bfloat16 weight) take a step of
# 32 values: lane l sums, pair by pair, w[c+2l+1] * x[c+2l+1] then w[c+2l] * x[c+2l] (products
# exact in float32, each step a fused multiply-add, subnormals zero: ``vdpbf16ps`` where the
# CPU has it, twice float32's multiply-adds a cycle, and the same bits from FMAs elsewhere).
# Every other x is float32 (16-bit x widened exactly first), a step of 16 values, one FMA each.

def _width(x):
    """In compiled kernels: the values of a row one step of a tile reads (32 or 16)."""
    raise NotImplementedError


@overload(_width, inline="always")
def _width_typed(x):
    if x.dtype == types.int16:
        return lambda x: 32
    return lambda x: 16


def _load(a, at, x):
    """In compiled kernels: a step's values of ``a`` (a row of w or of x) from flat index
    ``at``, as the step of x's kind multiplies them."""
    raise NotImplementedError


@overload(_load, inline="always")
def _load_typed(a, at, x):
    if x.dtype == types.int16:
        return lambda a, at, x: load_pairs_i32x16(a, at)
    return lambda a, at, x: load_bits_as_f32x16(a, at)


def _load_streamed(w, at, x):
    """In compiled kernels: :func:`_load` of a weight row that one row of x multiplies, the
    same values: float16 widened by integer operations rather than vcvtph2ps (see
    :func:`~.cpu_simd.load_f16_as_f32x16_by_integers`: SmolLM2-135M's F16 decode step on an
    AMD EPYC (Zen 4), 2 threads, went from 1.11-1.27x its BF16 step's time to 0.95-1.08x)."""
    raise NotImplementedError


@overload(_load_streamed, inline="always")
def _load_streamed_typed(w, at, x):
    if w.dtype == types.uint16 and x.dtype == types.float32:
        return lambda w, at, x: load_f16_as_f32x16_by_integers(w, at)
    return lambda w, at, x: _load(w, at, x)


def _multiply_add(wv, xv, acc):
    """In compiled kernels: ``acc`` plus the step's products of ``wv`` and ``xv``."""
    raise NotImplementedError


@overload(_multiply_add, inline="always")
def _multiply_add_typed(wv, xv, acc):
    if wv == i32x16:
        return lambda wv, xv, acc: dot2_bf16(acc, wv, xv)
    if wv == f32x16:
        return lambda wv, xv, acc: fma_f32(wv, xv, acc)
    return None


def _negative_zero(x):
    """In compiled kernels: -0.0 in x's element type (bfloat16's bits for int16)."""
    raise NotImplementedError


@overload(_negative_zero, inline="always")
def _negative_zero_typed(x):
    if x.dtype == types.int16:
        return lambda x: np.int16(-32768)
    return lambda x: np.float32(-0.0)


@compile_kernel(inline=True)
def _tile(x, w, out, r, i, zero, x_rows, wtail, xtail):
    """Rows r .. r + J - 1 of w times rows i .. i + R - 1 of x into ``out``, where
    R = len(x_rows) and J = len(zero) // R (tuple lengths: constants when compiled, so that
    the loops over them unroll and the sums stay in registers)."""
    k = x.shape[1]
    R = len(x_rows)
    J = len(zero) // R
    width = _width(x)
    full = k - k % width
    acc = zero
    for c in range(0, full, width):
        for j in range(J):
            at = (r + j) * k + c
            prefetch_to_l2(w, at + W_ROWS * k)     # the next group's line (see above)
            wv = _load(w, at, x)
            for q in range(R):
                t = j * R + q
                acc = tuple_setitem(acc, t, _multiply_add(wv, _load(x, (i + q) * k + c, x),
                                                          acc[t]))
    if full < k:               # the last values, padded to a whole step (w with zeros)
        for j in range(J):
            for c in range(full, k):
                wtail[j, c - full] = w[r + j, c]
            wv = _load(wtail, j * width, x)
            for q in range(R):
                t = j * R + q
                acc = tuple_setitem(acc, t, _multiply_add(wv, _load(xtail, (i + q) * width, x),
                                                          acc[t]))
    for j in range(J):
        for q in range(R):
            out[i + q, r + j] = narrow(fold_halves(acc[j * R + q]), out)


@compile_kernel(inline=True)
def _x_tail(x):
    """The last ``k % width`` values of each row of x, padded with -0.0 to a whole step:
    (rows, width)."""
    n, k = x.shape
    width = _width(x)
    full = k - k % width
    tail = np.full((n, width), _negative_zero(x), x.dtype)
    for q in range(n):
        for c in range(full, k):
            tail[q, c - full] = x[q, c]
    return tail


@compile_kernel(inline=True)
def _group(x, w, out, r, zero_fours, zero_twos, zero_ones, wtail, xtail):
    """The weight rows of one group from r (``len(zero_ones)`` of them) times every row of x:
    tiles of 4 rows of x, then one of 2, then one of 1 (each ``zero_*`` holds the tile's
    sums)."""
    n = x.shape[0]
    f = zero_ones[0]
    i = 0
    while i + 4 <= n:
        _tile(x, w, out, r, i, zero_fours, (f, f, f, f), wtail, xtail)
        i += 4
    if i + 2 <= n:
        _tile(x, w, out, r, i, zero_twos, (f, f), wtail, xtail)
        i += 2
    if i < n:
        _tile(x, w, out, r, i, zero_ones, (f,), wtail, xtail)


@compile_kernel(inline=True)
def _rows_of_one(x, w, out, r0, r1, wtail, xtail):
    """out[0, r] = x[0] @ w[r] for the weight rows r0 .. r1 - 1, one after another: a decode
    step's product, the arithmetic of a tile of one row by one in the plainest loop, asking
    for the lines W_ROWS rows ahead (see GROUPED_FROM)."""
    k = x.shape[1]
    width = _width(x)
    full = k - k % width
    zero = broadcast_f32x16(np.float32(-0.0))
    for r in range(r0, r1):
        acc = zero
        for c in range(0, full, width):
            prefetch_to_l2(w, (r + W_ROWS) * k + c)   # the line W_ROWS rows on (see above)
            acc = _multiply_add(_load_streamed(w, r * k + c, x), _load(x, c, x), acc)
        if full < k:
            for c in range(full, k):
                wtail[0, c - full] = w[r, c]
            acc = _multiply_add(_load(wtail, 0, x), _load(xtail, 0, x), acc)
        out[0, r] = narrow(fold_halves(acc), out)


@compile_kernel
def _rows(x, w, out, r0, r1):
    """out[:, r] = x @ w[r] for the weight rows r0 .. r1 - 1: groups of W_ROWS weight rows
    (then one), each by every row of x."""
    # the sums start from -0.0, and a last partial vector of x is padded with -0.0: a sum
    # of products is then +0.0 or -0.0 as IEEE addition of those products in order gives it
    # (-0 + p is p, for every p); from +0.0 a sum of -0.0 products would be +0.0
    f = broadcast_f32x16(np.float32(-0.0))
    wtail = np.zeros((W_ROWS, _width(x)), w.dtype)
    xtail = _x_tail(x)
    if x.shape[0] == 1:
        _rows_of_one(x, w, out, r0, r1, wtail, xtail)
        return
    r = r0
    while x.shape[0] >= GROUPED_FROM and r + W_ROWS <= r1:   # (see GROUPED_FROM)
        _group(x, w, out, r, (f, f, f, f, f, f, f, f, f, f, f, f, f, f, f, f),
               (f, f, f, f, f, f, f, f), (f, f, f, f), wtail, xtail)
        r += W_ROWS
    while r < r1:
        _group(x, w, out, r, (f, f, f, f), (f, f), (f,), wtail, xtail)
        r += 1


@compile_kernel(parallel=True)
def _parallel(x, w, out, n_chunks):
    """:func:`_rows` over ``n_chunks`` chunks of weight rows (multiples of 4), on numba's
    threads."""
    m = w.shape[0]
    step = ((m + n_chunks - 1) // n_chunks + W_ROWS - 1) // W_ROWS * W_ROWS
    for c in numba.prange(n_chunks):
        _rows(x, w, out, min(m, c * step), min(m, (c + 1) * step))


@register("float_rows_product", "cpu", "numba")
def float_rows_product(x: np.ndarray, w: np.ndarray, *, rounded: bool = False
                       ) -> np.ndarray | None:
    """``x @ w.T`` in float32 for a C-contiguous weight ``w`` (out, in) of bfloat16 or float16
    and any rows of ``x`` (rows, in), any float dtype (made float32, exactly), or of float32
    (:data:`MIN_FLOAT32_WEIGHTS` values or more) and at most :data:`MAX_FLOAT32_ROWS` rows;
    None for what it does not take (the caller's GEMM then runs). ``rounded`` (x and w of
    one 16-bit float type): the product in that type, each float32 sum rounded once (to
    nearest even) as it is stored: the float32 result's bits rounded, without a pass of
    their own over it (a half-precision model's linear layer, which rounds its output).

    Example: ``y = float_rows_product(np.ones((1, 64), np.float32), w)``
    """
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and _takes(_block(x.shape, w), w)):
        return None
    if rounded and x.dtype != w.dtype:
        return None
    bits = weight_bits(w)
    y = _product(_operand(x, w), bits, bits.dtype if rounded else np.float32)
    return y.view(w.dtype) if rounded else y


def _block(rows: tuple, w) -> tuple:
    """The shape of the blocks of rows of x that :func:`_in_blocks` gives the kernel: x's own
    for a float32 weight (past MAX_FLOAT32_ROWS, BLAS's GEMM is as fast or faster)."""
    if isinstance(w, np.ndarray) and w.dtype != np.float32:
        return (min(rows[0], MAX_ROWS),) + tuple(rows[1:])
    return rows


def _product(x: np.ndarray, bits: np.ndarray, into=np.float32) -> np.ndarray:
    """``x @ w.T`` for the kernel's operands (:func:`_operand`, :func:`weight_bits`): a
    prompt's rows on the CPU's matrix tiles where it has them and w is bfloat16
    (:mod:`.cpu_tiles`), else register-blocked where that is faster
    (:func:`.cpu_float_gemm.takes`, :func:`_pairs_stay`): both other sums than a row alone
    gets, so never for fewer than :data:`~.cpu_float_gemm.GEMM_FROM` rows nor within
    :func:`~gradient.kernels.rows_alone`; else this module's kernel. ``into``: float32, or
    the weight's bits' dtype for the result rounded to its 16-bit type (those bits)."""
    if cpu_float_gemm.GEMM_FROM <= x.shape[0] and not rows_alone_required():
        y = None
        if bits.dtype == np.int16 and cpu_tiles.takes(*x.shape) and cpu_tiles.available():
            if x.dtype == np.int16:
                y = cpu_tiles.bfloat16_tile_product(x, bits)
            else:
                y = cpu_tiles.float32_tile_product(x, bits)
        if y is None and cpu_float_gemm.takes(x.shape[0], bits.dtype) and not _pairs_stay(x):
            if x.dtype == np.int16:       # bfloat16's bits (the pairs' operand): exactly
                x = x.view(ml_dtypes.bfloat16).astype(np.float32)
            y = cpu_float_gemm.float_gemm(x, bits)
        if y is not None:
            return y if into == np.float32 else narrowed(y, bits)
    out = np.empty((x.shape[0], bits.shape[0]), into)
    _in_blocks(x, bits, out, _chunks(bits))
    return out


def _pairs_stay(x: np.ndarray) -> bool:
    """Whether bfloat16 rows of x (the pairs' operand) stay in this module's kernel however
    many they are: where the CPU has ``vdpbf16ps``, which does twice the multiply-adds of the
    register-blocked float32 product on x widened. SmolLM2's 210 matrices in bfloat16 from
    memory, 2 threads, an AMD EPYC (Zen 4, AVX512_BF16): 32 rows 23 ms here against 40
    widened, 64 rows 44 against 75, 128 rows 82 against 144, 512 rows 330 against 561 (a
    register-blocked product of the pairs was written and measured too, no faster: 44, 88
    and 182 ms at 64, 128 and 256 rows against this kernel's 45, 88 and 173)."""
    return x.dtype == np.int16 and _has_pairs_instruction()


@functools.cache
def _has_pairs_instruction() -> bool:
    from numba.core.registry import cpu_target
    return has_dot2_bf16(cpu_target.target_context)


def _in_blocks(x: np.ndarray, bits: np.ndarray, out: np.ndarray, n_chunks: int) -> None:
    """The kernel over the rows of x (C-contiguous), :data:`MAX_ROWS` at a time: a block's
    rows stay in the L2 cache while each group of weight rows goes through them. A row's
    arithmetic does not depend on the rows beside it, so the blocks change no bit."""
    for i in range(0, x.shape[0], MAX_ROWS):
        _parallel(x[i:i + MAX_ROWS], bits, out[i:i + MAX_ROWS], n_chunks)


def _operand(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x as the kernel takes it: bfloat16's bits by a bfloat16 weight (the pairs' step), else
    float32 (exactly)."""
    if x.dtype == w.dtype == ml_dtypes.bfloat16:
        return as_bits(np.ascontiguousarray(x))
    return np.ascontiguousarray(x, dtype=np.float32)


def _compiled_operand(x, w):
    """In compiled kernels: :func:`_operand` of x and w as their bits."""
    raise NotImplementedError


@overload(_compiled_operand, inline="always")
def _compiled_operand_typed(x, w):
    if x.dtype == types.int16 and w.dtype == types.int16:
        return lambda x, w: x
    return lambda x, w: widened(x)


def _takes(rows, w) -> bool:
    """Whether a product of x of shape ``rows`` by ``w`` is this module's."""
    if not (isinstance(w, np.ndarray) and w.dtype in _WEIGHT_DTYPES and w.ndim == 2
            and w.flags.c_contiguous and rows[1] == w.shape[1] and w.size > 0):
        return False
    if w.dtype == np.float32:
        return 0 < rows[0] <= MAX_FLOAT32_ROWS and w.size >= MIN_FLOAT32_WEIGHTS
    return 0 < rows[0] <= MAX_ROWS


def _chunks(w: np.ndarray) -> int:
    """Chunks of weight rows for numba's threads: two per thread, at least 4 rows each."""
    return max(1, min(w.shape[0] // W_ROWS, 2 * numba.get_num_threads()))


@prepares("float_rows_product", "cpu")
def _prepare(x, w):
    """:func:`float_rows_product` for later calls on float32 rows of x's shape and the same
    weight (a captured decode step): the compiled call alone."""
    if not (type(x) is np.ndarray and x.ndim == 2 and x.dtype == np.float32
            and x.flags.c_contiguous and _takes(x.shape, w)):
        return None
    return _prepared(x, w, lambda x_, bits: x_)


def _prepared(x, w, operand):
    """The prepared product of C-contiguous float32 rows of x's shape by ``w`` (the checks
    made once): ``operand(x_, bits)`` is what the kernel takes for the rows x_."""
    shape, bits, n_chunks = x.shape, weight_bits(w), _chunks(w)

    def prepared(x_, w_):
        if (x_.shape != shape or w_ is not w or type(x_) is not np.ndarray
                or x_.dtype != np.float32 or not x_.flags.c_contiguous):
            return None
        out = np.empty((shape[0], bits.shape[0]), np.float32)
        _parallel(operand(x_, bits), bits, out, n_chunks)
        return out
    return prepared


# ----------------------------------------------------------------------------- bfloat16 rows
# llama.cpp's product for a BF16 weight rounds the float32 activations to bfloat16 first (to
# nearest even) and sums the pairs with the CPU's bfloat16 dot product: about twice float32's
# multiply-adds a cycle, the difference that decides a short prompt. These are that product:
# the rounding is one compiled kernel (cpu_half.narrowed) in both forms, so a captured step
# and the module graph give the same bits.

@register("bfloat16_rows_product", "cpu", "numba")
def bfloat16_rows_product(x: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """``round(x) @ w.T`` in float32 for a C-contiguous bfloat16 weight ``w`` (out, in) and
    float32 rows of ``x`` (rows, in), each value of x rounded to bfloat16 (nearest even)
    first: the pairs' arithmetic of :func:`float_rows_product` with bfloat16 rows. None for
    what it does not take.

    Example: ``y = bfloat16_rows_product(np.ones((4, 64), np.float32), w)``
    """
    if not (isinstance(x, np.ndarray) and x.ndim == 2
            and _takes_rounded(x.dtype, _block(x.shape, w), w)):
        return None
    bits = weight_bits(w)
    return _product(narrowed(x, bits), bits)              # x rounded to w's bfloat16


@prepares("bfloat16_rows_product", "cpu")
def _prepare_bfloat16(x, w):
    """:func:`bfloat16_rows_product` for later calls on float32 rows of x's shape and the
    same weight: the compiled calls alone."""
    if not (type(x) is np.ndarray and x.flags.c_contiguous and x.ndim == 2
            and _takes_rounded(x.dtype, x.shape, w)):
        return None
    return _prepared(x, w, narrowed)


def _takes_rounded(dtype, rows, w) -> bool:
    """Whether the bfloat16 rows' kernel takes rows of x of ``dtype`` and shape ``rows`` by
    ``w`` in one call."""
    return (dtype == np.float32 and isinstance(w, np.ndarray)
            and w.dtype == ml_dtypes.bfloat16 and _takes(rows, w))


@compile_kernel
def bfloat16_rows_compiled(x, rows, out_shape, w, n_chunks):
    """:func:`bfloat16_rows_product` inside a compiled step: float32 x reshaped to ``rows``,
    rounded to bfloat16, times w.T (bfloat16's bits), reshaped to ``out_shape``."""
    out = np.empty((rows[0], w.shape[0]), np.float32)
    _parallel(narrowed(x, w).reshape(rows), w, out, n_chunks)
    return out.reshape(out_shape)


def lowered_bfloat16_rows(x, rows, w: np.ndarray, out_shape) -> Lowered | None:
    """The compiled form of ``bfloat16_rows_product(x.reshape(rows), w)`` reshaped to
    ``out_shape``, or None where that product would not take the arguments."""
    if not (type(x) is np.ndarray and _takes_rounded(x.dtype, rows, w)):
        return None
    return Lowered(bfloat16_rows_compiled, (x, tuple(rows), tuple(out_shape), weight_bits(w),
                                            _chunks(w)),
                   trace=("bfloat16_rows_product", "numba"))


#: The bias of a compiled product without one: one constant, so that every such call shares
#: one compiled signature.
_NO_BIAS = np.empty(0, np.float32)


@compile_kernel
def float_rows_compiled(x, rows, out_shape, w, n_chunks, bias, has_bias):
    """:func:`float_rows_product` inside a compiled step (see :mod:`gradient.kernels.lowering`):
    x reshaped to ``rows``, times w.T (w as :func:`weight_bits` gives it), plus ``bias`` added
    to every row where ``has_bias`` (a :class:`gradient.nn.Linear`, as its op adds it),
    reshaped to ``out_shape``. x (and the bias) of 16-bit floats, as their bits: widened
    first, the float32 result rounded to x's type at the end (the op's one rounding)."""
    x2 = _compiled_operand(np.ascontiguousarray(x), w).reshape(rows)
    out = np.empty((rows[0], w.shape[0]), np.float32)
    _parallel(x2, w, out, n_chunks)
    if has_bias:
        for r in range(rows[0]):
            for j in range(out.shape[1]):
                out[r, j] += widen(bias[j])
    return narrowed_like(out, x).reshape(out_shape)


def lowered_float_rows_linear(x, rows, w: np.ndarray, bias, has_bias: bool, out_shape):
    """The compiled form of a ``Linear`` of ``rows`` rows that runs on
    :func:`float_rows_product` (see ``gradient.ops.nn.Linear``): float32, or x, weight (and
    bias) of one 16-bit float dtype (the op's ``low_precision_linear`` kernel); None for one
    that does not."""
    if w.dtype == np.float32:
        return lowered_float_rows(x, rows, w, out_shape, bias, has_bias)
    if not (type(x) is np.ndarray and x.dtype == w.dtype and w.dtype in HALF_DTYPES
            and _takes(rows, w) and (not has_bias or bias.dtype == w.dtype)):
        return None
    return Lowered(float_rows_compiled, (x, tuple(rows), tuple(out_shape), weight_bits(w),
                                         _chunks(w), bias if has_bias else _NO_BIAS, has_bias),
                   trace=("low_precision_linear", "numba"))


def lowered_float_rows(x, rows, w: np.ndarray, out_shape, bias=_NO_BIAS,
                       has_bias: bool = False) -> Lowered | None:
    """The compiled form of ``float_rows_product(x.reshape(rows), w)`` (plus ``bias`` where
    ``has_bias``) reshaped to ``out_shape``, or None where that product would not take the
    arguments."""
    if not (type(x) is np.ndarray and x.dtype == np.float32 and _takes(rows, w)):
        return None
    return Lowered(float_rows_compiled, (x, tuple(rows), tuple(out_shape), weight_bits(w),
                                         _chunks(w), bias, has_bias),
                   trace=("float_rows_product", "numba"))
