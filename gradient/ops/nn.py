"""Neural-network functions: activations, softmax, normalization, dropout, embedding.

These are exported as ``gradient.nn.functional``. Fused backend kernels are used when the
backend has them (``backend.fused("softmax")``); otherwise the composition of primitives.

Example::

    >>> import gradient.nn.functional as F
    >>> F.softmax(gradient.tensor([1.0, 2.0, 3.0]), dim=-1)
"""

from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from .elementwise import _floating, exp
from .reduce import sum as _sum
from .shape import wrap_dim

__all__ = ["softmax", "log_softmax"]
TENSOR_METHODS = ("softmax", "log_softmax")


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        b = ctx.backend
        shifted = b.binary("sub", x, b.reduce("max", x, dim, True))  # exp never overflows
        e = b.unary("exp", shifted)
        y = b.binary("div", e, b.reduce("sum", e, dim, True))
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - _sum(grad * y, ctx.dim, keepdim=True)), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        b = ctx.backend
        shifted = b.binary("sub", x, b.reduce("max", x, dim, True))
        lse = b.unary("log", b.reduce("sum", b.unary("exp", shifted), dim, True))
        y = b.binary("sub", shifted, lse)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad - exp(y) * _sum(grad, ctx.dim, keepdim=True), None


def softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``; stable for large inputs (the maximum is subtracted)."""
    x = _floating(input if dtype is None else input.to(dtype))
    if x.ndim == 0:
        return x * 0 + 1
    return Softmax.apply(x, wrap_dim(dim, x.ndim))


def log_softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably as x - max - log(sum(exp(x - max)))."""
    x = _floating(input if dtype is None else input.to(dtype))
    if x.ndim == 0:
        return x * 0
    return LogSoftmax.apply(x, wrap_dim(dim, x.ndim))
