"""Fused attention on the CPU: ``softmax(q k^T * scale [+ causal mask]) v`` and its backward,
with the products on BLAS and the softmax passes compiled with numba.

Composed from single ops, the softmax of one attention layer is a scale, a mask, a max, a
subtraction, an exp, a sum and a division: seven passes over the (L, S) scores, each allocating
a new array, and its backward three more. Here the scores are shifted in one in-place pass
(scale, causal mask and row maximum), exponentiated in place by NumPy (numba would call the
scalar libm ``exp``; NumPy's is vectorised), and normalised in another. Backward needs no
reduction over dP: FlashAttention's identity ``sum_j P_ij dP_ij = g_i . out_i`` gives the
softmax gradient in one pass. The four products are batched GEMMs.

The output is stored heads inside tokens, as PyTorch's: merging the heads back with
``out.transpose(1, 2).contiguous().view(B, T, C)`` copies nothing. The gradients of q, k and v are
laid out like q, k and v; when those are pieces of one projection, the gradients are pieces of
one new array, so the backward of the split joins them without a copy (see :mod:`.cpu_layout`).

Forward keeps the probabilities (..., L, S) for backward, as the composition does. The kernels
are serial, as the others in :mod:`gradient.backends.cpu_kernels`.

Inference (nothing recorded) has its own kernel, :func:`decode_attention`: a decode step's
query rows against a KV cache read in place, and a causal prompt's, with one arithmetic per
query row (see the comment above :data:`_KEY_TILE`), in parallel over key heads and tiles of
query positions (a decode step with fewer key heads than threads: over tiles of keys, then
query rows), without building the (L, S) probabilities of every head at once.

Example::

    >>> from gradient.backends import cpu_attention
    >>> q = k = v = np.ones((2, 4, 8), np.float32)
    >>> out, probs = cpu_attention.attention_forward(q, k, v, 0.35, True)
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from ..kernels.lowering import Derived, Lowered
from ..kernels.registry import lowers, prepares, register
from . import cpu_attention_numpy
from .cpu_compile import FLOATS as _FLOATS
from .cpu_compile import compile_kernel as _compile
from .cpu_compile import compiled_already, in_threads
from .cpu_compile import usable as _usable
from .cpu_half import (HALF_DTYPES, as_bits, holds, load_bits_as_f32x16, narrowed_like, widen,
                       widened)
from .cpu_simd import (add_f32, broadcast_f32x16, mul_f32, prefetch_to_l2,
                       store_f32x16, transpose_16x16, zeros_f32x16)
from .cpu_reduce import LANES, lane_sum
from .cpu_layout import empty_like_views, heads_inside_tokens
from .cpu_lowered import _pointer
from .kv_layout import cache_buffer

#: The query dtypes the inference kernels take: float32 and float64, and float16 and bfloat16
#: against a cache of their own dtype (computed in float32, :func:`_queries_in_float32`).
_QUERY_DTYPES = _FLOATS + tuple(HALF_DTYPES)
#: The element types a compiled kernel reads a cache's keys and values as, with vector loads:
#: float32, and float16 or bfloat16 bits (.cpu_half).
_CACHE_TYPES = (types.float32, types.uint16, types.int16)


@_compile
def _shift_rows(scores, scale, causal):
    """scores * scale minus each row's maximum, in place; -inf past a causal row's end (key i)."""
    Z, L, S = scores.shape
    for z in range(Z):
        for i in range(L):
            n = min(i + 1, S) if causal else S
            row = scores[z, i]
            top = row[0] * scale
            for j in range(1, n):
                top = max(top, row[j] * scale)
            for j in range(n):
                row[j] = row[j] * scale - top
            for j in range(n, S):
                row[j] = -np.inf


@_compile
def _normalize_rows(e, one):
    """Rows of exp(shifted scores) divided by their sums, in place: the probabilities.
    ``one`` is 1 in e's dtype (see the note on literals in :mod:`.cpu_compile`)."""
    Z, L, S = e.shape
    acc = np.empty(LANES, e.dtype)
    for z in range(Z):
        for i in range(L):
            row = e[z, i]
            inv = one / lane_sum(row, acc)
            for j in range(S):
                row[j] *= inv


@_compile
def _score_gradient(dp, probs, row_dot, scale):
    """dS = P * (dP - row_dot) * scale, in place of dP."""
    Z, L, S = dp.shape
    for z in range(Z):
        for i in range(L):
            r = row_dot[z, i]
            for j in range(S):
                dp[z, i, j] = probs[z, i, j] * (dp[z, i, j] - r) * scale


def _as_batches(a):
    """A contiguous array (..., rows, cols) as (batch, rows, cols): a view."""
    return a.reshape((-1,) + a.shape[-2:])


def _handled(*arrays) -> bool:
    """float32/float64 NumPy arrays of one dtype with equal leading (batch and head) dimensions."""
    return (_usable(*arrays) and all(a.ndim >= 2 for a in arrays)
            and len({a.shape[:-2] for a in arrays}) == 1)


def _mT(a):
    return a.swapaxes(-1, -2)


@register("attention_forward", "cpu", "numba", _FLOATS)
def attention_forward(q, k, v, scale: float, causal: bool):
    """``(out, probs)`` of attention over the last two dimensions; None if not handled.

    q: (..., L, E), k: (..., S, E), v: (..., S, Ev) with the same leading dimensions; a causal
    mask is top-left aligned (query i sees keys 0..i), as in PyTorch. ``probs`` (..., L, S)
    feeds :func:`attention_backward`. Inputs may be strided views (heads split off a
    (batch, seq, heads * dim) projection): the products read them in place.
    """
    if not _handled(q, k, v) or k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
        return None
    if k.shape[-2] == 0:
        return None
    probs = np.matmul(q, _mT(k))
    _shift_rows(_as_batches(probs), q.dtype.type(scale), bool(causal))
    np.exp(probs, out=probs)
    _normalize_rows(_as_batches(probs), q.dtype.type(1))
    out = heads_inside_tokens(probs.shape[:-1] + v.shape[-1:], q.dtype)
    return np.matmul(probs, v, out=out), probs


@register("attention_backward", "cpu", "numba", _FLOATS)
def attention_backward(grad, q, k, v, out, probs, scale: float, causal: bool):
    """``(dq, dk, dv)`` of :func:`attention_forward` for the upstream ``grad``; None if not handled."""
    if not _handled(grad, q, k, v, out, probs) or grad.shape != out.shape:
        return None
    # softmax's backward needs sum_j P_ij dP_ij per row; FlashAttention's identity gives it as
    # grad_i . out_i, without a pass over dP
    row_dot = np.einsum("...d,...d->...", grad, out)
    dq, dk, dv = empty_like_views(q, k, v)
    np.matmul(_mT(probs), grad, out=dv)
    ds = np.matmul(grad, _mT(v))
    _score_gradient(_as_batches(ds), _as_batches(probs),
                    np.ascontiguousarray(row_dot).reshape(-1, row_dot.shape[-1]),
                    q.dtype.type(scale))
    np.matmul(ds, k, out=dq)
    np.matmul(_mT(ds), q, out=dk)
    return dq, dk, dv


# ------------------------------------------------ attention over a cache: decode and prefill
# One kernel computes inference attention for a decode step (one query row per head against
# the cache) and for a prefill (every row of a causal prompt), with the same arithmetic per
# query row whatever the number of rows: the logits of a prompt run whole are those of the
# same tokens decoded one at a time, bit for bit. That matters more than it seems: with int8
# activations (gradient.quant) a last-bit difference in one attention output can flip an
# activation's rounding and move the logits by tenths, so two summation orders (BLAS GEMM
# for a prompt, a matrix-vector product for a step) gave visibly different logits.
#
# Per query row (position p, seeing keys 0..p): the query scaled first; each score a sum over
# head_dim in index order (vectorised across keys: a tile of keys is transposed first, so the
# SIMD lanes hold keys, not head_dim); the row's maximum subtracted; exp by :func:`_exp_row`;
# the sum of the row in lanes (:func:`lane_sum`); the output a sum over keys in position
# order of p_j * v_j (vectorised across head_dim). Nothing depends on the number of rows, on
# which rows share a tile or on the thread that runs them.

