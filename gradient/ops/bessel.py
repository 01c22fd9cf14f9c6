"""Bessel functions and Airy's Ai, as ``torch.special``'s: ``bessel_j0``/``bessel_j1`` and
``bessel_y0``/``bessel_y1`` (first and second kinds), ``modified_bessel_i0``/``i1``/``k0``/``k1``
and the exponentially scaled ``scaled_modified_bessel_k0``/``k1``, ``spherical_bessel_j0``
and ``airy_ai``. Like PyTorch's they have no derivatives: their results do not require grad.

Example::

    >>> gradient.special.bessel_j0(gradient.tensor([0.0, 2.0]))
    tensor([1.0000, 0.2239])
"""

from __future__ import annotations

from ..tensor import Tensor
from .elementwise import _floating, sin, where
from .special import i0, i1

__all__ = ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
           "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
           "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
           "airy_ai"]


def _values_of(op: str, input: Tensor) -> Tensor:
    """The backend's special function ``op`` of ``input`` (a float), with no gradient."""
    x = _floating(input)
    return Tensor._make(x._backend.unary(op, x._data), False, x._backend)


def bessel_j0(input: Tensor) -> Tensor:
    """The Bessel function of the first kind of order 0."""
    return _values_of("j0", input)


def bessel_j1(input: Tensor) -> Tensor:
    """The Bessel function of the first kind of order 1."""
    return _values_of("j1", input)


def bessel_y0(input: Tensor) -> Tensor:
    """The Bessel function of the second kind of order 0 (-inf at 0, nan below)."""
    return _values_of("y0", input)


def bessel_y1(input: Tensor) -> Tensor:
    """The Bessel function of the second kind of order 1 (-inf at 0, nan below)."""
    return _values_of("y1", input)


def modified_bessel_i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind of order 0 (:func:`i0`'s values)."""
    return i0(input).detach()


def modified_bessel_i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind of order 1 (:func:`i1`'s values)."""
    return i1(input).detach()


def modified_bessel_k0(input: Tensor) -> Tensor:
    """The modified Bessel function of the second kind of order 0 (inf at 0, nan below)."""
    return _values_of("k0", input)


def modified_bessel_k1(input: Tensor) -> Tensor:
    """The modified Bessel function of the second kind of order 1 (inf at 0, nan below)."""
    return _values_of("k1", input)


def scaled_modified_bessel_k0(input: Tensor) -> Tensor:
    """``exp(x) * modified_bessel_k0(x)``, without underflow for large x."""
    return _values_of("k0e", input)


def scaled_modified_bessel_k1(input: Tensor) -> Tensor:
    """``exp(x) * modified_bessel_k1(x)``, without underflow for large x."""
    return _values_of("k1e", input)


def spherical_bessel_j0(input: Tensor) -> Tensor:
    """The spherical Bessel function of the first kind of order 0, ``sin(x) / x`` (1 at 0)."""
    x = _floating(input).detach()
    zero = x == 0
    return where(zero, 1.0, sin(x) / where(zero, 1.0, x))


def airy_ai(input: Tensor) -> Tensor:
    """Airy's function Ai."""
    return _values_of("airy_ai", input)
