"""Elementwise operations: arithmetic, math functions, comparisons, where, clamp.

Binary ops broadcast like NumPy and promote dtypes like PyTorch (see :mod:`gradient.dtypes`);
the engine sums gradients back to each input's shape, so backward formulas here are
written for same-shape operands.

Example::

    >>> a = gradient.tensor([1.0, 2.0], requires_grad=True)
    >>> (a * 3 + a.exp()).sum().backward()
"""

from __future__ import annotations

from ..autograd.function import Function
from ..dtypes import DType, bool_, get_default_dtype, result_type
from ..errors import DTypeError
from ..tensor import Tensor

TENSOR_METHODS = (
    "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "pow", "neg", "exp",
    "log", "cast", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "logical_xor", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "subtract", "multiply", "divide", "negative", "greater", "less", "greater_equal", "less_equal",
    "not_equal", "isnan", "isinf", "isfinite",
)


# ---------------------------------------------------------------------- operand handling
def _constant(value, dtype: DType, like: Tensor) -> Tensor:
    """A Python scalar as a 0-d constant on ``like``'s device."""
    backend = like._backend
    return Tensor._make(backend.full((), value, dtype), False, backend)


def _promote(a, b, dtype: DType | None = None):
    """Both operands as tensors of one dtype: PyTorch's result type unless ``dtype`` is given."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"expected at least one tensor operand, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    if dtype is None:
        dtype = result_type(a, b)
    like = a if isinstance(a, Tensor) else b
    a = cast(a, dtype) if isinstance(a, Tensor) else _constant(a, dtype, like)
    b = cast(b, dtype) if isinstance(b, Tensor) else _constant(b, dtype, like)
    return a, b


def _floating(x: Tensor) -> Tensor:
    """Integer and bool inputs of float functions (exp, sqrt, ...) become the default float."""
    return x if x.dtype.is_floating_point else cast(x, get_default_dtype())


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from .creation import tensor
    return tensor(x)


# ---------------------------------------------------------------------- dtype conversion
class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src_dtype = x.dtype
        return ctx.backend.cast(x, dtype)

    @staticmethod
    def backward(ctx, grad):
        from ..dtypes import from_numpy_dtype
        return cast(grad, from_numpy_dtype(ctx.src_dtype)), None


def cast(x: Tensor, dtype: DType) -> Tensor:
    """``x`` converted to ``dtype`` (``x`` itself when it already has it); differentiable."""
    if x.dtype is dtype:
        return x
    return Cast.apply(x, dtype)


# ---------------------------------------------------------------------- arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("add", a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("sub", a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("mul", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("div", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad / b
        return grad_a, (-grad_a * a / b if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.unary("neg", x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def add(input, other, *, alpha=1) -> Tensor:
    """``input + alpha * other``."""
    if alpha != 1:
        other = mul(other, alpha)
    return Add.apply(*_promote(input, other))


def sub(input, other, *, alpha=1) -> Tensor:
    """``input - alpha * other``."""
    if isinstance(input, Tensor) and input.dtype is bool_ and isinstance(other, Tensor) \
            and other.dtype is bool_:
        raise DTypeError("sub: subtracting two bool tensors is not supported; use logical_xor")
    if alpha != 1:
        other = mul(other, alpha)
    return Sub.apply(*_promote(input, other))


def mul(input, other) -> Tensor:
    """Elementwise product, broadcasting."""
    return Mul.apply(*_promote(input, other))


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give the default float), or ``rounding_mode='trunc'|'floor'``."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        dtype = result_type(input, other)
        q = div(input, other)
        return cast(trunc(q), dtype) if not dtype.is_floating_point else trunc(q)
    if rounding_mode is not None:
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    dtype = result_type(input, other)
    if not dtype.is_floating_point:
        dtype = get_default_dtype()
    return Div.apply(*_promote(input, other, dtype))


def neg(input: Tensor) -> Tensor:
    if input.dtype is bool_:
        raise DTypeError("neg: negating a bool tensor is not supported; use logical_not")
    return Neg.apply(input)


subtract, multiply, divide, true_divide, negative = sub, mul, div, div, neg


# ---------------------------------------------------------------------- math functions
class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("exp", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("log", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


def exp(input: Tensor) -> Tensor:
    """e to the power of each element."""
    return Exp.apply(_floating(input))


def log(input: Tensor) -> Tensor:
    """Natural logarithm (-inf at 0, nan below)."""
    return Log.apply(_floating(input))


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        y = ctx.backend.binary("pow", a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            # b * a^(b-1), with 0 where b == 0 so that 0^0 has derivative 0 as in PyTorch
            grad_a = where(b == 0, 0.0, grad * b * pow(a, b - 1))
        if ctx.needs_input_grad[1]:
            # y * log(a), taken as 0 where a == 0 and b >= 0 (PyTorch's convention)
            grad_b = where((a == 0) & (b >= 0), 0.0, grad * y * log(a))
        return grad_a, grad_b


def pow(input, exponent) -> Tensor:
    """``input ** exponent`` for tensor or scalar base and exponent."""
    if isinstance(input, Tensor) and isinstance(exponent, Tensor) or not isinstance(input, Tensor):
        return Pow.apply(*_promote(input, exponent))
    # a tensor to a scalar power keeps the tensor's dtype category unless the exponent is a float
    return Pow.apply(*_promote(input, exponent))


# ---------------------------------------------------------------------- comparisons and logic (no grad)
class _Compare(Function):
    op = ""

    @classmethod
    def forward(cls, ctx, a, b):
        return ctx.backend.binary(cls.op, a, b)


def _comparison(op: str):
    fn_cls = type(op.capitalize(), (_Compare,), {"op": op})

    def compare(input, other) -> Tensor:
        return fn_cls.apply(*_promote(input, other))

    compare.__name__ = op
    compare.__doc__ = f"Elementwise ``{op}`` comparison, giving a bool tensor (no gradient)."
    return compare


eq, ne, lt, le, gt, ge = (_comparison(op) for op in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def _logical(op: str):
    fn_cls = type(op.title().replace("_", ""), (_Compare,), {"op": op})

    def logical(input, other) -> Tensor:
        return fn_cls.apply(*_promote(input, other, bool_))

    logical.__name__ = op
    return logical


logical_and, logical_or, logical_xor = (_logical(op) for op in ("logical_and", "logical_or",
                                                                 "logical_xor"))


def _bitwise(op: str):
    fn_cls = type(op.title().replace("_", ""), (_Compare,), {"op": op})

    def bitwise(input, other) -> Tensor:
        a, b = _promote(input, other)
        if a.dtype.is_floating_point:
            raise DTypeError(f"{op}: expected integer or bool tensors, got {a.dtype}")
        return fn_cls.apply(a, b)

    bitwise.__name__ = op
    return bitwise


bitwise_and, bitwise_or, bitwise_xor = (_bitwise(op) for op in ("bitwise_and", "bitwise_or",
                                                                 "bitwise_xor"))


class _UnaryNoGrad(Function):
    op = ""

    @classmethod
    def forward(cls, ctx, x):
        return ctx.backend.unary(cls.op, x)


def _unary_no_grad(op: str, check=None):
    fn_cls = type(op.title().replace("_", ""), (_UnaryNoGrad,), {"op": op})

    def fn(input: Tensor) -> Tensor:
        if check is not None:
            check(input)
        return fn_cls.apply(input)

    fn.__name__ = op
    return fn


def _no_float(x):
    if x.dtype.is_floating_point:
        raise DTypeError(f"bitwise_not: expected an integer or bool tensor, got {x.dtype}")


logical_not = _unary_no_grad("logical_not")
bitwise_not = _unary_no_grad("bitwise_not", _no_float)
isnan = _unary_no_grad("isnan")
isinf = _unary_no_grad("isinf")
isfinite = _unary_no_grad("isfinite")


# ---------------------------------------------------------------------- where
class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        zero = grad.new_zeros(())
        return None, where(cond, grad, zero), where(cond, zero, grad)


def where(condition: Tensor, input, other) -> Tensor:
    """Elements of ``input`` where ``condition`` holds, of ``other`` elsewhere; broadcasting."""
    if condition.dtype is not bool_:
        condition = cast(condition, bool_)
    a, b = _promote(input, other)
    return Where.apply(condition, a, b)


# ---------------------------------------------------------------------- rounding (zero gradient)
class _Rounding(Function):
    op = ""

    @classmethod
    def forward(cls, ctx, x):
        return ctx.backend.unary(cls.op, x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0


class Trunc(_Rounding):
    op = "trunc"


def trunc(input: Tensor) -> Tensor:
    """Round toward zero; the gradient is zero."""
    return input if not input.dtype.is_floating_point else Trunc.apply(input)


class FloorDivide(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("floordiv", a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0, grad * 0


def floor_divide(input, other) -> Tensor:
    """Division rounded toward minus infinity (``//``); the gradient is zero."""
    return FloorDivide.apply(*_promote(input, other))


class Remainder(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("mod", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad, -grad * floor_divide(a, b)


def remainder(input, other) -> Tensor:
    """``input % other`` with the sign of the divisor (Python's and PyTorch's convention)."""
    return Remainder.apply(*_promote(input, other))
