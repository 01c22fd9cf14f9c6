"""Test helpers, as ``torch.testing``: :func:`assert_close` and :func:`make_tensor`.

Example::

    >>> from gradient.testing import assert_close, make_tensor
    >>> x = make_tensor(3, 4, dtype=gradient.float32, device="cpu")      # values in [-9, 9)
    >>> assert_close(x * 2, x + x)
    >>> assert_close({"w": [x]}, {"w": [x + 1]})
    Traceback (most recent call last):
    ...
    AssertionError: Tensor-likes are not close!
    <BLANKLINE>
    Mismatched elements: 12 / 12 (100.0%)
    ...
    The failure occurred for item ['w'][0]
"""

from __future__ import annotations

import cmath
import collections.abc
import math
import warnings

import numpy as np

from .dtypes import as_dtype, finfo, from_numpy_dtype, get_default_dtype, iinfo, promote_types
from .tensor import Size, Tensor
from . import ops
from .errors import ArgumentValueError

__all__ = ["assert_close", "make_tensor"]

# Default (rtol, atol) per dtype, PyTorch's table; integer and bool dtypes compare exactly.
_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
               "float64": (1e-7, 1e-7)}
# Python numbers are compared with the tolerances of the dtype PyTorch would give them.
_NUMBER_DTYPE = {bool: "int64", int: "int64", float: "float64", complex: "float64"}


class _Failure(Exception):
    """A comparison failed: the exception type to raise, its message, and where (the path of keys
    and indices into nested inputs), so that the caller's ``msg`` can be applied once, at the end."""

    def __init__(self, kind, message: str, path: tuple = ()):
        super().__init__(message)
        self.kind, self.message, self.path = kind, message, path

    def error(self, msg=None) -> Exception:
        if isinstance(msg, str):
            return self.kind(msg)
        text = self.message
        if self.path:
            text += "\n\nThe failure occurred for item " + "".join(f"[{p!r}]" for p in self.path)
        return self.kind(msg(text) if callable(msg) else text)


