"""Products of a prompt's rows by a float weight, register-blocked: the CPU's multiply-adds busy.

:mod:`.cpu_float_rows` multiplies a few rows of x by a weight read once from memory, each sum
a vector of 16 lanes over k folded at the end: a decode step's arithmetic, which every row
gets alone. A prompt of 16 tokens and more is no matter of memory: its product does 16 and
more multiply-adds per weight value, and that kernel loads a vector of w and one of x for
every few fused multiply-adds (about half the FMA units' peak). Here, as in a BLAS's GEMM, each
step of k loads vectors of 16 rows of x and multiplies them by single values of w broadcast to
all lanes: a tile of J weight rows by 16 V rows of x holds J x V sums in registers, and each
step is V loads, J broadcasts and J x V fused multiply-adds (:func:`_tile`, 80% of one core's
FMA peak on its own).

* x is transposed once per call (:func:`_columns`: value c of rows i .. i + 15 side by side,
  rows past x's last zero);
* w goes GROUP rows at a time: a float32 weight read in place, a bfloat16 or float16 one
  widened into a float32 buffer first (:func:`_copy_group`, once for every row of x), which
  stays in the L2 cache while every block of x's rows goes through it; each step of a tile
  asks for a line of the rows the next tile (or group) reads (a prefetch into L2);
* blocks of 64 rows of x take tiles of 6 weight rows (24 sums), of 48 rows 8, of 32 or 16
  rows 12 (:func:`_group`); weight rows past the last whole tile go one at a time; the sums
  go out through 16 x 16 transpositions in registers (:func:`_block_out`).

SmolLM2-135M's 210 matrices of 30 layers (weights from memory), 2 threads, an Intel Xeon
(AVX-512), medians of 5 passes alternated with :mod:`.cpu_float_rows`'s kernel in one process:
float32 weights, 16 rows 33-36 against 34-37 ms, 64 rows 64-74 against 89-107 ms; float16,
64 rows 60-63 against 76-83 ms. A whole prompt, the same machine: F32 64 tokens 0.86x ->
1.11x llama.cpp's speed, F16 0.99x -> 1.25x.

The arithmetic: ``y[i, r]`` sums the products ``w[r, c] * x[i, c]`` by fused multiply-adds in
order, from -0.0, KC values at a time, each such sum added in turn to the row's (from -0.0):
rounding errors as of a sum of KC + k / KC terms, not k. That is not the lanes' order that
:mod:`.cpu_float_rows` gives a row alone; hence only a product of at least :data:`GEMM_FROM`
rows comes here, never within :func:`gradient.kernels.rows_alone` (a batch of decode steps, a
speculative step's check, a captured step). A row's sums depend only on that row and w: the
same bits whatever rows share its call, on any number of threads, on every CPU.

Example::

    >>> y = float_gemm(x, weight_bits(w))    # x (64, 576) float32, w (1536, 576) float16
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ..errors import ShapeError
from .cpu_compile import compile_kernel
from .cpu_half import load_bits_as_f32x16, widen
from .cpu_simd import _I32, _call, _pointer, _splat  # (the intrinsics' own helpers, shared)
from .cpu_simd import f32x16, store_f32x16, transpose_16x16

__all__ = ["float_gemm", "takes", "GEMM_FROM", "HALF_FROM", "GROUP", "KC"]

#: The fewest rows of x a product takes here. Fewer rows are decode steps (one per sequence
#: of a batch) and speculative drafts, which keep :mod:`.cpu_float_rows`'s bits.
GEMM_FROM = 16

#: Weight rows a thread takes at a time (and widens into its buffer): a multiple of every
#: tile's rows (6, 8, 12) and of the 16 rows of a transposition out.
GROUP = 48
#: Values of k a block of x's rows goes through at a time (at most 64 rows: 32 KB of x).
KC = 128

_WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.int16), np.dtype(np.uint16))


#: The fewest rows of x a product by a 16-bit weight goes here for (:func:`takes`): fewer are
#: faster in :mod:`.cpu_float_rows`, which widens each weight vector in registers for 4 rows
#: of x at a time, where this kernel's copy of the weight waits for memory. SmolLM2's
#: matrices from memory, 2 threads, an Intel Xeon, the same runs: float16 16 rows 24.8
#: against 22.5 ms, 24 rows 34.6 against 32.2, 32 rows 36.1 against 44.2 (bfloat16 alike;
#: float32 weights, read in place, faster here at every number of rows: 16 rows 24.9 against
#: 28.2 ms).
HALF_FROM = 25


def takes(m: int, w_dtype=np.float32) -> bool:
    """Whether a product of ``m`` rows of x by a weight of ``w_dtype`` (its bits' dtype for
    16-bit floats) goes here."""
    return m >= (GEMM_FROM if np.dtype(w_dtype) == np.float32 else HALF_FROM)


# ----------------------------------------------------------------------------- kernels
@compile_kernel
def _columns(x):
    """x (m, k) float32 as (k, mp), mp = m rounded up to 16: ``out[c, i] = x[i, c]``, zeros
    for the rows past m."""
    m, k = x.shape
    mp = -(-m // 16) * 16
    out = np.zeros((k, mp), np.float32)
    rows = np.zeros((16, k), np.float32)         # a last block of fewer than 16 rows
    full = k - k % 16
    flat = out.ravel()
    for b in range(mp // 16):
        if 16 * b + 16 <= m:
            source, at = x.ravel(), 16 * b * k
        else:
            rows[:m - 16 * b] = x[16 * b:]
            source, at = rows.ravel(), 0
        for c in range(0, full, 16):
            transpose_16x16(source, at + c, k, flat, c * mp + 16 * b, mp)
        for q in range(16):
            for c in range(full, k):
                out[c, 16 * b + q] = source[at + q * k + c]
    return out


@compile_kernel(inline=True)
def _copy_group(w, r, rows, group):
    """Weight rows r .. r + rows - 1 into ``group`` (GROUP, k) as float32 (16-bit floats from
    their bits, exactly)."""
    k = w.shape[1]
    full = k - k % 16
    flat, out = w.ravel(), group.ravel()
    for j in range(rows):
        for c in range(0, full, 16):
            store_f32x16(out, j * k + c, load_bits_as_f32x16(flat, (r + j) * k + c))
        for c in range(full, k):
            group[j, c] = widen(w[r + j, c])


@intrinsic
def _tile(typingctx, xt, i0, wf, g0, held, j0, c0, c1, w, w_row, J, V):
    """Rows g0 + j0 .. g0 + j0 + J - 1 of the float32 weight rows ``wf`` by rows i0 .. i0 +
    16 V - 1 of x over the values c0 .. c1 - 1, added to the rows j0 .. j0 + J - 1 of
    ``held`` (GROUP, V, 16): sums of J x V vectors in registers, from
    -0.0, one fused multiply-add each step (J and V literal integers). Emitted unrolled here
    rather than written as a loop over a tuple of sums in numba: LLVM did not unroll that past
    16 sums (a switch on the index in every step, the sums in memory). Each step asks for a
    line of w's rows from ``w_row`` (those the next tile reads, or for a weight widened into
    a buffer the next group's) into the L2 cache, row (c mod J) at value c (tiles of one
    vector of x go four steps at a time, asking for J / 4 lines each time): SmolLM2's
    matrices by 16 rows of x, float32 weights from memory, 36-41 -> 32-34 ms (a group ahead:
    36 ms)."""
    if not (isinstance(J, types.IntegerLiteral) and isinstance(V, types.IntegerLiteral)
            and all(isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C"
                    for a in (xt, wf, held))
            and isinstance(w, types.Array) and w.layout == "C"
            and all(isinstance(a, types.Integer) for a in (i0, g0, j0, c0, c1, w_row))):
        return None
    rows, blocks = J.literal_value, V.literal_value

    def codegen(context, builder, signature, args):
        i0_, g0_, j0_, c0_, c1_, w_row_ = (context.cast(builder, args[a], signature.args[a],
                                                        types.intp) for a in (1, 3, 5, 6, 7, 9))

        def at(a, index, element):      # a pointer into argument a (xt, wf, held, w)
            return _pointer(context, builder, signature.args[a], args[a], index, element)
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        k, mp = cgutils.unpack_tuple(builder, xa.shape, 2)
        vector = f32x16.llvm()
        negative_zero = ir.Constant(vector, [-0.0] * 16)
        sums = [cgutils.alloca_once_value(builder, negative_zero) for _ in range(rows * blocks)]
        first = builder.add(g0_, j0_)
        w_rows = [builder.mul(builder.add(first, ir.Constant(first.type, j)), k)
                  for j in range(rows)]
        def prefetch(row, c):
            _call(builder, "llvm.prefetch.p0", ir.VoidType(),
                  at(8, builder.add(builder.mul(builder.add(w_row_, row), k), c),
                     ir.IntType(8)),
                  ir.Constant(_I32, 0), ir.Constant(_I32, 2), ir.Constant(_I32, 1))

        def step(c, after=0):
            # value c + after of k: the x vectors, then each weight row's value times them
            cu = builder.add(c, ir.Constant(c.type, after)) if after else c
            x_at = builder.add(builder.mul(cu, mp), i0_)
            xs = [builder.load(at(0, builder.add(x_at, ir.Constant(x_at.type, 16 * v)),
                                  vector), align=4) for v in range(blocks)]
            for j in range(rows):
                b = _splat(builder, builder.load(at(2, builder.add(w_rows[j], cu),
                                                    ir.FloatType())), f32x16)
                for v in range(blocks):
                    t = sums[j * blocks + v]
                    builder.store(_call(builder, "llvm.fma.v16f32", vector, b, xs[v],
                                        builder.load(t)), t)

        start = c0_
        if blocks == 1 and rows % 4 == 0:
            # one vector of x's rows (a block of 16): J multiply-adds a step, and each step
            # found the J rows' addresses again, one add after another, and the prefetch's
            # row by a division: about as many integer operations as multiply-adds, on the
            # same ports. Four steps at a time find the addresses once (a displacement each
            # step) and ask for J / 4 lines, rows q J/4 ... of pass q = c / 4 mod 4: over
            # four passes, the J lines that 16 values of k read. SmolLM2's 1,536 x 576 by 16
            # rows, one thread, in cache: 54 -> 58 GFMA/s; its 210 matrices from memory, 2
            # threads: 27.8-28.0 -> 25.9-27.2 ms
            span = builder.sub(c1_, c0_)
            start = builder.sub(c1_, builder.urem(span, ir.Constant(span.type, 4)))
            with cgutils.for_range_slice(builder, c0_, start, ir.Constant(c0_.type, 4)) as (c, _):
                q = builder.and_(builder.lshr(c, ir.Constant(c.type, 2)), ir.Constant(c.type, 3))
                lead = builder.mul(q, ir.Constant(c.type, rows // 4))   # the pass's first row
                for t in range(rows // 4):
                    prefetch(builder.add(lead, ir.Constant(c.type, t)), c)
                for after in range(4):
                    step(c, after)
        with cgutils.for_range_slice(builder, start, c1_, ir.Constant(c0_.type, 1)) as (c, _):
            prefetch(builder.urem(c, ir.Constant(c.type, rows)), c)
            step(c)
        for j in range(rows):
            for v in range(blocks):
                place = at(4, builder.mul(builder.add(builder.mul(builder.add(j0_, ir.Constant(
                    j0_.type, j)), ir.Constant(j0_.type, blocks)), ir.Constant(j0_.type, v)),
                    ir.Constant(j0_.type, 16)), vector)
                builder.store(builder.fadd(builder.load(place, align=4),
                                           builder.load(sums[j * blocks + v])), place, align=4)
        return context.get_dummy_value()
    return types.none(xt, i0, wf, g0, held, j0, c0, c1, w, w_row, J, V), codegen


@compile_kernel(inline=True)
def _block_out(held, out, r, rows, i0, V):
    """The sums of a block (``held``: weight row j of the group, then x's rows i0 .. i0 +
    16 V - 1) into ``out`` (m, n), transposed: 16 x 16 at a time in registers (value by value,
    the stores 4 KB apart and more fell into a few of the L1 cache's sets: SmolLM2's 1,536 x
    576 weight took 14,000 cycles a group for it), value by value at the edges; rows of x
    past m are padding."""
    m, n = out.shape
    width = 16 * V
    held_flat, out_flat = held.ravel(), out.ravel()
    for j in range(0, rows, 16):
        for v in range(V):
            top = i0 + 16 * v
            if j + 16 <= rows and top + 16 <= m:
                transpose_16x16(held_flat, j * width + 16 * v, width, out_flat,
                                top * n + r + j, n)
            else:
                for jj in range(j, min(rows, j + 16)):
                    for q in range(min(16, m - top)):
                        out[top + q, r + jj] = held[jj * width + 16 * v + q]


@compile_kernel(inline=True)
def _group(xt, wf, g0, ahead, w, out, r, rows, held):
    """The ``rows`` weight rows from ``wf``'s row g0 (w's rows from r) by every row of x,
    each tile asking for the lines of w's rows ``max(J, ahead)`` on (``ahead`` 0 where wf is
    w itself: the next tile's; GROUP where the group was copied: the next group's):
    blocks of 64 rows of x in tiles of 6 weight rows, then one of 48 (tiles of 8) or 32 or 16
    (tiles of 12); weight rows past the last whole tile one at a time. Each block goes through
    k in steps of KC values: x's part of a step stays in the L1 cache while the tiles of
    weight rows go through it, and each step's sums are added to the block's (which also
    keeps the rounding errors of a long sum near those of a sum of KC terms)."""
    k, mp = xt.shape
    whole = rows - rows % 24
    negative_zero = np.float32(-0.0)
    for i0 in range(0, mp, 64):
        left = min(4, (mp - i0) // 16)
        held[:] = negative_zero
        for c0 in range(0, k, KC):
            c1 = min(k, c0 + KC)
            if left == 4:
                for j0 in range(0, whole, 6):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(6, ahead), 6, 4)
                for j0 in range(whole, rows):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(1, ahead), 1, 4)
            elif left == 3:
                for j0 in range(0, whole, 8):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(8, ahead), 8, 3)
                for j0 in range(whole, rows):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(1, ahead), 1, 3)
            elif left == 2:
                for j0 in range(0, whole, 12):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(12, ahead), 12, 2)
                for j0 in range(whole, rows):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(1, ahead), 1, 2)
            else:
                for j0 in range(0, whole, 12):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(12, ahead), 12, 1)
                for j0 in range(whole, rows):
                    _tile(xt, i0, wf, g0, held, j0, c0, c1, w, r + j0 + max(1, ahead), 1, 1)
        _block_out(held, out, r, rows, i0, left)


def _weight_rows(w, r, rows, group):
    """In compiled kernels: the weight rows r .. r + rows - 1 as float32 rows of an array and
    the index of the first: w itself for a float32 weight (read in place), else ``group``
    (:func:`_copy_group`)."""
    raise NotImplementedError


@overload(_weight_rows, inline="always")
def _weight_rows_typed(w, r, rows, group):
    if w.dtype == types.float32:
        return lambda w, r, rows, group: (w, r, 0)

    def copied(w, r, rows, group):
        _copy_group(w, r, rows, group)
        return group, 0, GROUP
    return copied


def _widening_buffer(w):
    """In compiled kernels: the float32 buffer (GROUP, k) that :func:`_weight_rows` widens a
    group of w's rows into; no rows for a float32 weight, read in place."""
    raise NotImplementedError


