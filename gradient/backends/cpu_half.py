"""16-bit floats inside compiled kernels: numba has no float16 or bfloat16 type on the CPU, so
kernels read and write such arrays as their bits, float16 as uint16 and bfloat16 as int16
(:func:`as_bits`): the integer type tells a kernel, when it compiles, which conversion its
values need. Every kernel that takes 16-bit floats follows this one convention.

* float16: LLVM's own half type converts each value. ``fpext`` is exact and ``fptrunc`` rounds
  to nearest even, as NumPy's ``astype`` does: the same bits, and on x86 with F16C one
  instruction per 8 values.
* bfloat16: the top half of a float32, so widening is a 16-bit shift (exact), and narrowing
  rounds to nearest even by integer arithmetic on the float32 bits (a NaN stays a quiet NaN),
  as ``ml_dtypes`` and PyTorch round.

:func:`widen` and :func:`narrow` are generic: on float arguments they do nothing, so one
kernel body serves float32 arrays and 16-bit ones (a float16 or bfloat16 KV cache, say);
:func:`load_bits_as_f32x16` is the same for 16 values at a time.

Example::

    >>> @compile_kernel
    ... def total(bits):                 # bits: as_bits(a) of a float16 or bfloat16 array
    ...     s = np.float32(0)
    ...     for x in bits:
    ...         s += widen(x)
    ...     return s
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .cpu_compile import compile_kernel
from .cpu_simd import load_bf16_as_f32x16, load_f16_as_f32x16, load_f32x16

__all__ = ["widen", "narrow", "as_bits", "holds", "load_bits_as_f32x16", "widened",
           "widened_into", "narrowed_like", "narrowed", "FLOAT16_BITS", "BFLOAT16_BITS", "HALF_DTYPES"]

#: What a float16 array is viewed as when a compiled kernel takes it.
FLOAT16_BITS = np.uint16
#: What a bfloat16 array is viewed as when a compiled kernel takes it.
BFLOAT16_BITS = np.int16
#: The 16-bit float dtypes and the integer views kernels take them as.
HALF_DTYPES = {np.dtype(np.float16): np.dtype(FLOAT16_BITS),
               np.dtype(ml_dtypes.bfloat16): np.dtype(BFLOAT16_BITS)}


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


@intrinsic
def _bfloat_to_float(typingctx, bits):
    if bits != types.int16:
        return None

    def codegen(context, builder, signature, args):
        wide = builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16))
        return builder.bitcast(wide, ir.FloatType())
    return types.float32(types.int16), codegen


@intrinsic
def _float_to_bfloat(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.bitcast(args[0], i32)
        # round to nearest even: add 0x7fff plus the lowest kept bit, keep the top half
        odd = builder.and_(builder.lshr(bits, ir.Constant(i32, 16)), ir.Constant(i32, 1))
        rounded = builder.add(bits, builder.add(ir.Constant(i32, 0x7FFF), odd))
        top = builder.lshr(rounded, ir.Constant(i32, 16))
        # a NaN keeps its sign and becomes quiet (the rounding could carry it to infinity)
        quiet = builder.or_(builder.lshr(bits, ir.Constant(i32, 16)), ir.Constant(i32, 0x40))
        nan = builder.fcmp_unordered("uno", args[0], args[0])
        return builder.trunc(builder.select(nan, quiet, top), ir.IntType(16))
    return types.int16(types.float32), codegen


def widen(x):
    """A 16-bit float's bits as float32 (exact): float16 as uint16, bfloat16 as int16; a float
    as it is."""
    if isinstance(x, np.uint16):
        return x.view(np.float16).astype(np.float32)
    if isinstance(x, np.int16):
        return x.view(ml_dtypes.bfloat16).astype(np.float32)
    return x


def narrow(x, into):
    """``x`` as an element of the array ``into``: float16 bits where ``into`` holds uint16,
    bfloat16 bits where it holds int16 (from float32, rounded to nearest even), ``x`` itself
    where it holds floats."""
    if into.dtype == np.uint16:
        return np.float32(x).astype(np.float16).view(np.uint16)
    if into.dtype == np.int16:
        return np.float32(x).astype(ml_dtypes.bfloat16).view(np.int16)
    return x


def load_bits_as_f32x16(a, at):
    """In compiled kernels: the 16 values of ``a`` (float32, or 16-bit floats' bits) from flat
    index ``at``, as an f32x16."""
    raise NotImplementedError("load_bits_as_f32x16 runs in compiled kernels only")


@overload(widen, inline="always")
def _widen(x):
    if x == types.uint16:
        return lambda x: _half_to_float(x)
    if x == types.int16:
        return lambda x: _bfloat_to_float(x)
    if isinstance(x, types.Float):
        return lambda x: x
    return None


@overload(narrow, inline="always")
def _narrow(x, into):
    if into.dtype == types.uint16 and isinstance(x, types.Float):
        return lambda x, into: _float_to_half(np.float32(x))
    if into.dtype == types.int16 and isinstance(x, types.Float):
        return lambda x, into: _float_to_bfloat(np.float32(x))
    if isinstance(into.dtype, types.Float):
        return lambda x, into: x
    return None


@overload(load_bits_as_f32x16, inline="always")
def _load_bits(a, at):
    if a.dtype == types.float32:
        return lambda a, at: load_f32x16(a, at)
    if a.dtype == types.uint16:
        return lambda a, at: load_f16_as_f32x16(a, at)
    if a.dtype == types.int16:
        return lambda a, at: load_bf16_as_f32x16(a, at)
    return None


def widened(a):
    """In compiled kernels: ``a`` itself for a float array, a float32 copy (C-contiguous, the
    same shape) of an array of 16-bit floats' bits."""
    raise NotImplementedError("widened runs in compiled kernels only")


def widened_into(a, out):
    """In compiled kernels: ``a`` itself for a float array; for a 1-d array of 16-bit floats'
    bits, ``out`` (float32, as long) holding them widened: a scratch row a loop reuses, where
    :func:`widened` would allocate a copy each time."""
    raise NotImplementedError("widened_into runs in compiled kernels only")


def narrowed_like(x, like):
    """In compiled kernels: the float32 array ``x`` in the element type of ``like``: ``x``
    itself where ``like`` holds floats, a new array of 16-bit floats' bits (rounded to nearest
    even) where it holds them."""
    raise NotImplementedError("narrowed_like runs in compiled kernels only")


@overload(widened)
def _widened(a):
    if isinstance(a.dtype, types.Float):
        return lambda a: a
    if a.dtype in (types.uint16, types.int16):
        def copy(a):
            flat = np.ascontiguousarray(a).reshape(a.size)
            return widened_into(flat, np.empty(a.size, np.float32)).reshape(a.shape)
        return copy
    return None


@overload(widened_into, inline="always")
def _widened_into(a, out):
    if isinstance(a.dtype, types.Float):
        return lambda a, out: a
    if a.dtype in (types.uint16, types.int16):
        def fill(a, out):
            for i in range(a.size):
                out[i] = widen(a[i])
            return out
        return fill
    return None


@overload(narrowed_like)
def _narrowed_like(x, like):
    if isinstance(like.dtype, types.Float):
        return lambda x, like: x
    if like.dtype in (types.uint16, types.int16):
        bits = like.dtype

        def copy(x, like):
            flat = np.ascontiguousarray(x).reshape(x.size)
            out = np.empty(x.size, bits)
            for i in range(x.size):
                out[i] = narrow(flat[i], out)
            return out.reshape(x.shape)
        return copy
    return None


@compile_kernel
def narrowed(x, like):
    """:func:`narrowed_like` of float32 ``x`` in any layout, callable from Python as from
    compiled kernels: a new C-contiguous array of 16-bit floats' bits (rounded to nearest
    even) of x's shape where ``like`` holds them."""
    return narrowed_like(np.ascontiguousarray(x), like)


def holds(array, dtype) -> bool:
    """Whether kernels can keep values of ``dtype`` in ``array``: a NumPy array of that
    dtype, or a float16 or bfloat16 one for float32 values (read through :func:`widen`,
    written through :func:`narrow`)."""
    return isinstance(array, np.ndarray) and (
        array.dtype == dtype or (array.dtype in HALF_DTYPES and dtype == np.float32))


def as_bits(a):
    """``a`` as a compiled kernel takes it: a float16 or bfloat16 array viewed as its bits
    (uint16, int16), any other array as it is."""
    bits = HALF_DTYPES.get(a.dtype)
    return a if bits is None else a.view(bits)