# ---------------------------------------------------------------------------- assert_close
def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False,
                 msg=None):
    """Raise AssertionError unless ``actual`` and ``expected`` are close, as
    ``torch.testing.assert_close``.

    Tensors (or NumPy arrays, compared with arrays) must have the same shape, and, unless told
    otherwise, the same device and dtype (``check_device``, ``check_dtype``; with them off both
    go to the CPU and to their promoted dtype); ``check_stride=True`` compares strides too.
    Values are close when ``|actual - expected| <= atol + rtol * |expected|``, with infinities
    equal only to themselves and NaN equal to NaN only with ``equal_nan=True``. ``rtol`` and
    ``atol`` are given together or not at all; by default they depend on the dtype:

    =========  ========  =====
    dtype      rtol      atol
    =========  ========  =====
    float16    1e-3      1e-5
    bfloat16   1.6e-2    1e-5
    float32    1.3e-6    1e-5
    float64    1e-7      1e-7
    others     0         0
    =========  ========  =====

    (with two dtypes, the larger of each). Python numbers (bool, int, float, complex, NumPy scalars)
    are compared with numbers, their types checked as dtypes; ``None`` with ``None``; sequences
    and mappings (lists, tuples, dicts, nested) element by element, and the message then says
    which item failed. A tensor is never compared with a number, nor a tensor with a NumPy
    array: that is a TypeError, as in PyTorch. ``msg`` replaces the message (a string) or
    rewrites it (a callable taking the message). ``check_layout`` is accepted: every gradient
    tensor is strided, so layouts always match.

    Example::

        >>> assert_close(gradient.tensor([1.0, 2.0]), gradient.tensor([1.0, 2.0 + 1e-6]))
        >>> assert_close(gradient.tensor([1.0, 2.0]), gradient.tensor([1.0, 2.5]))
        Traceback (most recent call last):
        ...
        AssertionError: Tensor-likes are not close!
        <BLANKLINE>
        Mismatched elements: 1 / 2 (50.0%)
        Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)
        Greatest relative difference: 0.20000000298023224 at index (1,) (up to 1.3e-06 allowed)
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this function's
    if (rtol is None) != (atol is None):
        raise ArgumentValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
            f"{'atol' if atol is None else 'rtol'}.")
    options = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                   check_device=check_device, check_dtype=check_dtype, check_stride=check_stride)
    # Pair everything up first, as PyTorch does: a structure or type mismatch anywhere is
    # reported before any value (and the caller's msg does not replace it).
    pairs = []
    try:
        _pair_up(actual, expected, (), pairs)
    except _Failure as failure:
        raise failure.error() from None
    for a, e, path in pairs:
        try:
            _compare(a, e, **options)
        except _Failure as failure:
            failure.path = path
            raise failure.error(msg) from None


def _is_sequence(x) -> bool:
    return isinstance(x, collections.abc.Sequence) and not isinstance(x, (str, bytes))


def _pair_up(actual, expected, path: tuple, pairs: list) -> None:
    """Walk nested sequences and mappings in step, collecting the leaves to compare."""
    if _is_sequence(actual) and _is_sequence(expected):
        if len(actual) != len(expected):
            raise _Failure(AssertionError, f"The length of the sequences mismatch: {len(actual)} != "
                                           f"{len(expected)}", path)
        for i, (a, e) in enumerate(zip(actual, expected)):
            _pair_up(a, e, path + (i,), pairs)
    elif isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        keys_a, keys_e = set(actual.keys()), set(expected.keys())
        if keys_a != keys_e:
            raise _Failure(AssertionError,
                           "The keys of the mappings do not match:\n"
                           f"Missing keys in the actual mapping: {_sorted(keys_e - keys_a)}\n"
                           f"Additional keys in the actual mapping: {_sorted(keys_a - keys_e)}", path)
        for key in _sorted(keys_a):
            _pair_up(actual[key], expected[key], path + (key,), pairs)
    else:
        pairs.append((actual, expected, path))


def _sorted(keys) -> list:
    try:
        return sorted(keys)
    except TypeError:   # keys of mixed types: any fixed order will do
        return sorted(keys, key=repr)


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float, complex, np.bool_, np.number))


def _compare(actual, expected, *, allow_subclasses, rtol, atol, equal_nan, check_device, check_dtype,
             check_stride) -> None:
    if actual is None and expected is None:
        return
    if _is_number(actual) and _is_number(expected):
        return _compare_numbers(_python(actual), _python(expected), rtol, atol, equal_nan, check_dtype)
    kinds = (Tensor, np.ndarray)
    related = any(isinstance(actual, k) and isinstance(expected, k) for k in kinds) and (
        isinstance(actual, type(expected)) or isinstance(expected, type(actual)))
    if not related or (not allow_subclasses and type(actual) is not type(expected)):
        raise _Failure(TypeError,
                       f"No comparison pair was able to handle inputs of type {type(actual)} and "
                       f"{type(expected)}. Compare tensors with tensors, NumPy arrays with arrays, numbers "
                       "with numbers (wrap a number with gradient.tensor to compare it with a tensor)"
                       + ("; with allow_subclasses=False their types must be the same"
                          if related else "") + ".")
    a, e = _Side(actual), _Side(expected)

    def mismatch(attribute, x, y):
        raise _Failure(AssertionError, f"The values for attribute '{attribute}' do not match: {x} != {y}.")

    if a.shape != e.shape:
        mismatch("shape", a.shape, e.shape)
    if check_stride and a.stride != e.stride:
        mismatch("stride()", a.stride, e.stride)
    if check_device and a.device != e.device:
        mismatch("device", a.device, e.device)
    if check_dtype and a.dtype != e.dtype:
        mismatch("dtype", a.dtype, e.dtype)
    if rtol is None:
        rtol, atol = (max(t) for t in zip(_tolerances(a.dtype), _tolerances(e.dtype)))
    dtype = promote_types(a.dtype, e.dtype)
    _compare_values(a.values(dtype), e.values(dtype), rtol, atol, equal_nan)


class _Side:
    """What assert_close needs of a tensor or a NumPy array."""

    def __init__(self, x):
        self.x = x
        if isinstance(x, Tensor):
            self.shape, self.dtype, self.device, self.stride = x.shape, x.dtype, x.device, x.stride()
        else:
            from .device import device
            self.shape, self.dtype, self.device = Size(x.shape), from_numpy_dtype(x.dtype), device("cpu")
            self.stride = tuple(s // x.itemsize for s in x.strides)

    def values(self, dtype):
        """The values on the host, as a NumPy array of ``dtype``."""
        arr = self.x.numpy(force=True) if isinstance(self.x, Tensor) else self.x
        return np.asarray(arr).astype(dtype.numpy, copy=False)


def _tolerances(dtype) -> tuple:
    return _TOLERANCES.get(dtype.name, (0.0, 0.0))


def _python(x):
    return x.item() if isinstance(x, (np.bool_, np.number)) else x


def _close(a, e, rtol, atol, equal_nan):
    """Element-wise closeness, PyTorch's isclose: in float64, exact for integers without tolerance."""
    if a.dtype.kind in "biu" and rtol == 0 and atol == 0:
        return a == e
    a, e = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        close = a == e   # equal infinities too
        close |= np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= atol + rtol * np.abs(e))
        if equal_nan:
            close |= np.isnan(a) & np.isnan(e)
    return close


