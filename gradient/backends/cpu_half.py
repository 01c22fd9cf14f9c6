"""float16 inside compiled kernels: numba has no float16 type on the CPU, so kernels read and
write float16 arrays as their uint16 bits (``a.view(np.uint16)``), and convert each value
with LLVM's own half type. ``fpext`` is exact and ``fptrunc`` rounds to nearest even, as
NumPy's ``astype`` does: the same bits, and on x86 with F16C one instruction per 8 values.

:func:`widen` and :func:`narrow` are generic: on float arguments they do nothing, so one
kernel body serves float32 arrays and float16 ones (a float16 KV cache, say).

Example::

    >>> @compile_kernel
    ... def total(bits):                 # bits: a float16 array viewed as uint16
    ...     s = np.float32(0)
    ...     for x in bits:
    ...         s += widen(x)
    ...     return s
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

__all__ = ["widen", "narrow", "as_bits", "holds", "FLOAT16_BITS"]

#: What a float16 array is viewed as when a compiled kernel takes it.
FLOAT16_BITS = np.uint16


@intrinsic
def _half_to_float(typingctx, bits):
    if bits != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
    return types.float32(types.uint16), codegen


@intrinsic
def _float_to_half(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))
    return types.uint16(types.float32), codegen


def widen(x):
    """A float16 value's uint16 bits as float32 (exact); a float as it is."""
    return np.uint16(x).view(np.float16).astype(np.float32) if isinstance(x, np.uint16) else x


def narrow(x, into):
    """``x`` as an element of the array ``into``: float16 bits (from float32, rounded to
    nearest even) where ``into`` holds uint16, ``x`` itself where it holds floats."""
    if into.dtype == np.uint16:
        return np.float32(x).astype(np.float16).view(np.uint16)
    return x


@overload(widen, inline="always")
def _widen(x):
    if x == types.uint16:
        return lambda x: _half_to_float(x)
    if isinstance(x, types.Float):
        return lambda x: x
    return None


@overload(narrow, inline="always")
def _narrow(x, into):
    if into.dtype == types.uint16 and isinstance(x, types.Float):
        return lambda x, into: _float_to_half(np.float32(x))
    if isinstance(into.dtype, types.Float):
        return lambda x, into: x
    return None


def holds(array, dtype) -> bool:
    """Whether kernels can keep values of ``dtype`` in ``array``: a NumPy array of that
    dtype, or a float16 one for float32 values (read through :func:`widen`, written through
    :func:`narrow`)."""
    return isinstance(array, np.ndarray) and (
        array.dtype == dtype or (array.dtype == np.float16 and dtype == np.float32))


def as_bits(a):
    """``a`` as a compiled kernel takes it: a float16 array viewed as its uint16 bits, any
    other array as it is."""
    return a.view(FLOAT16_BITS) if a.dtype == np.float16 else a
