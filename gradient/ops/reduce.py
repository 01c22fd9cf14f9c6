"""Reductions: sum, mean, prod, max, var, norm, logsumexp ... and the scans cumsum and cumprod.

``dim`` is an int, a tuple of ints (negative ones count from the end), or None (or ``()``) for
every dimension; ``keepdim=True`` keeps the reduced dimensions with size 1. Result dtypes
follow PyTorch: integer and bool sums and products are int64, ``argmax`` is int64, ``all`` and
``any`` give bool, float-only reductions (mean, var, norm) refuse integer inputs.

Gradient conventions (the same as PyTorch's):

- ``amax``/``amin`` and ``max()``/``min()``/``median()`` without ``dim`` split the gradient evenly
  among tied elements; ``max(dim=...)``/``min``/``median`` with ``dim`` send it to the returned index.
- ``prod`` is exact when the input holds zeros (one or several), to second order.
- ``std`` and ``norm`` have gradient 0, not inf or nan, where the result is 0.

float16 and bfloat16 inputs of ``mean``, ``var``, ``std`` and ``norm`` are reduced in float32
and the result rounded back, as PyTorch's CPU kernels do.

Deliberate differences from PyTorch: ``prod`` takes a tuple ``dim``; ``logsumexp`` and
``median`` take ``dim=None`` (all elements); ``amax``/``amin`` send the gradient of a nan
result to the nan elements (PyTorch's give nan gradients); which index ``median`` returns among
ties may differ.

Example::

    >>> x = gradient.tensor([[1.0, 5.0], [3.0, 2.0]])
    >>> x.sum(dim=0), x.max(dim=1).values, x.norm(dim=-1, keepdim=True)
"""

from __future__ import annotations

import math as _math
import operator as _operator
from collections import namedtuple as _namedtuple

from ..autograd.function import ArrayFunction
from ..dtypes import as_dtype as _as_dtype
from ..dtypes import bool_, float32, from_numpy_dtype, int64, uint8
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_number
from .elementwise import _floating, cast, isnan, maximum, minimum, pow, where
from .elementwise import abs as _abs  # (gradient 0 at 0, as PyTorch's norms)
from .elementwise import sign as _sign
from .shape import clone, expand, flip, reshape, wrap_dim

TENSOR_METHODS = (
    "sum", "mean", "nansum", "nanmean", "prod", "max", "min", "amax", "amin", "aminmax",
    "argmax", "argmin", "var", "std", "logsumexp", "cumsum", "cumprod", "norm", "all", "any",
    "count_nonzero", "median", "sum_to_size", "diff",
)

# The (values, indices) results of max/min/median with a dim, like torch.return_types.max:
# tuples that unpack, with .values and .indices.
_max_result = _namedtuple("max", ("values", "indices"))
_min_result = _namedtuple("min", ("values", "indices"))
_median_result = _namedtuple("median", ("values", "indices"))
_aminmax_result = _namedtuple("aminmax", ("min", "max"))


# ---------------------------------------------------------------------- dims and shapes
def _axis(dim, ndim: int) -> int:
    """One ``dim`` as a non-negative axis: IndexError when out of range, TypeError when not an int
    (``int(1.5)`` would quietly reduce dimension 1)."""
    try:
        dim = _operator.index(dim)
    except TypeError:
        raise ArgumentTypeError(
            f"dim must be an int (or, where the reduction takes several, a tuple of "
            f"ints), got {dim!r}") from None
    return wrap_dim(dim, ndim)


