"""Special and hyperbolic functions: gamma family, error-function family, Bessel, logit, xlogy ...

Functions that need a kernel of their own (``lgamma``, ``digamma``, ``polygamma``, ``erfc``,
``erfinv``, ``ndtri``, ``log_ndtr``, ``i0``/``i0e``/``i1``/``i1e`` and the hyperbolic
functions) are :class:`ArrayFunction` ops on the backend's unary primitives (SciPy's
``scipy.special`` on the CPU, ``cupyx.scipy.special`` on the GPU). Their backward formulas are
written with the differentiable ops of this module, so the gradient of ``lgamma`` is
``digamma``, whose gradient is ``polygamma(1, .)``, and so on: second derivatives come for free.
Everything else (``xlogy``, ``logit``, ``sinc``, ``logaddexp``, ``copysign``, ``fmax``,
``trapezoid`` ...) is a composition of differentiable ops.

Integer inputs of float functions give the default float dtype, as in PyTorch. The functions
that PyTorch keeps in ``torch.special`` only (``ndtr``, ``ndtri``, ``log_ndtr``, ``entr``,
``xlog1py``, ``i0e``, ``i1``, ``i1e``) are in :mod:`gradient.special` and not in the top-level
namespace (this module's ``__all__`` lists what ``gradient.*`` gets).

Deliberate differences from PyTorch, all at points where PyTorch's gradient is nan or inf:
``xlogy(0, 0)`` and ``xlog1py(0, -1)`` give ``y`` a zero gradient (PyTorch: nan); ``entr`` has
gradient 0 at ``x == 0`` (PyTorch: inf). Also: ``logaddexp`` and ``fmax``/``fmin`` take Python
numbers for either operand; ``heaviside`` promotes mixed dtypes (PyTorch refuses
them).

Example::

    >>> x = gradient.tensor([0.5, 2.0, 5.0], requires_grad=True)
    >>> x.lgamma().sum().backward()      # x.grad is digamma(x)
    >>> gradient.special.ndtr(gradient.tensor([0.0]))
    tensor([0.5000])
"""

from __future__ import annotations

import math as _math
import numbers

from ..autograd.function import ArrayFunction
from ..autograd.grad_mode import no_grad as _no_grad
from ..dtypes import float64, from_numpy_dtype, get_default_dtype, result_type
from ..errors import (ArgumentTypeError, ArgumentValueError, AutogradError, DTypeError,
                      IndexRangeError, ShapeError)
from ..tensor import Tensor
from .argument_errors import as_number
from .elementwise import (_FunctionAndMethod, _floating, _make_inplace, _promote, abs, cast, clamp,
                          eq, exp, gt, isnan, log, log1p, lt, maximum, ne, pow, sign, sin,
                          sqrt, where)

__all__ = [
    "lgamma", "digamma", "polygamma", "mvlgamma", "erfc", "erfinv", "xlogy", "logit", "sinh",
    "cosh", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "sinc", "logaddexp",
    "logaddexp2", "i0", "copysign", "heaviside", "fmax", "fmin", "float_power", "deg2rad",
    "rad2deg", "signbit", "trapezoid", "igamma", "igammac",
]

TENSOR_METHODS = (
    "lgamma", "digamma", "polygamma", "mvlgamma", "erfc", "erfinv", "xlogy", "logit", "sinh",
    "cosh", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "sinc", "logaddexp",
    "logaddexp2", "i0", "copysign", "heaviside", "fmax", "fmin", "float_power", "deg2rad",
    "rad2deg", "signbit", "igamma", "igammac",
)

_SQRT_PI = _math.sqrt(_math.pi)
_SQRT_2PI = _math.sqrt(2 * _math.pi)
_LN2 = _math.log(2.0)


class _Unary(ArrayFunction):
    """A backend unary primitive; subclasses give the op's name and its backward."""
    op = ""
    save = "input"  # what backward needs: "input", "output" or "both"

    @classmethod
    def forward(cls, ctx, x):
        y = ctx.backend.unary(cls.op, x)
        ctx.save_for_backward(*{"input": (x,), "output": (y,), "both": (x, y)}[cls.save])
        return y


