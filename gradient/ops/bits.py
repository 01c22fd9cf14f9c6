"""Integer and floating-point number helpers: gcd, lcm, ldexp, frexp, nextafter, and the
predicates isposinf, isneginf, isreal, is_nonzero, is_same_size, is_signed.

The backend has no bit-level primitives (and needs none): ``gcd`` runs Euclid's algorithm on
whole tensors (one ``remainder`` per step, at most ~90 steps for 64-bit integers), and
``frexp``/``nextafter`` find exponents and spacings with ``log2`` and powers of two, which are
exact in floating point.

Example::

    >>> gradient.gcd(gradient.tensor([12, -18]), gradient.tensor([8, 12]))   # tensor([4, 6])
    >>> gradient.frexp(gradient.tensor([8.0])).exponent                       # tensor([4], dtype=int32)
"""

from __future__ import annotations

from collections import namedtuple as _namedtuple

import ml_dtypes as _ml_dtypes

from ..autograd.grad_mode import no_grad as _no_grad
from ..dtypes import bool_, float64, int32, int64, result_type
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .elementwise import (_as_tensor, _floating, abs as _abs, cast, eq, floor, floor_divide, isfinite,
                          isinf, isnan, log2, logical_and, logical_not, lt, mul, ne, pow as _pow,
                          remainder, sign, where)
from .creation import full_like
from .shape import broadcast_tensors

__all__ = ["gcd", "lcm", "ldexp", "frexp", "nextafter", "isposinf", "isneginf", "isreal",
           "is_nonzero", "is_same_size", "is_signed"]
TENSOR_METHODS = ("gcd", "lcm", "ldexp", "frexp", "nextafter", "isposinf", "isneginf", "isreal",
                  "is_nonzero", "is_same_size", "is_signed")

_frexp_result = _namedtuple("frexp", ("mantissa", "exponent"))


def _integers(name: str, input, other) -> tuple[Tensor, Tensor]:
    dtype = result_type(input, other)
    if dtype.is_floating_point or dtype is bool_:
        raise DTypeError(f"{name}: expected integer tensors, got {dtype}")
    return cast(_as_tensor(input), dtype), cast(_as_tensor(other), dtype)


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise greatest common divisor of integer tensors (non-negative; gcd(0, 0) = 0).

    Example: ``gradient.gcd(gradient.tensor([4, 9]), gradient.tensor([6, 6]))`` is ``[2, 3]``.
    """
    a, b = _integers("gcd", input, other)
    with _no_grad():
        a, b = _abs(a), _abs(b)
        a, b = broadcast_tensors(a, b)
        while bool(ne(b, 0).any()):                # Euclid: (a, b) -> (b, a mod b) until b is 0
            nonzero = ne(b, 0)
            a, b = where(nonzero, b, a), where(nonzero, remainder(a, where(nonzero, b, 1)), 0)
    return a


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise least common multiple of integer tensors (non-negative; 0 if either is 0).

    Example: ``gradient.lcm(gradient.tensor([4, 9]), gradient.tensor([6, 6]))`` is ``[12, 18]``.
    """
    a, b = _integers("lcm", input, other)
    g = gcd(a, b)
    with _no_grad():
        return where(eq(g, 0), 0, _abs(floor_divide(a, where(eq(g, 0), 1, g)) * b))


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """``input * 2 ** other``; a floating result, differentiable in ``input``.

    Example: ``gradient.ldexp(gradient.tensor([1.0]), gradient.tensor([3]))`` is ``tensor([8.])``.
    """
    x = _floating(_as_tensor(input))
    return mul(x, _pow(2.0, cast(_as_tensor(other), x.dtype) if isinstance(other, Tensor) else other))


def _exponent(x: Tensor) -> Tensor:
    """For finite nonzero ``x`` (float64): the e with ``|x| = m * 2**e``, 0.5 <= m < 1."""
    e = floor(log2(_abs(x))) + 1
    m = _scale(_abs(x), -e)
    # log2 may round across a power of two: fix the exponent so m lands in [0.5, 1)
    return e + where(m >= 1, 1, 0) - where(m < 0.5, 1, 0)


def _scale(x: Tensor, e: Tensor) -> Tensor:
    """``x * 2**e`` in two halves, so that neither power of two overflows or underflows."""
    half = floor(e / 2)
    return x * _pow(2.0, half) * _pow(2.0, e - half)


