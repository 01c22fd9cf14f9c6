"""Inference attention (:func:`~.cpu_attention.decode_attention`'s kernel) in NumPy, with the
kernel's bits: what a first run on a machine computes while that kernel is being compiled
(see :mod:`gradient.quant.int8_numpy` for why, and :func:`~.cpu_compile.compiled_already`
for when).

The kernel's arithmetic per query row is written so that it does not depend on how many rows
there are (see the comment above :data:`.cpu_attention._KEY_TILE`); each of its steps is a
sequence of float32 operations that NumPy can repeat one rounding at a time, for many rows
and keys at once:

* the query scaled; each score ``q_0 k_0``, then ``+ q_d k_d`` for d = 1 ... in order;
* the row's maximum over its keys subtracted; exp by the kernel's Cephes polynomial, operation
  for operation;
* the row's sum in :data:`~.cpu_reduce.LANES` lanes folded pairwise, then the last keys added
  in order (:func:`~.cpu_reduce.lane_sum`); positions past a row's end add nothing (every
  exp is positive, so a skipped lane stays what the kernel's would be);
* the output ``sum_j (e_j / total) v_j`` in position order (``np.add.accumulate``: a running
  sum, one addition at a time).

float32 only: for float64 the kernel calls libm's ``exp``, which NumPy's own need not match.
``tests/backends/test_cpu_attention_numpy.py`` checks the bits against the kernel.

Example::

    >>> out = np.empty((B, L, Hq, Dv), np.float32)
    >>> attend(q, k, v, S, np.float32(0.125), out)   # as the kernel: heads inside tokens
"""

from __future__ import annotations

import numpy as np

from .cpu_reduce import LANES

__all__ = ["attend"]

#: float32 values of the running sums built at once (rows x keys x value dim): memory bound.
_BUDGET = 1 << 22

_LOG2E, _HALF, _ONE = np.float32(1.44269504088896341), np.float32(0.5), np.float32(1.0)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)
_LO, _HI = np.float32(-87.33654), np.float32(88.37626)
_POLY = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                      4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))


def attend(q, k, v, S: int, scale, out) -> None:
    """Attention of q (B, Hq, L, D) float32, the last L of S positions, over the first S
    positions of k (B, Hk, >= S, D) and v (B, Hk, >= S, Dv) (float32, or a float16 cache),
    each row seeing the keys up to its own position; into out (B, L, Hq, Dv)."""
    B, Hq, L, D = q.shape
    Hk = k.shape[1]
    group = Hq // Hk
    if k.dtype != q.dtype:     # a float16 cache: widened exactly, as the kernel reads it
        k, v = k[:, :, :S].astype(q.dtype), v[:, :, :S].astype(q.dtype)
    past = S - L
    with np.errstate(all="ignore"):           # inf and nan as the kernel makes them
        for b in range(B):
            for hk in range(Hk):
                heads = slice(hk * group, (hk + 1) * group)
                qs = (q[b, heads] * scale).reshape(group * L, D)   # row r: head r // L
                limit = past + np.tile(np.arange(L), group) + 1    # keys row r sees
                result = _rows(qs, k[b, hk, :S], v[b, hk, :S], limit)
                out[b, :, heads] = result.reshape(group, L, -1).transpose(1, 0, 2)


def _rows(qs, keys, values, limit):
    """Output rows (R, Dv) for scaled queries qs (R, D) seeing keys[:limit[r]]."""
    R, D = qs.shape
    n = int(limit.max())
    keys_t = np.ascontiguousarray(keys[:n].T)                     # (D, n)
    scores = qs[:, 0, None] * keys_t[0][None, :]
    for d in range(1, D):
        scores += qs[:, d, None] * keys_t[d][None, :]
    seen = np.arange(n)[None, :] < limit[:, None]
    top = np.where(seen, scores, -np.inf).max(axis=1)
    e = _exp(scores - top[:, None])
    total = _lane_sums(e, limit)
    p = e / total[:, None]
    out = np.empty((R, values.shape[1]), np.float32)
    rows_at_once = max(1, _BUDGET // max(1, n * values.shape[1]))
    for r0 in range(0, R, rows_at_once):
        r1 = min(R, r0 + rows_at_once)
        terms = np.zeros((r1 - r0, n + 1, values.shape[1]), np.float32)
        np.multiply(p[r0:r1, :, None], values[None, :n], out=terms[:, 1:])
        running = np.add.accumulate(terms, axis=1)      # running[:, j]: the first j terms
        out[r0:r1] = running[np.arange(r1 - r0), limit[r0:r1]]
    return out


def _exp(t):
    """The kernel's ``_exp_row`` (Cephes' ``expf``), elementwise, float32."""
    t = np.where(t < _LO, _LO, t)               # NaN passes both tests: it stays NaN
    t = np.where(t > _HI, _HI, t)
    k = np.floor(t * _LOG2E + _HALF)
    r = t - k * _LN2_HI - k * _LN2_LO
    p = np.full_like(r, _POLY[0])
    for c in _POLY[1:]:
        p = p * r + c
    x = p * r * r + r + _ONE
    powers = ((k.astype(np.int32) + np.int32(127)) << np.int32(23)).view(np.float32)
    return x * powers


def _lane_sums(e, limit):
    """:func:`~.cpu_reduce.lane_sum` of each row's first ``limit[r]`` values."""
    R = e.shape[0]
    full = limit - limit % LANES
    lanes = np.full((R, LANES), -0.0, np.float32)
    for j in range(0, int(full.max()), LANES):
        rows = full > j
        lanes[rows] += e[rows, j:j + LANES]
    half = LANES // 2
    while half:
        lanes[:, :half] += lanes[:, half:2 * half]
        half //= 2
    total = lanes[:, 0].copy()
    for t in range(LANES - 1):
        rows = np.nonzero(full + t < limit)[0]
        if rows.size == 0:
            break
        total[rows] += e[rows, full[rows] + t]
    return total
