"""Tensors described by sizes and strides: ``as_strided`` and ``empty_strided``.

gradient's tensors do not expose their storage, so ``as_strided`` reads ``input``'s elements in
row-major order (its storage when it is contiguous, as PyTorch's does) and *gathers* the strided
positions into a new tensor: a copy, not a view (writing into the result does not change
``input``). Overlapping windows are fine; the gradient adds up over them, as PyTorch's does.

Example::

    >>> x = gradient.arange(6.0)
    >>> gradient.as_strided(x, (3, 2), (2, 1))   # the rows of x.view(3, 2)
    >>> gradient.as_strided(x, (5, 2), (1, 1))   # overlapping windows of two
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_int, as_ints
from .creation import empty, from_numpy
from .index import take
from .shape import permute, reshape

__all__ = ["as_strided", "empty_strided"]
TENSOR_METHODS = ("as_strided",)


def as_strided(input: Tensor, size, stride, storage_offset: int | None = None) -> Tensor:
    """The tensor of shape ``size`` whose element ``i`` is ``input``'s element number
    ``storage_offset + sum(i[d] * stride[d])`` in row-major order. Differentiable; a copy, not a
    view (see the module docstring).

    Example: ``gradient.as_strided(gradient.arange(4.0), (2, 2), (1, 2))`` is ``[[0., 2.], [1., 3.]]``.
    """
    size = as_ints(size, "as_strided: the size")
    stride = as_ints(stride, "as_strided: the stride")
    offset = 0 if storage_offset is None else as_int(storage_offset, "as_strided: storage_offset")
    if len(size) != len(stride):
        raise ShapeError(f"mismatch in length of strides and shape: {len(size)} sizes, "
                         f"{len(stride)} strides")
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise ArgumentValueError(
            f"as_strided: negative sizes, strides or offset are not supported, got "
            f"size={size}, stride={stride}, storage_offset={offset}")
    positions = np.full(size, offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        positions = positions + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    if positions.size:
        needed = int(positions.max()) + 1
        if needed > input.numel():
            raise ShapeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                             f"offset {offset} require a storage of {needed} elements, but the "
                             f"tensor has {input.numel()}")
    index = from_numpy(positions).to(input.device)
    return take(reshape(input, (-1,)), index)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None,
                  requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of shape ``size``; its ``stride()`` is ``stride`` when that is the
    contiguous layout of some order of the dimensions (the usual case: contiguous, channels-last,
    transposed), and contiguous otherwise.

    Example: ``gradient.empty_strided((2, 3), (1, 2)).stride()`` is ``(1, 2)``.
    """
    size = as_ints(size, "empty_strided: the size")
    stride = as_ints(stride, "empty_strided: the stride")
    if len(size) != len(stride):
        raise ShapeError(f"mismatch in length of strides and shape: {len(size)} sizes, "
                         f"{len(stride)} strides")
    # lay the dimensions out from the largest stride to the smallest, then permute back
    order = sorted(range(len(size)), key=lambda d: -stride[d])
    expected, run = {}, 1
    for d in reversed(order):
        expected[d] = run
        run *= size[d]
    out = empty(*[size[d] for d in order], dtype=dtype, device=device)
    if all(expected[d] == stride[d] or size[d] <= 1 for d in range(len(size))):
        inverse = [order.index(d) for d in range(len(size))]
        out = permute(out, inverse) if len(size) else out
    else:
        out = empty(*size, dtype=dtype, device=device)
    return out.requires_grad_(requires_grad) if requires_grad else out
