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

Example::

    >>> from gradient.backends import cpu_attention
    >>> q = k = v = np.ones((2, 4, 8), np.float32)
    >>> out, probs = cpu_attention.attention_forward(q, k, v, 0.35, True)
"""

from __future__ import annotations

import weakref

import numba
import numpy as np

from ..kernels.lowering import Lowered
from ..kernels.registry import lowers, prepares, register
from .cpu_compile import FLOATS as _FLOATS
from .cpu_compile import compile_kernel as _compile
from .cpu_compile import usable as _usable
from .cpu_reduce import LANES, lane_sum
from .cpu_layout import empty_like_views, heads_inside_tokens
from .kv_layout import cache_buffer


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


# ---------------------------------------------------------------------- one decode step
@_compile
def _decode_scores(q, k, length, scale, scores):
    """scores[b, h, j] = q[b, h] . k[b, h // group, j] * scale minus the row's maximum, for
    the first ``length`` positions of k, a whole cache buffer (B, Hk, max_len, D). The dot
    products are one BLAS matrix-vector product per head (``np.dot`` in numba calls it): as
    fast as a vectorised loop at 64 positions and 3 times as fast at 2,048."""
    B, Hq, _, D = q.shape
    group = Hq // k.shape[1]
    qs = np.empty(D, q.dtype)
    for b in range(B):
        for h in range(Hq):
            for d in range(D):
                qs[d] = q[b, h, 0, d] * scale   # scale the query, as the composition does
            # (a view of a cache buffer is contiguous per head: BLAS reads it in place)
            row = np.dot(np.ascontiguousarray(k[b, h // group, :length]), qs)
            top = row[0]
            for j in range(1, length):
                top = max(top, row[j])
            for j in range(length):
                scores[b, h, j] = row[j] - top


@_compile
def _decode_weighted_sum(e, v, length, out):
    """out[b, h] = e[b, h] @ v[b, h // group, :length] / sum(e[b, h]): the softmax-weighted
    average of the first ``length`` positions of v, a whole cache buffer (B, Hk, max_len, D).
    The loop over head_dim vectorises as it is: each of its sums is a lane."""
    B, Hq, _, D = out.shape
    group = Hq // v.shape[1]
    acc = np.empty(D, out.dtype)
    lanes = np.empty(LANES, out.dtype)
    for b in range(B):
        for h in range(Hq):
            kh = h // group
            row = e[b, h]
            total = lane_sum(row[:length], lanes)
            for d in range(D):
                acc[d] = 0
            for j in range(length):
                p = row[j] / total
                for d in range(D):
                    acc[d] += p * v[b, kh, j, d]
            for d in range(D):
                out[b, h, 0, d] = acc[d]


def decode_cached(q, keys, values, length: int, scale, out):
    """What :func:`decode_attention` computes, into ``out`` (B, Hq, 1, D), for ``q`` (B, Hq, 1,
    D) contiguous and whole cache buffers ``keys``/``values`` (B, Hk, max_len, D) of which the
    first ``length`` positions count; ``scale`` in q's dtype. Nothing checked: for compiled
    decode steps that built these arrays themselves."""
    scores = np.empty(q.shape[:2] + (length,), q.dtype)
    _decode_scores(q, keys, length, scale, scores)
    np.exp(scores, out=scores)   # NumPy's vectorised exp (see the module docstring)
    _decode_weighted_sum(scores, values, length, out)


@_compile
def decode_attention_compiled(q, k, v, scale):
    """:func:`decode_attention` inside a compiled step (see :mod:`gradient.kernels.lowering`):
    k and v the filled part of a cache's buffers."""
    q = np.ascontiguousarray(q)
    length = k.shape[2]
    scores = np.empty((q.shape[0], q.shape[1], length), q.dtype)
    _decode_scores(q, k, length, scale, scores)
    with numba.objmode():
        np.exp(scores, out=scores)   # NumPy's, as decode_cached
    out = np.empty(q.shape, q.dtype)
    _decode_weighted_sum(scores, v, length, out)
    return out


@register("decode_attention", "cpu", "numba", _FLOATS)
def decode_attention(q, k, v, scale: float):
    """Attention of one query row per head against keys and values read in place from a KV
    cache, with grouped heads: q (B, Hq, 1, D), k and v (B, Hk, S, D) views of cache buffers
    (positions 0..S-1 of (B, Hk, max_len, D)); (B, Hq, 1, D), or None if not handled.

    Composed of NumPy calls, the same step is a dozen small operations per layer, each looping
    over the heads. Here two compiled passes, the scores and then the weighted sum of values,
    read each cached key and value once, with NumPy's vectorised exp between them.
    """
    if not _usable(q, k, v) or q.ndim != 4 or q.shape[2] != 1 or k.shape != v.shape or k.ndim != 4:
        return None
    B, Hq, _, D = q.shape
    Hk, S = k.shape[1], k.shape[2]
    if S == 0 or k.shape[0] != B or k.shape[3] != D or Hq % Hk:
        return None
    keys, values = (cache_buffer(a, np.lib.stride_tricks.as_strided) for a in (k, v))
    if keys is None or values is None:
        return None
    out = np.empty((B, Hq, 1, D), q.dtype)
    decode_cached(np.ascontiguousarray(q), keys, values, S, q.dtype.type(scale), out)
    return out


@prepares("decode_attention", "cpu")
def _prepare_decode_attention(q, k, v, scale: float):
    """:func:`decode_attention` for the later steps of a captured decode step: queries of q's
    shape, keys and values of a cache of k's and v's layout, any length. Where the views'
    owner (the cache's storage) is the one of the last call, the whole buffers are made from
    it at the offsets found then (a weak reference: a finished generation's cache is not kept
    alive)."""
    if decode_attention(q, k, v, scale) is None or not q.flags.c_contiguous:
        return None
    shape, dtype, strides = q.shape, q.dtype, (k.strides, v.strides)
    factor = dtype.type(scale)
    seen = {}   # "k"/"v" -> (weak reference to the owner, the whole buffer's shape, offset)

    def whole(a, name):
        owner, known = a.base, seen.get(name)
        if known is not None and owner is not None and known[0]() is owner:
            return np.ndarray(known[1], dtype, owner, known[2], known[3])
        buffer = cache_buffer(a, np.lib.stride_tricks.as_strided)
        if buffer is not None and isinstance(owner, np.ndarray) and owner.flags.c_contiguous:
            offset = (buffer.__array_interface__["data"][0]
                      - owner.__array_interface__["data"][0])
            seen[name] = (weakref.ref(owner), buffer.shape, offset, buffer.strides)
        return buffer

    def prepared(q_, k_, v_, scale_):
        if (q_.shape != shape or q_.dtype != dtype or not q_.flags.c_contiguous
                or (k_.strides, v_.strides) != strides or k_.shape != v_.shape
                or k_.shape[2] == 0 or scale_ != scale or k_.dtype != dtype):
            return None
        keys, values = whole(k_, "k"), whole(v_, "v")
        if keys is None or values is None:
            return None
        out = np.empty(shape, dtype)
        decode_cached(q_, keys, values, k_.shape[2], factor, out)
        return out
    return prepared



@lowers("decode_attention", "cpu")
def _lower_decode_attention(q, k, v, scale: float):
    if decode_attention(q, k, v, scale) is None:
        return None
    return Lowered(decode_attention_compiled, (q, k, v, q.dtype.type(scale)))
