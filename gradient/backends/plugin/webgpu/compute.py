"""The WebGPU plugin's operations on GPU arrays: each function checks what its shader needs,
writes the shader's metadata and dispatches it. Operands are :class:`~.memory.GPUArray` views
of any strides; results are new C-contiguous arrays (except :func:`write_into`, which writes
into a view).

Example::

    >>> gpu = GPU()
    >>> a = gpu.upload(np.ones((2, 3), np.float32))
    >>> gpu.download(elementwise(gpu, BINARY["add"], a, a))        # 2.0 everywhere
"""

from __future__ import annotations

import math

import numpy as np

from . import shaders
from .memory import MAXD, WGSL, GPUArray, broadcast_strides, operands_meta, pad, view_of
from ....errors import ArgumentValueError

__all__ = ["elementwise", "copy", "contiguous", "where", "cast", "full", "write_into",
           "value_apart", "writable", "concatenate", "pad_constant", "reduce", "matmul",
           "softmax", "norm"]


def elementwise(gpu, expression: str, a: GPUArray, b: GPUArray, dtype=None) -> GPUArray:
    """``expression`` of x (from a) and y (from b), broadcast; the result has ``dtype``
    (default: a's)."""
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if len(shape) > MAXD:
        raise ArgumentValueError(f"a shader takes at most {MAXD} dimensions, not {len(shape)}")
    out = gpu.new(shape, dtype)
    if out.size:
        source = shaders.elementwise(expression, WGSL[a.dtype], WGSL[b.dtype], WGSL[dtype])
        gpu.run(gpu.pipeline(("elementwise", expression, a.dtype, b.dtype, dtype), source),
                operands_meta(shape, (a, b)), [a.storage.buffer, b.storage.buffer,
                                               out.storage.buffer], out.size)
    return out


def copy(gpu, x: GPUArray, shape=None) -> GPUArray:
    """A new C-contiguous copy of ``x`` (broadcast to ``shape``)."""
    if shape is not None and tuple(shape) != x.shape:
        x = GPUArray(x.storage, x.offset, shape, broadcast_strides(x, shape))
    return elementwise(gpu, "x", x, x)


def contiguous(gpu, x: GPUArray) -> GPUArray:
    """``x`` itself where it is C-contiguous, else a copy."""
    return x if x.is_contiguous() else copy(gpu, x)


def where(gpu, cond: GPUArray, a: GPUArray, b: GPUArray) -> GPUArray:
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    out = gpu.new(shape, a.dtype)
    if out.size:
        gpu.run(gpu.pipeline(("where", a.dtype), shaders.where(WGSL[a.dtype])),
                operands_meta(shape, (cond, a, b)),
                [cond.storage.buffer, a.storage.buffer, b.storage.buffer, out.storage.buffer],
                out.size)
    return out


def cast(gpu, x: GPUArray, dtype) -> GPUArray:
    return elementwise(gpu, shaders.cast(WGSL[x.dtype], WGSL[np.dtype(dtype)]), x, x, dtype)


def full(gpu, shape, value, dtype) -> GPUArray:
    out = gpu.new(shape, dtype)      # zeros
    if value != 0 and out.size:
        out.storage.write(gpu, np.full(out.size, value, dtype))
    return out


def write_into(gpu, view: GPUArray, value: GPUArray, expression: str = "y") -> None:
    """``view = expression`` of x (the view's element) and y (``value``'s, broadcast), in the
    view's storage: ``"y"`` is an assignment, ``BINARY[op]`` an in-place op. The value must
    not be read from the same storage (see :func:`value_apart`)."""
    if view.size:
        source = shaders.into(expression, WGSL[value.dtype], WGSL[view.dtype])
        gpu.run(gpu.pipeline(("into", expression, value.dtype, view.dtype), source),
                operands_meta(view.shape, (view, value)),
                [value.storage.buffer, view.storage.buffer], view.size)


def value_apart(gpu, value: GPUArray, target: GPUArray) -> GPUArray:
    """``value``, or a copy where it is read from ``target``'s storage: WebGPU does not bind
    one buffer as both read and read_write, and NumPy reads the whole value before writing."""
    return copy(gpu, value) if value.storage is target.storage else value


def writable(view: GPUArray) -> bool:
    """Whether each element of ``view`` is its own memory (no broadcast dimension)."""
    return view.ndim <= MAXD and not any(s == 0 and n > 1
                                         for s, n in zip(view.elements, view.shape))


def concatenate(gpu, xs: list, axis: int) -> GPUArray:
    """The arrays (one dtype, shapes equal but along ``axis``) one after another."""
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = gpu.new(shape, xs[0].dtype)
    at = 0
    for x in xs:
        index = (slice(None),) * axis + (slice(at, at + x.shape[axis]),)
        write_into(gpu, view_of(out, out.shadow()[index]), x)
        at += x.shape[axis]
    return out