#: Keys transposed at a time when scoring.
_KEY_TILE = 64
#: Query positions per work item of a prefill (each item: one key head's group of query
#: heads, these positions): the rows that share each transposed key tile and value row.
_ROW_TILE = 16
#: Below this many multiply-adds an attention call runs on one thread (a parallel launch
#: costs tens of microseconds: more than a short decode step's attention).
_PARALLEL_MIN_WORK = 1 << 18
#: The same for a decode step (one query row), whose threads are the decode step's, waiting
#: between its kernels: SmolLM2 (9 heads, 3 key heads, 2 threads), a layer's cache from
#: memory, float16, one thread against two: 12.4 against 12.0 us at 128 positions, 19.8
#: against 17.7 at 176, 30.2 against 24.9 at 300 (AMD EPYC, Zen 4).
_DECODE_PARALLEL_MIN_WORK = 1 << 16
#: The same for a batch's paged decode step (:func:`paged_decode_attention`), whose items (a
#: row and key head each) are many and whose threads come from the step's other parallel
#: kernels: SmolLM2's 8 rows at 16 to 48 positions took 28-38 us on one thread, 15-21 us on
#: two (2 rows at 16: 7.2 against 5.9 us).
_PAGED_PARALLEL_MIN_WORK = 1 << 14


@_compile
def _exp_row(x, n, bits, f32):
    """exp of x[:n] in place. float32 (``f32``): Cephes' ``expf`` (x = k ln 2 + r, a degree-7
    polynomial in r, times 2**k built in ``bits``, an int32 scratch of n), written so that LLVM
    vectorises it: NumPy's SIMD exp cannot be called from compiled code, and the scalar libm
    ``expf`` numba calls is several times slower. Relative error below 2 ulp for arguments up
    to 88.37 (a softmax's shifted scores are at most 0; above, inf); below -87.3, about 1e-38
    rather than 0 (no difference to a softmax). float64: ``np.exp``."""
    if not f32:
        for j in range(n):
            x[j] = np.exp(x[j])
        return
    lo, hi = np.float32(-87.33654), np.float32(88.37626)
    for j in range(n):
        t = x[j]
        t = lo if t < lo else t       # NaN passes both tests: it stays NaN
        t = hi if t > hi else t
        k = np.floor(t * np.float32(1.44269504088896341) + np.float32(0.5))
        r = t - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        x[j] = p * r * r + r + np.float32(1.0)
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    powers = bits[:n].view(np.float32)
    for j in range(n):
        x[j] *= powers[j]


