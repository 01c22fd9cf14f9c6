"""Reductions: sum, mean, max ... over ``dim`` (an int, a tuple, or None for all), with ``keepdim``.

Example::

    >>> x = gradient.tensor([[1.0, 5.0], [3.0, 2.0]])
    >>> x.sum(dim=0), x.max(dim=1).values
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import bool_, int64
from ..errors import ShapeError
from ..tensor import Tensor
from .shape import expand, reshape, wrap_dims

TENSOR_METHODS = ("sum", "mean", "sum_to_size")


def _keepdim_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return ctx.backend.reduce("sum", x, axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = reshape(grad, _keepdim_shape(ctx.shape, ctx.axes))
        return expand(grad, ctx.shape), None, None


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (all dimensions when None). Integer and bool inputs sum to int64."""
    if dtype is not None:
        input = input.to(dtype)
    axes = wrap_dims(dim, input.ndim)
    return Sum.apply(input, axes, keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over ``dim``; expects a floating input (or ``dtype=``), like PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise TypeError(f"mean: expected a floating tensor, got {input.dtype}; pass dtype= or "
                        "convert with .float()")
    axes = wrap_dims(dim, input.ndim)
    count = 1
    for a in axes:
        count *= input.shape[a]
    return Sum.apply(input, axes, keepdim) / count if count else Sum.apply(input, axes, keepdim) \
        * float("nan")


def sum_to_shape(x: Tensor, shape) -> Tensor:
    """Sum the broadcast dimensions of ``x`` away so it has ``shape`` (undoes broadcasting)."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ShapeError(f"sum_to_shape: {tuple(x.shape)} has fewer dimensions than {shape}")
    axes = tuple(range(lead))
    for i, n in enumerate(shape):
        if n == 1 and x.shape[lead + i] != 1:
            axes += (lead + i,)
        elif n != x.shape[lead + i]:
            raise ShapeError(f"sum_to_shape: {tuple(x.shape)} does not broadcast from {shape}")
    out = Sum.apply(x, axes, True) if axes else x
    return reshape(out, shape) if tuple(out.shape) != shape else out


def sum_to_size(input: Tensor, *size) -> Tensor:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return sum_to_shape(input, size)