def _compare_values(a, e, rtol, atol, equal_nan) -> None:
    close = _close(a, e, rtol, atol, equal_nan)
    if close.all():
        return
    if a.ndim == 0:
        # scalars as Python numbers (ints stay ints, floats hold the dtype's value), as PyTorch
        as_python = float if a.dtype.kind == "f" or a.dtype.kind == "V" else int
        return _scalar_mismatch(as_python(a.item()), as_python(e.item()), rtol, atol)
    total, mismatched = close.size, int(close.size - close.sum())
    integer = a.dtype.kind in "biu"
    if integer:   # differences of integers in int64 (no wrap-around in uint8), as PyTorch
        a, e = a.astype(np.int64), e.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        abs_diff = np.abs(a - e)       # in the compared dtype, so the figures are PyTorch's
        rel_diff = abs_diff / np.abs(e)
    if integer:   # PyTorch divides integers into its default float dtype
        rel_diff = rel_diff.astype(get_default_dtype().numpy)
    # only the mismatched elements count (np.argmax picks the first NaN, as torch.max does)
    abs_diff = np.where(close, 0, abs_diff).astype(abs_diff.dtype).ravel()
    rel_diff = np.where(close, 0, rel_diff).astype(rel_diff.dtype).ravel()
    i_abs, i_rel = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))
    index = lambda flat: tuple(int(i) for i in np.unravel_index(flat, close.shape))  # noqa: E731
    as_python = int if abs_diff.dtype.kind in "iu" else float
    raise _Failure(AssertionError, _mismatch_message(
        "Tensor-likes", f"Mismatched elements: {mismatched} / {total} ({mismatched / total:.1%})",
        as_python(abs_diff[i_abs].item()), index(i_abs), atol,
        float(rel_diff[i_rel].item()), index(i_rel), rtol))