@_compile(inline=True)
def _whole(a):
    """The C-contiguous (B, H, max_len, D) buffer whose first S positions the 4-d array ``a``
    (B, H, S, D) is (a KV cache's view; ``a`` itself when contiguous), else a contiguous copy
    of ``a``: :func:`_rows` inside a compiled step (see there why)."""
    B, H, S, D = a.shape
    item = a.itemsize
    row = D * item
    st = a.strides
    if (st[3] == item and st[2] == row and st[1] % row == 0 and st[1] // row >= S
            and (B == 1 or st[0] == H * st[1])):
        return numba.carray(_pointer(a.ctypes.data, a), (B, H, st[1] // row, D))
    return np.ascontiguousarray(a)


@_compile(inline=True)
def _transpose_rows(src, m, kt):
    """The first m rows of src (m, D) into kt (D, m). In blocks of 8 x 8 where the tile is
    whole: each key's 8 values and each column's 8 keys stay in registers (measured 1.3x
    faster than a key at a time)."""
    D = src.shape[1]
    if m == _KEY_TILE and D % 8 == 0:
        for jb in range(0, _KEY_TILE, 8):
            for db in range(0, D, 8):
                for j in range(8):
                    for d in range(8):
                        kt[db + d, jb + j] = widen(src[jb + j, db + d])
    else:
        for j in range(m):
            for d in range(D):
                kt[d, j] = widen(src[j, d])


def _transpose_keys(k, b, hk, j0, m, kt, wide):
    """Keys j0 .. j0+m-1 of key head ``hk`` of k (B, Hk, max_len, D) into kt (D, m): lanes
    then hold keys. Only data moves, so the scores are the same bits. In compiled kernels only
    (:func:`_transpose_keys_typed`)."""
    raise NotImplementedError("_transpose_keys runs in compiled kernels only")


@_compile(inline=True)
def _transpose_keys_scalar(k, b, hk, j0, m, kt, wide):
    # 16-bit keys (their bits, .cpu_half) widened first, key by key into ``wide`` (a
    # (_KEY_TILE, D) scratch), where the conversion runs 8 values to an instruction
    if k.itemsize == 2:
        for j in range(m):
            for d in range(k.shape[3]):
                wide[j, d] = widen(k[b, hk, j0 + j, d])
        _transpose_rows(wide, m, kt)
    else:
        _transpose_rows(k[b, hk, j0:j0 + m], m, kt)
    _clear_past(kt, m)


@_compile(inline=True)
def _clear_past(kt, m):
    """Zeros in kt's columns past m: a whole tile is scored (:func:`_score_tile_vectors`),
    and its lanes past the last key, never read, held whatever was in memory (an unwritten
    scratch, a cache's positions not yet filled). Subnormal garbage there made each fused
    operation on it a microcode assist on Intel CPUs: a 16-token prompt's attention took
    0.1-1.1 ms a layer by what the memory held, 30-60 us with zeros (AVX-512 Xeon)."""
    if m < kt.shape[1]:
        kt[:, m:] = 0


@_compile(inline=True)
def _transpose_keys_blocks(k, b, hk, j0, m, kt, wide):
    # a whole tile, head_dim a multiple of 16: blocks of 16 keys x 16 values transposed in
    # registers (cpu_simd.transpose_16x16, float16 widened as they load); at long context
    # moving the keys was most of a decode step's attention (SmolLM2 at 2,048 keys: 100 of
    # 140 us a layer on one thread, moved element by element)
    # a tile of fewer keys (the last of a row) moves whole as well where the buffer holds
    # the positions after it: kt's columns past m are then cleared (never read)
    D = k.shape[3]
    if D % 16 or j0 + _KEY_TILE > k.shape[2]:
        _transpose_keys_scalar(k, b, hk, j0, m, kt, wide)
        return
    base = ((b * k.shape[1] + hk) * k.shape[2] + j0) * D
    for jb in range(0, _KEY_TILE, 16):
        for db in range(0, D, 16):
            transpose_16x16(k, base + jb * D + db, D, kt, db * _KEY_TILE + jb, _KEY_TILE)
    _clear_past(kt, m)


@overload(_transpose_keys, inline="always")
def _transpose_keys_typed(k, b, hk, j0, m, kt, wide):
    if (k.layout == kt.layout == "C" and kt.dtype == types.float32
            and k.dtype in _CACHE_TYPES):
        return lambda k, b, hk, j0, m, kt, wide: _transpose_keys_blocks(k, b, hk, j0, m, kt,
                                                                        wide)
    return lambda k, b, hk, j0, m, kt, wide: _transpose_keys_scalar(k, b, hk, j0, m, kt, wide)


def _score_tile(qs, keys, at, stride, m, scores, j0):
    """The scores of keys j0 .. j0+m-1 for every scaled query row of qs (R, D), into
    scores[:, j0:j0+m]: ``q_0 k_0``, then ``+ q_d k_d`` for d = 1 ... in order. The keys are
    stored transposed, lanes holding keys: value d of key j0 + j at flat index ``at + d *
    stride + j`` of ``keys`` (a C-contiguous array of float32, or of 16-bit floats' bits,
    widened as they load): a tile transposed into a scratch (:func:`_transpose_keys`,
    ``stride`` 64), or a block of a paged cache's keys, which are kept that way. In compiled
    kernels only (:func:`_score_tile_typed`)."""
    raise NotImplementedError("_score_tile runs in compiled kernels only")


@_compile(inline=True)
def _score_tile_scalar(qs, keys, at, stride, m, scores, j0):
    R, D = qs.shape
    flat = keys.reshape(keys.size)
    for r in range(R):
        row = scores[r, j0:j0 + m]
        first = qs[r, 0]
        for j in range(m):
            row[j] = first * widen(flat[at + j])
        for d in range(1, D):
            qd = qs[r, d]
            o = at + d * stride
            for j in range(m):
                row[j] += qd * widen(flat[o + j])


@_compile(inline=True)
def _score_tile_vectors(qs, keys, at, stride, m, scores, j0):
    # a whole float32 tile: its 64 scores in four vectors, in registers for the whole sum
    # (through memory, each of the head_dim steps loaded and stored them again); the same
    # operations lane by lane, so the same bits. The last tile of a row, of fewer keys, too
    # where the scores' rows have room for a whole tile (:func:`_score_width`): its lanes past
    # m hold scores of no key, which nothing reads (a row of 8 sequences at 60 positions
    # each was scored key by key: 2.5 times a whole tile's time)
    R, D = qs.shape
    n = scores.shape[1]
    if m != _KEY_TILE and j0 + _KEY_TILE > n:
        _score_tile_scalar(qs, keys, at, stride, m, scores, j0)
        return
    if m <= _KEY_TILE - 16 or keys.itemsize == 2:
        # a tile of 48 keys or fewer (a short prompt's only one, the last of a longer
        # sequence): only the vectors that hold keys, each for four rows at once; 16-bit
        # keys (a paged cache's blocks) so too, each vector widened once for four rows
        for o in range(0, m, 16):
            _score_vector(qs, keys, at + o, stride, scores, j0 + o)
        return
    for r in range(R):
        first = broadcast_f32x16(qs[r, 0])
        a0 = mul_f32(first, load_bits_as_f32x16(keys, at))
        a1 = mul_f32(first, load_bits_as_f32x16(keys, at + 16))
        a2 = mul_f32(first, load_bits_as_f32x16(keys, at + 32))
        a3 = mul_f32(first, load_bits_as_f32x16(keys, at + 48))
        for d in range(1, D):
            qd, o = broadcast_f32x16(qs[r, d]), at + d * stride
            a0 = add_f32(a0, mul_f32(qd, load_bits_as_f32x16(keys, o)))
            a1 = add_f32(a1, mul_f32(qd, load_bits_as_f32x16(keys, o + 16)))
            a2 = add_f32(a2, mul_f32(qd, load_bits_as_f32x16(keys, o + 32)))
            a3 = add_f32(a3, mul_f32(qd, load_bits_as_f32x16(keys, o + 48)))
        to = r * n + j0
        store_f32x16(scores, to, a0)
        store_f32x16(scores, to + 16, a1)
        store_f32x16(scores, to + 32, a2)
        store_f32x16(scores, to + 48, a3)


@_compile(inline=True)
def _score_vector(qs, keys, at, stride, scores, j):
    """The 16 scores of keys j ... j + 15 (value d of key j + i at flat ``at + d * stride +
    i`` of ``keys``) for every row of qs, four rows at a time (four independent sums, one
    load of the keys for four rows): each lane's operations those of
    :func:`_score_tile_vectors`, in the same order. A 16-token prompt's attention,
    SmolLM2's 9 heads and 3 key heads, one thread: 29 -> 19 us. Three rows left (a decode
    step's group of three query heads) go as four, the last twice (its sums stored twice,
    the same): one load of each key for the three."""
    R, D = qs.shape
    n = scores.shape[1]
    r = 0
    while r + 3 <= R:
        r1, r2, r3 = r + 1, r + 2, min(r + 3, R - 1)
        k = load_bits_as_f32x16(keys, at)
        a0 = mul_f32(broadcast_f32x16(qs[r, 0]), k)
        a1 = mul_f32(broadcast_f32x16(qs[r1, 0]), k)
        a2 = mul_f32(broadcast_f32x16(qs[r2, 0]), k)
        a3 = mul_f32(broadcast_f32x16(qs[r3, 0]), k)
        for d in range(1, D):
            k = load_bits_as_f32x16(keys, at + d * stride)
            a0 = add_f32(a0, mul_f32(broadcast_f32x16(qs[r, d]), k))
            a1 = add_f32(a1, mul_f32(broadcast_f32x16(qs[r1, d]), k))
            a2 = add_f32(a2, mul_f32(broadcast_f32x16(qs[r2, d]), k))
            a3 = add_f32(a3, mul_f32(broadcast_f32x16(qs[r3, d]), k))
        store_f32x16(scores, r * n + j, a0)
        store_f32x16(scores, r1 * n + j, a1)
        store_f32x16(scores, r2 * n + j, a2)
        store_f32x16(scores, r3 * n + j, a3)
        r += 4
    for r in range(r, R):
        a = mul_f32(broadcast_f32x16(qs[r, 0]), load_bits_as_f32x16(keys, at))
        for d in range(1, D):
            a = add_f32(a, mul_f32(broadcast_f32x16(qs[r, d]),
                                   load_bits_as_f32x16(keys, at + d * stride)))
        store_f32x16(scores, r * n + j, a)


@_compile(inline=True)
def _score_width(n):
    """The length of a row of scores for ``n`` keys: whole tiles of keys, so that the last
    tile is scored with vectors too (:func:`_score_tile_vectors`)."""
    return (n + _KEY_TILE - 1) // _KEY_TILE * _KEY_TILE


@overload(_score_tile, inline="always")
def _score_tile_typed(qs, keys, at, stride, m, scores, j0):
    vectors = (qs.dtype == scores.dtype == types.float32 and keys.dtype in _CACHE_TYPES
               and keys.layout == scores.layout == "C")
    if vectors:
        return lambda qs, keys, at, stride, m, scores, j0: _score_tile_vectors(
            qs, keys, at, stride, m, scores, j0)
    return lambda qs, keys, at, stride, m, scores, j0: _score_tile_scalar(
        qs, keys, at, stride, m, scores, j0)


@_compile(inline=True)
def _probabilities(row, lim, bits, lanes, f32):
    """The first ``lim`` scores of a row made its softmax's probabilities in place: the
    numerators (:func:`_softmax_numerators`), each divided by their sum."""
    total = _softmax_numerators(row, lim, bits, lanes, f32)
    for j in range(lim):
        row[j] = row[j] / total


@_compile(inline=True)
def _softmax_numerators(row, lim, bits, lanes, f32):
    """The first ``lim`` scores of a row minus their maximum, exponentiated in place; returns
    their sum (:func:`lane_sum`)."""
    top = row[0]
    for j in range(1, lim):
        top = max(top, row[j])
    for j in range(lim):
        row[j] -= top
    _exp_row(row, lim, bits, f32)
    return lane_sum(row[:lim], lanes)


@_compile(inline=True)
def _no_sums():
    """Four f32x16 zeros: the sums of 64 values of head_dim (see :func:`_weighted`)."""
    z = zeros_f32x16()
    return (z, z, z, z)


@_compile(inline=True)
def _values_64(v, o):
    """The 64 values of v from flat index ``o`` as four f32x16 (16-bit values widened)."""
    return (load_bits_as_f32x16(v, o), load_bits_as_f32x16(v, o + 16),
            load_bits_as_f32x16(v, o + 32), load_bits_as_f32x16(v, o + 48))


@_compile(inline=True)
def _plus_products(sums, p, values):
    """``sums`` plus ``p`` times ``values`` (:func:`_values_64`): four independent sums, each
    the scalar loop's operations on its 16 lanes (the same bits)."""
    return (add_f32(sums[0], mul_f32(p, values[0])), add_f32(sums[1], mul_f32(p, values[1])),
            add_f32(sums[2], mul_f32(p, values[2])), add_f32(sums[3], mul_f32(p, values[3])))


@_compile(inline=True)
def _weighted(sums, p, v, o):
    """``sums`` plus ``p`` times the 64 values of v from flat index ``o``."""
    return _plus_products(sums, p, _values_64(v, o))


@_compile(inline=True)
def _store_sums(acc, d0, sums):
    store_f32x16(acc, d0, sums[0])
    store_f32x16(acc, d0 + 16, sums[1])
    store_f32x16(acc, d0 + 32, sums[2])
    store_f32x16(acc, d0 + 48, sums[3])


@_compile
def _attend(q, k, v, S, scale, f32, b, hk, i0, i1, out):
    """Query positions i0..i1 of the query heads that key head ``hk`` serves, batch ``b``:
    q (B, Hq, L, D) at the last L of the first S positions of k (B, Hk, max_len, D) and v
    (B, Hk, max_len, Dv), each row seeing the keys up to its own position; into out (B, L,
    Hq, Dv): heads inside tokens, as PyTorch lays attention's output out."""
    _, Hq, L, D = q.shape
    Dv = v.shape[3]
    group = Hq // k.shape[1]
    past = S - L
    per_head = i1 - i0
    R = group * per_head
    n = past + i1                                  # keys the last row sees
    dtype = q.dtype
    # row r is position i0 + r // group of head hk * group + r % group: the rows of one
    # position see the same keys, and are weighed together (:func:`_weigh_rows`)
    qs = np.empty((R, D), dtype)
    for r in range(R):
        h, i = hk * group + r % group, i0 + r // group
        for d in range(D):
            qs[r, d] = q[b, h, i, d] * scale       # the query scaled, as the composition does
    scores = np.empty((R, _score_width(n)), dtype)
    kt = np.empty((D, _KEY_TILE), dtype)
    wide = np.empty((_KEY_TILE, D), dtype)
    for j0 in range(0, n, _KEY_TILE):
        m = min(_KEY_TILE, n - j0)
        _transpose_keys(k, b, hk, j0, m, kt, wide)
        _score_tile(qs, kt, 0, _KEY_TILE, m, scores, j0)
    bits = np.empty(n, np.int32)
    lanes = np.empty(LANES, dtype)
    accs = np.empty((group, Dv), dtype)
    for i in range(per_head):
        lim = past + i0 + i + 1
        rows = scores[i * group:(i + 1) * group]
        for r in range(group):
            _probabilities(rows[r], lim, bits, lanes, f32)
        _weigh_rows(rows, lim, v, b, hk, accs)
        for r in range(group):
            for d in range(Dv):
                out[b, i0 + i, hk * group + r, d] = accs[r, d]


@_compile(inline=True)
def _weigh_rows(p, lim, v, b, hk, accs):
    """``sum_j p[r, j] v_j`` over keys j < lim in position order, for every row r of the
    probabilities ``p`` (the query heads of key head ``hk`` at one position), into accs[r]:
    :func:`_weigh_paged_rows` with batch row b's positions as one block, so that each value
    is read and widened once for the rows together. A decode step of SmolLM2 (9 heads, 3 key
    heads) a row at a time divided by the total once per key and row and read each value
    three times."""
    _weigh_paged_rows(p, lim, v, _one_block(b), v.shape[2], hk, accs)


@_compile(inline=True)
def _one_block(b):
    """The block table that makes batch row ``b`` of a (B, H, max_len, D) cache buffer one
    block of max_len positions, for the paged kernels' helpers."""
    blocks = np.empty(1, np.int64)
    blocks[0] = b
    return blocks


@_compile
def _decode_scores(q, k, S, scale, scores, c, n_chunks):
    """Phase 1 of :func:`_decode_parallel`, its work items c, c + n_chunks, ...: the scores of
    a tile of keys, (batch, key head, tile), for the query heads the key head serves."""
    B, Hq, _, D = q.shape
    Hk = k.shape[1]
    group = Hq // Hk
    tiles = (S + _KEY_TILE - 1) // _KEY_TILE
    qs = np.empty((group, D), q.dtype)
    kt = np.empty((D, _KEY_TILE), q.dtype)
    wide = np.empty((_KEY_TILE, D), q.dtype)
    last = -1
    for t in range(c, B * Hk * tiles, n_chunks):
        bh, tile = t // tiles, t % tiles
        b, hk = bh // Hk, bh % Hk
        if bh != last:
            for r in range(group):
                for d in range(D):
                    qs[r, d] = q[b, hk * group + r, 0, d] * scale
            last = bh
        j0 = tile * _KEY_TILE
        m = min(_KEY_TILE, S - j0)
        _transpose_keys(k, b, hk, j0, m, kt, wide)
        _score_tile(qs, kt, 0, _KEY_TILE, m, scores[bh], j0)


@_compile
def _decode_softmax(scores, S, f32, c, n_chunks):
    """Phase 2 of :func:`_decode_parallel`: the probabilities of query rows c, c + n_chunks,
    ... in place of their scores."""
    R = scores.shape[0] * scores.shape[1]
    flat = scores.reshape((R, scores.shape[2]))
    bits = np.empty(S, np.int32)
    lanes = np.empty(LANES, scores.dtype)
    for r in range(c, R, n_chunks):
        _probabilities(flat[r], S, bits, lanes, f32)


@_compile
def _decode_values(scores, v, S, out, c, n_chunks):
    """Phase 3 of :func:`_decode_parallel`: the output of query rows c, c + n_chunks, ..."""
    BHk, group = scores.shape[0], scores.shape[1]
    Hk, Dv = v.shape[1], v.shape[3]
    acc = np.empty((1, Dv), scores.dtype)
    for t in range(c, BHk * group, n_chunks):
        bh, r = t // group, t % group
        b, hk = bh // Hk, bh % Hk
        _weigh_rows(scores[bh, r:r + 1], S, v, b, hk, acc)
        for d in range(Dv):
            out[b, 0, hk * group + r, d] = acc[0, d]


@_compile(parallel=True)
def _decode_parallel(q, k, v, S, scale, f32, out, n_chunks):
    """A decode step (one query position, L = 1) on ``n_chunks`` threads, with
    :func:`_attend`'s arithmetic for every row (the same bits), in three phases that each
    split evenly: the scores by (batch, key head, tile of keys), the softmax and the
    weighted values by query row: for fewer (batch, key head) items than threads (one key
    head, or many threads), which :func:`_attention_parallel` gives one each. Where there
    are as many, that is faster, even with a thread idle part of the time: its items share
    each key tile and value among the group's query heads, and it launches threads once,
    not three times (SmolLM2, 3 key heads on 2 threads, a layer's float16 cache from memory:
    2,048 positions 155 -> 129 us, 500 positions 38.3 -> 37.5 us)."""
    B, Hq = q.shape[0], q.shape[1]
    Hk = k.shape[1]
    scores = np.empty((B * Hk, Hq // Hk, _score_width(S)), q.dtype)
    for c in numba.prange(n_chunks):
        _decode_scores(q, k, S, scale, scores, np.int64(c), n_chunks)
    for c in numba.prange(n_chunks):
        _decode_softmax(scores, S, f32, np.int64(c), n_chunks)
    for c in numba.prange(n_chunks):
        _decode_values(scores, v, S, out, np.int64(c), n_chunks)


@_compile
def _attention_items(q, k, v, S, scale, f32, out, c, n_chunks):
    """Work items c, c + n_chunks, ... of :func:`attend`: (batch, key head, tile of
    _ROW_TILE query positions), dealt round-robin so that early (short) and late (long)
    positions of a causal prompt spread over the threads."""
    B, L, Hk = q.shape[0], q.shape[2], k.shape[1]
    tiles = (L + _ROW_TILE - 1) // _ROW_TILE
    items = B * Hk * tiles
    if c < items:
        _prefetch_item(k, v, S, L, c, B * Hk)
    for t in range(c, items, n_chunks):
        tile = t // (B * Hk)
        b, hk = (t % (B * Hk)) // Hk, t % Hk
        if t + n_chunks < items:
            _prefetch_item(k, v, S, L, t + n_chunks, B * Hk)
        _attend(q, k, v, S, scale, f32, b, hk, tile * _ROW_TILE,
                min(L, (tile + 1) * _ROW_TILE), out)


#: The most bytes of keys and values an item of :func:`_attention_items` asks for ahead.
_PREFETCH_BYTES = 1 << 17


@_compile(inline=True)
def _prefetch_item(k, v, S, L, t, heads):
    """Ask for the cache lines (into L2) of the keys and values that item ``t`` of
    :func:`_attention_items` reads, where they are at most :data:`_PREFETCH_BYTES`: a decode
    step's attention reads each layer's cache from memory (the weights of the layers between
    have gone through the caches), and a thread that waits for each line as it reads it
    took twice its arithmetic's time (SmolLM2, 176 positions, float16 cache: 23 us a layer,
    13 us with the cache in L2)."""
    Hk = k.shape[1]
    b, hk = (t % heads) // Hk, t % Hk
    n = min(S, S - L + (t // heads + 1) * _ROW_TILE)     # the keys its last row sees
    if n * (k.shape[3] * k.itemsize + v.shape[3] * v.itemsize) > _PREFETCH_BYTES:
        return
    blocks = _one_block(b)
    _prefetch_positions(k, blocks, k.shape[2], n, hk)
    _prefetch_positions(v, blocks, v.shape[2], n, hk)


@_compile(parallel=True)
def _attention_parallel(q, k, v, S, scale, f32, out, n_chunks):
    for c in numba.prange(n_chunks):
        _attention_items(q, k, v, S, scale, f32, out, np.int64(c), n_chunks)


@_compile
def _ragged_items(q, k, v, lengths, scale, f32, out, c, n_chunks):
    """Work items c, c + n_chunks, ... of :func:`ragged_decode_attention`: (row, key head),
    each :func:`_attend` of one query position against that row's first lengths[row] keys."""
    B, Hk = q.shape[0], k.shape[1]
    for t in range(c, B * Hk, n_chunks):
        b, hk = t // Hk, t % Hk
        _attend(q, k, v, lengths[b], scale, f32, b, hk, 0, 1, out)


@_compile(parallel=True)
def _ragged_parallel(q, k, v, lengths, scale, f32, out, n_chunks):
    for c in numba.prange(n_chunks):
        _ragged_items(q, k, v, lengths, scale, f32, out, np.int64(c), n_chunks)


def _weigh_paged_rows(p, lim, v, blocks, bs, hk, accs):
    """``sum_j p[r, j] v_j`` over keys j < lim in position order, for every row r of the
    probabilities ``p``, into ``accs[r]``; key j is in block ``blocks[j // bs]`` of v
    (n_blocks, Hk, bs, Dv), at ``j % bs`` (16-bit values as their bits, widened). In compiled
    kernels only (:func:`_weigh_paged_rows_typed`)."""
    raise NotImplementedError("_weigh_paged_rows runs in compiled kernels only")


@_compile(inline=True)
def _weigh_paged_rows_scalar(p, lim, v, blocks, bs, hk, accs):
    for r in range(p.shape[0]):
        acc = accs[r]
        acc[:] = 0
        for j0 in range(0, lim, bs):
            block = blocks[j0 // bs]
            for j in range(j0, min(lim, j0 + bs)):
                for d in range(acc.size):
                    acc[d] += p[r, j] * widen(v[block, hk, j - j0, d])


@_compile(inline=True)
def _weigh_paged_rows_vectors(p, lim, v, blocks, bs, hk, accs):
    # 64 values of head_dim at a time, each key's found through its block, loaded (and
    # widened) once for three rows of p (the query heads of a key head: SmolLM2's 3), their
    # twelve sums in registers over every key; the rows left over one at a time. The same
    # operations lane by lane as the scalar loop (the same bits). A row at a time read each
    # key's values once per query head: 8 rows of SmolLM2 at ~185 positions, 128 -> 114 us
    # a layer on one thread
    R, Dv, H = p.shape[0], accs.shape[1], v.shape[1]
    d0 = 0
    while d0 + 64 <= Dv:
        r = 0
        while r + 3 <= R:
            s0 = s1 = s2 = _no_sums()
            for j0 in range(0, lim, bs):
                base = ((blocks[j0 // bs] * H + hk) * bs - j0) * Dv + d0
                for j in range(j0, min(lim, j0 + bs)):
                    values = _values_64(v, base + j * Dv)
                    s0 = _plus_products(s0, broadcast_f32x16(p[r, j]), values)
                    s1 = _plus_products(s1, broadcast_f32x16(p[r + 1, j]), values)
                    s2 = _plus_products(s2, broadcast_f32x16(p[r + 2, j]), values)
            _store_sums(accs[r], d0, s0)
            _store_sums(accs[r + 1], d0, s1)
            _store_sums(accs[r + 2], d0, s2)
            r += 3
        for r in range(r, R):
            sums = _no_sums()
            for j0 in range(0, lim, bs):
                base = ((blocks[j0 // bs] * H + hk) * bs - j0) * Dv + d0
                for j in range(j0, min(lim, j0 + bs)):
                    sums = _weighted(sums, broadcast_f32x16(p[r, j]), v, base + j * Dv)
            _store_sums(accs[r], d0, sums)
        d0 += 64
    for r in range(R):
        for d in range(d0, Dv):
            accs[r, d] = 0
        for j0 in range(0, lim, bs):
            block = blocks[j0 // bs]
            for j in range(j0, min(lim, j0 + bs)):
                for d in range(d0, Dv):
                    accs[r, d] += p[r, j] * widen(v[block, hk, j - j0, d])


@overload(_weigh_paged_rows, inline="always")
def _weigh_paged_rows_typed(p, lim, v, blocks, bs, hk, accs):
    vectors = (p.dtype == accs.dtype == types.float32 and p.layout == v.layout == accs.layout
               == "C" and v.dtype in _CACHE_TYPES)
    if vectors:
        return lambda p, lim, v, blocks, bs, hk, accs: _weigh_paged_rows_vectors(
            p, lim, v, blocks, bs, hk, accs)
    return lambda p, lim, v, blocks, bs, hk, accs: _weigh_paged_rows_scalar(
        p, lim, v, blocks, bs, hk, accs)


@_compile(inline=True)
def _prefetch_positions(a, blocks, bs, S, hk):
    """Ask for the cache lines (into L2) of the first S positions of key head ``hk`` of ``a``
    (n_blocks, Hk, bs, D), in blocks ``blocks`` (see :func:`_paged_items`)."""
    H, D = a.shape[1], a.shape[3]
    line = 64 // a.itemsize
    for j0 in range(0, S, bs):
        base = (blocks[j0 // bs] * H + hk) * bs * D
        for i in range(0, min(bs, S - j0) * D, line):
            prefetch_to_l2(a, base + i)


@_compile(inline=True)
def _score_paged(q, k, blocks, bs, S, scale, b, hk, qs, scores):
    """The scores of row ``b``'s query (q (B, Hq, 1, D)) for the heads key head ``hk`` serves
    against the row's first S keys, which blocks ``blocks`` of k (n_blocks, Hk, D, bs: each
    block's keys transposed, see :func:`paged_decode_attention`) hold in order, into
    ``scores`` (group, width): :func:`_attend`'s arithmetic for one position (the same
    bits), each tile of keys scored where its block holds it (``bs`` is a multiple of the
    tile)."""
    group, D = qs.shape
    for r in range(group):
        for d in range(D):
            qs[r, d] = q[b, hk * group + r, 0, d] * scale
    Hk = k.shape[1]
    for j0 in range(0, S, _KEY_TILE):
        at = (blocks[j0 // bs] * Hk + hk) * D * bs + j0 % bs
        _score_tile(qs, k, at, bs, min(_KEY_TILE, S - j0), scores, j0)


@_compile(inline=True)
def _prefetch_key_blocks(k, blocks, S, hk):
    """Ask for the cache lines (into L2) of the first S keys of key head ``hk`` of the
    transposed blocks of k (n_blocks, Hk, D, bs), blocks ``blocks``: each of the head_dim
    rows of a block's keys up to the last key held."""
    H, D, bs = k.shape[1], k.shape[2], k.shape[3]
    line = 64 // k.itemsize
    for j0 in range(0, S, bs):
        base = (blocks[j0 // bs] * H + hk) * D * bs
        n = min(bs, S - j0)
        for d in range(D):
            for i in range(0, n, line):
                prefetch_to_l2(k, base + d * bs + i)


@_compile(inline=True)
def _finish_paged(v, blocks, bs, S, f32, b, hk, out, scores, bits, lanes, accs):
    """The output of the query heads key head ``hk`` serves, row ``b``, from their scores
    (:func:`_score_paged`): each row's softmax (the probabilities in place of the scores, a
    division each), then the values weighed by them."""
    group = scores.shape[0]
    for r in range(group):
        _probabilities(scores[r], S, bits, lanes, f32)
    _weigh_paged_rows(scores, S, v, blocks, bs, hk, accs)
    for r in range(group):
        for d in range(accs.shape[1]):
            out[b, 0, hk * group + r, d] = accs[r, d]


@_compile
def _paged_items(q, k, v, tables, lengths, bs, scale, f32, out, c, n_chunks):
    """Work items c, c + n_chunks, ... of :func:`paged_decode_attention`: (row, key head),
    with one set of scratch arrays for all of them (a short row's item is a few microseconds,
    of which allocating its own, seven arrays when this was measured, took one)."""
    B, Hq, D = q.shape[0], q.shape[1], q.shape[3]
    Hk, dtype = k.shape[1], q.dtype
    longest = lengths.max()
    group = Hq // Hk
    qs = np.empty((group, D), dtype)
    scores = np.empty((group, _score_width(longest)), dtype)
    bits = np.empty(longest, np.int32)
    lanes = np.empty(LANES, dtype)
    accs = np.empty((group, v.shape[3]), dtype)
    for t in range(c, B * Hk, n_chunks):
        b, hk = t // Hk, t % Hk
        # the keys of this thread's next item are asked for while this one's are scored, its
        # values while this one's are weighed: the cache of a batch's layer comes from
        # memory (8 rows of SmolLM2 at ~185 positions, 30 layers' caches in turn, 2 threads:
        # 125 -> 100 us a layer; 60 us with every row's cache in L2). Into L2: an item's
        # keys and values (47 KB there) are more than L1 holds
        later = t + n_chunks
        if later < B * Hk:
            _prefetch_key_blocks(k, tables[later // Hk], lengths[later // Hk], later % Hk)
        _score_paged(q, k, tables[b], bs, lengths[b], scale, b, hk, qs, scores)
        if later < B * Hk:
            _prefetch_positions(v, tables[later // Hk], bs, lengths[later // Hk], later % Hk)
        _finish_paged(v, tables[b], bs, lengths[b], f32, b, hk, out, scores, bits, lanes, accs)


@_compile(parallel=True)
def _paged_parallel(q, k, v, tables, lengths, bs, scale, f32, out, n_chunks):
    for c in numba.prange(n_chunks):
        _paged_items(q, k, v, tables, lengths, bs, scale, f32, out, np.int64(c),
                     n_chunks)


def _rows(a):
    """A KV cache view (B, H, S, D) as the whole C-contiguous buffer it is the start of (no
    copy), else ``a`` as a C-contiguous array: the kernels take C arrays (with a strided
    array's unknown inner stride LLVM does not vectorise the loops over head_dim: measured 3
    times slower), and one layout means one compiled specialization."""
    if a.flags.c_contiguous:
        return a
    whole = cache_buffer(a, np.lib.stride_tricks.as_strided)
    return whole if whole is not None else np.ascontiguousarray(a)


@_compile(inline=True)
def _split(B, Hq, Hk, L, S, D, max_threads):
    """Threads for attention of these sizes: 1 below :data:`_PARALLEL_MIN_WORK` (a decode
    step's: :data:`_DECODE_PARALLEL_MIN_WORK`), else up to ``max_threads``, at most one per
    work item."""
    work = B * Hq * D * (L * (S - L) + L * (L + 1) // 2)
    tiles = (S + _KEY_TILE - 1) // _KEY_TILE if L == 1 else (L + _ROW_TILE - 1) // _ROW_TILE
    items = B * Hk * tiles          # a decode step's split by tiles of keys (_decode_parallel)
    least = _DECODE_PARALLEL_MIN_WORK if L == 1 else _PARALLEL_MIN_WORK
    if work < least or items < 2:
        return 1
    return min(items, max_threads)


@_compile(inline=True)
def _by_tiles_of_keys(B, Hk, L, threads):
    """Whether attention on ``threads`` threads (more than one) runs :func:`_decode_parallel`
    (a decode step with fewer (batch, key head) items than threads) rather than
    :func:`_attention_parallel`."""
    return L == 1 and B * Hk < threads


def _threads_for(B: int, Hq: int, Hk: int, L: int, S: int, D: int) -> int:
    """:func:`_split` on numba's threads."""
    return _split(B, Hq, Hk, L, S, D, numba.get_num_threads())


@_compile(inline=True)
def _paged_split(B, Hq, Hk, S, D, max_threads):
    """Threads for a paged decode step's attention (B rows, the longest of S positions): 1
    below :data:`_PAGED_PARALLEL_MIN_WORK`, else up to ``max_threads``, at most one per
    (row, key head) item."""
    if B * Hq * D * S < _PAGED_PARALLEL_MIN_WORK or B * Hk < 2:
        return 1
    return min(B * Hk, max_threads)


def attend(q, k, v, scale, n_threads: int | None = None) -> np.ndarray:
    """The kernel: attention of q (B, Hq, L, D), the last L of the S positions of k (B, Hk, S,
    D) and v (B, Hk, S, Dv), each row seeing the keys up to its own position (any layouts;
    a cache's views are read in place); (B, Hq, L, Dv) stored heads inside tokens. On
    ``n_threads`` threads (default: by the size of the work): numba's where its
    ``parallel=True`` copy is compiled already, else Python's running the serial kernel
    (:func:`~.cpu_compile.in_threads`), not to compile that copy before a first token (it
    costs seconds; the compiled decode loop has one); where the serial kernel is not
    compiled either, in float32, its NumPy twin (:mod:`.cpu_attention_numpy`).

    Example: ``out = attend(q, cache_keys[:, :, :n], cache_values[:, :, :n], 0.125)``
    """
    q, rounded_to = _queries_in_float32(q)
    B, Hq, L, D = q.shape
    Hk, S = k.shape[1], k.shape[2]
    out = np.empty((B, L, Hq, v.shape[3]), q.dtype)
    keys, values = _rows(k), _rows(v)
    args = (np.ascontiguousarray(q), as_bits(keys), as_bits(values), S, q.dtype.type(scale),
            q.dtype == np.float32, out)
    n = _threads_for(B, Hq, Hk, L, S, D) if n_threads is None else n_threads
    if n > 1 and _by_tiles_of_keys(B, Hk, L, n) and compiled_already(_decode_parallel,
                                                                      (*args, n)):
        _decode_parallel(*args, n)
    elif n > 1 and compiled_already(_attention_parallel, (*args, n)):
        _attention_parallel(*args, n)
    elif q.dtype == np.float32 and not compiled_already(_attention_items, (*args, 0, 1)):
        cpu_attention_numpy.attend(args[0], keys, values, S, args[4], out)   # the same bits
    else:
        in_threads(_attention_items, args, n, n)
    return _rounded(out, rounded_to).transpose(0, 2, 1, 3)


@_compile(inline=True)
def _attention_compiled(q, k, v, scale, max_threads):
    """:func:`attend` inside a compiled step: (B, L, Hq, Dv), C-contiguous. 16-bit queries
    (their bits) are widened and the result rounded to their type (:func:`_queries_in_float32`)."""
    B, Hq, L, D = q.shape
    Hk, S = k.shape[1], k.shape[2]
    wide = widened(np.ascontiguousarray(q))
    out = np.empty((B, L, Hq, v.shape[3]), wide.dtype)
    threads = _split(B, Hq, Hk, L, S, D, max_threads)
    args = (wide, _whole(k), _whole(v), S, scale, wide.itemsize == 4, out)
    if threads > 1 and _by_tiles_of_keys(B, Hk, L, threads):
        _decode_parallel(*args, threads)
    elif threads > 1:
        _attention_parallel(*args, threads)
    else:
        _attention_items(*args, 0, 1)
    return narrowed_like(out, q)


@_compile
def decode_attention_compiled(q, k, v, scale, max_threads):
    """:func:`decode_attention` of one query row per head (a decode step) inside a compiled
    step (see :mod:`gradient.kernels.lowering`): k and v the filled part of a cache's
    buffers; up to ``max_threads`` threads (numba's) when the call is large enough (as
    :func:`_split`). A C-contiguous (B, Hq, 1, Dv) result."""
    out = _attention_compiled(q, k, v, scale, max_threads)
    return out.reshape((q.shape[0], q.shape[1], 1, v.shape[3]))   # heads inside tokens


@_compile
def rows_attention_compiled(q, k, v, scale, max_threads):
    """:func:`decode_attention` of L > 1 query rows after a cache (a speculative check of
    drafted tokens) inside a compiled step: (B, Hq, L, Dv) stored heads inside tokens, the
    layout :func:`decode_attention` returns."""
    return _attention_compiled(q, k, v, scale, max_threads).transpose(0, 2, 1, 3)


def _takes_cache(q, k, v) -> bool:
    """q, k and v of one float dtype, or float32 queries against a float16 or bfloat16 cache
    (keys and values widened exactly as they are read), or 16-bit queries against a cache of
    their dtype (:func:`_queries_in_float32`)."""
    if isinstance(q, np.ndarray) and q.dtype in HALF_DTYPES:
        return isinstance(k, np.ndarray) and k.dtype == v.dtype == q.dtype
    return _usable(q) and holds(k, q.dtype) and holds(v, q.dtype) and k.dtype == v.dtype


def _queries_in_float32(q):
    """``(q in float32, the dtype to round the result to)``. A float16 or bfloat16 model's
    attention reads its 16-bit queries widened, computes in float32 as float32 queries
    against a 16-bit cache do, and rounds the output once (as PyTorch's fused CPU attention
    accumulates 16-bit inputs in float32): the bits of the float32 kernel on the widened
    inputs, rounded."""
    if q.dtype in HALF_DTYPES:
        return q.astype(np.float32), q.dtype
    return q, None


def _rounded(out, dtype):
    """``out`` (float32) in ``dtype`` (the same layout), or ``out`` for None."""
    return out if dtype is None else out.astype(dtype)


@register("decode_attention", "cpu", "numba", _QUERY_DTYPES)
def decode_attention(q, k, v, scale: float):
    """Inference attention of queries at the last L of S positions, each seeing the keys up to
    its own position, with grouped heads: q (B, Hq, L, D), k and v (B, Hk, S, D) (views of a
    KV cache are read in place); (B, Hq, L, D) stored heads inside tokens (see
    :func:`attention_forward`), or None if not handled. A decode step is L = 1 (every key); a
    causal prompt, L = S.

    Composed of NumPy calls, a decode step's attention is a dozen small operations per layer,
    each looping over the heads; a prompt's builds the (L, S) probabilities of every head.
    Here each key head's group of query heads reads each key and value once per tile of
    query positions, in one compiled call (see the comment above :data:`_KEY_TILE` for why
    the arithmetic per row does not depend on L).
    """
    if (not _takes_cache(q, k, v) or q.ndim != 4 or k.ndim != 4 or v.ndim != 4
            or k.shape[:3] != v.shape[:3]):
        return None
    B, Hq, L, D = q.shape
    Hk, S = k.shape[1], k.shape[2]
    if (L == 0 or S < L or k.shape[0] != B or v.shape[0] != B or k.shape[3] != D or Hk == 0
            or Hq % Hk):
        return None
    return attend(q, k, v, scale)


def ragged_attend(q, k, v, lengths, scale, n_threads: int | None = None):
    """The kernel of :func:`ragged_decode_attention` on ``n_threads`` threads (default: by the
    size of the work); None where it is not compiled yet (see
    :func:`~.cpu_compile.compiled_already`: the caller composes it meanwhile)."""
    q, rounded_to = _queries_in_float32(q)
    B, Hq, _, D = q.shape
    Hk = k.shape[1]
    out = np.empty((B, 1, Hq, v.shape[3]), q.dtype)
    args = (np.ascontiguousarray(q), as_bits(_rows(k)), as_bits(_rows(v)), lengths,
            q.dtype.type(scale), q.dtype == np.float32, out)
    if n_threads is None:
        n_threads = _threads_for(B, Hq, Hk, 1, int(lengths.max()), D)
    if not _run_by_rows(_ragged_items, _ragged_parallel, args, n_threads):
        return None
    return _rounded(out, rounded_to).transpose(0, 2, 1, 3)


def _run_by_rows(items, parallel, args, n: int) -> bool:
    """Run a kernel of (row, key head) items on ``n`` threads; False where it is not compiled
    yet."""
    if not compiled_already(items, (*args, 0, 1)):
        return False
    if n > 1 and compiled_already(parallel, (*args, n)):
        parallel(*args, n)
    else:
        in_threads(items, args, n, n)
    return True


@register("ragged_decode_attention", "cpu", "numba", _QUERY_DTYPES)
def ragged_decode_attention(q, k, v, lengths, scale: float):
    """A decode step of B sequences at different lengths (a server's batch): q (B, Hq, 1, D),
    k and v (B, Hk, S, D) (a batch cache's views, read in place), row b seeing its first
    ``lengths[b]`` keys; (B, Hq, 1, D), or None if not handled. Each row is computed as
    :func:`decode_attention` computes that sequence decoded alone (the same bits), in one
    call for the whole batch.

    Example: ``out = ragged_decode_attention(q, keys[:B, :, :S], values[:B, :, :S], lengths, s)``
    """
    if (not _takes_cache(q, k, v) or q.ndim != 4 or k.ndim != 4 or v.ndim != 4
            or k.shape[:3] != v.shape[:3]):
        return None
    B, Hq, L, D = q.shape
    Hk, S = k.shape[1], k.shape[2]
    lengths = np.asarray(lengths, np.int64)
    if (L != 1 or k.shape[0] != B or k.shape[3] != D or Hk == 0 or Hq % Hk
            or lengths.shape != (B,) or (lengths < 1).any() or (lengths > S).any()):
        return None
    return ragged_attend(q, k, v, lengths, scale)


def paged_attend(q, k, v, tables, lengths, block_size: int, scale,
                 n_threads: int | None = None):
    """The kernel of :func:`paged_decode_attention` on ``n_threads`` threads (default: by the
    size of the work); None where it is not compiled yet."""
    q, rounded_to = _queries_in_float32(q)
    B, Hq, _, D = q.shape
    Hk = k.shape[1]
    out = np.empty((B, 1, Hq, v.shape[3]), q.dtype)
    args = (np.ascontiguousarray(q), as_bits(k), as_bits(v), tables, lengths,
            np.int64(block_size), q.dtype.type(scale), q.dtype == np.float32, out)
    if n_threads is None:
        n_threads = _paged_split(B, Hq, Hk, int(lengths.max()), D, numba.get_num_threads())
    if not _run_by_rows(_paged_items, _paged_parallel, args, n_threads):
        return None
    return _rounded(out, rounded_to).transpose(0, 2, 1, 3)


@register("paged_decode_attention", "cpu", "numba", _QUERY_DTYPES)
def paged_decode_attention(q, k, v, tables, lengths, block_size: int, scale: float):
    """A decode step of B sequences whose keys and values lie in blocks of a pool (a paged KV
    cache): q (B, Hq, 1, D); the pools C-contiguous, k (n_blocks, Hk, D, block_size), each
    block's keys transposed (value d of its position j at ``k[block, h, d, j]``), v
    (n_blocks, Hk, block_size, Dv); row b's first ``lengths[b]`` positions in blocks
    ``tables[b, 0], tables[b, 1], ...``; (B, Hq, 1, Dv), or None if not handled. Each row is
    computed as :func:`decode_attention` computes that sequence decoded alone (the same
    bits). ``block_size`` is a multiple of 64.

    The keys are kept transposed so that a step scores them where they lie: in a cache's
    layout (position by position) every step transposed every tile of keys again, about a
    quarter of the kernel's time (SmolLM2, 8 rows at 100 positions). A block's positions
    past the row's length are scored too, in the lanes of its last tile, and never read.

    Example: ``out = paged_decode_attention(q, key_pool, value_pool, tables, lengths, 64, s)``
    """
    tables = np.asarray(tables, np.int64)
    lengths = np.asarray(lengths, np.int64)
    if not _paged_applies(q, k, v, tables, lengths, block_size):
        return None
    bs = v.shape[2]
    used = tables[np.arange(tables.shape[1])[None, :] * bs < lengths[:, None]]
    if used.size and (used.min() < 0 or used.max() >= k.shape[0]):
        return None
    return paged_attend(q, k, v, np.ascontiguousarray(tables), lengths, bs, scale)


def _paged_applies(q, k, v, tables, lengths, block_size: int) -> bool:
    """Whether :func:`paged_decode_attention` takes these shapes and dtypes (the block ids are
    checked apart)."""
    if not (_takes_cache(q, k, v) and q.ndim == k.ndim == v.ndim == 4 and k.flags.c_contiguous
            and v.flags.c_contiguous and k.shape[:2] == v.shape[:2]):
        return False
    B, Hq, L, D = q.shape
    Hk, bs = v.shape[1], v.shape[2]
    return not (L != 1 or bs != block_size or bs % _KEY_TILE or k.shape[2:] != (D, bs)
                or Hk == 0 or Hq % Hk or tables.ndim != 2 or tables.shape[0] != B
                or lengths.shape != (B,) or (lengths < 1).any()
                or (lengths > tables.shape[1] * bs).any())


@_compile
def paged_decode_attention_compiled(q, k, v, tables, lengths, bs, scale, max_threads):
    """:func:`paged_decode_attention` inside a compiled step (see
    :mod:`gradient.kernels.lowering`): the tables and lengths of a paged KV cache's step, on
    up to ``max_threads`` threads as :func:`paged_attend` picks them. A C-contiguous (B, Hq,
    1, Dv) result."""
    B, Hq, D = q.shape[0], q.shape[1], q.shape[3]
    wide = widened(np.ascontiguousarray(q))       # 16-bit queries: as _attention_compiled
    out = np.empty((B, 1, Hq, v.shape[3]), wide.dtype)
    threads = _paged_split(B, Hq, k.shape[1], lengths.max(), D, max_threads)
    args = (wide, k, v, tables, lengths, bs, scale, wide.itemsize == 4, out)
    if threads > 1:
        _paged_parallel(*args, threads)
    else:
        _paged_items(*args, 0, 1)
    return narrowed_like(out, q).reshape((B, Hq, 1, v.shape[3]))   # one row: heads inside tokens


def _now(value):
    """A lowering's argument as it is at capture: a Derived value read from its source."""
    return value.read(value.source) if isinstance(value, Derived) else value


@lowers("paged_decode_attention", "cpu")
def _lower_paged_decode_attention(q, k, v, tables, lengths, block_size, scale):
    """The compiled form of a paged decode step's attention; ``tables`` and ``lengths`` are
    the step's (:class:`~gradient.kernels.lowering.Derived` from its rows), read before each
    replay."""
    if not _paged_applies(q, k, v, _now(tables), _now(lengths), block_size):
        return None
    # k and v are the step's pools as the compiled write returns them (16-bit ones as
    # their bits), not constants
    return Lowered(paged_decode_attention_compiled,
                   (q, k, v, tables, lengths, np.int64(block_size), _scale_for(q, scale),
                    numba.get_num_threads()))


@prepares("decode_attention", "cpu")
def _prepare_decode_attention(q, k, v, scale: float):
    """:func:`decode_attention` for the later steps of a captured decode step: queries of q's
    shape, keys and values of any length (the kernel call without the checks)."""
    if decode_attention(q, k, v, scale) is None:
        return None
    shape, dtype, k_dtype = q.shape, q.dtype, k.dtype
    factor = _scale_for(q, scale)
    heads, key_dim, value_dim = k.shape[:2], k.shape[3], v.shape[3]   # not k: no cache kept

    def prepared(q_, k_, v_, scale_):
        if (type(q_) is not np.ndarray or q_.shape != shape or q_.dtype != dtype
                or scale_ != scale or k_.dtype != k_dtype or v_.dtype != k_dtype
                or k_.ndim != 4 or k_.shape[:3] != v_.shape[:3] or k_.shape[2] < shape[2]
                or k_.shape[:2] != heads or k_.shape[3] != key_dim
                or v_.shape[3] != value_dim):
            return None
        return attend(q_, k_, v_, factor)
    return prepared


@lowers("decode_attention", "cpu")
def _lower_decode_attention(q, k, v, scale: float):
    if q.ndim != 4 or decode_attention(q, k, v, scale) is None:
        return None
    return Lowered(decode_attention_compiled if q.shape[2] == 1 else rows_attention_compiled,
                   (q, k, v, _scale_for(q, scale), numba.get_num_threads()))


def _scale_for(q, scale):
    """The scale as the kernel multiplies with it: in q's float dtype, float32 for 16-bit q."""
    return (np.float32 if q.dtype in HALF_DTYPES else q.dtype.type)(scale)
