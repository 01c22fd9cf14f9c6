"""Sums in a fixed order that still run on SIMD registers, for the CPU kernels.

Compiled without fastmath (see :mod:`.cpu_compile`), ``s += x[j]`` is one long chain of
additions that LLVM must keep in order: one element per cycle at best. Here a row is summed in
:data:`LANES` partial sums instead, lane ``l`` taking elements ``l, l + LANES, l + 2 LANES ...``
(``acc[l] += x[j + l]``): the lanes are independent, so LLVM's loop vectoriser runs them on
SIMD registers without reordering a single addition. The lanes are then folded pairwise
(:func:`fold_lanes`) and the last ``n % LANES`` elements added in order. The order is the
source's: the same bits from every compiled copy and on every CPU. Lanes start at -0.0, the
additive identity that keeps a sum's sign of zero (a sum of -0.0 terms is -0.0, as NumPy's). Measured on a LayerNorm of
768 values per row: 1.3 times the time of the reassociated loop, a fifth of the strict one.

Kernels that sum several things in one pass over a row (a norm's backward) write the lane loop
themselves, with one ``acc`` per sum set to -0.0, and call :func:`fold_lanes` on each.

Example::

    >>> acc = np.empty(LANES, np.float64)       # the sums' precision
    >>> lane_sum(np.ones(1000, np.float32), acc)
    1000.0
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from .cpu_compile import compile_kernel
from .cpu_simd import add_f32, broadcast_f32x16, fold_halves, load_f32x16, mul_f32

#: Partial sums per row: 64 float32 values fill four 512-bit (eight 256-bit) registers. LLVM
#: vectorises a lane loop of this many iterations; one of 8, 16 or 32 it unrolls into scalar
#: code instead (numba runs no SLP vectoriser, which would pack those).
LANES = 64


@compile_kernel(inline=True)
def fold_lanes(acc):
    """The sum of the :data:`LANES` partial sums in ``acc`` (overwritten), folded pairwise:
    lane ``l`` plus lane ``l + 32``, then plus ``l + 16`` ..., an order fixed by the source."""
    half = LANES // 2
    while half:
        for lane in range(half):
            acc[lane] += acc[lane + half]
        half //= 2
    return acc[0]


@compile_kernel(inline=True)
def lane_sum(x, acc):
    """``sum(x)`` of a 1-D array in the precision of ``acc`` (a scratch array of LANES)."""
    n = x.size
    full = n - n % LANES
    acc[:] = -0.0
    for j in range(0, full, LANES):
        for lane in range(LANES):
            acc[lane] += x[j + lane]
    s = fold_lanes(acc)
    for j in range(full, n):
        s += x[j]
    return s


@compile_kernel(inline=True)
def lane_sum_squares(x, shift, acc):
    """``sum((x - shift) ** 2)`` in the precision of ``acc`` (``shift`` in that precision too:
    a variance about a mean, or 0 for a mean square)."""
    n = x.size
    full = n - n % LANES
    acc[:] = -0.0
    for j in range(0, full, LANES):
        for lane in range(LANES):
            d = x[j + lane] - shift
            acc[lane] += d * d
    s = fold_lanes(acc)
    for j in range(full, n):
        d = x[j] - shift
        s += d * d
    return s


def lane_dot(a, b, acc):
    """``sum(a * b)`` of two 1-D arrays of one length, in the precision of ``acc``. In compiled
    kernels only (:func:`_lane_dot_typed`)."""
    raise NotImplementedError("lane_dot runs in compiled kernels only")


@compile_kernel(inline=True)
def _lane_dot_loop(a, b, acc):
    n = a.size
    full = n - n % LANES
    acc[:] = -0.0
    for j in range(0, full, LANES):
        for lane in range(LANES):
            acc[lane] += a[j + lane] * b[j + lane]
    s = fold_lanes(acc)
    for j in range(full, n):
        s += a[j] * b[j]
    return s


@compile_kernel(inline=True)
def _lane_dot_registers(a, b, acc):
    # float32: the 64 lanes in four vectors that stay in registers over the whole row
    # (through ``acc`` in memory, each step loaded and stored them again), folded in
    # registers in fold_lanes' order, then the tail: the same additions, so the same bits
    n = a.size
    full = n - n % LANES
    a0 = a1 = a2 = a3 = broadcast_f32x16(np.float32(-0.0))
    for j in range(0, full, LANES):
        a0 = add_f32(a0, mul_f32(load_f32x16(a, j), load_f32x16(b, j)))
        a1 = add_f32(a1, mul_f32(load_f32x16(a, j + 16), load_f32x16(b, j + 16)))
        a2 = add_f32(a2, mul_f32(load_f32x16(a, j + 32), load_f32x16(b, j + 32)))
        a3 = add_f32(a3, mul_f32(load_f32x16(a, j + 48), load_f32x16(b, j + 48)))
    s = fold_halves(add_f32(add_f32(a0, a2), add_f32(a1, a3)))   # fold_lanes' order
    for j in range(full, n):
        s += a[j] * b[j]
    return s


@overload(lane_dot, inline="always")
def _lane_dot_typed(a, b, acc):
    if (a.dtype == b.dtype == acc.dtype == types.float32
            and a.layout == b.layout == acc.layout == "C"):
        return lambda a, b, acc: _lane_dot_registers(a, b, acc)
    return lambda a, b, acc: _lane_dot_loop(a, b, acc)
