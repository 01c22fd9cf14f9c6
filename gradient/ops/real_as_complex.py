"""What code written for complex tensors asks of real ones, answered as PyTorch answers it for
a real dtype (gradient's tensors are all real): ``conj``/``conj_physical``/``resolve_conj``/
``resolve_neg`` give the tensor back, ``is_conj``/``is_neg`` are False, ``real`` is the tensor
and ``imag`` an error, ``angle`` is 0 or pi by sign. Library code that converts tensors with
``t.resolve_conj().resolve_neg().numpy()``, or takes ``x.conj()`` in a formula meant for both
kinds, then runs unchanged.

Example::

    >>> x = gradient.tensor([-1.5, 2.0])
    >>> x.conj() is x, x.real is x
    (True, True)
    >>> gradient.angle(x)
    tensor([3.1416, 0.0000])
"""

from __future__ import annotations

import math

from ..autograd.function import ArrayFunction
from ..dtypes import from_numpy_dtype
from ..errors import DTypeError
from ..tensor import Tensor
from .elementwise import _floating

__all__ = ["conj", "conj_physical", "resolve_conj", "resolve_neg", "is_conj", "is_neg", "real",
           "imag", "angle"]
TENSOR_METHODS = ("conj", "conj_physical", "conj_physical_", "resolve_conj", "resolve_neg",
                  "is_conj", "is_neg", "angle")


def conj(input: Tensor) -> Tensor:
    """The complex conjugate: for a real tensor, the tensor itself (as PyTorch's)."""
    return input


def conj_physical(input: Tensor) -> Tensor:
    """The conjugate, materialized: for a real tensor, the tensor itself (as PyTorch's)."""
    return input


def conj_physical_(input: Tensor) -> Tensor:
    """In place: nothing to do for a real tensor."""
    return input


def resolve_conj(input: Tensor) -> Tensor:
    """A lazily conjugated tensor made concrete: a real tensor never is one."""
    return input


def resolve_neg(input: Tensor) -> Tensor:
    """A lazily negated tensor made concrete: a real tensor never is one."""
    return input


def is_conj(input: Tensor) -> bool:
    return False


def is_neg(input: Tensor) -> bool:
    return False


def real(input: Tensor) -> Tensor:
    """The real part: a real tensor itself (``torch.real``; ``x.real`` is the property)."""
    return input


def imag(input: Tensor) -> Tensor:
    """The imaginary part, which a real tensor does not have: an error, as in PyTorch."""
    raise DTypeError(f"imag is not implemented for tensors with non-complex dtypes (this one is "
                     f"{input.dtype}); gradient's tensors are real")


class Angle(ArrayFunction):
    """pi where the input is negative, 0 elsewhere (NaN stays NaN); its gradient is zero."""

    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        dtype = from_numpy_dtype(x.dtype)
        pi, zero = b.full((), math.pi, dtype), b.full((), 0.0, dtype)
        out = b.where(b.binary("lt", x, zero), pi, zero)
        return b.where(b.unary("isnan", x), x, out)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0.0


def angle(input: Tensor) -> Tensor:
    """The argument of each element as a complex number: for real ones, pi if negative, else 0
    (integers give the default float), as ``torch.angle``.

    Example: ``gradient.angle(gradient.tensor([-2.0, 3.0]))`` is ``tensor([3.1416, 0.0000])``.
    """
    return Angle.apply(_floating(input))
