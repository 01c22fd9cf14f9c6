"""Recorded in-place writes into a view: the base tensor moves on to a graph of its new contents.

``y = x[0]; y.mul_(2)`` writes into ``x``'s storage. PyTorch then puts ``x`` on a node (its
``CopySlices``) whose gradient sends the written positions to the value written and the others
to ``x``'s earlier contents; so does gradient: :func:`write_through_view` makes that node (an
index-put whose positions are the view's elements in the base), without copying the base,
whose storage already holds the new values. The view itself continues from the written value.

What cannot be followed is refused with a clear error before anything is written
(:func:`check_view_write`, from shapes and strides alone): a view of a leaf that requires grad (its
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
from .index import Index, IndexPut
from .shape import reshape

__all__ = ["check_view_write", "positions_in_base", "write_through_view"]
TENSOR_METHODS = ()


def check_view_write(op: str, view: Tensor, base: Tensor) -> None:
    """An AutogradError naming ``op`` where a recorded write into ``view`` (sharing ``base``'s
    storage) could not be followed in base's graph; from the shapes and strides alone, so
    that it can run before anything is written."""
    if base.requires_grad and base.is_leaf:
        raise AutogradError(
            f"{op}: a view of a leaf tensor that requires grad cannot be modified in place (the "
            "leaf's .grad would be wrong); do it inside `with gradient.no_grad():`, or on a "
            "clone of the leaf")
    if getattr(base._data, "strides", None) is None or not base.is_contiguous():
        raise AutogradError(
            f"{op}: in-place modification of a view of a tensor whose storage is not "
            "row-major is not supported while recording; write into a clone, or use the "
            "out-of-place op")
    if any(stride == 0 and n > 1 for n, stride in zip(view.shape, view.stride())):
        raise AutogradError(
            f"{op}: more than one element of the view refers to a single memory location "
            "(an expanded tensor); clone it before writing in place")
    first = last = _offset(view, base)
    for n, stride in zip(view.shape, view.stride()):
        reach = (n - 1) * stride
        first, last = first + min(reach, 0), last + max(reach, 0)
    if view.numel() and (first < 0 or last >= base.numel()):
        raise AutogradError(f"{op}: the view's elements are not inside its base's storage")


def _offset(view: Tensor, base: Tensor) -> int:
    return (view.data_ptr() - base.data_ptr()) // base._data.dtype.itemsize


def positions_in_base(view: Tensor, base: Tensor):
    """Where the elements of ``view`` sit in ``base`` (a write :func:`check_view_write`
    accepted): their indices into base's elements in row-major order, an int64 array of the
    view's shape on base's backend."""
    flat = np.full(tuple(view.shape), _offset(view, base), np.int64)
    for d, (n, stride) in enumerate(zip(view.shape, view.stride())):
        along = [1] * view.ndim
        along[d] = n
        flat += (np.arange(n, dtype=np.int64) * stride).reshape(along)
    return base._backend.from_numpy(flat)


class _WrittenThroughView(ArrayFunction):
    """``base`` with ``values`` at the row-major ``positions``, as its storage already holds it
    (no copy); the gradient is an index-put's, on the flattened base."""

    @staticmethod
    def forward(ctx, base, values, positions):
        ctx.positions, ctx.shape = (positions,), base.shape
        return base

    @staticmethod
    def backward(ctx, grad):
        flat = reshape(grad, (-1,))
        grad_base = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_base = reshape(IndexPut.apply(flat, flat.new_zeros(()), ctx.positions),
                                ctx.shape)
        if ctx.needs_input_grad[1]:
            grad_values = Index.apply(flat, ctx.positions)
        return grad_base, grad_values, None


def write_through_view(base: Tensor, value: Tensor, positions) -> None:
    """Put ``base`` on a node of its contents after ``value`` was written at ``positions``
    (:func:`positions_in_base` of the view written into)."""
    earlier = Tensor._make(base._data, base._requires_grad, base._backend)
    earlier.grad_fn, earlier._output_nr = base.grad_fn, base._output_nr
    now = _WrittenThroughView.apply(earlier, value, positions)
    base._requires_grad = True
    base.grad_fn, base._output_nr = now.grad_fn, now._output_nr