# ---------------------------------------------------------------------- gamma family
class Lgamma(_Unary):
    op = "gammaln"

    @classmethod
    def forward(cls, ctx, x):
        bk = ctx.backend
        dtype = from_numpy_dtype(x.dtype)
        ctx.save_for_backward(x)
        y = bk.unary("gammaln", x)
        # |Gamma(-inf)| is taken as inf, as PyTorch does (SciPy's gammaln gives -inf)
        return bk.where(bk.binary("eq", x, bk.full((), -_math.inf, dtype)),
                        bk.full((), _math.inf, dtype), y)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * digamma(x)


class Digamma(_Unary):
    op = "digamma"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * polygamma(1, x)


class Polygamma(ArrayFunction):
    @staticmethod
    def forward(ctx, x, n):
        ctx.n = n
        ctx.save_for_backward(x)
        order = ctx.backend.full((), n, from_numpy_dtype(x.dtype))
        return ctx.backend.binary("polygamma", order, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * polygamma(ctx.n + 1, x), None


def lgamma(input: Tensor) -> Tensor:
    """``log|Gamma(x)|`` (inf at the poles 0, -1, -2, ...); its gradient is :func:`digamma`.

    Example: ``gradient.lgamma(gradient.tensor([0.5, 3.0]))`` is ``tensor([0.5724, 0.6931])``.
    """
    return Lgamma.apply(_floating(input))


def digamma(input: Tensor) -> Tensor:
    """``d/dx log Gamma(x)``, the psi function (-inf at 0, nan at negative integers).

    Example: ``gradient.digamma(gradient.tensor([1.0]))`` is ``tensor([-0.5772])``.
    """
    return Digamma.apply(_floating(input))


def _polygamma_function(n: int, input: Tensor) -> Tensor:
    """The ``n``-th derivative of :func:`digamma` (``polygamma(0, x)`` is ``digamma(x)``).

    The Tensor method takes the order only: ``x.polygamma(1)`` (= ``gradient.polygamma(1, x)``).
    Example: ``gradient.polygamma(1, gradient.tensor([1.0]))`` is ``tensor([1.6449])`` (pi^2/6).
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"polygamma: input must be a Tensor, got "
                                f"{type(input).__name__} (the order n comes first: "
                                f"polygamma(n, input))")
    if (isinstance(n, (bool, Tensor)) or not isinstance(n, numbers.Real) or int(n) != n
            or n < 0):
        raise ArgumentValueError(
            f"polygamma: the order n must be a non-negative integer, got {n!r}")
    return Polygamma.apply(_floating(input), int(n))


def _polygamma_method(self: Tensor, n: int) -> Tensor:
    """``x.polygamma(n)``: ``polygamma(n, x)``, as in PyTorch."""
    return _polygamma_function(n, self)


_polygamma_function.__name__ = _polygamma_function.__qualname__ = "polygamma"
polygamma = _FunctionAndMethod(_polygamma_function, _polygamma_method)


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension ``p``:
    ``p (p - 1) / 4 log(pi) + sum_{i < p} lgamma(x - i / 2)``.

    It is defined for elements above ``(p - 1) / 2``; below, like PyTorch 2.x, this computes the
    same sum without complaint.
    Example: ``gradient.mvlgamma(gradient.tensor([2.5]), p=3)``.
    """
    from .creation import arange
    from .reduce import sum as _sum
    from .shape import unsqueeze
    x = _floating(input)
    if p < 1:
        raise ArgumentValueError(f"mvlgamma: p must be at least 1, got {p}")
    offsets = arange(p, dtype=x.dtype, device=x.device) * 0.5
    terms = lgamma(unsqueeze(x, -1) - offsets)
    return _sum(terms, -1) + p * (p - 1) / 4 * _math.log(_math.pi)


# ---------------------------------------------------------------------- error-function family
class Erfc(_Unary):
    op = "erfc"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * exp(-x * x) * (-2 / _SQRT_PI)


class Erfcx(_Unary):
    op, save = "erfcx", "both"

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors   # d/dx exp(x^2) erfc(x) = 2 x erfcx(x) - 2 / sqrt(pi)
        return grad * (2 * x * y - 2 / _SQRT_PI)


class Erfinv(_Unary):
    op, save = "erfinv", "output"

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * exp(y * y) * (_SQRT_PI / 2)


class Ndtri(_Unary):
    op, save = "ndtri", "output"

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * exp(y * y * 0.5) * _SQRT_2PI


class LogNdtr(_Unary):
    op, save = "log_ndtr", "both"

    @staticmethod
    def backward(ctx, grad):
        # the normal density over the cdf, as exp(log pdf - log cdf) so far tails do not give 0/0
        x, y = ctx.saved_tensors
        return grad * exp(x * x * -0.5 - y) / _SQRT_2PI


def erfc(input: Tensor) -> Tensor:
    """``1 - erf(x)``, accurate where erf is close to 1: ``gradient.erfc(gradient.tensor([3.0]))``."""
    return Erfc.apply(_floating(input))


def erfcx(input: Tensor) -> Tensor:
    """The scaled complementary error function ``exp(x^2) erfc(x)``, without overflow for
    large x: ``gradient.special.erfcx(gradient.tensor([10.0]))`` is ``tensor([0.0561])``."""
    return Erfcx.apply(_floating(input))


def erfinv(input: Tensor) -> Tensor:
    """The inverse of :func:`~gradient.erf` on (-1, 1) (+-inf at +-1, nan outside).

    Example: ``gradient.erfinv(gradient.tensor([0.5]))`` is ``tensor([0.4769])``.
    """
    return Erfinv.apply(_floating(input))


def ndtr(input: Tensor) -> Tensor:
    """The standard normal cdf, ``(1 + erf(x / sqrt(2))) / 2``, via erfc (accurate in the left tail).

    Example: ``gradient.special.ndtr(gradient.tensor([0.0]))`` is ``tensor([0.5000])``.
    """
    return erfc(_floating(input) * (-1 / _math.sqrt(2))) * 0.5


def ndtri(input: Tensor) -> Tensor:
    """The inverse of :func:`ndtr` (the standard normal quantile), +-inf at 1 and 0.

    Example: ``gradient.special.ndtri(gradient.tensor([0.975]))`` is ``tensor([1.9600])``.
    """
    return Ndtri.apply(_floating(input))


def log_ndtr(input: Tensor) -> Tensor:
    """``log(ndtr(x))``, accurate far in the left tail: ``gradient.special.log_ndtr(x)``."""
    return LogNdtr.apply(_floating(input))


# ---------------------------------------------------------------------- modified Bessel functions
class I0(_Unary):
    op = "i0"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * i1(x)


class I0e(_Unary):
    op, save = "i0e", "both"

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors  # d/dx exp(-|x|) I0(x) = i1e(x) - sign(x) i0e(x)
        return grad * (i1e(x) - sign(x) * y)


def _over_x(value: Tensor, x: Tensor, at_zero: float) -> Tensor:
    """``value / x``, with ``at_zero`` where x == 0 (no 0/0 in this or a later derivative)."""
    zero = x == 0
    return where(zero, at_zero, value / where(zero, 1.0, x))


class I1(_Unary):
    op, save = "i1", "both"

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors  # I1' = I0 - I1 / x, which is 1/2 at 0
        return grad * where(x == 0, 0.5, i0(x) - _over_x(y, x, 0.0))


class I1e(_Unary):
    op, save = "i1e", "both"

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors  # d/dx exp(-|x|) I1(x) = i0e - i1e (sign(x) + 1/x); 1/2 at 0
        return grad * where(x == 0, 0.5, i0e(x) - y * sign(x) - _over_x(y, x, 0.0))


def i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 0: ``gradient.i0(gradient.tensor([1.0]))``."""
    return I0.apply(_floating(input))


def i0e(input: Tensor) -> Tensor:
    """``exp(-|x|) * i0(x)``, without overflow for large |x|: ``gradient.special.i0e(x)``."""
    return I0e.apply(_floating(input))


def i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 1: ``gradient.special.i1(x)``."""
    return I1.apply(_floating(input))


def i1e(input: Tensor) -> Tensor:
    """``exp(-|x|) * i1(x)``, without overflow for large |x|: ``gradient.special.i1e(x)``."""
    return I1e.apply(_floating(input))


# ---------------------------------------------------------------------- hyperbolic functions
class Sinh(_Unary):
    op = "sinh"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cosh(x)


class Cosh(_Unary):
    op = "cosh"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sinh(x)


class Asinh(_Unary):
    op = "asinh"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / sqrt(x * x + 1)


class Acosh(_Unary):
    op = "acosh"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / sqrt(x * x - 1)  # (x - 1)(x + 1) loses nothing here for x >= 1


class Atanh(_Unary):
    op = "atanh"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 - x * x)