def _reduce_axes(dim, ndim: int) -> tuple:
    """``dim`` as a sorted tuple of non-negative axes; None and ``()`` mean every dimension."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    axes = [_axis(d, ndim) for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"dim {dims} names the same dimension more than once")
    return tuple(sorted(axes)) if ndim else ()  # a 0-d tensor accepts dim 0 / -1: nothing to reduce


def _keepdim_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _out_shape(shape, axes, keepdim):
    return _keepdim_shape(shape, axes) if keepdim else \
        tuple(n for i, n in enumerate(shape) if i not in axes)


def _keep(grad: Tensor, ctx) -> Tensor:
    """The upstream gradient with the reduced dimensions put back (size 1), to broadcast."""
    if ctx.keepdim or ctx.axes == tuple(range(len(ctx.axes))):
        return grad  # leading dimensions reduced away broadcast back without a reshape
    return reshape(grad, _keepdim_shape(ctx.shape, ctx.axes))


def _count(shape, axes) -> int:
    return _math.prod(shape[a] for a in axes)


def _check_nonempty(name: str, input: Tensor, axes) -> None:
    """Reductions without an identity (max, argmax, median with dim) need something to reduce."""
    for a in axes:
        if input.shape[a] == 0:
            raise IndexRangeError(
                f"{name}(): expected reduction dim {a} to have non-zero size, got a "
                f"tensor of shape {tuple(input.shape)}; this reduction has no identity")
    if not axes and input.numel() == 0:
        raise IndexRangeError(
            f"{name}(): cannot reduce an empty tensor of shape {tuple(input.shape)}; "
            "this reduction has no identity")


def _require_float(name: str, input: Tensor) -> None:
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{name}: expected a floating point tensor, got {input.dtype}; pass "
                         "dtype= or convert with .float()")


def _is_half(input: Tensor) -> bool:
    """float16 and bfloat16: mean, var, std and norm reduce them in float32 and round the result
    back, as PyTorch's CPU kernels do, since their sums (of squares) overflow float16 long before
    the result does."""
    return input.dtype.is_floating_point and input.dtype.itemsize < 4


# ---------------------------------------------------------------------- small private helpers
class _Sqrt(ArrayFunction):
    """sqrt with gradient 0 where the result is 0 (PyTorch's convention for std and norm)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.unary("sqrt", x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        zero = y == 0
        # the masked branch divides by 1, not 0, so that its own gradient is not 0/0 = nan
        return where(zero, 0.0, grad / (2 * where(zero, 1.0, y)))


class _Shift(ArrayFunction):
    """``x`` moved ``steps`` places along ``axis`` (back when negative); vacated places hold ``fill``.

    ``0 < |steps| < x.shape[axis]``. The adjoint is the shift the other way, filled with 0.
    """

    @staticmethod
    def forward(ctx, x, axis, steps, fill):
        b, n = ctx.backend, x.shape[axis]
        ctx.axis, ctx.steps = axis, steps
        kept = slice(0, n - steps) if steps > 0 else slice(-steps, n)
        widths = [(0, 0)] * x.ndim
        widths[axis] = (steps, 0) if steps > 0 else (0, -steps)
        return b.pad(b.getitem(x, (slice(None),) * axis + (kept,)), widths, "constant", fill)

    @staticmethod
    def backward(ctx, grad):
        return _Shift.apply(grad, ctx.axis, -ctx.steps, 0), None, None, None


# ---------------------------------------------------------------------- sum, mean, prod
class Sum(ArrayFunction):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return ctx.backend.reduce("sum", x, axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand(_keep(grad, ctx), ctx.shape), None, None


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (all dimensions when None). Integer and bool inputs sum to int64.

    >>> gradient.tensor([[1, 2], [3, 4]]).sum(dim=1)    # tensor([3, 7])
    """
    if dtype is not None:
        # PyTorch converts the input first; integers accumulate in int64, so the result is too
        dtype = _as_dtype(dtype)
        return cast(sum(cast(input, dtype), dim, keepdim), dtype)
    return Sum.apply(input, _reduce_axes(dim, input.ndim), keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over ``dim``; expects a floating input (or ``dtype=``), like PyTorch. Empty: nan.

    >>> gradient.tensor([[1.0, 2.0], [3.0, 4.0]]).mean(-1)   # tensor([1.5, 3.5])
    """
    if dtype is not None:
        input = cast(input, _as_dtype(dtype))
    _require_float("mean", input)
    if _is_half(input):
        return cast(mean(cast(input, float32), dim, keepdim), input.dtype)
    axes = _reduce_axes(dim, input.ndim)
    count = _count(input.shape, axes)
    total = Sum.apply(input, axes, keepdim)
    return total / count if count else total * float("nan")


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating nan as 0 (their gradient is 0).

    >>> gradient.tensor([1.0, float("nan"), 2.0]).nansum()   # tensor(3.)
    """
    if input.dtype.is_floating_point:
        input = where(isnan(input), 0.0, input)
    return sum(input, dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the elements that are not nan (nan where all are).

    >>> gradient.tensor([1.0, float("nan"), 2.0]).nanmean()  # tensor(1.5)
    """
    if dtype is not None:
        input = cast(input, _as_dtype(dtype))
    _require_float("nanmean", input)
    present = sum(~isnan(input), dim, keepdim)
    return nansum(input, dim, keepdim) / present


class Prod(ArrayFunction):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.save_for_backward(x)
        return ctx.backend.reduce("prod", x, axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _keep(grad, ctx) * _prod_others(x, ctx.axes), None, None


def _prod_others(x: Tensor, axes) -> Tensor:
    """For each element, the product of the other elements of its slice: d prod / d x_i.

    Written without dividing by zero and exact to second order when ``x`` holds zeros:
    prod_{j != i} x_j = (product of the nonzero others) * (product of the zero others), and the
    product of the zero others is 1 when there are none, 0 when there are two or more, and when
    there is exactly one it is that element: its value is 0 but its derivative is 1, which the
    sum ``lone`` of the other zero elements carries (value 0, derivative 1 on each).
    """
    is_zero = x == 0
    nonzero = where(is_zero, 1.0, x)
    nonzero_others = Prod.apply(nonzero, axes, True) / nonzero
    zero_values = where(is_zero, x, 0.0)
    lone = Sum.apply(zero_values, axes, True) - zero_values
    other_zeros = Sum.apply(is_zero, axes, True) - cast(is_zero, int64)
    zero_others = where(other_zeros == 0, 1.0, where(other_zeros == 1, lone, 0.0))
    return nonzero_others * zero_others


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over ``dim`` (an int, or None for all). Integer and bool inputs give int64.

    The gradient is exact with zeros in the input. (PyTorch takes a single int ``dim``; a tuple
    works here too.)

    >>> gradient.tensor([[1.0, 2.0], [3.0, 4.0]]).prod(dim=0)   # tensor([3., 8.])
    """
    if dtype is not None:  # (see sum)
        dtype = _as_dtype(dtype)
        return cast(prod(cast(input, dtype), dim, keepdim), dtype)
    return Prod.apply(input, _reduce_axes(dim, input.ndim), keepdim)


# ---------------------------------------------------------------------- max, min, median
class _EvenSplitReduce(ArrayFunction):
    """A reduction selecting elements by value; the gradient is split evenly among ties.

    Subclasses compute ``value`` with every reduced dimension kept (size 1).
    """

    @classmethod
    def forward(cls, ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        value = cls.reduce(ctx.backend, x, axes)
        ctx.save_for_backward(x, value)
        return value if keepdim else ctx.backend.reshape(value, _out_shape(x.shape, axes, False))

    @staticmethod
    def backward(ctx, grad):
        x, value = ctx.saved_tensors
        # a nan result came from nan elements: they get its gradient (PyTorch does so for
        # max() and median(); its amax gives nan gradients there instead)
        chosen = (x == value) | (isnan(x) & isnan(value))
        count = Sum.apply(chosen, ctx.axes, True)
        return where(chosen, _keep(grad, ctx) / count, 0.0), None, None


class Amax(_EvenSplitReduce):
    @staticmethod
    def reduce(b, x, axes):
        return b.reduce("max", x, axes, True)


class Amin(_EvenSplitReduce):
    @staticmethod
    def reduce(b, x, axes):
        return b.reduce("min", x, axes, True)


class MedianAll(_EvenSplitReduce):
    @staticmethod
    def reduce(b, x, axes):
        flat = b.reshape(x, (x.size,))
        value = b.take_along_axis(flat, _median_index(b, flat, 0), 0)
        return b.reshape(value, (1,) * x.ndim)


def _median_index(b, x, axis):
    """Index of the lower median along ``axis`` (kept, size 1); of the first nan where there is one."""
    n = x.shape[axis]
    values, order = b.sort(x, axis, False, True)  # nan sorts last
    pos = b.full(_keepdim_shape(x.shape, (axis,)), (n - 1) // 2, int64)
    if x.dtype.kind == "f":
        nans = b.reduce("sum", b.unary("isnan", x), (axis,), True)
        first_nan = b.binary("sub", b.full((), n, int64), nans)
        pos = b.where(b.binary("gt", nans, b.full((), 0, int64)), first_nan, pos)
    return b.take_along_axis(order, pos, axis)


class _SelectAlong(ArrayFunction):
    """(values, indices): one element per slice along ``axis``, picked by ``kind``.

    The gradient goes to the picked element only (PyTorch's max/min/median with a dim).
    """

    @staticmethod
    def forward(ctx, x, axis, keepdim, kind):
        b = ctx.backend
        if kind == "median":
            index = _median_index(b, x, axis)
        else:
            index = b.reduce("argmax" if kind == "max" else "argmin", x, axis, True)
        values = b.take_along_axis(x, index, axis)
        ctx.index, ctx.axis, ctx.n, ctx.keepdim = index, axis, x.shape[axis], keepdim
        if not keepdim:
            shape = _out_shape(x.shape, (axis,), False)
            values, index = b.reshape(values, shape), b.reshape(index, shape)
        ctx.mark_non_differentiable(index)
        return values, index

    @staticmethod
    def backward(ctx, grad, _grad_index=None):
        b = ctx.backend
        positions = [1] * ctx.index.ndim
        positions[ctx.axis] = ctx.n
        along = b.reshape(b.arange(0, ctx.n, 1, int64), tuple(positions))
        picked = Tensor._make(b.binary("eq", along, ctx.index), False, b)  # one-hot along axis
        if not ctx.keepdim:
            grad = reshape(grad, ctx.index.shape)
        return where(picked, grad, 0.0), None, None, None


def _select_along(kind: str, result, input: Tensor, dim, keepdim: bool):
    axis = _axis(dim, input.ndim)
    if input.ndim == 0:  # a 0-d tensor is its own max, at index 0
        input, keepdim = reshape(input, (1,)), False
    _check_nonempty(kind, input, (axis,))
    values, indices = _SelectAlong.apply(input, axis, keepdim, kind)
    return result(values, indices)


def max(input: Tensor, dim=None, keepdim: bool = False):
    """The largest element; with ``dim``, ``(values, indices)`` along it; with a tensor, maximum.

    ``max(x)`` splits the gradient evenly among tied maxima; ``max(x, dim)`` returns the first
    index of the maximum and sends the gradient there.

    >>> x = gradient.tensor([[1.0, 5.0], [3.0, 2.0]])
    >>> x.max(), x.max(dim=1).indices, gradient.max(x, x.T)
    """
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        _check_nonempty("max", input, ())
        return Amax.apply(input, tuple(range(input.ndim)), False)
    return _select_along("max", _max_result, input, dim, keepdim)


def min(input: Tensor, dim=None, keepdim: bool = False):
    """The smallest element; with ``dim``, ``(values, indices)`` along it; with a tensor, minimum.

    >>> gradient.tensor([[1.0, 5.0], [3.0, 2.0]]).min(dim=0)   # values [1., 2.], indices [0, 1]
    """
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        _check_nonempty("min", input, ())
        return Amin.apply(input, tuple(range(input.ndim)), False)
    return _select_along("min", _min_result, input, dim, keepdim)


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (an int or tuple; all when empty); the gradient is split among ties.

    >>> gradient.tensor([[1.0, 5.0], [3.0, 2.0]]).amax(dim=0)   # tensor([3., 5.])
    """
    axes = _reduce_axes(dim, input.ndim)
    _check_nonempty("amax", input, axes)
    return Amax.apply(input, axes, keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (an int or tuple; all when empty); the gradient is split among ties.

    >>> gradient.tensor([[1.0, 5.0], [3.0, 2.0]]).amin(dim=1)   # tensor([1., 2.])
    """
    axes = _reduce_axes(dim, input.ndim)
    _check_nonempty("amin", input, axes)
    return Amin.apply(input, axes, keepdim)


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """``(min, max)`` over ``dim`` (an int, or None for all), as a named tuple.

    >>> gradient.tensor([3.0, 1.0, 2.0]).aminmax()   # aminmax(min=tensor(1.), max=tensor(3.))
    """
    dim = () if dim is None else _axis(dim, input.ndim)
    return _aminmax_result(amin(input, dim, keepdim), amax(input, dim, keepdim))


class _ArgReduce(ArrayFunction):
    """argmax/argmin: int64 indices, no gradient."""

    @staticmethod
    def forward(ctx, x, op, axis, keepdim):
        return ctx.backend.reduce(op, x, axis, keepdim)


def _arg_reduce(op: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    if input.dtype is bool_:
        raise DTypeError(f"{op}: bool inputs are not supported; convert with .int()")
    if dim is None:  # the index into the flattened tensor
        _check_nonempty(op, input, ())
        out = _ArgReduce.apply(reshape(input, (input.numel(),)), op, 0, False)
        return reshape(out, (1,) * input.ndim) if keepdim else out
    axis = _axis(dim, input.ndim)
    if input.ndim == 0:
        return _ArgReduce.apply(reshape(input, (1,)), op, 0, False)
    _check_nonempty(op, input, (axis,))
    return _ArgReduce.apply(input, op, axis, keepdim)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (the first one on ties) along ``dim``, or in the flattened
    tensor when ``dim`` is None; int64.

    >>> gradient.tensor([[1.0, 5.0], [3.0, 2.0]]).argmax()   # tensor(1)
    """
    return _arg_reduce("argmax", input, dim, keepdim)


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (the first one on ties); see :func:`argmax`.

    >>> gradient.tensor([[1.0, 5.0], [3.0, 2.0]]).argmin(dim=1)   # tensor([0, 1])
    """
    return _arg_reduce("argmin", input, dim, keepdim)


def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median (of the flattened tensor, or ``(values, indices)`` along ``dim``).

    nan counts as the largest value and is the result of any slice holding one, as in PyTorch.
    Without ``dim`` the gradient is split among elements equal to the median; with ``dim`` it
    goes to the returned index. Which index among ties is returned may differ from PyTorch.

    >>> gradient.tensor([[3.0, 1.0, 2.0]]).median(dim=1)   # values [2.], indices [2]
    """
    if dim is None:
        if input.numel() == 0:  # PyTorch gives nan here
            return cast(sum(input), _floating(input).dtype) * float("nan")
        return MedianAll.apply(input, tuple(range(input.ndim)), False)
    return _select_along("median", _median_result, input, dim, keepdim)


# ---------------------------------------------------------------------- var and std
def _correction(unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise ArgumentTypeError("var/std: pass either unbiased= or correction=, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance over ``dim``: sum((x - mean)^2) / (N - correction), ``correction=1`` by default.

    ``unbiased=False`` is the legacy spelling of ``correction=0``; ``x.var(True)`` and
    ``x.var(dim, True, keepdim)`` work as in PyTorch. N <= correction gives inf (nan for 0/0).

    >>> gradient.tensor([1.0, 2.0, 3.0, 4.0]).var()   # tensor(1.6667)
    """
    if isinstance(dim, bool):  # var(x, unbiased)
        dim, unbiased = None, dim
    _require_float("var", input)
    if _is_half(input):
        return cast(var(cast(input, float32), dim, unbiased, keepdim, correction=correction), input.dtype)
    axes = _reduce_axes(dim, input.ndim)
    dof = _count(input.shape, axes) - _correction(unbiased, correction)
    centered = input - mean(input, axes, keepdim=True)
    # dof <= 0 divides by 0, giving PyTorch's inf (nan for a zero numerator, e.g. one element)
    return sum(centered * centered, axes, keepdim) / (dof if dof > 0 else 0)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation: ``sqrt(var(...))``, same arguments; its gradient is 0 where it is 0.

    >>> gradient.tensor([[1.0, 3.0], [2.0, 2.0]]).std(dim=1)   # tensor([1.4142, 0.])
    """
    if _is_half(input):  # (the variance may overflow float16 where the deviation does not)
        return cast(std(cast(input, float32), dim, unbiased, keepdim, correction=correction), input.dtype)
    return _Sqrt.apply(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(var, mean)`` over ``dim``, see :func:`var`.

    >>> v, m = gradient.var_mean(gradient.tensor([1.0, 2.0, 3.0]))
    """
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, _reduce_axes(dim, input.ndim), keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(std, mean)`` over ``dim``, see :func:`std`.

    >>> s, m = gradient.std_mean(gradient.tensor([1.0, 2.0, 3.0]))
    """
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, _reduce_axes(dim, input.ndim), keepdim))


# ---------------------------------------------------------------------- logsumexp
class LogSumExp(ArrayFunction):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        b = ctx.backend
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        zero = b.full((), 0, from_numpy_dtype(x.dtype))
        if _count(x.shape, axes):
            # subtract the maximum so exp never overflows; an infinite maximum (a row of -inf,
            # or one with +inf) is replaced by 0 so that x - max is not inf - inf = nan
            shift = b.reduce("max", x, axes, True)
            shift = b.where(b.unary("isinf", shift), zero, shift)
        else:
            shift = zero  # nothing to reduce: the result is log(0) = -inf
        total = b.reduce("sum", b.unary("exp", b.binary("sub", x, shift)), axes, True)
        out = b.binary("add", b.unary("log", total), shift)
        if not keepdim:
            out = b.reshape(out, _out_shape(x.shape, axes, False))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        # d/dx log(sum(exp(x))) = exp(x - logsumexp(x)), the softmax
        return _keep(grad, ctx) * (x - _keep(out, ctx)).exp(), None, None


def logsumexp(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``dim``, computed stably (x = 1e4 does not overflow).

    Integer inputs give the default float dtype. (PyTorch requires ``dim``; None means all here.)

    >>> gradient.tensor([1e4, 1e4]).logsumexp(dim=0)   # tensor(10000.6931)
    """
    x = _floating(input)
    return LogSumExp.apply(x, _reduce_axes(dim, x.ndim), keepdim)


# ---------------------------------------------------------------------- cumsum, cumprod
class CumSum(ArrayFunction):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return ctx.backend.cumsum(x, axis)

    @staticmethod
    def backward(ctx, grad):
        # each input adds into its own and every later output: a cumulative sum from the end
        return flip(CumSum.apply(flip(grad, ctx.axis), ctx.axis), ctx.axis), None


def _scan(fn, input: Tensor, dim) -> Tensor:
    axis = _axis(dim, input.ndim)
    if input.ndim == 0:
        return reshape(fn(reshape(input, (1,)), 0), ())
    return fn(input, axis)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Cumulative sum along ``dim``; integer and bool inputs give int64 (or ``dtype=``).

    >>> gradient.tensor([1, 2, 3]).cumsum(0)   # tensor([1, 3, 6])
    """
    if dtype is not None:  # (see sum)
        dtype = _as_dtype(dtype)
        return cast(cumsum(cast(input, dtype), dim), dtype)
    return _scan(CumSum.apply, input, dim)


def _cumprod(x: Tensor, axis: int) -> Tensor:
    # Hillis-Steele scan: after the step with shift s, each element holds the product of the
    # (up to) 2s elements ending at it. log2(n) multiplications, each differentiable, so the
    # gradient is exact with zeros in the input and second derivatives come for free.
    n, step = x.shape[axis], 1
    out = x
    while step < n:
        out = out * _Shift.apply(out, axis, step, 1)
        step *= 2
    return clone(out) if out is x else out


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Cumulative product along ``dim``; integer and bool inputs give int64 (or ``dtype=``).

    The gradient is exact with zeros in the input.

    >>> gradient.tensor([1.0, 2.0, 3.0]).cumprod(0)   # tensor([1., 2., 6.])
    """
    if dtype is not None:
        input = cast(input, _as_dtype(dtype))
    elif not input.dtype.is_floating_point:
        input = cast(input, int64)
    return _scan(_cumprod, input, dim)


# ---------------------------------------------------------------------- norm
class _VectorNorm(ArrayFunction):
    """(sum |x|^p)^(1/p) for a finite p other than 0, 1 and 2 (those have simpler forms)."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        b = ctx.backend
        ctx.shape, ctx.axes, ctx.keepdim, ctx.p = x.shape, axes, keepdim, p
        dtype = from_numpy_dtype(x.dtype)
        powered = b.binary("pow", b.unary("abs", x), b.full((), p, dtype))
        out = b.binary("pow", b.reduce("sum", powered, axes, keepdim), b.full((), 1 / p, dtype))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, norm = ctx.saved_tensors
        p = ctx.p
        norm, grad = _keep(norm, ctx), _keep(grad, ctx)
        # d norm / d x = sign(x) |x|^(p-1) / norm^(p-1), taken as 0 where norm == 0 (PyTorch),
        # and where x == 0 for p < 1 (where |x|^(p-1) is infinite)
        if p < 1:
            at_zero = x == 0
            scaled = where(at_zero, 0.0, _sign(x) * pow(where(at_zero, 1.0, _abs(x)), p - 1))
        elif p < 2:
            scaled = _sign(x) * pow(_abs(x), p - 1)
        else:
            scaled = x * pow(_abs(x), p - 2)
        zero = norm == 0
        scale = where(zero, 0.0, grad / pow(where(zero, 1.0, norm), p - 1))
        return scaled * scale, None, None, None


class _CountNonzero(ArrayFunction):
    """The number of nonzero elements as a float: the "0-norm", which has no gradient."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        b = ctx.backend
        nonzero = b.binary("ne", x, b.full((), 0, from_numpy_dtype(x.dtype)))
        return b.cast(b.reduce("sum", nonzero, axes, keepdim), from_numpy_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        return None, None, None  # no gradient: the input's grad stays None, as in PyTorch


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The vector p-norm over ``dim`` (all elements when None): (sum |x|^p)^(1/p).

    ``p`` is any float, ``inf`` (max |x|), ``-inf`` (min |x|), 0 (count of nonzeros) or ``'fro'``
    (the 2-norm). The gradient at a zero vector is 0, as in PyTorch. ``'nuc'`` and other matrix
    norms are not supported here.

    >>> gradient.tensor([3.0, 4.0]).norm()   # tensor(5.)
    """
    if dtype is not None:
        input = cast(input, _as_dtype(dtype))
    _require_float("norm", input)
    if _is_half(input):
        return cast(norm(cast(input, float32), p, dim, keepdim), input.dtype)
    if isinstance(p, str):
        if p != "fro":
            raise ArgumentValueError(
                f"norm: p={p!r} is not supported; use a number, inf, -inf or 'fro'")
        p = 2
    p = float(as_number(p, "norm: p"))
    axes = _reduce_axes(dim, input.ndim)
    if p == _math.inf:
        return amax(_abs(input), axes, keepdim)
    if p == -_math.inf:
        return amin(_abs(input), axes, keepdim)
    if p == 0:
        return _CountNonzero.apply(input, axes, keepdim)
    if p == 1:
        return sum(_abs(input), axes, keepdim)
    if p == 2:
        return _Sqrt.apply(sum(input * input, axes, keepdim))
    return _VectorNorm.apply(input, p, axes, keepdim)


# ---------------------------------------------------------------------- all, any, count_nonzero
class _LogicalReduce(ArrayFunction):
    @staticmethod
    def forward(ctx, x, op, axes, keepdim):
        return ctx.backend.reduce(op, x, axes, keepdim)


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every element (along ``dim``) is nonzero; bool (uint8 for uint8 input, as PyTorch).

    >>> gradient.tensor([[True, False], [True, True]]).all(dim=1)   # tensor([False, True])
    """
    out = _LogicalReduce.apply(input, "all", _reduce_axes(dim, input.ndim), keepdim)
    return cast(out, uint8) if input.dtype is uint8 else out


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether some element (along ``dim``) is nonzero; bool (uint8 for uint8 input).

    >>> gradient.tensor([0.0, 2.0]).any()   # tensor(True)
    """
    out = _LogicalReduce.apply(input, "any", _reduce_axes(dim, input.ndim), keepdim)
    return cast(out, uint8) if input.dtype is uint8 else out


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """Number of nonzero elements over ``dim`` (an int, a tuple, or None for all); int64.

    >>> gradient.tensor([[0, 1], [2, 3]]).count_nonzero(dim=0)   # tensor([1, 2])
    """
    return Sum.apply(input != 0, _reduce_axes(dim, input.ndim), False)


# ---------------------------------------------------------------------- undoing broadcasting
def sum_to_shape(x: Tensor, shape) -> Tensor:
    """Sum the broadcast dimensions of ``x`` away so it has ``shape`` (undoes broadcasting).

    The engine's reduction of gradients to their input's shape (no PyTorch counterpart; the
    method is :func:`sum_to_size`): ``sum_to_shape(gradient.ones(2, 3), (1, 3))`` is ``[[2., 2., 2.]]``.
    """
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
    if not axes:
        return x
    if axes == tuple(range(lead)):   # only leading dimensions go: the sum has the shape already
        return Sum.apply(x, axes, False)
    out = Sum.apply(x, axes, True)
    return reshape(out, shape) if tuple(out.shape) != shape else out


def sum_to_size(input: Tensor, *size) -> Tensor:
    """``input`` summed down to ``size``, which it must broadcast from: ``x.sum_to_size(1, 3)``."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return sum_to_shape(input, size)


# ---------------------------------------------------------------------- differences
def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The ``n``-th forward difference along ``dim``: ``out[i] = x[i + 1] - x[i]``, applied ``n``
    times (each time one shorter), after ``prepend`` and ``append`` are joined on. Bool tensors
    give ``x[i + 1] != x[i]``. The inverse of ``cumsum`` up to the first element.

    Example: ``gradient.tensor([1, 4, 9, 16]).diff()`` is ``tensor([3, 5, 7])``.
    """
    from .elementwise import logical_xor, sub
    from .shape import cat, narrow
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"diff: expected a Tensor, got {type(input).__name__}")
    if input.ndim == 0:
        raise ShapeError("diff: expected a tensor of at least one dimension, got a 0-d tensor")
    n = _operator.index(n)
    if n < 0:
        raise ArgumentValueError(f"diff: the order n must be non-negative, got {n}")
    dim = wrap_dim(dim, input.ndim)
    parts = []
    for name, extra in (("prepend", prepend), (None, input), ("append", append)):
        if extra is None:
            continue
        if not isinstance(extra, Tensor):
            raise ArgumentTypeError(
                f"diff: expected {name} to be a tensor, got {type(extra).__name__}")
        if [size for d, size in enumerate(extra.shape) if d != dim] != \
                [size for d, size in enumerate(input.shape) if d != dim] or extra.ndim != input.ndim:
            raise ShapeError(f"diff: {name} of shape {tuple(extra.shape)} must match the input's "
                             f"shape {tuple(input.shape)} in every dimension but {dim}")
        parts.append(extra)
    x = cat(parts, dim) if len(parts) > 1 else input
    step = logical_xor if x.dtype is bool_ else sub
    for _ in range(n):
        length = x.shape[dim]
        if length == 0:
            break
        x = step(narrow(x, dim, 1, length - 1), narrow(x, dim, 0, length - 1))
    return clone(x) if x is input else x
