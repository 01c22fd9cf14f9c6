"""Where gradients live in memory: laid out like the arrays they belong to, so that pieces a
model cut out of one buffer join again without a copy.

A GPT's attention splits one (B, T, 3C) projection into q, k and v and views each as heads,
(B, H, T, D). Backward, dq, dk and dv made as new arrays are not contiguous once transposed
back to (B, T, H, D), so reshaping each to (B, T, C) copies it, and Split's backward then
concatenates the three: every gradient copied twice. Instead the attention kernel writes them
into one new buffer shaped like the projection, each at the offset and with the strides of its
own input (:func:`empty_like_views`); the reshapes are views, and Split's backward finds its
pieces already side by side (:func:`joined`). PyTorch's CPU attention lays its output out the
same way round (heads inside tokens), which is what the forward here does too
(:func:`heads_inside_tokens`).

Example::

    >>> qkv = np.zeros((2, 8, 12), np.float32)
    >>> q, k, v = (qkv[..., i * 4:(i + 1) * 4] for i in range(3))
    >>> dq, dk, dv = empty_like_views(q, k, v)          # three views of one new (2, 8, 12) buffer
    >>> joined((dq, dk, dv), (2, 8, 12), 2, ((0, 4), (4, 4), (8, 4))).shape
    (2, 8, 12)
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.registry import register


def _address(a) -> int:
    return a.__array_interface__["data"][0]


def _disjoint(arrays) -> bool:
    """Whether no two of the arrays share an element (unknown counts as shared)."""
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            try:
                if np.shares_memory(a, b, max_work=1000):
                    return False
            except np.exceptions.TooHardError:
                return False
    return True


def _no_self_overlap(a) -> bool:
    """Whether every element of ``a`` has its own memory: non-negative strides, each at least
    the extent of the dimensions inside it (broadcast views with stride 0 fail)."""
    dims = sorted((s, n) for s, n in zip(a.strides, a.shape) if n > 1)
    extent = a.itemsize
    for stride, n in dims:
        if stride < extent:
            return False
        extent = stride * n
    return True


def empty_like_views(*arrays) -> tuple:
    """New writeable arrays with the shapes, dtype and strides of ``arrays``.

    When the arrays are disjoint views that together make up one C-contiguous array (its
    pieces), the new ones are views of one new buffer of that array's shape, at the same
    offsets: the gradients of pieces are then the pieces of a gradient, and every element of
    the buffer belongs to one of them. Otherwise each is ``np.empty_like`` (dimensions in the
    same memory order).
    """
    owner = arrays[0].base
    shared = (owner is not None and isinstance(owner, np.ndarray) and owner.base is None
              and owner.flags.c_contiguous and sum(a.size for a in arrays) == owner.size
              and all(a.base is owner and a.dtype == owner.dtype and _no_self_overlap(a)
                      for a in arrays)
              and _disjoint(arrays))
    if not shared:
        return tuple(np.empty_like(a) for a in arrays)
    buffer = np.empty_like(owner)
    start = _address(owner)
    return tuple(np.ndarray(a.shape, a.dtype, buffer=buffer, offset=_address(a) - start,
                            strides=a.strides) for a in arrays)


@register("joined_pieces", "cpu", "numpy")
def joined(pieces, shape, dim: int, ranges):
    """The array of ``shape`` whose slices ``[start:start + length]`` along ``dim`` are exactly
    ``pieces`` (``ranges`` tile the dimension in order), when the pieces are views of one
    contiguous buffer of that size laid out so: that buffer, reshaped, without a copy. None
    otherwise (the caller concatenates)."""
    owner = pieces[0].base
    if (owner is None or not isinstance(owner, np.ndarray) or not owner.flags.c_contiguous
            or owner.size != math.prod(shape)
            or any(p.base is not owner or p.dtype != owner.dtype for p in pieces)):
        return None
    whole = owner.reshape(shape)
    lead = (slice(None),) * dim
    for p, (start, length) in zip(pieces, ranges):
        expected = whole[lead + (slice(start, start + length),)]
        if (expected.shape != p.shape or expected.strides != p.strides
                or _address(expected) != _address(p)):
            return None
    return whole


def heads_inside_tokens(shape, dtype):
    """A new (B, H, L, E) array stored as (B, L, H, E): its ``transpose(1, 2)`` is contiguous, so
    merging the heads back into (B, L, H * E) copies nothing. Other ranks: a C-contiguous array."""
    if len(shape) != 4:
        return np.empty(shape, dtype)
    b, h, length, e = shape
    return np.empty((b, length, h, e), dtype).transpose(0, 2, 1, 3)