@overload(_widening_buffer, inline="always")
def _widening_buffer_typed(w):
    rows = 0 if w.dtype == types.float32 else GROUP
    return lambda w: np.empty((rows, w.shape[1]), np.float32)


@compile_kernel
def _rows(xt, w, out, r0, r1):
    """``out[:, r] = x @ w[r]`` for the weight rows r0 .. r1 - 1, GROUP at a time."""
    group = _widening_buffer(w)
    held = np.empty(GROUP * 64, np.float32)
    for r in range(r0, r1, GROUP):
        rows = min(GROUP, r1 - r)
        wf, g0, ahead = _weight_rows(w, r, rows, group)
        _group(xt, wf, g0, ahead, w, out, r, rows, held)


@compile_kernel(parallel=True)
def _parallel(x, w, n_chunks):
    """``x @ w.T``: x's columns (:func:`_columns`, compiled into this kernel rather than
    loaded from numba's cache on its own, about 7 ms more for a first prompt), then
    :func:`_rows` over ``n_chunks`` chunks of weight rows (multiples of GROUP), on numba's
    threads."""
    xt = _columns(x)
    n = w.shape[0]
    out = np.empty((x.shape[0], n), np.float32)
    step = ((n + n_chunks - 1) // n_chunks + GROUP - 1) // GROUP * GROUP
    for c in numba.prange(n_chunks):
        _rows(xt, w, out, min(n, c * step), min(n, (c + 1) * step))
    return out


def float_gemm(x: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """``x @ w.T`` in float32 for float32 ``x`` (m, k), m at least :data:`GEMM_FROM`, and a
    C-contiguous weight (n, k) of float32, or of bfloat16 or float16 given as their bits
    (int16, uint16: :func:`~.cpu_float_rows.weight_bits`).

    Example: ``y = float_gemm(np.ones((16, 64), np.float32), weight_bits(w))``
    """
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype == np.float32
            and x.shape[0] >= GEMM_FROM and isinstance(w_bits, np.ndarray) and w_bits.ndim == 2
            and w_bits.dtype in _WEIGHT_DTYPES and w_bits.flags.c_contiguous
            and w_bits.shape[1] == x.shape[1] and x.shape[1] > 0):
        raise ShapeError(f"float_gemm takes float32 x of at least {GEMM_FROM} rows and a "
                         f"C-contiguous weight of as many columns (float32, or 16-bit floats' "
                         f"bits as int16 or uint16), got x {getattr(x, 'shape', x)} "
                         f"{getattr(x, 'dtype', '')} and w {getattr(w_bits, 'shape', w_bits)} "
                         f"{getattr(w_bits, 'dtype', '')}")
    n_chunks = max(1, min(-(-w_bits.shape[0] // GROUP), 2 * numba.get_num_threads()))
    return _parallel(np.ascontiguousarray(x), w_bits, n_chunks)
