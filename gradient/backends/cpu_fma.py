"""Fused multiply-add on the CPU: ``a * b + c`` rounded once, as PyTorch's CPU kernels compute
``add`` and ``sub`` with ``alpha``, ``addcmul`` and ``lerp``.

PyTorch's vectorised loops for those call ``fmadd``: ``x.add(y, alpha=3)`` is ``fma(3, y, x)``,
one rounding where NumPy's ``x + 3 * y`` makes two, and the two differ in the last bit for about
a quarter of float32 values (an SGD step, ``p.add_(g, alpha=-lr)``, left 76% of float32
parameters with torch's bits after five steps). Here each element is ``llvm.fma`` (the CPU's
``vfmadd``, or a correctly rounded library call where there is none: the same bits everywhere),
computed in float32 for float32 and the 16-bit floats (PyTorch's ``opmath`` type: a 16-bit
result is the float32 one rounded once to nearest even) and in float64 for float64.

Example::

    >>> fma(np.float32(3), y, x, np.dtype(np.float32))      # x + 3 * y, rounded once
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from ..kernels.registry import register
from .cpu_compile import compile_kernel
from .cpu_half import HALF_DTYPES, as_bits, narrow, widen
from .cpu_simd import fused_multiply_add

__all__ = ["fma", "lerp"]

_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_TAKES = frozenset((_FLOAT32, _FLOAT64, *HALF_DTYPES))    # the dtypes of a, b, c and the result


@compile_kernel
def _fma_flat(a, b, c, out, wide):
    """``out[i] = fma(a[i], b[i], c[i])`` in the float type of ``wide`` (a 0-d array), each of
    a, b and c of length ``out.size`` or 1 (one value for every element); 16-bit floats as
    their bits (.cpu_half), widened exactly and rounded once into ``out``."""
    n = out.size
    step_a, step_b, step_c = int(a.size != 1), int(b.size != 1), int(c.size != 1)
    for i in range(n):
        x = _as_type_of(widen(a[i * step_a]), wide)
        y = _as_type_of(widen(b[i * step_b]), wide)
        z = _as_type_of(widen(c[i * step_c]), wide)
        out[i] = narrow(fused_multiply_add(x, y, z), out)


def _as_type_of(x, wide):
    """In compiled kernels: the float ``x`` as the element type of the 0-d array ``wide``
    (exact: float32 widened to float64, or left as it is)."""
    raise NotImplementedError("_as_type_of runs in compiled kernels only")


@overload(_as_type_of, inline="always")
def _as_type_of_typed(x, wide):
    if wide.dtype == types.float64:
        return lambda x, wide: np.float64(x)
    return lambda x, wide: np.float32(x)


def _flat(x: np.ndarray, shape: tuple) -> np.ndarray:
    """``x`` broadcast to ``shape`` as a flat C-contiguous array of bits, or its one value."""
    if x.size == 1:
        return as_bits(np.ascontiguousarray(x).reshape(1))
    if x.shape == shape and x.flags.c_contiguous:     # (the common case, without a view)
        return as_bits(x).reshape(-1)
    return as_bits(np.ascontiguousarray(np.broadcast_to(x, shape))).reshape(-1)


@register("fma", "cpu", "numba")
def fma(a, b, c, dtype, *, out=None) -> np.ndarray | None:
    """``a * b + c`` rounded once into a new array of ``dtype`` (float16, bfloat16, float32 or
    float64), broadcasting: NumPy arrays of floats, or NumPy scalars; computed in float64 for
    float64 and in float32 otherwise, where none of a, b, c may be float64. None for anything
    else (the caller composes the product and the sum). ``out``: a C-contiguous array of
    ``dtype`` and the broadcast shape to write into instead (an in-place ``add_``: it may be
    ``c`` itself, element for element, but must not overlap ``a`` or ``b``).

    Example: ``fma(np.float32(-0.1), grad, param, param.dtype)``
    """
    dtype = np.dtype(dtype)
    arrays = [np.asarray(x) for x in (a, b, c)]
    if not all(d in _TAKES for d in (dtype, *(x.dtype for x in arrays))):
        return None
    wide = _FLOAT64 if dtype == _FLOAT64 else _FLOAT32
    if wide != _FLOAT64 and any(x.dtype == _FLOAT64 for x in arrays):
        return None
    shape = np.broadcast_shapes(*(x.shape for x in arrays))
    if out is None:
        out = np.empty(shape, dtype)
    elif not (out.dtype == dtype and out.shape == shape and out.flags.c_contiguous
              and out.flags.writeable):
        return None
    if out.size:
        _fma_flat(*(_flat(x, shape) for x in arrays), as_bits(out).reshape(-1),
                  np.zeros((), wide))
    return out


@compile_kernel
def _lerp_flat(x, end, coefficient, out, wide, from_end):
    """``out[i] = fma(coefficient, end[i] - x[i], end[i] if from_end else x[i])``: a lerp by a
    number, in the float type of ``wide`` (16-bit floats as their bits, widened exactly, the
    difference rounded in that type, the result rounded once into ``out``)."""
    w = _as_type_of(coefficient[0], wide)
    for i in range(out.size):
        start = _as_type_of(widen(x[i]), wide)
        stop = _as_type_of(widen(end[i]), wide)
        out[i] = narrow(fused_multiply_add(w, stop - start, stop if from_end else start), out)


@register("lerp", "cpu", "numba")
def lerp(x, end, weight: float, dtype, *, out=None) -> np.ndarray | None:
    """``x + weight * (end - x)`` for a number ``weight``, as PyTorch's CPU kernel computes
    it, in one pass: ``d = end - x`` and ``fma(weight, d, x)`` where ``|weight| < 0.5``, else
    ``fma(weight - 1, d, end)``, in float32 for float32 and the 16-bit floats (the weight
    first rounded to that type), float64 for float64. ``x`` and ``end`` of one shape and of
    ``dtype``; ``out`` as :func:`fma`'s (it may be ``x`` itself). None for anything else.

    Example: ``lerp(average, weights, 0.001, np.float32)``
    """
    dtype = np.dtype(dtype)
    if not (isinstance(x, np.ndarray) and isinstance(end, np.ndarray) and dtype in _TAKES
            and x.dtype == end.dtype == dtype and x.shape == end.shape):
        return None
    if out is None:
        out = np.empty(x.shape, dtype)
    elif not (out.dtype == dtype and out.shape == x.shape and out.flags.c_contiguous
              and out.flags.writeable):
        return None
    wide = _FLOAT64 if dtype == _FLOAT64 else _FLOAT32
    w = wide.type(weight)
    from_end = not abs(float(w)) < 0.5
    coefficient = np.array([w - wide.type(1) if from_end else w], wide)
    if out.size:
        _lerp_flat(_flat(x, x.shape), _flat(end, x.shape), coefficient,
                   as_bits(out).reshape(-1), np.zeros((), wide), from_end)
    return out
