"""FlashAttention on the CUDA backend: launchers of ``kernels/flash_attention.cu``.

``attention_forward`` computes ``softmax(scale * q k^T [+ causal mask]) v`` without writing the
(L, S) scores to global memory: a block per (query tile, batch-head) keeps a running maximum and
sum per row (online softmax) while it walks the key tiles, and returns, with the output, the
log-sum-exp of each row's scores. ``attention_backward`` recomputes the probabilities tile by
tile from that log-sum-exp: ``delta = rowsum(grad * out)`` first, then one kernel for dk/dv (a
block per key tile) and one for dq (a block per query tile), no atomics.

Both take the signatures of :mod:`gradient.backends.cuda.fused`'s unfused attention, with the
log-sum-exp ``lse`` (float32, ``q.shape[:-1]``) in place of the probabilities, and return None
to decline: storage other than float32/float16, head dims over 128 (the shared-memory tiles are
sized for them) or a query/key head dim of zero, no key (S == 0), leading dims that differ, or
2^31 batch-heads or more. ``causal`` is top-left aligned, as PyTorch's ``is_causal``:
query i sees keys 0..i, also when L != S.

Example (on a GPU)::

    >>> import cupy
    >>> from gradient.backends.cuda import flash
    >>> q, k, v = (cupy.random.standard_normal((2, 8, 256, 64), dtype=cupy.float32)
    ...            for _ in range(3))  # doctest: +SKIP
    >>> out, lse = flash.attention_forward(q, k, v, 0.125, True)  # doctest: +SKIP
    >>> out.shape, lse.shape  # doctest: +SKIP
    ((2, 8, 256, 64), (2, 8, 256))
    >>> dq, dk, dv = flash.attention_backward(cupy.ones_like(out), q, k, v, out, lse, 0.125,
    ...                                       True)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from .compile import get_kernel

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16"}

MAX_HEAD_DIM = 128
"""The largest head dim (E and Ev) the kernels take: their static shared tiles are sized for it."""

THREADS = 128  # the block of every tile kernel (a 16 x 8 grid of threads), fixed by the kernels

# Rows of a tile per head-dim bucket D (the smallest of 32, 64, 128 with max(E, Ev) <= D), as in
# the header of kernels/flash_attention.cu. They only size the grid: the kernels stride over
# the tiles by gridDim.y, so a grid from other numbers would still be correct, just slower.
FORWARD_QUERY_ROWS = {32: 64, 64: 64, 128: 32}
BACKWARD_KEY_ROWS = {32: 64, 64: 32, 128: 16}     # backward_dkdv: a block per key tile
BACKWARD_QUERY_ROWS = {32: 64, 64: 32, 128: 16}   # backward_dq: a block per query tile

_GRID_Y = 65535


def _cupy():
    import cupy
    return cupy


def _bucket(E: int, Ev: int) -> int:
    d = max(E, Ev)
    return 32 if d <= 32 else 64 if d <= 64 else 128


def _shapes(q, k, v):
    """``(lead, Z, L, S, E, Ev)`` of query/key/value arrays the kernels take, or None."""
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        return None
    lead = tuple(q.shape[:-2])
    if tuple(k.shape[:-2]) != lead or tuple(v.shape[:-2]) != lead:
        return None
    L, E = q.shape[-2:]
    S, Ev = v.shape[-2:]
    if k.shape[-2:] != (S, E) or S == 0 or not 1 <= E <= MAX_HEAD_DIM or Ev > MAX_HEAD_DIM:
        return None
    if S >= 2 ** 31 or L >= 2 ** 31:
        return None
    return lead, math.prod(lead), int(L), int(S), int(E), int(Ev)


def _grid(z: int, n: int, rows: int):
    """A block per (z, tile of ``rows``); past 65535 tiles the blocks loop over the rest."""
    if z >= 2 ** 31:
        return None
    return (z, max(1, min(-(-n // rows), _GRID_Y)))


def attention_forward(q, k, v, scale: float, causal: bool):
    """``(out, lse)`` of attention over the last two dims, or None to decline.

    q (..., L, E), k (..., S, E), v (..., S, Ev) CuPy arrays of one dtype (float32 or float16)
    with equal leading dims, possibly strided. out: (..., L, Ev) in q's dtype; lse: (..., L)
    float32, the natural log-sum-exp of each row's ``scale * q k^T`` (masked keys left out).
    """
    dtype = q.dtype
    sfx = _SUFFIX.get(np.dtype(dtype))
    if sfx is None or k.dtype != dtype or v.dtype != dtype:
        return None
    shapes = _shapes(q, k, v)
    if shapes is None:
        return None
    lead, Z, L, S, E, Ev = shapes
    cp = _cupy()
    out = cp.empty(lead + (L, Ev), dtype)
    lse = cp.empty(lead + (L,), cp.float32)
    if Z == 0 or L == 0:
        return out, lse
    grid = _grid(Z, L, FORWARD_QUERY_ROWS[_bucket(E, Ev)])
    if grid is None:
        return None
    q, k, v = (cp.ascontiguousarray(a) for a in (q, k, v))
    get_kernel("flash_attention", f"flash_attention_forward_{sfx}")(
        grid, (THREADS,), (q, k, v, out, lse, np.int32(L), np.int32(S), np.int32(E),
                           np.int32(Ev), np.float32(scale), np.int32(bool(causal))))
    return out, lse


def attention_backward(grad, q, k, v, out, lse, scale: float, causal: bool):
    """``(dq, dk, dv)`` of :func:`attention_forward` for the upstream gradient ``grad`` (the
    shape of ``out``), from the forward's ``out`` and ``lse``; None to decline. The gradients
    have the shapes and dtype of q, k and v."""
    dtype = q.dtype
    sfx = _SUFFIX.get(np.dtype(dtype))
    if sfx is None or any(a.dtype != dtype for a in (k, v, grad, out)):
        return None
    shapes = _shapes(q, k, v)
    if shapes is None:
        return None
    lead, Z, L, S, E, Ev = shapes
    if tuple(grad.shape) != lead + (L, Ev) or tuple(out.shape) != tuple(grad.shape) \
            or tuple(lse.shape) != lead + (L,):
        return None
    cp = _cupy()
    dq = cp.empty(lead + (L, E), dtype)
    if Z == 0 or L == 0:  # no query: nothing flows to the keys and values
        return dq, cp.zeros(lead + (S, E), dtype), cp.zeros(lead + (S, Ev), dtype)
    bucket = _bucket(E, Ev)
    grid_kv = _grid(Z, S, BACKWARD_KEY_ROWS[bucket])
    grid_q = _grid(Z, L, BACKWARD_QUERY_ROWS[bucket])
    if grid_kv is None or grid_q is None:
        return None
    q, k, v, grad, out = (cp.ascontiguousarray(a) for a in (q, k, v, grad, out))
    lse = cp.ascontiguousarray(lse, dtype=cp.float32)
    dk = cp.empty(lead + (S, E), dtype)
    dv = cp.empty(lead + (S, Ev), dtype)
    sizes = (np.int32(L), np.int32(S), np.int32(E), np.int32(Ev), np.float32(scale),
             np.int32(bool(causal)))

    # delta = rowsum(grad * out), a warp a row
    rows = Z * L
    delta = cp.empty(lead + (L,), cp.float32)
    get_kernel("flash_attention", f"flash_attention_backward_dot_{sfx}")(
        (max(1, min(-(-rows // (THREADS // 32)), 2 ** 31 - 1)),), (THREADS,),
        (grad, out, delta, np.int64(rows), np.int32(Ev)))
    get_kernel("flash_attention", f"flash_attention_backward_dkdv_{sfx}")(
        grid_kv, (THREADS,), (q, k, v, grad, lse, delta, dk, dv) + sizes)
    get_kernel("flash_attention", f"flash_attention_backward_dq_{sfx}")(
        grid_q, (THREADS,), (q, k, v, grad, lse, delta, dq) + sizes)
    return dq, dk, dv