def sinh(input: Tensor) -> Tensor:
    """Hyperbolic sine: ``gradient.sinh(gradient.tensor([1.0]))`` is ``tensor([1.1752])``."""
    return Sinh.apply(_floating(input))


def cosh(input: Tensor) -> Tensor:
    """Hyperbolic cosine: ``gradient.cosh(gradient.tensor([0.0]))`` is ``tensor([1.])``."""
    return Cosh.apply(_floating(input))


def asinh(input: Tensor) -> Tensor:
    """Inverse hyperbolic sine: ``gradient.asinh(gradient.tensor([1.0]))`` is ``tensor([0.8814])``."""
    return Asinh.apply(_floating(input))


def acosh(input: Tensor) -> Tensor:
    """Inverse hyperbolic cosine (nan below 1): ``gradient.acosh(gradient.tensor([2.0]))``."""
    return Acosh.apply(_floating(input))


def atanh(input: Tensor) -> Tensor:
    """Inverse hyperbolic tangent (+-inf at +-1, nan outside): ``gradient.atanh(gradient.tensor([0.5]))``."""
    return Atanh.apply(_floating(input))


arcsinh, arccosh, arctanh = asinh, acosh, atanh


# ---------------------------------------------------------------------- compositions
def _float_operands(op: str, input, other):
    """Both operands promoted to one floating dtype (integers give the default float)."""
    dtype = result_type(input, other)
    if not dtype.is_floating_point:
        dtype = get_default_dtype()
    return _promote(input, other, dtype, op=op)


