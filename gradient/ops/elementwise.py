"""Elementwise operations: arithmetic, math functions, comparisons, where, clamp.

Binary ops broadcast like NumPy and promote dtypes like PyTorch (see :mod:`gradient.dtypes`);
the engine sums gradients back to each input's shape, so backward formulas here are
written for same-shape operands. Operands that do not broadcast raise
:class:`~gradient.ShapeError` naming both shapes.

Integer and bool inputs of float functions (``sqrt``, ``exp``, ``sigmoid``, ...) give the
default float dtype; functions that are piecewise constant (``floor``, ``round``, ``sign``,
``floor_divide``) have a zero gradient; ties and kinks follow PyTorch's conventions
(``abs`` has gradient 0 at 0, ``maximum`` splits a tie's gradient in half, ``clamp`` passes
the gradient where ``min <= x <= max``).

Python scalars convert as in PyTorch (see :func:`_constant`): operands of arithmetic wrap into
small integer dtypes, while scalar arguments (clamp bounds, masked_fill values, ``alpha``) that
do not fit the dtype raise OverflowError.

The in-place methods PyTorch has for these functions (``x.exp_()``, ``lerp_``, ``addcmul_``,
``floor_`` ...) are made from the out-of-place functions at the end of this module (see
:func:`_inplace_op`); ``add_``, ``sub_``, ``mul_``, ``div_``, ``pow_`` and ``clamp_`` are
``Tensor``'s own.

Deliberate differences from PyTorch: binary functions that PyTorch types as (Tensor, Tensor)
(``atan2``, ``hypot``, ``maximum``, ``logical_and`` ...) also take a Python number for either
operand; ``floor_divide`` has a zero gradient where PyTorch has none; ``where`` wraps a scalar
that does not fit the dtype instead of raising; ``hypot`` squares in float32 for float32
inputs, so it overflows above about 1e19; ``x.cast(dtype)`` is gradient's spelling of
``x.to(dtype)``.

Example::

    >>> a = gradient.tensor([1.0, 2.0], requires_grad=True)
    >>> (a * 3 + a.exp()).sum().backward()
"""

from __future__ import annotations

import builtins as _builtins
import functools as _functools
import math as _math
import numbers as _numbers
import types as _types

import ml_dtypes as _ml_dtypes
import numpy as _np

from .. import kernels
from ..layouts import is_sparse as _is_sparse   # (a sparse operand: gradient.ops.sparse's ops)
from ..autograd.function import ArrayFunction
from ..autograd.grad_mode import is_grad_enabled as _is_grad_enabled
from ..autograd.grad_mode import no_grad as _no_grad
from ..dtypes import (DType, bfloat16, bool_, float16, float32, float64, from_numpy_dtype,
                      get_default_dtype, result_type)
from ..errors import (ArgumentTypeError, ArgumentValueError, DTypeError, ScalarOverflowError,
                      ShapeError)
from ..tensor import Tensor
from .argument_errors import as_number

TENSOR_METHODS = (
    "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "neg",
    "cast", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "logical_xor", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "subtract", "multiply", "divide", "negative", "greater", "less", "greater_equal", "less_equal",
    "not_equal", "isnan", "isinf", "isfinite",
    # math functions
    "abs", "absolute", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "tanh", "sigmoid",
    "erf", "reciprocal", "square", "atan2", "arctan2", "hypot",
    # rounding and sign (zero gradient)
    "sign", "sgn", "floor", "ceil", "round", "trunc", "fix", "frac",
    # selection and mixing
    "maximum", "minimum", "clamp", "clip", "clamp_min", "clamp_max", "where", "masked_fill",
    "lerp", "addcmul", "addcdiv", "nan_to_num",
    # closeness (no gradient)
    "isclose", "allclose", "equal",
)


# ---------------------------------------------------------------------- operand handling
# The Python ints PyTorch takes as scalars: anything that fits int64 or uint64
_SCALAR_INTS = range(-(1 << 63), 1 << 64)


