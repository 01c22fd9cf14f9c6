"""The classical orthogonal polynomials of ``torch.special``: Chebyshev (``T``, ``U``, ``V``,
``W`` and their shifted forms on [0, 1]), Hermite (physicists' ``H``, probabilists' ``He``),
Laguerre ``L`` and Legendre ``P``, each ``f(x, n)`` of degree ``n`` (a number or a tensor,
broadcast with ``x``; read as an integer, a negative one giving 0).

They are computed by their three-term recurrences, up to the largest degree asked for. PyTorch
switches to ``cos(n acos x)``-type closed forms for the Chebyshev families at high degree; the
two agree to rounding (1e-14 of the value at degree 40). Like PyTorch's they have no
derivatives.

Example::

    >>> gradient.special.chebyshev_polynomial_t(gradient.tensor([0.5]), 3)   # 4x^3 - 3x
    tensor([-1.])
    >>> gradient.special.hermite_polynomial_h(gradient.tensor([1.0]), 2)     # 4x^2 - 2
    tensor([2.])
"""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..dtypes import get_default_dtype, result_type
from ..tensor import Tensor
from .creation import ones_like, tensor as _tensor
from .elementwise import where
from .reduce import amax
from .shape import broadcast_tensors

__all__ = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
           "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
           "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p"]


def _operands(x, n):
    """``x`` as a float tensor and ``n`` as integer-valued floats of its dtype, broadcast."""
    like = x if isinstance(x, Tensor) else n
    dtype = result_type(x, n)
    if not dtype.is_floating_point:
        dtype = get_default_dtype()
    x = x.detach().to(dtype) if isinstance(x, Tensor) else _tensor(x, dtype=dtype,
                                                                     device=like.device)
    n = n.detach().to(dtype) if isinstance(n, Tensor) else _tensor(float(n), dtype=dtype,
                                                                     device=x.device)
    x, n = broadcast_tensors(x, n)
    return x, n.trunc()


def _by_recurrence(x, n, first, step):
    """``P_n(x)`` per element from ``P_0 = 1``, ``P_1 = first`` and ``P_k = step(k, P_(k-1),
    P_(k-2))``, up to the largest degree asked for."""
    prev, cur = ones_like(x), first
    out = where(n == 0, prev, cur)
    top = int(amax(n).item()) if n.numel() else 0
    for k in range(2, top + 1):
        prev, cur = cur, step(k, cur, prev)
        out = where(n == k, cur, out)
    return out


def _chebyshev(x, n, kind: str):
    """T, U, V or W of ``x`` (already on [-1, 1]'s scale): they share the recurrence
    ``P_k = 2x P_(k-1) - P_(k-2)`` and differ in ``P_1`` (x, 2x, 2x - 1, 2x + 1)."""
    first = {"t": x, "u": 2 * x, "v": 2 * x - 1, "w": 2 * x + 1}[kind]
    out = _by_recurrence(x, n, first, lambda k, p1, p2: 2 * x * p1 - p2)
    return where(n < 0, 0.0, out)


def _chebyshev_function(kind: str, shifted: bool):
    def fn(input, n) -> Tensor:
        with no_grad():
            x, degree = _operands(input, n)
            return _chebyshev(2 * x - 1 if shifted else x, degree, kind)
    name = f"{'shifted_' if shifted else ''}chebyshev_polynomial_{kind}"
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"The {'shifted (on [0, 1]) ' if shifted else ''}Chebyshev polynomial of the "
                  f"{dict(t='first', u='second', v='third', w='fourth')[kind]} kind of degree "
                  f"``n`` at ``input``, as ``torch.special.{name}``.")
    return fn


chebyshev_polynomial_t = _chebyshev_function("t", False)
chebyshev_polynomial_u = _chebyshev_function("u", False)
chebyshev_polynomial_v = _chebyshev_function("v", False)
chebyshev_polynomial_w = _chebyshev_function("w", False)
shifted_chebyshev_polynomial_t = _chebyshev_function("t", True)
shifted_chebyshev_polynomial_u = _chebyshev_function("u", True)
shifted_chebyshev_polynomial_v = _chebyshev_function("v", True)
shifted_chebyshev_polynomial_w = _chebyshev_function("w", True)


def hermite_polynomial_h(input, n) -> Tensor:
    """The physicists' Hermite polynomial ``H_n(x)`` (``H_(k) = 2x H_(k-1) - 2(k-1) H_(k-2)``),
    as ``torch.special.hermite_polynomial_h``."""
    with no_grad():
        x, n = _operands(input, n)
        out = _by_recurrence(x, n, 2 * x, lambda k, p1, p2: 2 * x * p1 - 2 * (k - 1) * p2)
        return where(n < 0, 0.0, out)


def hermite_polynomial_he(input, n) -> Tensor:
    """The probabilists' Hermite polynomial ``He_n(x)`` (``He_(k) = x He_(k-1) - (k-1)
    He_(k-2)``), as ``torch.special.hermite_polynomial_he``."""
    with no_grad():
        x, n = _operands(input, n)
        out = _by_recurrence(x, n, x, lambda k, p1, p2: x * p1 - (k - 1) * p2)
        return where(n < 0, 0.0, out)


def laguerre_polynomial_l(input, n) -> Tensor:
    """The Laguerre polynomial ``L_n(x)``, as ``torch.special.laguerre_polynomial_l``."""
    with no_grad():
        x, n = _operands(input, n)
        out = _by_recurrence(x, n, 1 - x,
                             lambda k, p1, p2: ((2 * k - 1 - x) * p1 - (k - 1) * p2) / k)
        return where(n < 0, 0.0, out)


def legendre_polynomial_p(input, n) -> Tensor:
    """The Legendre polynomial ``P_n(x)``, as ``torch.special.legendre_polynomial_p``."""
    with no_grad():
        x, n = _operands(input, n)
        out = _by_recurrence(x, n, x,
                             lambda k, p1, p2: ((2 * k - 1) * x * p1 - (k - 1) * p2) / k)
        return where(n < 0, 0.0, out)