def frexp(input: Tensor):
    """``(mantissa, exponent)`` with ``input = mantissa * 2**exponent``, 0.5 <= |mantissa| < 1
    (mantissa 0 for 0; inf and NaN keep their value with exponent 0); exponent is int32.
    Not differentiable (nor is PyTorch's).

    Example: ``gradient.frexp(gradient.tensor([8.0, 0.75]))`` gives mantissas ``[0.5, 0.75]``,
    exponents ``[4, 0]``.
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"torch.frexp() only supports floating-point dtypes, got {input.dtype}")
    with _no_grad():
        x = cast(input.detach(), float64)
        regular = logical_and(isfinite(x), ne(x, 0))
        safe = where(regular, x, 1.0)
        e = where(regular, _exponent(safe), 0)
        mantissa = where(regular, _scale(safe, -e), x)
        return _frexp_result(cast(mantissa, input.dtype), cast(e, int32))


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next floating-point value after ``input`` towards ``other`` (``other`` where they are
    equal; NaN if either is). Not differentiable.

    Example: ``gradient.nextafter(gradient.tensor([1.0]), gradient.tensor([2.0])) - 1`` is
    ``tensor([1.1921e-07])`` (float32's machine epsilon).
    """
    dtype = result_type(input, other)
    if not dtype.is_floating_point:
        raise DTypeError(f"nextafter: expected floating tensors, got {dtype}")
    info = _ml_dtypes.finfo(dtype.numpy)
    digits = int(info.nmant) + 1                        # significand bits, the implicit one included
    tiny = float(info.smallest_subnormal)
    with _no_grad():
        x, y = broadcast_tensors(cast(_as_tensor(input), dtype).detach(),
                                 cast(_as_tensor(other), dtype).detach())
        direction = sign(y - x)                         # +1 up, -1 down
        regular = logical_and(isfinite(x), ne(x, 0))
        x64 = cast(where(regular, x, 1.0), float64)
        e = _exponent(x64)
        # the gap to the neighbour: 2**(e - digits), but half that going towards zero from a
        # power of two (the binade below is twice as dense), and never below the subnormal step
        away = eq(sign(x64), cast(direction, float64))
        power_of_two = eq(_abs(x64), _scale(x64 * 0 + 0.5, e))
        gap = _scale(x64 * 0 + 1, e - digits - where(logical_and(power_of_two, logical_not(away)), 1, 0))
        gap = where(gap < tiny, tiny, gap)
        step = cast(direction, float64) * gap
        out = cast(x64 + step, dtype)
        out = where(regular, out, where(eq(x, 0), cast(direction, dtype) * tiny, x))
        # from an infinity towards a finite value: the largest finite value of that sign
        out = where(logical_and(isinf(x), ne(direction, 0)), sign(x) * float(info.max), out)
        out = where(eq(x, y), y, out)
        return where(logical_and(logical_not(isnan(x)), logical_not(isnan(y))), out, x + y)


def isposinf(input: Tensor) -> Tensor:
    """Where ``input`` is +inf (a bool tensor): ``gradient.isposinf(x)``."""
    return logical_and(isinf(input), input > 0)


def isneginf(input: Tensor) -> Tensor:
    """Where ``input`` is -inf (a bool tensor): ``gradient.isneginf(x)``."""
    return logical_and(isinf(input), lt(input, 0))


def isreal(input: Tensor) -> Tensor:
    """Where ``input`` has no imaginary part: all True, since gradient has no complex dtypes."""
    return full_like(input, True, dtype=bool_)


def is_nonzero(input: Tensor) -> bool:
    """Whether the one element of ``input`` is nonzero; RuntimeError for other sizes.

    Example: ``gradient.is_nonzero(gradient.tensor([0.5]))`` is True.
    """
    n = input.numel()
    if n == 0:
        raise ShapeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise ShapeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.item() != 0)


def is_same_size(input: Tensor, other: Tensor) -> bool:
    """Whether both tensors have the same shape: ``gradient.is_same_size(x, y)``."""
    return tuple(input.shape) == tuple(other.shape)


def is_signed(input: Tensor) -> bool:
    """Whether ``input``'s dtype holds negative values (floats and signed integers).

    Example: ``gradient.tensor([1], dtype=gradient.uint8).is_signed()`` is False.
    """
    return input.dtype.is_floating_point or bool(getattr(input.dtype, "is_signed", False))


# ---------------------------------------------------------------------- bit shifts
# Shifts are multiplications and floor divisions by powers of two, which the backend has: an
# integer product wraps around exactly as a left shift drops its high bits, and floor division is
# the arithmetic (sign-keeping) right shift. Shifting by a negative amount or by the whole width
# or more gives 0 to the left, and the sign (0 or -1) to the right, as PyTorch.

def _powers_of_two(dtype, amount: Tensor) -> tuple[Tensor, int]:
    """``2 ** amount`` in ``dtype``, wrapped as the dtype wraps (2 ** 7 is -128 in int8), with
    out-of-range amounts clamped; and the dtype's width in bits."""
    import numpy as np
    from .creation import tensor
    from .elementwise import clamp
    width = dtype.itemsize * 8
    table = np.array([1 << i for i in range(width)], dtype=np.uint64).astype(dtype.numpy)
    powers = tensor(table, device=amount.device)
    return powers[cast(clamp(amount, 0, width - 1), int64)], width


def bitwise_left_shift(input, other) -> Tensor:
    """``input << other`` for integer tensors (or a number and a tensor): bits shifted left,
    the high ones dropped; 0 where ``other`` is negative or at least the width.

    Example: ``gradient.bitwise_left_shift(gradient.tensor([1, 3]), 2)`` is ``tensor([4, 12])``.
    """
    a, k = _integers("bitwise_left_shift", input, other)
    with _no_grad():
        p, width = _powers_of_two(a.dtype, k)
        valid = logical_and(k >= 0, lt(k, width))
        return where(valid, mul(a, p), 0).to(a.dtype)


def bitwise_right_shift(input, other) -> Tensor:
    """``input >> other`` for integer tensors (or a number and a tensor): the arithmetic shift
    (rounds toward -inf, keeps the sign); the sign (0 or -1) where ``other`` is negative or at
    least the width.

    Example: ``gradient.bitwise_right_shift(gradient.tensor([16, -16]), 2)`` is ``tensor([4, -4])``.
    """
    a, k = _integers("bitwise_right_shift", input, other)
    with _no_grad():
        p, width = _powers_of_two(a.dtype, k)
        limit = width - 1 if a.dtype.is_signed else width   # 2 ** (width - 1) is negative if signed
        valid = logical_and(k >= 0, lt(k, limit))
        sign = where(lt(a, 0), -1, 0).to(a.dtype)
        return where(valid, floor_divide(a, where(valid, p, 1).to(a.dtype)), sign).to(a.dtype)


__all__ += ["bitwise_left_shift", "bitwise_right_shift"]
TENSOR_METHODS += ("bitwise_left_shift", "bitwise_right_shift")
