"""Recorded in-place writes into a view: the base tensor moves on to a graph of its new contents.

``y = x[0]; y.mul_(2)`` writes into ``x``'s storage. PyTorch then puts ``x`` on a node (its
``CopySlices``) whose gradient sends the written positions to the value written and the others
to ``x``'s earlier contents; so does gradient: :func:`write_through_view` makes that node (an
index-put whose positions are the view's elements in the base), without copying the base,
whose storage already holds the new values. The view itself continues from the written value.

What cannot be followed is refused with a clear error instead (:func:`positions_in_base`
says where the elements sit, or why it cannot): a view of a leaf that requires grad (its
``.grad`` would be wrong, as PyTorch says too), a view whose elements overlap (``expand``), and
a base whose storage is not laid out in row-major order.

Example::

    >>> h = conv(x)                  # a view of the convolution's product, for autograd
    >>> h.relu_()                    # h's base now on a node of its new contents
    >>> h.sum().backward()           # as PyTorch computes it
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import ArrayFunction
from ..errors import AutogradError
from ..tensor import Tensor
from .index import IndexPut

__all__ = ["positions_in_base", "write_through_view"]
TENSOR_METHODS = ()


def positions_in_base(op: str, view: Tensor, base: Tensor) -> tuple:
    """Where the elements of ``view`` (sharing ``base``'s storage) sit in ``base``: one integer
    array per dimension of base, each of the view's shape, on base's backend; an
    AutogradError naming ``op`` where the write cannot be followed."""
    if base.requires_grad and base.is_leaf:
        raise AutogradError(
            f"{op}: a view of a leaf tensor that requires grad cannot be modified in place (the "
            "leaf's .grad would be wrong); do it inside `with gradient.no_grad():`, or on a "
            "clone of the leaf")
    data = base._data
    if getattr(data, "strides", None) is None or not base.is_contiguous():
        raise AutogradError(
            f"{op}: in-place modification of a view of a tensor whose storage is not "
            "row-major is not supported while recording; write into a clone, or use the "
            "out-of-place op")
    offset = (view.data_ptr() - base.data_ptr()) // data.dtype.itemsize
    flat = np.full(tuple(view.shape), offset, np.int64)
    for d, (n, stride) in enumerate(zip(view.shape, view.stride())):
        if stride == 0 and n > 1:
            raise AutogradError(
                f"{op}: more than one element of the view refers to a single memory location "
                "(an expanded tensor); clone it before writing in place")
        along = [1] * view.ndim
        along[d] = n
        flat = flat + (np.arange(n, dtype=np.int64) * stride).reshape(along)
    if flat.size and (flat.min() < 0 or flat.max() >= data.size):
        raise AutogradError(f"{op}: the view's elements are not inside its base's storage")
    b = base._backend
    return tuple(b.from_numpy(np.ascontiguousarray(i)) for i in
                 np.unravel_index(flat, tuple(base.shape)))


class _WrittenThroughView(ArrayFunction):
    """``base`` with ``values`` at ``index``, as its storage already holds it (no copy); the
    gradient is an index-put's."""

    @staticmethod
    def forward(ctx, base, values, index):
        ctx.index = index
        return base

    backward = staticmethod(IndexPut.backward)


def write_through_view(base: Tensor, value: Tensor, positions: tuple) -> None:
    """Put ``base`` on a node of its contents after ``value`` was written at ``positions``
    (:func:`positions_in_base` of the view written into)."""
    earlier = Tensor._make(base._data, base._requires_grad, base._backend)
    earlier.grad_fn, earlier._output_nr = base.grad_fn, base._output_nr
    now = _WrittenThroughView.apply(earlier, value, positions)
    base._requires_grad = True
    base.grad_fn, base._output_nr = now.grad_fn, now._output_nr