class _XLogY(ArrayFunction):
    """``a * log(b)`` (or ``a * log1p(b)``), 0 where ``a == 0`` unless ``b`` is nan."""
    log_op, pole = "log", 0.0  # log(b) is finite for b > pole

    @classmethod
    def forward(cls, ctx, a, b):
        bk = ctx.backend
        dtype = from_numpy_dtype(a.dtype)
        ctx.save_for_backward(a, b)
        vanishes = bk.binary("logical_and", bk.binary("eq", a, bk.full((), 0, dtype)),
                             bk.unary("logical_not", bk.unary("isnan", b)))
        # a harmless stand-in (log of it is 0) where the term vanishes: no 0 * inf = nan there
        safe = bk.where(vanishes, bk.full((), cls.pole + 1, dtype), b)
        return bk.binary("mul", a, bk.unary(cls.log_op, safe))

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved_tensors
        # PyTorch's gradients: log(b) for a (0 where a == 0 and log(b) is not finite) and
        # a / b for b; the stand-in keeps 0 / 0 out of b's gradient and of second derivatives
        outside = eq(a, 0) & (b <= cls.pole)
        safe = where(outside, cls.pole + 1, b)
        grad_a = grad * (log(safe) if cls.log_op == "log" else log1p(safe))
        grad_b = grad * a / (safe - cls.pole) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class XLogY(_XLogY):
    log_op, pole = "log", 0.0


class XLog1pY(_XLogY):
    log_op, pole = "log1p", -1.0


def xlogy(input, other) -> Tensor:
    """``input * log(other)``, taken as 0 where ``input == 0`` (unless ``other`` is nan).

    Either operand may be a Python number. Gradients as PyTorch's, except that where
    ``input == other == 0`` the gradient of ``other`` is 0 (PyTorch's is nan). Example:
    ``gradient.xlogy(p, p)`` is the ``p log p`` of an entropy, 0 at ``p == 0``.
    """
    return XLogY.apply(*_float_operands("xlogy", input, other))