def _constant(value, dtype: DType, like: Tensor, *, checked: bool = False) -> Tensor:
    """A Python scalar as a 0-d constant of ``dtype`` on ``like``'s device.

    PyTorch converts scalars two ways, and so does this. Operands of arithmetic and comparisons
    wrap around like C casts (``int8_tensor + 1000`` adds -24). Scalar *arguments*
    (``checked=True``: clamp bounds, masked_fill values, alpha) must fit ``dtype`` and raise
    OverflowError otherwise, except that unsigned dtypes take negative values down to -max and
    wrap them (``uint8_tensor.clamp(-1)`` clamps to 255), and infinities and nan are fine for
    floating dtypes. Either way, ints that fit in neither int64 nor uint64 raise, and floats given
    to an integer dtype are truncated.
    """
    if checked and type(value) not in (int, float, bool):
        value = as_number(value, "a scalar argument")   # (alpha="mean": Python's error before)
    if isinstance(value, int) and value not in _SCALAR_INTS:
        raise ScalarOverflowError(f"int too big to convert: {value} does not fit in 64 bits")
    if dtype.is_floating_point:
        if checked and _math.isfinite(value):
            largest = float(_ml_dtypes.finfo(dtype.numpy).max)
            if _builtins.abs(value) > largest:
                raise ScalarOverflowError(f"value {value} does not fit in {dtype} (its largest "
                                          f"finite value is {largest})")
    elif dtype is not bool_:
        given = value
        try:
            value = int(value)
        except (OverflowError, ValueError):
            raise DTypeError(f"cannot convert {value!r} to {dtype}") from None
        span = 1 << (8 * dtype.itemsize)
        if checked:
            low, high = (-(span // 2), span // 2 - 1) if dtype.is_signed else (1 - span, span - 1)
            if not low <= value <= high:
                raise ScalarOverflowError(f"value {given} does not fit in {dtype} (expected {low} "
                                          f"to {high})")
        value %= span
        if dtype.is_signed and value >= span // 2:
            value -= span
    return Tensor._make(like._backend.full((), value, dtype), False, like._backend)


def _broadcast_shapes(op: str, *shapes) -> tuple:
    """The shape ``shapes`` broadcast to (NumPy's rules), or a ShapeError naming all of them."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        for k, n in enumerate(s, start=ndim - len(s)):
            if n != 1:
                if out[k] != 1 and out[k] != n:
                    named = ", ".join(str(tuple(x)) for x in shapes[:-1]) + f" and {tuple(shapes[-1])}"
                    raise ShapeError(f"{op}: shapes {named} do not broadcast: {out[k]} != {n} at "
                                     f"dimension {k - ndim} (sizes must match or be 1)")
                out[k] = n
    return tuple(out)


def _check_broadcast(op: str, a, b) -> None:
    """Raise a ShapeError (not NumPy's ValueError) when two operands do not broadcast."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        sa, sb = a._data.shape, b._data.shape
        if sa != sb and sa and sb:
            n = min(len(sa), len(sb))
            if sa[len(sa) - n:] == sb[len(sb) - n:]:
                return  # one shape ends with the other (a bias, a row): broadcasts
            _broadcast_shapes(op, sa, sb)


#: What an elementwise op takes for an operand: a Tensor or a number (Python's or NumPy's).
_OPERAND_TYPES = (Tensor, _numbers.Number, _np.generic)


def _promote(a, b, dtype: DType | None = None, op: str = "broadcast", *,
             scalars_in_float32=(False, False)):
    """Both operands as tensors of one dtype: PyTorch's result type unless ``dtype`` is given.

    Also checks that the shapes broadcast (naming ``op`` in the error).

    ``scalars_in_float32`` says, per side, whether a scalar operand (a Python number or a 0-d
    tensor) of a float16/bfloat16 result stays float32, as PyTorch's mul and div pass it to their
    kernels (``half_tensor * 65536.0`` is not inf; ``half_tensor + 65536.0`` is, in both). The
    backend computes half-precision arithmetic in float32 and rounds the result once.
    """
    if dtype is None and type(a) is Tensor and type(b) is Tensor and a._data.dtype == b._data.dtype:
        if a._data.shape != b._data.shape:
            _check_broadcast(op, a, b)
        return a, b  # the common case, decided without the promotion table
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise ArgumentTypeError(
            f"{op}: expected at least one tensor operand, got {type(a).__name__} and "
            f"{type(b).__name__}")
    for x in (a, b):
        if not isinstance(x, _OPERAND_TYPES):
            # (a list or a tuple: NumPy would have broadcast it, or failed deep inside)
            raise ArgumentTypeError(f"{op}: expected a Tensor or a number as the other "
                                    f"operand, got {type(x).__name__}; make it a tensor with "
                                    f"gradient.tensor(...)")
    _check_broadcast(op, a, b)
    if dtype is None:
        dtype = result_type(a, b)
    like = a if isinstance(a, Tensor) else b
    low = dtype in (float16, bfloat16)
    a = _operand(a, b, float32 if low and scalars_in_float32[0] else dtype, dtype, like)
    b = _operand(b, a, float32 if low and scalars_in_float32[1] else dtype, dtype, like)
    return a, b


def _numpy_operand(input, other) -> tuple:
    """``(input, other, dtype)``: a NumPy array beside a tensor made a tensor (its dtype, the
    tensor's device), and ``dtype`` NumPy's result type, as PyTorch hands such an operation to
    NumPy (a float32 tensor times a 0-d float64 array is float64); else as given, None."""
    if not (isinstance(input, _np.ndarray) or isinstance(other, _np.ndarray)):
        return input, other, None
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        return input, other, None
    from .creation import tensor
    input, other = (tensor(x, device=like.device) if isinstance(x, _np.ndarray) else x
                    for x in (input, other))     # (the one not an array is ``like``)
    return input, other, from_numpy_dtype(_np.result_type(input.dtype.numpy, other.dtype.numpy))


def _operand(x, other, scalar_dtype: DType, dtype: DType, like: Tensor) -> Tensor:
    """``x`` as a tensor of ``dtype``, or of ``scalar_dtype`` when it is a scalar beside an array."""
    beside_array = isinstance(other, Tensor) and other.ndim > 0
    if not isinstance(x, Tensor):
        return _constant(x, scalar_dtype if beside_array else dtype, like)
    return cast(x, scalar_dtype if beside_array and x.ndim == 0 else dtype)


def _floating(x: Tensor) -> Tensor:
    """Integer and bool inputs of float functions (exp, sqrt, ...) become the default float."""
    return x if x.dtype.is_floating_point else cast(x, get_default_dtype())


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from .creation import tensor
    return tensor(x)


# ---------------------------------------------------------------------- dtype conversion
class Cast(ArrayFunction):
    # the compiled form in a captured step compiled into a loop (gradient.kernels.lowering)
    lower = staticmethod(lambda ctx, x, dtype: kernels.lower("cast", ctx.backend, x, dtype))

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src_dtype = x.dtype
        return ctx.backend.cast(x, dtype)

    @staticmethod
    def backward(ctx, grad):
        return cast(grad, from_numpy_dtype(ctx.src_dtype)), None


def cast(x: Tensor, dtype: DType) -> Tensor:
    """``x`` converted to ``dtype`` (``x`` itself when it already has it); differentiable.

    gradient's own name (PyTorch spells it ``x.to(dtype)``): ``x.cast(gradient.float64)``.
    """
    if x.dtype is dtype:
        return x
    return Cast.apply(x, dtype)


# ---------------------------------------------------------------------- arithmetic
class Add(ArrayFunction):
    # the compiled form in a captured step compiled into a loop (gradient.kernels.lowering)
    lower = staticmethod(lambda ctx, a, b: kernels.lower("add", ctx.backend, a, b))

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("add", a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("sub", a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


def _needs(ctx) -> tuple:
    """Which inputs of a recorded call need a gradient (``ctx.needs_input_grad``); every one
    where nothing is recorded (nothing is kept then anyway)."""
    return getattr(ctx, "needs_input_grad", None) or (True, True, True)


class Mul(ArrayFunction):
    lower = staticmethod(lambda ctx, a, b: kernels.lower("mul", ctx.backend, a, b))

    @staticmethod
    def forward(ctx, a, b):
        # each factor is kept only for the other's gradient, as PyTorch keeps them: ``y[0] *
        # 2`` saves nothing of y, so writing into y afterwards leaves its backward valid
        needs = _needs(ctx)
        ctx.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        return ctx.backend.binary("mul", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if _needs(ctx)[1] else None, b)   # (a: only for b's gradient)
        return ctx.backend.binary("div", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad / b
        return grad_a, (-grad_a * a / b if ctx.needs_input_grad[1] else None)


class Neg(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.unary("neg", x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _is_bool(x) -> bool:
    """A bool tensor or a Python bool (PyTorch treats both alike in arithmetic checks)."""
    return x.dtype is bool_ if isinstance(x, Tensor) else isinstance(x, bool)


def _times_alpha(op: str, input, other, alpha):
    """``alpha * other`` for add and sub, in the dtype of the result, as PyTorch computes it.

    Like PyTorch, a float alpha is refused for integer and bool results, a bool alpha for
    anything but bool results, and an alpha that does not fit the result dtype.
    """
    if type(alpha) is int and alpha == 1:
        return other
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        return other * alpha  # two numbers: _promote refuses them with a clear message
    dtype = result_type(input, other)
    if isinstance(alpha, bool) and dtype is not bool_:
        raise DTypeError(f"{op}: a bool alpha is only supported for bool results, got {dtype} operands")
    if isinstance(alpha, float) and not dtype.is_floating_point:
        raise DTypeError(f"{op}: alpha must be an integer for {dtype} operands, got {alpha!r}")
    other = cast(other, dtype) if isinstance(other, Tensor) else _constant(other, dtype, like)
    return mul(other, _constant(alpha, dtype, like, checked=True))


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _scaled(op: str, input, other, alpha, dtype):
    """``(input, other, alpha)`` for :class:`AddScaled` where ``input + alpha * other`` has a
    floating result and ``alpha`` is a number other than 1 (``sub`` passes ``-alpha``), the
    operands promoted; None otherwise. An alpha the dtype cannot hold is refused as
    :func:`_times_alpha` refuses it (its other refusals concern bool and integer results)."""
    if not _number(alpha) or alpha == 1 or not (isinstance(input, Tensor)
                                                 or isinstance(other, Tensor)):
        return None
    result = dtype or result_type(input, other)
    if not result.is_floating_point:
        return None
    _constant(alpha, result, input if isinstance(input, Tensor) else other, checked=True)
    a, b = _promote(input, other, result, op=op)
    return a, b, alpha


def _fused(backend, a, b, c, dtype: DType):
    """``a * b + c`` rounded once into ``dtype`` (raw arrays; ``a`` may be a number), computed
    in float64 for float64, else in float32, where the backend has the fused kernel; else the
    product and the sum in that type, each rounded, then rounded to ``dtype``."""
    wide = float64 if dtype is float64 else float32
    if not hasattr(a, "dtype"):
        a = backend.full((), a, wide)
    out = kernels.call("fma", backend, a, b, c, dtype.numpy)
    if out is None:       # (a backend without the kernel: its binary ops take one dtype)
        a, b, c = (backend.cast(x, wide) for x in (a, b, c))
        out = backend.cast(backend.binary("add", backend.binary("mul", a, b), c), dtype)
    return out


class AddScaled(ArrayFunction):
    """``a + alpha * b`` of floating tensors (``add``/``sub`` with ``alpha``): one fused
    multiply-add, ``fma(alpha, b, a)``, as PyTorch's CPU kernel computes it (``alpha`` in the
    tensors' dtype; two roundings, as NumPy's ``a + alpha * b`` makes them, differ in the last
    bit for about a quarter of float32 values). Backward: ``grad`` and ``grad * alpha``."""

    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.alpha = alpha
        dtype = from_numpy_dtype(a.dtype)     # (alpha in the tensors' dtype first, as PyTorch)
        return _fused(ctx.backend, float(_np.asarray(alpha, dtype.numpy)), b, a, dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, (grad * ctx.alpha if ctx.needs_input_grad[1] else None), None


_PLAIN = (Tensor, int, float)


def _unusual(input, other) -> bool:
    """Whether an operand may be a sparse tensor or a NumPy array (tested only then: the
    arithmetic of tensors and numbers is every training step's)."""
    return not (isinstance(input, Tensor) and isinstance(other, _PLAIN))


def add(input, other, *, alpha=1) -> Tensor:
    """``input + alpha * other``, broadcasting: ``gradient.add(x, y, alpha=2)``."""
    dtype = None
    if _unusual(input, other):
        if _is_sparse(input):
            return input.add(other, alpha=alpha)
        if _is_sparse(other):
            return (other if alpha == 1 else other * alpha).add(input)
        input, other, dtype = _numpy_operand(input, other)
    scaled = _scaled("add", input, other, alpha, dtype)
    if scaled is not None:
        return AddScaled.apply(*scaled)
    return Add.apply(*_promote(input, _times_alpha("add", input, other, alpha), dtype, op="add"))


def sub(input, other, *, alpha=1) -> Tensor:
    """``input - alpha * other``, broadcasting: ``gradient.sub(x, 1.0)``.

    Bool operands are refused, as in PyTorch (``mask - 1`` is almost always a bug).
    """
    if _is_bool(input) or _is_bool(other):
        if _is_bool(input) and _is_bool(other):
            raise DTypeError("sub: subtracting two bool tensors is not supported; use logical_xor "
                             "(the ^ operator) instead")
        raise DTypeError("sub: subtraction with a bool tensor is not supported; to invert a mask use "
                         "~mask or logical_not(), otherwise convert it first with .int() or .float()")
    dtype = None
    if _unusual(input, other):
        if _is_sparse(input) or _is_sparse(other):
            return add(input, other, alpha=-alpha)
        input, other, dtype = _numpy_operand(input, other)
    scaled = _scaled("sub", input, other, -alpha, dtype) if _number(alpha) else None
    if scaled is not None:
        return AddScaled.apply(*scaled)
    return Sub.apply(*_promote(input, _times_alpha("sub", input, other, alpha), dtype, op="sub"))


def mul(input, other) -> Tensor:
    """Elementwise product, broadcasting: ``gradient.mul(x, 2)``."""
    dtype = None
    if _unusual(input, other):
        if _is_sparse(input) or _is_sparse(other):
            return input.mul(other) if _is_sparse(input) else other.mul(input)
        input, other, dtype = _numpy_operand(input, other)
    # as PyTorch: a scalar multiplier stays float32 on the right, and on the left only if it is
    # a Python number (a 0-d tensor on the left is converted to the tensor's dtype first)
    return Mul.apply(*_promote(input, other, dtype, op="mul",
                               scalars_in_float32=(not isinstance(input, Tensor), True)))


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give the default float), or ``rounding_mode='trunc'|'floor'``.

    Example: ``gradient.div(gradient.tensor([-7, 7]), 2, rounding_mode="trunc")`` is ``tensor([-3, 3])``.
    """
    numpy_dtype = None
    if _unusual(input, other):
        input, other, numpy_dtype = _numpy_operand(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        if result_type(input, other).is_floating_point:
            return trunc(div(input, other))
        # exact for integers (no detour through float32): floor division, plus one where the
        # division was inexact and the operands have different signs
        a, b = _promote(input, other, op="div")
        q = floor_divide(a, b)
        return q + (ne(remainder(a, b), 0) & ne(lt(a, 0), lt(b, 0)))
    if rounding_mode is not None:
        raise ArgumentValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    dtype = numpy_dtype or result_type(input, other)
    if not dtype.is_floating_point:
        dtype = get_default_dtype()
    # PyTorch keeps a Python-number numerator in float32, but not a 0-d tensor one
    return Div.apply(*_promote(input, other, dtype, op="div",
                               scalars_in_float32=(not isinstance(input, Tensor), True)))


def neg(input: Tensor) -> Tensor:
    """``-input``: ``gradient.neg(gradient.tensor([1, -2]))`` is ``tensor([-1, 2])``."""
    if input.dtype is bool_:
        raise DTypeError("neg: negating a bool tensor is not supported; to invert a mask use ~mask "
                         "or logical_not()")
    return Neg.apply(input)


subtract, multiply, divide, true_divide, negative = sub, mul, div, div, neg


class Reciprocal(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("reciprocal", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return -grad * y * y


def reciprocal(input: Tensor) -> Tensor:
    """``1 / input``; integers give the default float: ``gradient.tensor([2, 4]).reciprocal()``."""
    return Reciprocal.apply(_floating(input))


def square(input: Tensor) -> Tensor:
    """``input * input``; integers stay integers, bools become int64 (PyTorch's ``pow(x, 2)``).

    Example: ``gradient.tensor([-3, 2]).square()`` is ``tensor([9, 4])``.
    """
    if input.dtype is bool_:
        input = cast(input, result_type(input, 2))
    return mul(input, input)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """``input + value * tensor1 * tensor2``, broadcasting all three.

    Example: ``gradient.addcmul(acc, g, g, value=0.1)``. For integer tensors ``value`` is
    truncated to an integer, as in PyTorch. Floating ones take PyTorch's arithmetic:
    ``fma(value * tensor1, tensor2, input)``, rounded once (16-bit floats in float32).
    """
    dtype = result_type(input, tensor1, tensor2)
    if dtype is bool_:
        raise DTypeError("addcmul: bool tensors are not supported; convert them with .int() first")
    _broadcast_shapes("addcmul", *(t.shape for t in (input, tensor1, tensor2)))
    if dtype.is_floating_point and _number(value):
        return Addcmul.apply(*(cast(t, dtype) for t in (input, tensor1, tensor2)), value)
    if not dtype.is_floating_point:
        value = int(value)
    product = mul(cast(tensor1, dtype), cast(tensor2, dtype))
    return add(cast(input, dtype), product if value == 1 else mul(product, value))


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """``input + value * tensor1 / tensor2``, broadcasting all three (true division).

    Example: ``gradient.addcdiv(p, m, v.sqrt() + 1e-8, value=-lr)``. Like PyTorch, it refuses an
    integer ``tensor1`` and ``tensor2`` (convert them to float first), and computes
    ``input + (value * tensor1) / tensor2`` (16-bit floats in float32, rounded once).
    """
    if not tensor1.dtype.is_floating_point and not tensor2.dtype.is_floating_point:
        raise DTypeError(f"addcdiv: integer division is not supported (tensor1 is {tensor1.dtype}, "
                         f"tensor2 is {tensor2.dtype}); convert one of them with .float() first")
    dtype = result_type(input, tensor1, tensor2)
    _broadcast_shapes("addcdiv", *(t.shape for t in (input, tensor1, tensor2)))
    if dtype.is_floating_point and _number(value):
        return Addcdiv.apply(*(cast(t, dtype) for t in (input, tensor1, tensor2)), value)
    quotient = div(cast(tensor1, dtype), cast(tensor2, dtype))
    return add(cast(input, dtype), quotient if value == 1 else mul(quotient, value))


def _opmath(backend, x):
    """A floating array in the type PyTorch computes it in: float32 for the 16-bit floats
    (exact), else as it is."""
    dtype = from_numpy_dtype(x.dtype)
    return backend.cast(x, float32) if dtype in (float16, bfloat16) else x


class Addcmul(ArrayFunction):
    """``input + value * tensor1 * tensor2`` of floating tensors of one dtype, as PyTorch's CPU
    kernel computes it: ``fma(value * tensor1, tensor2, input)``, the product ``value *
    tensor1`` rounded in float32 (float64 for float64), the fused step rounded once. Backward
    (PyTorch's formulas): ``grad``, ``grad * (tensor2 * value)``, ``grad * (tensor1 *
    value)``."""

    @staticmethod
    def forward(ctx, x, t1, t2, value):
        ctx.value = value
        ctx.save_for_backward(t1 if _needs(ctx)[2] else None, t2 if _needs(ctx)[1] else None)
        b, dtype = ctx.backend, from_numpy_dtype(x.dtype)
        wide = _opmath(b, t1)
        scaled = wide if value == 1 else b.binary("mul", wide, b.full((), value, from_numpy_dtype(
            wide.dtype)))
        return _fused(b, scaled, t2, x, dtype)

    @staticmethod
    def backward(ctx, grad):
        t1, t2 = ctx.saved_tensors
        needs = ctx.needs_input_grad
        return (grad, grad * (t2 * ctx.value) if needs[1] else None,
                grad * (t1 * ctx.value) if needs[2] else None, None)


class Addcdiv(ArrayFunction):
    """``input + (value * tensor1) / tensor2`` of floating tensors of one dtype, as PyTorch's
    CPU kernel computes it (in float32 for the 16-bit floats, rounded once at the end).
    Backward (PyTorch's formulas): ``grad``, ``grad * (value / tensor2)``, ``-grad * (value *
    tensor1 / (tensor2 * tensor2))``."""

    @staticmethod
    def forward(ctx, x, t1, t2, value):
        ctx.value = value
        ctx.save_for_backward(t1 if _needs(ctx)[2] else None, t2)
        b, dtype = ctx.backend, from_numpy_dtype(x.dtype)
        wide = _opmath(b, t1)
        scaled = wide if value == 1 else b.binary("mul", b.full((), value, from_numpy_dtype(
            wide.dtype)), wide)
        out = b.binary("add", _opmath(b, x), b.binary("div", scaled, _opmath(b, t2)))
        return b.cast(out, dtype) if out.dtype != x.dtype else out

    @staticmethod
    def backward(ctx, grad):
        t1, t2 = ctx.saved_tensors
        needs, value = ctx.needs_input_grad, ctx.value
        return (grad, grad * (value / t2) if needs[1] else None,
                -grad * (value * t1 / (t2 * t2)) if needs[2] else None, None)


# ---------------------------------------------------------------------- math functions
# Each takes integer and bool tensors too and returns the default float for them (PyTorch's
# rule); backward formulas reuse the saved output where that is cheaper than the input.
class Exp(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("exp", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


def exp(input: Tensor) -> Tensor:
    """e to the power of each element: ``gradient.exp(gradient.tensor([0.0]))`` is ``tensor([1.])``."""
    return Exp.apply(_floating(input))


def exp2(input: Tensor) -> Tensor:
    """2 to the power of each element: ``gradient.exp2(gradient.tensor([3]))`` is ``tensor([8.])``."""
    return pow(2.0, _floating(input))


class Expm1(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("expm1", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y + 1)


def expm1(input: Tensor) -> Tensor:
    """``exp(x) - 1``, accurate for small x: ``gradient.expm1(gradient.tensor([1e-10]))``."""
    return Expm1.apply(_floating(input))


class Log(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("log", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


def log(input: Tensor) -> Tensor:
    """Natural logarithm (-inf at 0, nan below): ``gradient.log(gradient.tensor([1.0]))``."""
    return Log.apply(_floating(input))


class _LogBase(ArrayFunction):
    """log2 and log10: their own kernels, so that powers of the base give exact integers."""
    op, ln_base = "", 1.0

    @classmethod
    def forward(cls, ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary(cls.op, x)

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x * cls.ln_base)


class Log2(_LogBase):
    op, ln_base = "log2", _math.log(2)


class Log10(_LogBase):
    op, ln_base = "log10", _math.log(10)


def log2(input: Tensor) -> Tensor:
    """Base-2 logarithm: ``gradient.log2(gradient.tensor([8.0]))`` is ``tensor([3.])``."""
    return Log2.apply(_floating(input))


def log10(input: Tensor) -> Tensor:
    """Base-10 logarithm: ``gradient.log10(gradient.tensor([100.0]))`` is ``tensor([2.])``."""
    return Log10.apply(_floating(input))


class Log1p(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("log1p", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


def log1p(input: Tensor) -> Tensor:
    """``log(1 + x)``, accurate for small x: ``gradient.log1p(gradient.tensor([1e-10]))``."""
    return Log1p.apply(_floating(input))


class Sqrt(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("sqrt", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)  # inf at 0, like PyTorch


def sqrt(input: Tensor) -> Tensor:
    """Square root (nan below 0; the gradient at 0 is inf): ``gradient.tensor([4.0]).sqrt()``."""
    return Sqrt.apply(_floating(input))


class Rsqrt(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("reciprocal", ctx.backend.unary("sqrt", x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * y * y * -0.5


def rsqrt(input: Tensor) -> Tensor:
    """``1 / sqrt(x)``: ``gradient.tensor([4.0]).rsqrt()`` is ``tensor([0.5])``."""
    return Rsqrt.apply(_floating(input))


class Sin(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("sin", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cos(x)


def sin(input: Tensor) -> Tensor:
    """Sine, in radians: ``gradient.sin(gradient.tensor([0.0]))``."""
    return Sin.apply(_floating(input))


class Cos(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("cos", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * sin(x)


def cos(input: Tensor) -> Tensor:
    """Cosine, in radians: ``gradient.cos(gradient.tensor([0.0]))``."""
    return Cos.apply(_floating(input))


class Tan(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("tan", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y * y + 1)


def tan(input: Tensor) -> Tensor:
    """Tangent, in radians: ``gradient.tan(gradient.tensor([0.5]))``."""
    return Tan.apply(_floating(input))


class Asin(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("asin", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * rsqrt(1 - x * x)


def asin(input: Tensor) -> Tensor:
    """Inverse sine (nan outside [-1, 1]): ``gradient.asin(gradient.tensor([0.5]))``."""
    return Asin.apply(_floating(input))


class Acos(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("acos", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * rsqrt(1 - x * x)


def acos(input: Tensor) -> Tensor:
    """Inverse cosine (nan outside [-1, 1]): ``gradient.acos(gradient.tensor([0.5]))``."""
    return Acos.apply(_floating(input))


class Atan(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("atan", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x * x + 1)


def atan(input: Tensor) -> Tensor:
    """Inverse tangent: ``gradient.atan(gradient.tensor([1.0]))`` is ``tensor([0.7854])``."""
    return Atan.apply(_floating(input))


class Tanh(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("tanh", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent: ``gradient.tanh(gradient.tensor([0.5]))``."""
    return Tanh.apply(_floating(input))


class Sigmoid(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("sigmoid", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, without overflow for large |x|: ``gradient.tensor([0.0]).sigmoid()``."""
    return Sigmoid.apply(_floating(input))


class Erf(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("erf", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * exp(-x * x) * (2 / _math.sqrt(_math.pi))


def erf(input: Tensor) -> Tensor:
    """The error function: ``gradient.erf(gradient.tensor([0.5]))``."""
    return Erf.apply(_floating(input))


class Abs(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.unary("abs", x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sign(x)  # 0 at x == 0, like PyTorch


def abs(input: Tensor) -> Tensor:  # noqa: A001  (PyTorch's name)
    """Absolute value; integers stay integers; the gradient at 0 is 0: ``gradient.tensor([-2]).abs()``."""
    if input.dtype is bool_:
        raise DTypeError("abs: not supported for bool tensors")
    return Abs.apply(input)


arcsin, arccos, arctan, absolute = asin, acos, atan, abs


class Atan2(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("atan2", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        r2 = a * a + b * b
        # 1 / r^2, taken as 0 at the origin (PyTorch gives a zero gradient there, not nan)
        inv = where(r2 == 0, 0.0, 1 / where(r2 == 0, 1.0, r2))
        return (grad * b * inv if ctx.needs_input_grad[0] else None,
                -grad * a * inv if ctx.needs_input_grad[1] else None)


def atan2(input, other) -> Tensor:
    """The angle of the point (other, input), in (-pi, pi]: ``gradient.atan2(y, x)``.

    Integer operands give the default float.
    """
    dtype = result_type(input, other)
    if not dtype.is_floating_point:
        dtype = get_default_dtype()
    return Atan2.apply(*_promote(input, other, dtype, op="atan2"))


arctan2 = atan2


def hypot(input, other) -> Tensor:
    """``sqrt(input**2 + other**2)``: ``gradient.hypot(gradient.tensor([3.0]), gradient.tensor([4.0]))``.

    Needs a floating operand (PyTorch refuses integer ones). float16 and bfloat16 are computed in
    float32, so that the squares do not overflow; float32 overflows above about 1e19, where
    PyTorch's fused kernel does not.
    """
    dtype = result_type(input, other)
    if not dtype.is_floating_point:
        raise DTypeError(f"hypot: expected floating tensors, got {dtype}; convert them with .float()")
    compute = float32 if dtype.itemsize < 4 else dtype
    a, b = _promote(input, other, compute, op="hypot")
    return cast(sqrt(a * a + b * b), dtype)


# ---------------------------------------------------------------------- powers
def _integer_pow(backend, a, b):
    """``a ** b`` for integer or bool arrays with PyTorch's results for negative exponents.

    NumPy refuses negative integer exponents; PyTorch truncates the (fractional) result toward
    zero: 1 for a base of 1, +-1 for -1 (by the exponent's parity) and 0 for every other base.
    """
    dtype = from_numpy_dtype(a.dtype)
    if dtype is bool_:  # a ** b is False only for False ** True
        return backend.binary("logical_or", a, backend.unary("logical_not", b))
    if not dtype.is_signed:
        return backend.binary("pow", a, b)
    zero, one, minus_one = (backend.full((), v, dtype) for v in (0, 1, -1))
    negative = backend.binary("lt", b, zero)
    y = backend.binary("pow", a, backend.where(negative, zero, b))
    odd = backend.binary("ne", backend.binary("mod", b, backend.full((), 2, dtype)), zero)
    truncated = backend.where(backend.binary("eq", a, one), one,
                              backend.where(backend.binary("eq", a, minus_one),
                                            backend.where(odd, minus_one, one), zero))
    return backend.where(negative, truncated, y)


class Pow(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        if a.dtype.kind in "biu":
            return _integer_pow(ctx.backend, a, b)  # integer results have no gradient
        y = ctx.backend.binary("pow", a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        # The masked-out branches are computed on harmless stand-in values: a where() passes
        # zero to the branch it drops, and 0 * inf there would make second derivatives nan.
        if ctx.needs_input_grad[0]:
            # b * a^(b-1), with 0 where b == 0 so that 0^0 has derivative 0 as in PyTorch
            b_zero = b == 0
            grad_a = where(b_zero, 0.0, grad * b * pow(a, where(b_zero, 1.0, b - 1)))
        if ctx.needs_input_grad[1]:
            # y * log(a), taken as 0 where a == 0 and b >= 0 (PyTorch's convention)
            flat = (a == 0) & (b >= 0)
            grad_b = where(flat, 0.0, grad * y * log(where(flat, 1.0, a)))
        return grad_a, grad_b


def pow(input, exponent) -> Tensor:  # noqa: A001  (PyTorch's name)
    """``input ** exponent`` for tensor or scalar base and exponent, with PyTorch's dtypes.

    ``int_tensor ** 2`` stays an integer tensor, ``int_tensor ** 0.5`` is float32 and
    ``2 ** int_tensor`` is int64. An integer tensor to a negative Python int power raises, as in
    PyTorch; negative exponents inside an integer *tensor* truncate the result toward zero.

    Example: ``gradient.tensor([1.0, 2.0]) ** 2`` is ``tensor([1., 4.])``.
    """
    dtype = result_type(input, exponent)
    if not dtype.is_floating_point and not isinstance(exponent, Tensor) and exponent < 0:
        raise DTypeError(f"pow: integers to negative integer powers are not allowed (a {dtype} "
                         f"tensor to the power {exponent}); convert the base with .float() first")
    return Pow.apply(*_promote(input, exponent, dtype, op="pow"))


# ---------------------------------------------------------------------- comparisons and logic (no grad)
class _Compare(ArrayFunction):
    op = ""

    @classmethod
    def forward(cls, ctx, a, b):
        return ctx.backend.binary(cls.op, a, b)


def _comparison(op: str):
    fn_cls = type(op.capitalize(), (_Compare,), {"op": op})

    def compare(input, other) -> Tensor:
        return fn_cls.apply(*_promote(input, other, op=op))

    compare.__name__ = op
    compare.__doc__ = (f"Elementwise ``{op}`` comparison after promotion, giving a bool tensor (no "
                       f"gradient): ``gradient.{op}(x, 0.5)``.")
    return compare


eq, ne, lt, le, gt, ge = (_comparison(op) for op in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def _logical(op: str):
    fn_cls = type(op.title().replace("_", ""), (_Compare,), {"op": op})

    def logical(input, other) -> Tensor:
        return fn_cls.apply(*_promote(input, other, bool_, op=op))

    logical.__name__ = op
    logical.__doc__ = (f"Elementwise ``{op}`` of the truth values (nonzero is True), giving a bool "
                       f"tensor: ``gradient.{op}(x > 0, y > 0)``.")
    return logical


logical_and, logical_or, logical_xor = (_logical(op) for op in ("logical_and", "logical_or",
                                                                 "logical_xor"))


def _bitwise(op: str):
    fn_cls = type(op.title().replace("_", ""), (_Compare,), {"op": op})

    def bitwise(input, other) -> Tensor:
        a, b = _promote(input, other, op=op)
        if a.dtype.is_floating_point:
            raise DTypeError(f"{op}: expected integer or bool tensors, got {a.dtype}")
        return fn_cls.apply(a, b)

    bitwise.__name__ = op
    bitwise.__doc__ = (f"Elementwise ``{op}`` of integer or bool tensors (the ``&``, ``|``, ``^`` "
                       f"operators): ``gradient.{op}(mask1, mask2)``.")
    return bitwise


bitwise_and, bitwise_or, bitwise_xor = (_bitwise(op) for op in ("bitwise_and", "bitwise_or",
                                                                 "bitwise_xor"))


class _UnaryNoGrad(ArrayFunction):
    op = ""

    @classmethod
    def forward(cls, ctx, x):
        return ctx.backend.unary(cls.op, x)


def _unary_no_grad(op: str, doc: str, check=None):
    fn_cls = type(op.title().replace("_", ""), (_UnaryNoGrad,), {"op": op})

    def fn(input: Tensor) -> Tensor:
        if check is not None:
            check(input)
        return fn_cls.apply(input)

    fn.__name__ = op
    fn.__doc__ = doc
    return fn


def _no_float(x):
    if x.dtype.is_floating_point:
        raise DTypeError(f"bitwise_not: expected an integer or bool tensor, got {x.dtype}")


logical_not = _unary_no_grad("logical_not", "``not x`` elementwise, as a bool tensor: "
                             "``gradient.logical_not(mask)``.")
bitwise_not = _unary_no_grad("bitwise_not", "``~x`` for integer and bool tensors: "
                             "``gradient.bitwise_not(mask)``.", _no_float)
isnan = _unary_no_grad("isnan", "Where the elements are nan, as a bool tensor: ``x.isnan()``.")
isinf = _unary_no_grad("isinf", "Where the elements are +-inf, as a bool tensor: ``x.isinf()``.")
isfinite = _unary_no_grad("isfinite", "Where the elements are neither nan nor +-inf: "
                          "``x.isfinite()``.")


# ---------------------------------------------------------------------- where, masked_fill
class _FunctionAndMethod:
    """A public function whose Tensor method takes its arguments in another order.

    ``gradient.where(condition, x, y)`` is the function; PyTorch's method is
    ``x.where(condition, y)``. Calling this object calls the function; reading it from a tensor
    (``x.where``, via the descriptor protocol) gives the method.
    """

    def __init__(self, function, method):
        _functools.update_wrapper(self, function)
        self._function, self._method = function, method

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __get__(self, obj, objtype=None):
        return self if obj is None else _types.MethodType(self._method, obj)

    def __repr__(self) -> str:
        return f"<function gradient.{self.__name__}>"


class Where(ArrayFunction):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        zero = grad.new_zeros(())
        return None, where(cond, grad, zero), where(cond, zero, grad)


def _where(condition: Tensor, input, other, op: str = "where") -> Tensor:
    if not isinstance(condition, Tensor):
        raise ArgumentTypeError(f"{op}: expected the condition to be a bool tensor, got "
                                f"{type(condition).__name__}")
    if condition.dtype is not bool_:
        raise DTypeError(f"{op}: expected a bool condition, got a {condition.dtype} tensor; "
                         "compare (x != 0) or convert it with .bool()")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two scalars: their own result type (where(c, 1.0, 0) is float32, where(c, 1, 0) int64)
        input = _constant(input, result_type(input, other), condition)
    a, b = _promote(input, other, op=op)
    if condition._data.shape != a._data.shape or a._data.shape != b._data.shape:
        _broadcast_shapes(op, condition._data.shape, a._data.shape, b._data.shape)
    return Where.apply(condition, a, b)


def _where_function(condition: Tensor, input=None, other=None):
    """Elements of ``input`` where ``condition`` holds, of ``other`` elsewhere; broadcasting.

    ``condition`` must be a bool tensor; ``input`` and ``other`` may be tensors or numbers and are
    promoted to one dtype. The Tensor method is ``x.where(condition, y)`` (= ``where(condition, x, y)``).
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``, as in PyTorch.

    Example: ``gradient.where(x > 0, x, 0.0)``.
    """
    if input is None and other is None:
        from .index import nonzero  # (index imports this module)
        if not isinstance(condition, Tensor):
            raise ArgumentTypeError(f"where(): argument 'condition' (position 1) must be a "
                                    f"Tensor, not {type(condition).__name__}")
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise ArgumentTypeError(
            "where: expected both input and other, or neither (for the indices where "
            "condition holds)")
    return _where(condition, input, other)


def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    """``self.where(condition, other)``: ``where(condition, self, other)``, as in PyTorch."""
    return _where(condition, self, other)


_where_function.__name__ = _where_function.__qualname__ = "where"
where = _FunctionAndMethod(_where_function, _where_method)


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """``input`` with ``value`` wherever ``mask`` is True; the mask broadcasts with ``input``.

    ``value`` is a number or a 0-d tensor (which then gets a gradient), converted to ``input``'s
    dtype as PyTorch does (``int_tensor.masked_fill(mask, 2.5)`` writes 2).

    Example: ``scores.masked_fill(~allowed, float("-inf"))``.
    """
    if not isinstance(mask, Tensor) or mask.dtype is not bool_:
        got = f"a {mask.dtype} tensor" if isinstance(mask, Tensor) else type(mask).__name__
        raise DTypeError(f"masked_fill: expected a bool mask, got {got}; convert it with .bool()")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got a tensor of "
                             f"shape {tuple(value.shape)}")
        value = cast(value, input.dtype)
    else:
        value = _constant(value, input.dtype, input, checked=True)
    return _where(mask, value, input, op="masked_fill")


# ---------------------------------------------------------------------- maximum, minimum, clamp
class Maximum(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("maximum", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        half = where(a == b, grad * 0.5, grad)  # a tie splits the gradient evenly, as in PyTorch
        zero = grad.new_zeros(())
        return (where(a < b, zero, half) if ctx.needs_input_grad[0] else None,
                where(a > b, zero, half) if ctx.needs_input_grad[1] else None)


class Minimum(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("minimum", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        half = where(a == b, grad * 0.5, grad)
        zero = grad.new_zeros(())
        return (where(a > b, zero, half) if ctx.needs_input_grad[0] else None,
                where(a < b, zero, half) if ctx.needs_input_grad[1] else None)


def maximum(input, other) -> Tensor:
    """The larger of each pair of elements (nan if either is nan), broadcasting.

    Where both are equal each gets half the gradient. Example: ``gradient.maximum(x, y)``.
    """
    return Maximum.apply(*_promote(input, other, op="maximum"))


def minimum(input, other) -> Tensor:
    """The smaller of each pair of elements (nan if either is nan), broadcasting.

    Where both are equal each gets half the gradient. Example: ``gradient.minimum(x, y)``.
    """
    return Minimum.apply(*_promote(input, other, op="minimum"))


class Clamp(ArrayFunction):
    @staticmethod
    def forward(ctx, x, lo, hi):
        y = x
        if lo is not None:
            y = ctx.backend.binary("maximum", y, lo)
        if hi is not None:
            y = ctx.backend.binary("minimum", y, hi)
        ctx.save_for_backward(x, lo, hi)
        return y

    @staticmethod
    def backward(ctx, grad):
        # PyTorch's convention: x gets the gradient where lo <= x <= hi (boundaries included);
        # a bound gets it where it was the one chosen, and hi wins where lo > hi.
        x, lo, hi = ctx.saved_tensors
        zero = grad.new_zeros(())
        grad_x = grad_lo = grad_hi = None
        if ctx.needs_input_grad[0]:
            if lo is not None and hi is not None:
                inside = (x >= lo) & (x <= hi)
            else:
                inside = x >= lo if lo is not None else x <= hi
            grad_x = where(inside, grad, zero)
        if ctx.needs_input_grad[1]:
            below = x < lo if hi is None else (x < lo) & (lo < hi)
            grad_lo = where(below, grad, zero)
        if ctx.needs_input_grad[2]:
            above = x > hi if lo is None else (x > hi) | (hi < lo)
            grad_hi = where(above, grad, zero)
        return grad_x, grad_lo, grad_hi


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002  (PyTorch's names)
    """Each element limited to ``[min, max]``: ``min(max(x, min), max)``, so ``max`` wins if min > max.

    ``min`` and ``max`` may be None (but not both), numbers or tensors (which broadcast and get
    gradients). The result dtype promotes over all of them, as in PyTorch
    (``int_tensor.clamp(min=0.5)`` is float32). The gradient of ``input`` passes where
    ``min <= x <= max``.

    Example: ``x.clamp(min=0)``, ``gradient.clamp(x, -1.0, 1.0)``.
    """
    if min is None and max is None:
        raise ArgumentValueError("clamp: at least one of 'min' or 'max' must not be None")
    bounds = [b for b in (min, max) if b is not None]
    dtype = result_type(input, *bounds)
    if dtype is bool_ and not all(isinstance(b, Tensor) for b in bounds):
        # (PyTorch has no bool kernel for number bounds; bool tensor bounds work)
        raise DTypeError("clamp: number bounds are not supported for bool tensors; convert them with "
                         ".int() first")
    shapes = [t._data.shape for t in (input, *bounds) if isinstance(t, Tensor)]
    if len(shapes) > 1:
        _broadcast_shapes("clamp", *shapes)

    def operand(b):
        if b is None:
            return None
        return cast(b, dtype) if isinstance(b, Tensor) else _constant(b, dtype, input, checked=True)

    return Clamp.apply(cast(input, dtype), operand(min), operand(max))


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    """``clamp(input, min=min)``: ``x.clamp_min(0.0)``."""
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    """``clamp(input, max=max)``: ``x.clamp_max(1.0)``."""
    return clamp(input, max=max)


clip = clamp


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """Linear interpolation ``input + weight * (end - input)``, broadcasting.

    ``input`` and ``end`` must be floating tensors of one dtype; ``weight`` is a number, a 0-d
    tensor or a tensor of that dtype, as in PyTorch. Example: ``gradient.lerp(a, b, 0.25)``.
    """
    for name, t in (("input", input), ("end", end)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(
                f"lerp: expected {name} to be a tensor, got {type(t).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"lerp: expected floating tensors, got {input.dtype}")
    if end.dtype is not input.dtype:
        raise DTypeError(f"lerp: expected end to have dtype {input.dtype} (the dtype of input), got "
                         f"{end.dtype}")
    shapes = [input._data.shape, end._data.shape]
    if isinstance(weight, Tensor):
        if weight.ndim and weight.dtype is not input.dtype:
            raise DTypeError(f"lerp: expected weight to have dtype {input.dtype} (the dtype of "
                             f"input), got {weight.dtype}")
        # a 0-d weight promotes like any 0-d operand: it only wins over 0-d input and end
        dtype = result_type(input, end, weight)
        input, end, weight = cast(input, dtype), cast(end, dtype), cast(weight, dtype)
        shapes.append(weight._data.shape)
    else:
        weight = float(as_number(weight, "lerp: weight"))
    _broadcast_shapes("lerp", *shapes)
    return Lerp.apply(input, end, weight)


class Lerp(ArrayFunction):
    """``input + weight * (end - input)`` as PyTorch's CPU kernel computes it: ``d = end -
    input`` and then ``fma(weight, d, input)`` where ``|weight| < 0.5``, else ``fma(weight -
    1, d, end)`` (more accurate near 1), in float32 for the 16-bit floats, rounded once.
    ``weight`` a number or a tensor of the inputs' dtype. Backward (PyTorch's formulas):
    ``grad * (1 - weight)``, ``grad * weight`` and, for a tensor weight, ``grad * (end -
    input)``."""

    @staticmethod
    def forward(ctx, x, end, weight):
        ctx.weight = weight
        if not isinstance(weight, (int, float)):
            ctx.save_for_backward(x if _needs(ctx)[2] else None, end if _needs(ctx)[2] else None,
                                  weight)
        b, dtype = ctx.backend, from_numpy_dtype(x.dtype)
        if isinstance(weight, (int, float)) and x.shape == end.shape:
            y = kernels.call("lerp", b, x, end, float(weight), x.dtype)   # (one pass)
            if y is not None:
                return y
        start, stop = _opmath(b, x), _opmath(b, end)
        diff = b.binary("sub", stop, start)
        if isinstance(weight, (int, float)):     # (in the computing type, as PyTorch's)
            w = _np.asarray(weight, start.dtype)
            if _builtins.abs(float(w)) < 0.5:
                return _fused(b, float(w), diff, x, dtype)
            return _fused(b, float(w - w.dtype.type(1)), diff, end, dtype)
        w = _opmath(b, weight)
        small = b.binary("lt", b.unary("abs", w), b.full((), 0.5, from_numpy_dtype(w.dtype)))
        coeff = b.where(small, w, b.binary("sub", w, b.full((), 1, from_numpy_dtype(w.dtype))))
        return _fused(b, coeff, diff, b.where(small, x, end), dtype)

    @staticmethod
    def backward(ctx, grad):
        needs, weight = ctx.needs_input_grad, ctx.weight
        if isinstance(weight, (int, float)):
            return (grad * (1 - weight) if needs[0] else None,
                    grad * weight if needs[1] else None, None)
        x, end, weight = ctx.saved_tensors
        return (grad * (1 - weight) if needs[0] else None,
                grad * weight if needs[1] else None,
                grad * (end - x) if needs[2] else None)


# ---------------------------------------------------------------------- rounding and sign (zero gradient)
def _zero_grad(grad: Tensor) -> Tensor:
    """The gradient of a piecewise constant function: zeros (not None, and not grad * 0, which
    would turn an inf upstream gradient into nan)."""
    from .creation import zeros_like
    return zeros_like(grad)


def _copy(x: Tensor) -> Tensor:
    """A new tensor with the same values (what PyTorch's rounding functions return for integers)."""
    from .shape import clone
    return clone(x)


def _no_bool(op: str, x: Tensor) -> None:
    """PyTorch has no bool kernels for rounding and division."""
    if x.dtype is bool_:
        raise DTypeError(f"{op}: not supported for bool tensors; convert with .int() or .float() first")


class _Rounding(ArrayFunction):
    op = ""

    @classmethod
    def forward(cls, ctx, x):
        return ctx.backend.unary(cls.op, x)

    @staticmethod
    def backward(ctx, grad):
        return _zero_grad(grad)


class Trunc(_Rounding):
    op = "trunc"


class Floor(_Rounding):
    op = "floor"


class Ceil(_Rounding):
    op = "ceil"


class Round(ArrayFunction):
    @staticmethod
    def forward(ctx, x, decimals):
        backend = ctx.backend
        if decimals == 0:
            return backend.unary("round", x)
        # PyTorch's formula: scale by a power of ten (divide for negative decimals), round half
        # to even, scale back; float16 and bfloat16 in float32, as PyTorch does, so that the
        # scaled value neither overflows nor is rounded to the storage type before it is rounded
        dtype = from_numpy_dtype(x.dtype)
        compute = float32 if dtype.itemsize < 4 else dtype
        x = backend.cast(x, compute)
        scale = backend.full((), 10.0 ** _builtins.abs(decimals), compute)
        if decimals > 0:
            y = backend.binary("div", backend.unary("round", backend.binary("mul", x, scale)), scale)
        else:
            y = backend.binary("mul", backend.unary("round", backend.binary("div", x, scale)), scale)
        return backend.cast(y, dtype)

    @staticmethod
    def backward(ctx, grad):
        return _zero_grad(grad), None


class Sign(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        s = ctx.backend.unary("sign", x)
        dtype = from_numpy_dtype(x.dtype)
        if dtype.is_floating_point:  # PyTorch's sign of nan is 0 (NumPy's is nan)
            s = ctx.backend.where(ctx.backend.unary("isnan", x), ctx.backend.full((), 0, dtype), s)
        return s

    @staticmethod
    def backward(ctx, grad):
        return _zero_grad(grad)


def trunc(input: Tensor) -> Tensor:
    """Round toward zero; the gradient is zero: ``gradient.tensor([-1.5]).trunc()`` is ``tensor([-1.])``."""
    _no_bool("trunc", input)
    return Trunc.apply(input) if input.dtype.is_floating_point else _copy(input)


def floor(input: Tensor) -> Tensor:
    """Round toward -inf; the gradient is zero: ``gradient.tensor([-1.5]).floor()`` is ``tensor([-2.])``."""
    _no_bool("floor", input)
    return Floor.apply(input) if input.dtype.is_floating_point else _copy(input)


def ceil(input: Tensor) -> Tensor:
    """Round toward +inf; the gradient is zero: ``gradient.tensor([-1.5]).ceil()`` is ``tensor([-1.])``."""
    _no_bool("ceil", input)
    return Ceil.apply(input) if input.dtype.is_floating_point else _copy(input)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001  (PyTorch's name)
    """Round half to even (``round(2.5) == 2``), to ``decimals`` places; the gradient is zero.

    Example: ``gradient.tensor([0.5, 1.5, 1.26]).round()`` is ``tensor([0., 2., 1.])``;
    ``x.round(decimals=1)`` rounds to tenths (negative decimals round to tens, hundreds, ...).
    """
    _no_bool("round", input)
    if not input.dtype.is_floating_point:
        if decimals != 0:
            raise DTypeError(f"round: decimals is only supported for floating tensors, got {input.dtype}")
        return _copy(input)
    return Round.apply(input, int(decimals))


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element (0 for nan), in ``input``'s dtype; zero gradient.

    Example: ``gradient.tensor([-2.0, 0.0, 3.0]).sign()`` is ``tensor([-1., 0., 1.])``.
    """
    return _copy(input) if input.dtype is bool_ else Sign.apply(input)


def frac(input: Tensor) -> Tensor:
    """The fractional part ``x - trunc(x)`` (with x's sign): ``gradient.tensor([-1.25]).frac()``."""
    if not input.dtype.is_floating_point:
        raise DTypeError(f"frac: expected a floating tensor, got {input.dtype}")
    return sub(input, trunc(input))


sgn, fix = sign, trunc


class FloorDivide(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.binary("floordiv", a, b)

    @staticmethod
    def backward(ctx, grad):
        return _zero_grad(grad), _zero_grad(grad)


def floor_divide(input, other) -> Tensor:
    """Division rounded toward -inf (the ``//`` operator), in the promoted dtype.

    Integer division by zero raises ZeroDivisionError; the gradient is zero (PyTorch has none).
    Example: ``gradient.tensor([-7, 7]) // 2`` is ``tensor([-4, 3])``.
    """
    a, b = _promote(input, other, op="floor_divide")
    _no_bool("floor_divide", a)
    return FloorDivide.apply(a, b)


class Remainder(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("mod", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad, (-grad * floor_divide(a, b) if ctx.needs_input_grad[1] else None)


def remainder(input, other) -> Tensor:
    """``input % other`` with the sign of the divisor (Python's and PyTorch's convention).

    Example: ``gradient.tensor([-7, 7]) % 3`` is ``tensor([2, 1])``; see :func:`fmod` for C's.
    """
    a, b = _promote(input, other, op="remainder")
    _no_bool("remainder", a)
    return Remainder.apply(a, b)


class Fmod(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("fmod", a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad, (-grad * div(a, b, rounding_mode="trunc") if ctx.needs_input_grad[1] else None)


def fmod(input, other) -> Tensor:
    """``input - trunc(input / other) * other``: the remainder with the sign of the dividend (C's fmod).

    Example: ``gradient.fmod(gradient.tensor([-7, 7]), 3)`` is ``tensor([-1, 1])``.
    """
    a, b = _promote(input, other, op="fmod")
    _no_bool("fmod", a)
    return Fmod.apply(a, b)


# ---------------------------------------------------------------------- nan_to_num, closeness
def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """nan, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (default: the largest
    and smallest finite values of the dtype); the gradient passes only at finite elements.

    Example: ``gradient.tensor([float("nan"), 1.0]).nan_to_num()`` is ``tensor([0., 1.])``.
    """
    nan = as_number(nan, "nan_to_num: nan")
    posinf = None if posinf is None else as_number(posinf, "nan_to_num: posinf")
    neginf = None if neginf is None else as_number(neginf, "nan_to_num: neginf")
    if not input.dtype.is_floating_point:
        return _copy(input)
    info = _ml_dtypes.finfo(input.dtype.numpy)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    fill = [_constant(v, input.dtype, input) for v in (nan, posinf, neginf)]
    with _no_grad():
        replacement = where(isnan(input), fill[0], where(input > 0, fill[1], fill[2]))
    return where(isfinite(input), input, replacement)


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """Where ``|input - other| <= atol + rtol * |other|`` (or both are equal, infinities included).

    A bool tensor, broadcasting; both tensors must have one dtype, as in PyTorch. nan is close to
    nan only with ``equal_nan=True``. Example: ``gradient.isclose(x, y, atol=1e-6)``.
    """
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise ArgumentTypeError(f"isclose: expected two tensors, got {type(input).__name__} and "
                                f"{type(other).__name__}")
    if input.dtype is not other.dtype:
        raise DTypeError(f"isclose: expected both tensors to have the same dtype, got {input.dtype} "
                         f"and {other.dtype}")
    if rtol < 0 or atol < 0:
        raise ArgumentValueError(
            f"isclose: rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    _broadcast_shapes("isclose", input._data.shape, other._data.shape)
    with _no_grad():
        close = eq(input, other)
        if equal_nan and input.dtype.is_floating_point:
            close = close | (isnan(input) & isnan(other))
        if rtol == 0 and atol == 0:
            return close
        a, b = input, other
        if not a.dtype.is_floating_point:  # exact differences (no integer wrap-around)
            a, b = cast(a, float64), cast(b, float64)
        allowed = abs(b * rtol) + atol
        # equal elements (infinities included) count as their own difference 0, so that
        # inf - inf is never computed
        actual = abs(where(close, 0, a) - where(close, 0, b))
        return close | (isfinite(actual) & (actual <= allowed))


def _all(x: Tensor) -> bool:
    return bool(x._backend.to_numpy(x._backend.reduce("all", x._data, None, False)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when every element of :func:`isclose` is: ``gradient.allclose(x, y)``."""
    return _all(isclose(input, other, rtol, atol, equal_nan))


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and equal values (after promotion; nan != nan).

    Example: ``gradient.equal(gradient.tensor([1, 2]), gradient.tensor([1.0, 2.0]))`` is True.
    """
    if tuple(input.shape) != tuple(other.shape):
        return False
    with _no_grad():
        return _all(eq(input, other))


# ---------------------------------------------------------------------- in-place variants
_UFUNC_OF = {"add_": _np.add, "sub_": _np.subtract, "mul_": _np.multiply,
             "div_": _np.true_divide}


def arithmetic_in_place(x: Tensor, op: str, other, alpha=1) -> bool:
    """``x.add_(other, alpha=...)``, ``x.sub_(...)``, ``x.mul_(other)`` or ``x.div_(other)``
    written straight into x's storage where that gives what the out-of-place op written back
    gives: True when done (the version counter bumped), False to leave it to
    :meth:`Tensor._inplace`.

    Taken: nothing is recorded, x is a float32 or float64 array on the CPU, and ``other`` a
    Python number (``alpha`` 1) or a tensor of x's dtype on the CPU whose shape broadcasts to
    x's. The out-of-place op computes a new array and copies it back: two passes over memory
    and a few microseconds of dispatch for what is often a step of a training loop (a manual
    SGD step, an exponential moving average of weights, gradient clipping); here one NumPy
    ufunc or one fused multiply-add (``alpha``: PyTorch's ``fma(alpha, other, x)``, as
    :class:`AddScaled`) writes into x. The arithmetic is the same in both: the same bits.
    """
    if isinstance(other, Tensor):
        arrays = _direct_operands(x, op, other)
        if arrays is None:
            return False
        data, value = arrays
    elif type(other) in (int, float) and alpha == 1:
        arrays = _direct_operands(x, op)
        if arrays is None:
            return False
        data, = arrays
        value = _constant(other, x.dtype, x)._data
    else:
        return False
    if op == "div_":
        with _np.errstate(all="ignore"):      # (x / 0 is inf or nan, as the op gives it)
            _np.true_divide(data, value, out=data)
    elif alpha == 1:
        _UFUNC_OF[op](data, value, out=data)
    else:
        if not _number(alpha) or op == "mul_" or _overlaps(value, data):
            return False
        scale = float(_np.asarray(alpha, data.dtype))     # (checked as AddScaled's alpha)
        _constant(alpha, x.dtype, x, checked=True)
        if not _fma_into(data, -scale if op == "sub_" else scale, value, data):
            return False
    x._version.bump(op)
    return True


def blend_in_place(x: Tensor, op: str, tensor1, tensor2, value) -> bool:
    """``x.addcmul_(tensor1, tensor2, value=...)``, ``x.addcdiv_(...)`` or ``x.lerp_(end,
    weight)`` (``tensor1`` the end, ``tensor2`` None, ``value`` the weight, a number) written
    straight into x's storage, as :func:`arithmetic_in_place` does (the same conditions, the
    arithmetic of :class:`Addcmul`, :class:`Addcdiv` and :class:`Lerp`): True when done,
    False to leave it to the op written back. The steps of Adam-like optimizers, and a
    weight average's ``ema.lerp_(w, 1 - decay)``."""
    if not _number(value):
        return False
    others = (tensor1,) if tensor2 is None else (tensor1, tensor2)
    arrays = _direct_operands(x, op, *others)
    if arrays is None:
        return False
    data, t1 = arrays[0], arrays[1]
    k = data.dtype.type
    if op == "lerp_":
        done = t1.shape == data.shape and not _overlaps(t1, data) and kernels.call(
            "lerp", "cpu", data, t1, float(as_number(value, "lerp: weight")), data.dtype,
            out=data) is not None
    elif op == "addcmul_":
        t2 = arrays[2]
        scaled = t1 if value == 1 else _np.multiply(t1, k(value))
        done = not _overlaps(scaled, data) and not _overlaps(t2, data) and \
            _fma_into(data, scaled, t2, data)
    else:                                     # addcdiv_: x + (value * t1) / t2, each rounded
        with _np.errstate(all="ignore"):
            quotient = _np.true_divide(t1 if value == 1 else _np.multiply(k(value), t1),
                                       arrays[2])
        _np.add(data, quotient, out=data)
        done = True
    if done:
        x._version.bump(op)
    return done


def _direct_blend(op: str):
    """``x.op(tensor1, tensor2, value=...)`` (addcmul_, addcdiv_) or ``x.lerp_(end, weight)``
    by :func:`blend_in_place`, for calls of those forms (others: False)."""
    if op == "lerp_":
        return lambda x, *args, **kwargs: (len(args) == 2 and not kwargs and blend_in_place(
            x, op, args[0], None, args[1]))
    return lambda x, *args, **kwargs: (len(args) == 2 and set(kwargs) <= {"value"} and
                                       blend_in_place(x, op, *args, kwargs.get("value", 1)))


#: In-place methods with a direct write to try before the op written back.
_DIRECT_WRITES = {op: _direct_blend(op) for op in ("lerp_", "addcmul_", "addcdiv_")}


def _direct_operands(x: Tensor, op: str, *others):
    """``[x's array, the others' arrays]`` where an in-place ``op`` may write x's storage
    directly: nothing recorded (refusals raised as the op raises them), a float32/float64
    CPU array, operands that are CPU tensors of its dtype broadcasting into its shape; else
    None."""
    data, backend = x._data, x._backend
    if type(data) is not _np.ndarray or backend.name != "cpu" or \
            data.dtype not in _IN_PLACE_DTYPES or x._check_inplace(op, *others):  # (True: recorded)
        return None
    if _is_grad_enabled() and x._writes_through_view() and x._base.requires_grad:
        return None          # (a view taken under no_grad: its base's graph follows the write)
    arrays = [data]
    for other in others:     # (on another device: the op written back raises DeviceError)
        value = other._data if isinstance(other, Tensor) and other._backend is backend else None
        if type(value) is not _np.ndarray or value.dtype != data.dtype or \
                (value.shape != data.shape and not _broadcasts_into(value.shape, data.shape)):
            return None
        arrays.append(value)
    return arrays


def _overlaps(a, data) -> bool:
    """Whether ``a`` may share memory with ``data`` other than as the same array (an fma
    writing ``data`` reads each element of ``data`` itself before writing it, nothing else)."""
    return a is not data and _np.may_share_memory(a, data)


def _fma_into(data, a, b, c) -> bool:
    """``fma(a, b, c)`` written into ``data`` by the CPU's kernel; False where it declines."""
    return kernels.call("fma", "cpu", _np.asarray(a, data.dtype), b, c, data.dtype,
                        out=data) is not None


_IN_PLACE_DTYPES = (_np.dtype(_np.float32), _np.dtype(_np.float64))


def _broadcasts_into(shape: tuple, into: tuple) -> bool:
    """Whether ``shape`` broadcasts to ``into`` without growing it."""
    return len(shape) <= len(into) and all(
        n == 1 or n == m for n, m in zip(reversed(shape), reversed(into)))


def _inplace_op(input: Tensor, name: str, fn, *others) -> Tensor:
    """``input`` overwritten with ``fn(input, *others)``: the engine of every ``x.op_()`` here.

    It runs the out-of-place op and writes its result into ``input``'s storage through
    ``Tensor._inplace``, which bumps the version counter (so a graph that saved ``input``
    notices on backward), refuses a leaf that requires grad (as PyTorch does) and, when
    recording, moves ``input`` to the new node of the graph. ``others`` are the arguments that
    may require grad; the result must fit in ``input``'s shape, and its dtype must be storable in
    ``input``'s (``int_tensor.sqrt_()`` raises, as in PyTorch).
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"{name}: expected a Tensor to modify in place, got {type(input).__name__}")
    return input._inplace(name, fn, *others)   # (Tensor._write refuses a result that grows it)


def _make_inplace(fn, name: str | None = None):
    """The in-place method ``name`` (``fn.__name__ + '_'`` by default) of the out-of-place ``fn``.

    Positional and keyword arguments are passed on to ``fn``; tensors among them may require
    grad (``a.lerp_(b, w)`` with ``b`` requiring grad records the graph). Where
    :data:`_DIRECT_WRITES` has the method, it is tried first.
    """
    name = name or fn.__name__ + "_"
    direct = _DIRECT_WRITES.get(name)

    def method(input: Tensor, *args, **kwargs) -> Tensor:
        if direct is not None and isinstance(input, Tensor) and direct(input, *args, **kwargs):
            return input
        keys, n = tuple(kwargs), len(args)

        def apply(s, *values):
            return fn(s, *values[:n], **dict(zip(keys, values[n:])))

        return _inplace_op(input, name, apply, *args, *kwargs.values())

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"In-place :func:`{fn.__name__}`: ``x.{name}(...)`` overwrites ``x`` with "
                      f"``x.{fn.__name__}(...)`` and returns ``x``. Differentiable when ``x`` is not "
                      "a leaf that requires grad.")
    return method


_INPLACE_OF = {
    # math functions (integer tensors raise where the result is floating, as in PyTorch)
    "exp_": exp, "exp2_": exp2, "expm1_": expm1, "log_": log, "log2_": log2, "log10_": log10,
    "log1p_": log1p, "sqrt_": sqrt, "rsqrt_": rsqrt, "sin_": sin, "cos_": cos, "tan_": tan,
    "asin_": asin, "acos_": acos, "atan_": atan, "arcsin_": asin, "arccos_": acos,
    "arctan_": atan, "tanh_": tanh, "sigmoid_": sigmoid, "erf_": erf, "reciprocal_": reciprocal,
    "square_": square, "neg_": neg, "negative_": neg, "abs_": abs, "absolute_": abs,
    "atan2_": atan2, "arctan2_": atan2, "hypot_": hypot,
    # rounding and sign
    "floor_": floor, "ceil_": ceil, "round_": round, "trunc_": trunc, "fix_": trunc,
    "frac_": frac, "sign_": sign, "sgn_": sign,
    # arithmetic that Tensor does not define itself (add_, sub_, mul_, div_, pow_ are methods)
    "floor_divide_": floor_divide, "remainder_": remainder, "fmod_": fmod,
    "true_divide_": div, "multiply_": mul, "subtract_": sub, "divide_": div,
    # selection and mixing
    "clamp_min_": clamp_min, "clamp_max_": clamp_max, "lerp_": lerp, "addcmul_": addcmul,
    "addcdiv_": addcdiv, "nan_to_num_": nan_to_num,
    # comparisons and logic: the bool result stored in the tensor's dtype (1 and 0)
    "eq_": eq, "ne_": ne, "lt_": lt, "le_": le, "gt_": gt, "ge_": ge,
    "logical_not_": logical_not, "logical_and_": logical_and, "logical_or_": logical_or,
    "logical_xor_": logical_xor, "bitwise_not_": bitwise_not, "bitwise_and_": bitwise_and,
    "bitwise_or_": bitwise_or, "bitwise_xor_": bitwise_xor,
}
globals().update({_name: _make_inplace(_fn, _name) for _name, _fn in _INPLACE_OF.items()})
TENSOR_METHODS = TENSOR_METHODS + tuple(_INPLACE_OF)
