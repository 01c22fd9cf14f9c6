"""Indexing: ``x[...]`` reads and writes, and the gather/scatter family.

``x[idx]`` follows NumPy/PyTorch indexing: ints, slices (with steps and negative indices),
``None``, ``...``, integer tensors or lists, and boolean masks. Basic indexing gives a view;
integer and mask indexing gives a copy. In backward, repeated indices accumulate.

Example::

    >>> x = gradient.arange(12.0).reshape(3, 4)
    >>> x[1:, ::2], x[gradient.tensor([0, 0, 2])], x[x > 5]
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .shape import _as_view, wrap_dim

TENSOR_METHODS = ("select", "index_put")


def _convert_index(index, backend):
    """A user index as a tuple NumPy-style indexing understands, and whether it is basic."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for item in index:
        if isinstance(item, Tensor):
            if item.dtype.is_floating_point:
                raise IndexError(f"tensors used as indices must be integer or bool, got {item.dtype}")
            out.append(item._data if item.ndim or item.dtype.name == "bool" else int(item.item()))
            basic = basic and not (item.ndim or item.dtype.name == "bool")
        elif isinstance(item, (list, np.ndarray)):
            arr = np.asarray(item)
            if arr.dtype.kind == "f":
                raise IndexError("float lists cannot be used as indices")
            out.append(backend.from_numpy(arr.astype(np.int64) if arr.dtype.kind != "b" else arr))
            basic = False
        elif item is None or item is Ellipsis or isinstance(item, (slice, int, np.integer)):
            out.append(item)
        elif hasattr(item, "__index__"):
            out.append(int(item))
        else:
            raise IndexError(f"unsupported index {item!r}: use ints, slices, None, ..., or integer/"
                             "bool tensors")
    return tuple(out), basic


class Index(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, grad):
        zeros = grad.new_zeros(ctx.shape)
        return IndexAccumulate.apply(zeros, grad, ctx.index), None


class IndexAccumulate(Function):
    """``base`` with ``values`` added at ``index`` (repeated indices add up); out of place."""

    @staticmethod
    def forward(ctx, base, values, index):
        ctx.index = index
        out = base.copy()
        ctx.backend.index_add(out, index, values)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad, Index.apply(grad, ctx.index), None


class IndexPut(Function):
    """``base`` with ``values`` written at ``index``; out of place."""

    @staticmethod
    def forward(ctx, base, values, index):
        ctx.index = index
        out = base.copy()
        ctx.backend.setitem(out, index, values)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_base = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_base = IndexPut.apply(grad, grad.new_zeros(()), ctx.index)
        if ctx.needs_input_grad[1]:
            grad_values = Index.apply(grad, ctx.index)
        return grad_base, grad_values, None


def _check_index_error(x: Tensor, index):
    try:
        return x._backend.getitem(x._data, index)
    except IndexError as e:
        raise IndexError(f"index {index!r} is out of range for a tensor of shape {tuple(x.shape)}: "
                         f"{e}") from None


def getitem(input: Tensor, index) -> Tensor:
    """``input[index]``; a view for basic indexing, a copy for integer-array and mask indexing."""
    idx, basic = _convert_index(index, input._backend)
    try:
        out = Index.apply(input, idx)
    except IndexError as e:
        raise IndexError(f"index out of range for a tensor of shape {tuple(input.shape)}: {e}") \
            from None
    return _as_view(out, input) if basic else out


def _values_for(input: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(input.dtype) if value.dtype is not input.dtype else value
    return Tensor._make(input._backend.full((), value, input.dtype), False, input._backend) \
        if np.isscalar(value) else Tensor(value, dtype=input.dtype, device=input.device)


def index_put(input: Tensor, index, values) -> Tensor:
    """A copy of ``input`` with ``input[index] = values``; differentiable in both."""
    idx, _ = _convert_index(index, input._backend)
    values = _values_for(input, values)
    try:
        return IndexPut.apply(input, values, idx)
    except (IndexError, ValueError) as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {index!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def setitem_(input: Tensor, index, value) -> None:
    """In place ``input[index] = value`` without autograd (used by ``Tensor.__setitem__``)."""
    idx, _ = _convert_index(index, input._backend)
    values = _values_for(input, value)
    try:
        input._backend.setitem(input._data, idx, values._data)
    except (IndexError, ValueError) as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {index!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim`` (that dimension removed); a view."""
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} is out of range for dimension {dim} of size {n}")
    return getitem(input, (slice(None),) * dim + (index,))