def xlog1py(input, other) -> Tensor:
    """``input * log1p(other)``, taken as 0 where ``input == 0`` (unless ``other`` is nan).

    Where ``input == 0`` and ``other == -1`` the gradient of ``other`` is 0 (PyTorch's is nan).
    Example: ``gradient.special.xlog1py(gradient.tensor([0.0, 2.0]), gradient.tensor([-1.0, 1.0]))``
    is ``tensor([0.0000, 1.3863])``.
    """
    return XLog1pY.apply(*_float_operands("xlog1py", input, other))


class Zeta(ArrayFunction):
    @staticmethod
    def forward(ctx, x, q):
        ctx.save_for_backward(x, q)
        return ctx.backend.binary("zeta", x, q)

    @staticmethod
    def backward(ctx, grad):
        x, q = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise AutogradError("the derivative of zeta(x, q) with respect to x is not "
                                "implemented (as in PyTorch); only q's is")
        # d/dq sum_k (k + q)^-x = -x sum_k (k + q)^-(x + 1)
        return None, grad * -x * zeta(x + 1, q)


class _IncompleteGamma(ArrayFunction):
    """The regularized incomplete gamma functions, differentiable in ``x`` only (PyTorch's
    derivative in ``a`` is not implemented either)."""
    op, sign = "gammainc", 1.0

    @classmethod
    def forward(cls, ctx, a, x):
        ctx.save_for_backward(a, x)
        return ctx.backend.binary(cls.op, a, x)

    @classmethod
    def backward(cls, ctx, grad):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise AutogradError(f"the derivative of {cls.op}(a, x) with respect to a is not "
                                f"implemented (as in PyTorch); only x's is")
        # dP/dx = x^(a-1) e^-x / Gamma(a), the gamma density; Q = 1 - P
        density = exp((a - 1) * log(x) - x - lgamma(a))
        return None, grad * (cls.sign * density)


class LowerIncompleteGamma(_IncompleteGamma):
    op, sign = "gammainc", 1.0


class UpperIncompleteGamma(_IncompleteGamma):
    op, sign = "gammaincc", -1.0


def igamma(input, other) -> Tensor:
    """The regularized lower incomplete gamma function ``P(a, x) = gamma(a, x) / Gamma(a)``
    of ``a = input`` and ``x = other`` (the gamma distribution's CDF), as ``torch.igamma`` and
    ``torch.special.gammainc``; differentiable in ``x``.

    Example: ``gradient.igamma(gradient.tensor([1.0]), gradient.tensor([1.0]))`` is
    ``tensor([0.6321])`` (1 - 1/e).
    """
    return LowerIncompleteGamma.apply(*_float_operands("igamma", input, other))