def pad_constant(gpu, x: GPUArray, widths, value) -> GPUArray:
    """``x`` with ``widths`` (before, after) elements of ``value`` around each dimension."""
    shape = [n + before + after for n, (before, after) in zip(x.shape, widths)]
    out = full(gpu, shape, value, x.dtype)
    interior = tuple(slice(before, before + n) for n, (before, _) in zip(x.shape, widths))
    write_into(gpu, view_of(out, out.shadow()[interior]), x)
    return out


def reduce(gpu, name: str, x: GPUArray, axis, keepdims: bool) -> GPUArray:
    """sum (compensated, in float32), max or min of float ``x`` over ``axis`` (an int, a
    tuple, None)."""
    ndim = x.ndim
    axes = set(range(ndim)) if axis is None else {
        a % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    kept = [d for d in range(ndim) if d not in axes]
    reduced = [d for d in range(ndim) if d in axes]
    kept_shape = [x.shape[d] for d in kept]
    shape = tuple(1 if d in axes else x.shape[d] for d in range(ndim)) if keepdims else \
        tuple(kept_shape)
    n = math.prod(kept_shape)
    out = gpu.new(shape, x.dtype)
    if n:
        count = math.prod(x.shape[d] for d in reduced)
        meta = ([n, len(kept)] + pad(kept_shape, 1) + pad([x.elements[d] for d in kept])
                + [x.offset, count, len(reduced)] + pad([x.shape[d] for d in reduced], 1)
                + pad([x.elements[d] for d in reduced]))
        gpu.run(gpu.pipeline(("reduce", name, x.dtype), shaders.reduce(name, WGSL[x.dtype])), meta,
                [x.storage.buffer, out.storage.buffer], n)
    return out


def matmul(gpu, a: GPUArray, b: GPUArray) -> GPUArray:
    """NumPy's matmul of two float32 or two float16 arrays (accumulated in float32): batched,
    broadcast, 1-d operands as a row or column."""
    block = shaders.MATMUL_BLOCK
    a_shape, a_str = ((1,) + a.shape, (0,) + a.elements) if a.ndim == 1 else (a.shape, a.elements)
    b_shape, b_str = (b.shape + (1,), b.elements + (0,)) if b.ndim == 1 else (b.shape, b.elements)
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    if b_shape[-2] != k:
        raise ArgumentValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    out = gpu.new(shape, a.dtype)
    if out.size and k:
        a_batch = broadcast_strides(GPUArray(a.storage, 0, a_shape[:-2], a_str[:-2]), batch)
        b_batch = broadcast_strides(GPUArray(b.storage, 0, b_shape[:-2], b_str[:-2]), batch)
        blocks = math.prod(batch) * -(-m // block) * -(-n // block)
        meta = ([blocks, m, n, k, len(batch)] + pad(batch, 1) + pad(a_batch) + pad(b_batch)
                + [a.offset, a_str[-2], a_str[-1], b.offset, b_str[-2], b_str[-1]])
        gpu.run(gpu.pipeline(("matmul", a.dtype), shaders.matmul(WGSL[a.dtype])), meta,
                [a.storage.buffer, b.storage.buffer, out.storage.buffer], blocks)
    return out                       # (k == 0: zeros)


def softmax(gpu, name: str, x: GPUArray) -> GPUArray:
    """softmax or log_softmax over the last dimension."""
    x = contiguous(gpu, x)
    out = gpu.new(x.shape)
    rows = x.size // x.shape[-1]
    gpu.run(gpu.pipeline(("row", name), shaders.softmax(name)),
            [rows, x.shape[-1], x.offset], [x.storage.buffer, out.storage.buffer], rows)
    return out


def norm(gpu, name: str, x: GPUArray, weight, bias, eps: float) -> tuple:
    """rms_norm (``bias`` None) or layer_norm over the rows of x: ``(out, mean, rstd)``."""
    x = contiguous(gpu, x)
    weight, bias = (None if p is None else contiguous(gpu, p) for p in (weight, bias))
    rows = x.size // x.shape[-1]
    out, mean, rstd = gpu.new(x.shape), gpu.new(x.shape[:-1]), gpu.new(x.shape[:-1])
    eps_bits = int(np.float32(eps).view(np.int32))
    meta = [rows, x.shape[-1], x.offset, -1 if weight is None else weight.offset,
            -1 if bias is None else bias.offset, eps_bits]
    absent = x.storage.buffer       # bound where a parameter is None, never read
    buffers = [x.storage.buffer, absent if weight is None else weight.storage.buffer,
               absent if bias is None else bias.storage.buffer, out.storage.buffer,
               mean.storage.buffer, rstd.storage.buffer]
    gpu.run(gpu.pipeline(("norm", name), shaders.norm(name)), meta, buffers, rows)
    return out, mean, rstd