def _compare_numbers(a, e, rtol, atol, equal_nan, check_dtype) -> None:
    if isinstance(a, bool) and isinstance(e, bool):
        if a is not e:
            raise _Failure(AssertionError, f"Booleans mismatch: {a} is not {e}")
        return
    if check_dtype and type(a) is not type(e):
        raise _Failure(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.")
    if rtol is None:
        rtol, atol = (max(t) for t in zip(*(_TOLERANCES.get(_NUMBER_DTYPE[type(x)], (0.0, 0.0))
                                            for x in (a, e))))
    if a == e or equal_nan and cmath.isnan(a) and cmath.isnan(e):
        return
    diff = abs(a - e)
    if cmath.isfinite(diff) and diff <= atol + rtol * abs(e):
        return
    _scalar_mismatch(a, e, rtol, atol)


def _scalar_mismatch(a, e, rtol, atol):
    diff = abs(a - e)
    raise _Failure(AssertionError, _mismatch_message(
        "Scalars", f"Expected {e} but got {a}.", diff, None, atol,
        math.inf if e == 0 else diff / abs(e), None, rtol))


def _mismatch_message(what, detail, abs_diff, abs_index, atol, rel_diff, rel_index, rtol) -> str:
    """PyTorch's wording: what is not close, then the greatest differences (and their index for
    tensors), with the tolerances unless the comparison was for equality."""
    exact = rtol == 0 and atol == 0
    lines = [f"{what} are not {'equal' if exact else 'close'}!", "", detail]
    for kind, diff, index, tol in (("absolute", abs_diff, abs_index, atol),
                                   ("relative", rel_diff, rel_index, rtol)):
        line = (f"{kind.title()} difference: {diff}" if index is None
                else f"Greatest {kind} difference: {diff} at index {index}")
        lines.append(line if exact else f"{line} (up to {tol} allowed)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- make_tensor
def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None) -> Tensor:
    """A tensor of ``shape`` with random values drawn uniformly from ``[low, high)``, as
    ``torch.testing.make_tensor``; drawn from gradient's default generator, so
    ``gradient.manual_seed`` makes it reproducible.

    ``shape`` is integers or one sequence. The default range depends on the dtype: bool [0, 2),
    unsigned integers [0, 10), signed integers [-9, 10), floating [-9, 9). A ``low``/``high``
    outside the dtype's finite range is clamped to it; integer bounds are rounded up.
    ``noncontiguous=True`` gives a non-contiguous view (for tensors of two or more elements);
    ``exclude_zero=True`` replaces zeros by 1 (bool, integers) or the dtype's smallest normal
    number (``finfo.tiny``); ``requires_grad`` is for floating dtypes only.

    Example::

        >>> make_tensor(2, 3, dtype=gradient.float32, device="cpu", low=-1, high=1).shape
        gradient.Size([2, 3])
        >>> t = make_tensor((100,), dtype=gradient.int64, device="cpu", low=0, high=5)
        >>> bool(t.min() >= 0 and t.max() <= 4)    # high is exclusive
        True
    """
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(int(n) for n in shape)
    dtype = as_dtype(dtype)   # a DTypeError (a TypeError, as PyTorch's) for an unknown dtype
    if noncontiguous and memory_format is not None:
        raise ArgumentValueError(
            f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, "
            f"but got noncontiguous={noncontiguous} and memory_format={memory_format}")
    floating = dtype.is_floating_point
    if requires_grad and not floating:
        raise ArgumentValueError(
            f"`requires_grad=True` is not supported for boolean and integral dtypes, but "
            f"got dtype={dtype}; make a floating tensor (or pass requires_grad=False)")

    if dtype.name == "bool":
        low, high = _range(dtype, low, high, 0, 2, lowest=0, highest=2)
    elif not floating:
        info = iinfo(dtype)
        # int64's bound stays at its max: the random draw takes its bounds as int64, where max + 1
        # does not fit (so int64's max itself is never drawn), as in PyTorch
        low, high = _range(dtype, low, high, -9, 10, lowest=info.min,
                           highest=info.max + (0 if dtype.name == "int64" else 1))
    else:
        info = finfo(dtype)
        low, high = _range(dtype, low, high, -9, 9, lowest=info.min, highest=info.max)

    n = math.prod(shape)
    noncontiguous = noncontiguous and n > 1
    if noncontiguous:   # twice as wide; every other column is kept below
        shape = shape[:-1] + (2 * shape[-1],)
    if floating:
        u = ops.rand(*shape, dtype=as_dtype("float64"), device=device)
        if math.isfinite(high - low):
            result = (u * (high - low) + low).to(dtype)
        else:   # a range wider than the largest float64: halve it and double the draw
            result = ((u * (high / 2 - low / 2) + low / 2) * 2).to(dtype)
        if low < high:
            # rounding to a narrow dtype (float16: 8.997 -> 9.0) may leave [low, high): clamp to
            # the dtype's values inside it, so that high stays exclusive, as in PyTorch
            result = result.clamp(min=_inside(low, dtype, np.inf), max=_inside(high, dtype, -np.inf, True))
    else:
        result = ops.randint(low, high, shape, dtype=dtype, device=device)
    if exclude_zero:
        replacement = finfo(dtype).tiny if floating else 1
        result = ops.where(result == 0, ops.full((), replacement, dtype=dtype, device=device), result)
    if noncontiguous:
        result = result[..., 1::2]   # offset by 1, to catch code that ignores the storage offset
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if floating:
        result.requires_grad_(requires_grad)
    return result


def _inside(bound, dtype, toward, exclusive=False) -> float:
    """The value of ``dtype`` nearest ``bound`` on the side of ``toward`` (strictly, if
    ``exclusive``): the tightest representable limit that keeps draws within the range."""
    value = np.asarray(bound, dtype=dtype.numpy)   # rounded to nearest: may be past the bound
    if toward > 0:
        outside = float(value) < bound
    else:
        outside = float(value) >= bound if exclusive else float(value) > bound
    if outside:
        value = np.nextafter(value, np.asarray(toward, dtype=dtype.numpy))
    return float(value)


def _range(dtype, low, high, default_low, default_high, *, lowest, highest) -> tuple:
    """``low``, ``high`` checked, clamped to ``[lowest, highest]`` and, for integers and bool,
    rounded up (ceil: no value below ``low``, and ``high`` stays exclusive)."""
    low = default_low if low is None else low
    high = default_high if high is None else high
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        raise ArgumentValueError(
            f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    if low == high and dtype.is_floating_point:
        warnings.warn("Passing `low==high` to `make_tensor` for floating types gives a constant "
                      "tensor; use gradient.full(...) instead.", FutureWarning, stacklevel=3)
    elif low >= high:
        raise ArgumentValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    elif high < lowest or low >= highest:
        raise ArgumentValueError(
            f"The value interval specified by `low` and `high` is [{low}, {high}), but "
            f"{dtype} only supports [{lowest}, {highest})")
    low, high = min(max(low, lowest), highest), min(max(high, lowest), highest)
    if not dtype.is_floating_point:
        return math.ceil(low), math.ceil(high)
    return low, high
