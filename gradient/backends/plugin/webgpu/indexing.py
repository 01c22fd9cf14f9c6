"""Indexing with integer arrays on the GPU: gathers (``x[index]`` along the first dimension,
``take_along_axis``) and writes (``index_add`` and ``setitem`` of rows, ``scatter_add`` and
``put_along_axis`` of elements).

The index arrays are small next to the data they address, and int64 (WGSL has no 64-bit
integers), so the plugin reads them on the host: it checks their range (an index out of range
goes to the host, where NumPy raises its error), makes them non-negative, and, for a write,
makes a *plan*: the targets in order, and for each target its sources in the order NumPy
applies them. The GPU then runs one invocation per target and sums its sources in that order,
so ``index_add`` gives NumPy's ``add.at`` bits (``((x + v1) + v2) ...``), with no atomics,
and ``setitem`` with repeated indices keeps the last value, as NumPy does.

Each function returns None (nothing done) for a case it does not take; the plugin then runs
the primitive on the host.

Example::

    >>> rows = gather_rows(gpu, table, np.array([[3, 1], [0, 3]]))     # table[index]
"""

from __future__ import annotations

import math

import numpy as np

from . import compute, shaders
from .memory import MAXD, WGSL, GPUArray, broadcast_strides, operands_meta, pad

__all__ = ["index_values", "array_index", "gather_rows", "take_along_axis", "write_rows",
           "write_elements"]