def igammac(input, other) -> Tensor:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``, as
    ``torch.igammac`` and ``torch.special.gammaincc``; differentiable in ``x``."""
    return UpperIncompleteGamma.apply(*_float_operands("igammac", input, other))


def zeta(input, other) -> Tensor:
    """The Hurwitz zeta function ``sum_{k >= 0} (k + other)^-input``, as
    ``torch.special.zeta`` (the Riemann zeta function at ``other = 1``): inf at ``input = 1``,
    nan for ``input < 1``. Either operand may be a Python number. Differentiable in ``other``
    (twice); in ``input`` it raises, as in PyTorch.

    Example: ``gradient.special.zeta(2.0, gradient.tensor([1.0]))`` is ``tensor([1.6449])``
    (pi^2 / 6).
    """
    return Zeta.apply(*_float_operands("zeta", input, other))


def entr(input: Tensor) -> Tensor:
    """The elementwise entropy ``-x log x``: 0 at ``x == 0``, -inf for ``x < 0``.

    Its gradient at 0 is 0 (PyTorch's is inf). Example: ``gradient.special.entr(p).sum()``.
    """
    x = _floating(input)
    positive = gt(x, 0)
    inside = -x * log(where(positive, x, 1.0))
    return where(positive, inside, where(lt(x, 0), float("-inf"), where(isnan(x), x, 0.0)))


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``, the inverse of :func:`~gradient.sigmoid`.

    With ``eps``, ``p`` is first clamped to ``[eps, 1 - eps]`` (and the gradient is 0 outside it).
    Example: ``gradient.logit(gradient.tensor([0.25]))`` is ``tensor([-1.0986])``.
    """
    p = _floating(input)
    if eps is not None:
        eps = as_number(eps, "logit: eps")
        p = clamp(p, eps, 1 - eps)
    return log(p / (1 - p))


def sinc(input: Tensor) -> Tensor:
    """The normalized sinc ``sin(pi x) / (pi x)``, 1 at 0: ``gradient.sinc(gradient.tensor([0.5]))``."""
    x = _floating(input)
    nonzero = ne(x, 0)
    px = where(nonzero, x, 1.0) * _math.pi
    return where(nonzero, sin(px) / px, 1.0)


def logaddexp(input, other) -> Tensor:
    """``log(exp(input) + exp(other))`` without overflow, as ``max + log1p(exp(-|a - b|))``.

    Example: ``gradient.logaddexp(gradient.tensor([1000.0]), gradient.tensor([1000.0]))`` is
    ``tensor([1000.6931])``.
    """
    a, b = _float_operands("logaddexp", input, other)
    return maximum(a, b) + log1p(exp(-abs(_gap(a, b))))


def _gap(a: Tensor, b: Tensor) -> Tensor:
    """``a - b``, and 0 where they are equal: equal infinities give 0, not inf - inf = nan."""
    same = eq(a, b)
    return where(same, 0.0, a) - where(same, 0.0, b)


def logaddexp2(input, other) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow: ``gradient.logaddexp2(a, b)``."""
    a, b = _float_operands("logaddexp2", input, other)
    return maximum(a, b) + log1p(exp(abs(_gap(a, b)) * -_LN2)) / _LN2


def copysign(input, other) -> Tensor:
    """``|input|`` with the sign of ``other`` (its sign bit: -0.0 counts as negative).

    Integers give the default float; the gradient of ``other`` is 0.
    Example: ``gradient.copysign(gradient.tensor([1.0, -2.0]), -1.0)`` is ``tensor([-1., -2.])``.
    """
    return Copysign.apply(*_float_operands("copysign", input, other))


class Copysign(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        backend = ctx.backend
        ctx.save_for_backward(a, b)
        magnitude = backend.unary("abs", a)
        return backend.where(backend.unary("signbit", b), backend.unary("neg", magnitude), magnitude)

    @staticmethod
    def backward(ctx, grad):
        from .creation import zeros_like
        a, b = ctx.saved_tensors
        slope = sign(a)  # 0 at a == 0, as in PyTorch
        # other gets a zero gradient, not None, as in PyTorch
        return grad * where(signbit(b), -slope, slope), zeros_like(grad)


def heaviside(input: Tensor, values) -> Tensor:
    """The step function: 0 for ``x < 0``, ``values`` at ``x == 0``, 1 for ``x > 0``.

    Not differentiable (as in PyTorch, the result carries no gradient).
    Example: ``gradient.heaviside(gradient.tensor([-1.0, 0.0, 2.0]), gradient.tensor(0.5))``.
    """
    x, v = _promote(input, values, op="heaviside")
    with _no_grad():
        return where(eq(x, 0), v, cast(gt(x, 0), x.dtype))


def fmax(input, other) -> Tensor:
    """The larger of each pair, ignoring nan (nan only where both are): ``gradient.fmax(a, b)``.

    A tie gives ``input`` the whole gradient, as in PyTorch.
    """
    a, b = _promote(input, other, op="fmax")
    return where((a >= b) | isnan(b), a, b)


def fmin(input, other) -> Tensor:
    """The smaller of each pair, ignoring nan (nan only where both are): ``gradient.fmin(a, b)``."""
    a, b = _promote(input, other, op="fmin")
    return where((a <= b) | isnan(b), a, b)


def float_power(input, exponent) -> Tensor:
    """``input ** exponent`` computed in float64, whatever the dtypes: ``gradient.float_power(x, 2)``."""
    a = (cast(input, float64) if isinstance(input, Tensor)
         else float(as_number(input, "float_power: input")))
    b = (cast(exponent, float64) if isinstance(exponent, Tensor)
         else float(as_number(exponent, "float_power: exponent")))
    return pow(a, b)


def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians: ``gradient.deg2rad(gradient.tensor([180.0]))`` is ``tensor([3.1416])``."""
    return _floating(input) * (_math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees: ``gradient.rad2deg(gradient.tensor([3.1416]))`` is ``tensor([180.0004])``."""
    return _floating(input) * (180 / _math.pi)


class Signbit(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.unary("signbit", x)


def signbit(input: Tensor) -> Tensor:
    """Where the sign bit is set (negative numbers and -0.0), as a bool tensor: ``x.signbit()``;
    never for a bool tensor (False everywhere, as PyTorch)."""
    if input.dtype.name == "bool":
        from .creation import zeros_like
        return zeros_like(input)
    return Signbit.apply(input)


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along ``dim``: the integral of samples ``y`` spaced ``dx`` apart (1 by
    default), or at the points ``x`` (1-d along ``dim``, or of ``y``'s shape).

    Example: ``gradient.trapezoid(gradient.tensor([1.0, 2.0, 3.0]))`` is ``tensor(4.)``.
    """
    from .reduce import diff, sum as _sum
    from .shape import narrow, reshape, wrap_dim
    if x is not None and dx is not None:
        raise ArgumentTypeError(
            "trapezoid: give either the sample points x or the spacing dx, not both")
    if y.ndim == 0:
        raise IndexRangeError(f"trapezoid: dimension {dim} is out of range: y has no dimensions")
    dim = wrap_dim(dim, y.ndim)
    n = y.shape[dim]
    if n == 0:
        return _sum(y, dim) * 0.0
    pairs = narrow(y, dim, 0, n - 1) + narrow(y, dim, 1, n - 1)
    if x is None:
        return _sum(pairs, dim) * ((1.0 if dx is None else dx) / 2)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"trapezoid: x has {x.shape[0]} points, y has {n} along dim {dim}")
        steps = reshape(diff(x), (n - 1,) + (1,) * (y.ndim - dim - 1))
    else:
        steps = diff(x, dim=dim)
    return _sum(pairs * steps, dim) / 2


# ---------------------------------------------------------------------- in-place variants
_INPLACE_OF = {
    "lgamma_": lgamma, "digamma_": digamma, "erfc_": erfc, "erfinv_": erfinv, "xlogy_": xlogy,
    "logit_": logit, "sinh_": sinh, "cosh_": cosh, "asinh_": asinh, "acosh_": acosh,
    "atanh_": atanh, "arcsinh_": asinh, "arccosh_": acosh, "arctanh_": atanh, "sinc_": sinc,
    "i0_": i0, "copysign_": copysign, "heaviside_": heaviside,
    "deg2rad_": deg2rad, "rad2deg_": rad2deg, "mvlgamma_": mvlgamma,
    "polygamma_": _polygamma_method,
}
globals().update({_name: _make_inplace(_fn, _name) for _name, _fn in _INPLACE_OF.items()})
_float_power_written = _make_inplace(float_power, "float_power_")


def float_power_(input: Tensor, exponent) -> Tensor:
    """In-place :func:`float_power`: ``x`` must be float64, the dtype of the result (PyTorch
    refuses any other, where other in-place ops cast their result). ``x.float_power_(2)``."""
    if isinstance(input, Tensor) and input.dtype is not float64:
        raise DTypeError(f"float_power_: the base has dtype {input.dtype} but the result has "
                         f"dtype float64; convert it first with .double(), or use float_power()")
    return _float_power_written(input, exponent)


TENSOR_METHODS = TENSOR_METHODS + tuple(_INPLACE_OF) + ("float_power_",)