def index_values(index, n: int) -> np.ndarray | None:
    """A host integer index array made non-negative for a dimension of ``n``, or None where a
    value is out of ``[-n, n)`` or the array is not integers."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        return None
    if index.size and (index.min() < -n or index.max() >= n):
        return None
    return np.where(index < 0, index + n, index).astype(np.int64, copy=False)


def array_index(index: tuple, ndim: int):
    """The integer array of an index that is one array, on the first dimension, then only
    full slices or an Ellipsis (``x[ids]``, ``x[ids, :]``, ``x[ids, ...]``); else None."""
    if not index or not isinstance(index[0], np.ndarray) or index[0].dtype.kind not in "iu":
        return None
    rest = index[1:]
    ellipses = sum(r is Ellipsis for r in rest)
    if ellipses > 1 or len(rest) - ellipses > ndim - 1:
        return None
    if any(r is not Ellipsis and not (type(r) is slice and r == slice(None)) for r in rest):
        return None
    return index[0]


def gather_rows(gpu, x: GPUArray, index: np.ndarray) -> GPUArray | None:
    """``x[index]``: the rows ``index`` (any shape) of ``x``."""
    ids = index_values(index, x.shape[0]) if x.ndim else None
    shape = index.shape + x.shape[1:]
    if ids is None or len(shape) > MAXD:
        return None
    lead = (1,) * index.ndim
    source = GPUArray(x.storage, x.offset, lead + x.shape[1:], (0,) * index.ndim + x.elements[1:])
    return _gather(gpu, source, ids, shape, x.elements[0])


def take_along_axis(gpu, x: GPUArray, index: np.ndarray, axis: int) -> GPUArray | None:
    """NumPy's ``take_along_axis``: ``index`` has x's dimensions, broadcast but along ``axis``."""
    if x.ndim != index.ndim or not x.ndim or x.ndim > MAXD:
        return None
    axis %= x.ndim
    ids = index_values(index, x.shape[axis])
    if ids is None:
        return None
    one = x.shape[:axis] + (1,) + x.shape[axis + 1:]
    try:
        shape = np.broadcast_shapes(one, index.shape)
    except ValueError:
        return None
    elements = x.elements[:axis] + (0,) + x.elements[axis + 1:]
    return _gather(gpu, GPUArray(x.storage, x.offset, one, elements), ids, shape,
                   x.elements[axis])


def _gather(gpu, source: GPUArray, ids: np.ndarray, shape, step: int) -> GPUArray:
    """out[i] = the element of ``source`` at i (broadcast) plus ``ids`` at i times ``step``."""
    out = gpu.new(shape, source.dtype)
    if out.size:
        lead = len(shape) - ids.ndim
        index = gpu.upload(ids.astype(np.int32))
        index = GPUArray(index.storage, 0, ids.shape + (1,) * lead,
                         index.elements + (0,) * lead) if lead else index
        gpu.run(gpu.pipeline(("gather", source.dtype), shaders.gather(WGSL[source.dtype])),
                operands_meta(shape, (source, index)) + [step],
                [source.storage.buffer, index.storage.buffer, out.storage.buffer], out.size)
    return out


def _plan(keys: np.ndarray):
    """Targets and sources grouped: ``(targets, starts, order)``, the distinct keys in
    increasing order, where each one's sources begin in ``order``, and the sources (positions
    in ``keys``) sorted by key, in their own order within a key."""
    order = np.argsort(keys, kind="stable")
    targets, first = np.unique(keys[order], return_index=True)
    starts = np.append(first, keys.size)
    return targets, starts, order


def write_rows(gpu, step: str, x: GPUArray, index: np.ndarray, value: GPUArray) -> bool:
    """``x[index] += value`` with every repeat added (``step`` ``"add"``: index_add) or
    ``x[index] = value`` (``"put"``: setitem, the last repeat wins), rows along the first
    dimension; False where it does not apply."""
    ids = index_values(index, x.shape[0]) if x.ndim else None
    shape = index.shape + x.shape[1:]
    if (ids is None or not compute.writable(x) or value.dtype != x.dtype
            or x.ndim > MAXD or len(shape) > MAXD):
        return False
    try:
        if np.broadcast_shapes(shape, value.shape) != shape:
            return False
    except ValueError:
        return False
    if not ids.size:
        return True
    inner = math.prod(x.shape[1:])
    value = compute.copy(gpu, compute.value_apart(gpu, value, x), shape)   # (n, inner) rows
    rows, starts, order = (gpu.upload(a.astype(np.int32)) for a in _plan(ids.reshape(-1)))
    n = rows.size * inner
    if n:
        meta = ([n, x.ndim - 1] + pad(x.shape[1:], 1) + [x.offset] + pad(x.elements[1:])
                + [x.elements[0], inner])
        gpu.run(gpu.pipeline(("rows", step, x.dtype), shaders.rows(step, WGSL[x.dtype])), meta,
                [value.storage.buffer, rows.storage.buffer, starts.storage.buffer,
                 order.storage.buffer, x.storage.buffer], n)
    return True


def write_elements(gpu, step: str, x: GPUArray, index: np.ndarray, src: GPUArray,
                   axis: int) -> bool:
    """``scatter_add`` (``step`` ``"add"``) or ``put_along_axis`` (``"put"``): element ``p``
    of ``src`` goes to x at p with its ``axis`` coordinate replaced by ``index[p]``; ``src``
    broadcasts to ``index``'s shape, which fits in x's but along ``axis``. False where it does
    not apply."""
    if x.ndim != index.ndim or not x.ndim or not compute.writable(x) or src.dtype != x.dtype:
        return False
    axis %= x.ndim
    ids = index_values(index, x.shape[axis])
    if ids is None or any(k > n for d, (k, n) in enumerate(zip(index.shape, x.shape))
                          if d != axis):
        return False
    try:
        if np.broadcast_shapes(index.shape, src.shape) != index.shape:
            return False
    except ValueError:
        return False
    if not ids.size:
        return True
    coordinates = list(np.indices(index.shape, sparse=True))
    coordinates[axis] = ids
    targets = x.offset + sum(c * s for c, s in zip(coordinates, x.elements))
    src = compute.value_apart(gpu, src, x)
    sources = src.offset + sum(c * s for c, s in zip(
        np.indices(index.shape, sparse=True), broadcast_strides(src, index.shape)))
    targets = np.broadcast_to(targets, index.shape).reshape(-1)
    sources = np.broadcast_to(sources, index.shape).reshape(-1)
    keys, starts, order = _plan(targets)
    buffers = [gpu.upload(a.astype(np.int32)) for a in (keys, starts, sources[order])]
    gpu.run(gpu.pipeline(("elements", step, x.dtype), shaders.elements(step, WGSL[x.dtype])),
            [keys.size], [src.storage.buffer] + [b.storage.buffer for b in buffers]
            + [x.storage.buffer], keys.size)
    return True

