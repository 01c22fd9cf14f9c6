"""Making tensors: from data, filled, ranges, random; and the global random seed.

Example::

    >>> gradient.manual_seed(0)
    >>> x = gradient.randn(2, 3)
    >>> gradient.arange(5)
    tensor([0, 1, 2, 3, 4])

Random numbers come from NumPy's PCG64 generator, so the same seed gives the same numbers
in gradient every time, but not the same numbers as PyTorch.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..backends import get_backend
from ..backends.numpy_backend import as_dtype_of_pytorch as _as_dtype_of_pytorch
from ..device import as_device
from .. import layouts
from .. import settings as _settings
from ..dtypes import (as_dtype, bool_, from_numpy_dtype, get_default_dtype, int64,
                      promote_types, result_type)
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_int, as_ints, as_number, check_fits_in_memory

TENSOR_METHODS = ("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor", "bernoulli",
                  "bernoulli_", "random_", "exponential_", "log_normal_", "cauchy_", "geometric_")


# ---------------------------------------------------------------------- random state
class Generator:
    """A seeded source of random numbers for one device, like ``torch.Generator``."""

    def __init__(self, device="cpu"):
        self.device = as_device(device)
        self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:       # as torch: a negative seed is its value modulo 2**64 (-1: 2**64 - 1)
            if seed < -2 ** 63:
                raise ArgumentValueError(f"manual_seed: {seed} is below the smallest seed, -2**63")
            seed += 2 ** 64
        self._seed = seed
        self._state = get_backend(self.device).generator(self._seed)
        return self

    def seed(self) -> int:
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._state.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._state.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default random generator (every device), for reproducible runs."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    if not isinstance(state, dict):
        raise ArgumentTypeError(f"set_rng_state: expected the state get_rng_state() gave (a "
                                f"dict), got {type(state).__name__}")
    default_generator.set_state(state)


# ---------------------------------------------------------------------- helpers
def _shape(size) -> tuple:
    """Accept f(2, 3), f((2, 3)) and f([2, 3]) as PyTorch does."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = as_ints(size, "the size")
    if any(s < 0 for s in shape):
        raise ShapeError(f"negative dimension in shape {shape}")
    if any(s > _LARGEST_SIZE for s in shape):     # (one of several sizes, the others 0)
        raise ArgumentValueError(f"a size of {float(max(shape)):.3g} is past the largest a "
                                 f"tensor's dimension can have ({_LARGEST_SIZE})")
    return shape


#: The largest size of a dimension: what an index (a signed 64-bit integer) reaches.
_LARGEST_SIZE = 2 ** 63 - 1


def _backend(device):
    if device is None:   # gradient.set_default_device's choice (the CPU unless set)
        return get_backend(_settings.get_default_device())
    return get_backend(as_device(device))


def _wrap(array, backend, requires_grad) -> Tensor:
    return Tensor._make(array, False, backend).requires_grad_(requires_grad) if requires_grad \
        else Tensor._make(array, False, backend)


def _infer_dtype(data):
    """``torch.tensor``'s dtype for Python data: every element's own, promoted together
    (:func:`~gradient.dtypes.promote_types`): a Python float the default float dtype, an int
    int64, a bool bool; a NumPy scalar or array, or a tensor, its dtype (``[np.float64(x)]``
    is float64, ``[np.int32(1), 2]`` int64, ``[np.float16(1), 2]`` float16). Nothing at all
    (an empty list): the default float dtype."""
    found = None
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple, range)):
            stack.extend(item)
            continue
        if isinstance(item, Tensor):
            kind = item.dtype
        elif isinstance(item, (np.ndarray, np.generic)):
            kind = from_numpy_dtype(item.dtype)
        elif isinstance(item, bool):
            kind = bool_
        elif isinstance(item, int):
            kind = int64
        elif isinstance(item, float):
            kind = get_default_dtype()
        else:
            raise DTypeError(f"tensor(): cannot make a tensor from {type(item).__name__} {item!r}; "
                             "expected numbers, nested lists of numbers, or an array")
        found = kind if found is None else promote_types(found, kind)
    return get_default_dtype() if found is None else found


def _as_array(data, dtype, backend):
    """A new backend array holding ``data`` (a copy, never a view of the caller's data)."""
    if isinstance(data, Tensor):
        arr = data.detach().cpu().numpy()
        dtype = as_dtype(dtype) if dtype is not None else data.dtype
    elif isinstance(data, np.ndarray) or np.isscalar(data) and isinstance(data, np.generic):
        arr = np.asarray(data)
        dtype = as_dtype(dtype) if dtype is not None else from_numpy_dtype(arr.dtype)
    elif hasattr(data, "__array__") or hasattr(data, "__cuda_array_interface__"):
        arr = np.asarray(data)
        dtype = as_dtype(dtype) if dtype is not None else from_numpy_dtype(arr.dtype)
    elif (plain := _plain_numbers(data)) is not None:
        arr, inferred = plain
        dtype = as_dtype(dtype) if dtype is not None else inferred
    else:
        # the elements are checked with a dtype given too: NumPy would make None a NaN
        inferred = _infer_dtype(data)
        dtype = as_dtype(dtype) if dtype is not None else inferred
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
            data = _nested_values(data)
        try:
            arr = np.array(data, dtype=np.float64 if dtype.is_floating_point else None)
        except ValueError as e:
            raise ShapeError(f"tensor(): nested sequences must be rectangular ({e})") from None
        if arr.dtype == object:
            too_large = next((x for x in _flat([data]) if type(x) is int
                              and not -2 ** 63 <= x < 2 ** 64), None)
            if too_large is not None:     # (NumPy keeps ints past 64 bits as objects)
                raise DTypeError(f"tensor(): {too_large} cannot be converted to an integer "
                                 f"dtype without overflow (64 bits at most); give "
                                 f"dtype=gradient.float64 to hold it approximately")
            raise ShapeError("tensor(): nested sequences must be rectangular and hold numbers only")
    if not isinstance(data, (Tensor, np.ndarray, np.generic)):
        _check_fits(arr, dtype)
    return backend.from_numpy(_as_dtype_of_pytorch(np.asarray(arr), dtype.numpy))


def _check_fits(arr: np.ndarray, dtype) -> None:
    """PyTorch's refusal of Python numbers that an integer dtype cannot hold, where NumPy's
    cast wraps them (tensor([300], dtype=uint8) was 44, [1e20] as int64 its minimum; NaN
    too). As in PyTorch, a negative number for an unsigned dtype wraps (-1 is 255), a float
    in the range loses its fraction, and arrays and tensors are cast without the check."""
    if arr.dtype == dtype.numpy or not (np.issubdtype(dtype.numpy, np.integer) and arr.size
                                        and arr.dtype.kind in "iuf"):
        return         # (values NumPy made of the dtype itself fit it: ids given as ints)
    info = np.iinfo(dtype.numpy)
    low, high = (-int(info.max) if info.min == 0 else int(info.min)), int(info.max)
    finite = arr.dtype.kind != "f" or bool(np.isfinite(arr).all())
    if not (finite and arr.min() >= low and arr.max() <= high):
        raise DTypeError(f"tensor(): a value cannot be converted to {dtype.name} without "
                         f"overflow: expected numbers from {int(info.min)} to {high}")


def _plain_numbers(data):
    """``(array, dtype)`` for a flat list or tuple of Python ints, floats and bools (token ids,
    a column of values: the common case, whose elements one set of their types checks), or a
    list of such rows (a batch of ids: ``tensor([[id]])`` each step of a ported decode loop,
    15-20 -> 9-13 us), with the dtype :func:`_infer_dtype` would give; None for anything else
    (deeper nesting, NumPy scalars, tensors, None, ragged rows), which goes element by
    element. 1,000,000 ints: 41 ms here, 470-660 ms element by element (146 ms with a dtype
    given and no check of the elements)."""
    if type(data) not in (list, tuple) or not data:
        return None
    if type(data[0]) in (list, tuple):         # rows of numbers ([[id, id, ...]]: a batch)
        if not all(type(row) in (list, tuple) for row in data):
            return None
        kinds = set().union(*(map(type, row) for row in data))
        if not kinds:              # empty rows: the default float dtype, as below
            return None
    else:
        kinds = set(map(type, data))
    if not kinds <= _PLAIN:
        return None
    try:
        arr = np.array(data)
    except ValueError:             # ragged rows: the general path says what is wrong
        return None
    if arr.dtype == object:        # ints past int64's range
        return None
    return arr, (get_default_dtype() if float in kinds else int64 if int in kinds else bool_)


_PLAIN = {int, float, bool}


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _nested_values(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_nested_values(x) for x in data]
    return data


# ---------------------------------------------------------------------- from data
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, a NumPy array or a tensor).

    Example::

        >>> gradient.tensor([[1, 2], [3, 4]], dtype=gradient.float32, requires_grad=True)
    """
    backend = _backend(device)
    return _wrap(_as_array(data, dtype, backend), backend, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but returns ``data`` itself when it already is a matching tensor."""
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) is data.dtype) \
            and (device is None or as_device(device) == data.device):
        return data
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise ArgumentTypeError(
            f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    from_numpy_dtype(array.dtype)  # clear error for unsupported dtypes
    return Tensor._make(array, False)


# ---------------------------------------------------------------------- filled
def _filled(size, value, dtype, device, requires_grad, default=None) -> Tensor:
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else (default or get_default_dtype())
    shape = _shape(size)
    check_fits_in_memory("a tensor of shape " + str(shape), math.prod(shape), dtype.itemsize)
    value = as_number(value, "the fill value")     # (a one-element tensor's too)
    return _wrap(backend.full(shape, value, dtype), backend, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: ``gradient.zeros(2, 3)``."""
    return _filled(size, 0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: ``gradient.ones(2, 3)``."""
    return _filled(size, 1, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor (filled with zeros here, for reproducibility)."""
    return _filled(size, 0, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value``; the dtype follows the value (bool, int64 or float)."""
    if dtype is None:
        # a scalar's kind alone, as torch.full (a NumPy float64 fills the default float dtype)
        dtype = result_type(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    size = (size,) if isinstance(size, int) else as_ints(size, "full: the size")
    return _filled((size,), fill_value, dtype, device, requires_grad)


def _like(t: Tensor, dtype, device):
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def _laid_out_like(out: Tensor, input: Tensor, memory_format) -> Tensor:
    """``out`` (a new leaf of input's shape) in ``memory_format``'s layout, or, for
    ``preserve_format``, in input's where that is channels last (see gradient.layouts)."""
    fmt = memory_format
    if fmt is None or fmt is layouts.preserve_format:
        fmt = layouts.channels_last_of(tuple(input.shape), layouts.strides_of(input._data))
    if fmt is None or fmt is layouts.contiguous_format:
        return out
    order = layouts.axis_order(fmt, out.ndim, "memory_format")
    out._data = layouts.relaid(out._backend, out._data, order)
    return out


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
               memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _laid_out_like(_filled((tuple(input.shape),), 0, dtype, device, requires_grad), input,
                          memory_format)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
              memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _laid_out_like(_filled((tuple(input.shape),), 1, dtype, device, requires_grad), input,
                          memory_format)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
               memory_format=None) -> Tensor:
    return zeros_like(input, dtype, device, requires_grad, memory_format=memory_format)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad=False, *,
              memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _laid_out_like(_filled((tuple(input.shape),), fill_value, dtype, device,
                                  requires_grad), input, memory_format)


def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                 requires_grad=requires_grad)


def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return new_zeros(self, *size, dtype=dtype, device=device, requires_grad=requires_grad)


def new_full(self: Tensor, size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def new_tensor(self: Tensor, data, dtype=None, device=None, requires_grad=False) -> Tensor:
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


# ---------------------------------------------------------------------- ranges
def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` up to (not including) ``end``: ``arange(5)``, ``arange(1, 2, 0.25)``.

    The dtype is int64 when every argument is an integer, the default float otherwise.
    """
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    for name, v in (("start", start), ("end", end), ("step", step)):
        if not isinstance(v, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"arange: {name} must be a number, got {v!r}")
    if not (math.isfinite(start) and math.isfinite(end)) or math.isnan(step):
        raise ShapeError(f"arange: unsupported range {start} -> {end} by {step}: the bounds "
                         f"must be finite, and the step a number")
    if step == 0:
        raise ShapeError("arange: step must be nonzero")
    if (end - start) * step < 0:     # (PyTorch refuses it too, rather than give no values)
        raise ShapeError(f"arange: the bounds and the step's sign disagree: from {start} to "
                         f"{end} by {step} never arrives")
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) \
            else get_default_dtype()
    backend = _backend(device)
    dtype = as_dtype(dtype)
    n = max(math.ceil((end - start) / step), 0)
    check_fits_in_memory(f"arange({start}, {end}, {step})", n, dtype.itemsize)
    if dtype.is_floating_point:
        arr = backend.cast(backend.from_numpy(np.arange(n, dtype=np.float64) * step + start), dtype)
    else:
        arr = backend.arange(start, end, step, dtype)
    return _wrap(arr, backend, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    arr = np.linspace(float(as_number(start, "linspace: start")),
                      float(as_number(end, "linspace: end")), _count(steps, "linspace"),
                      dtype=np.float64)
    return _wrap(backend.cast(backend.from_numpy(arr), dtype), backend, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None) -> Tensor:
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    arr = np.logspace(float(as_number(start, "logspace: start")),
                      float(as_number(end, "logspace: end")), _count(steps, "logspace"),
                      base=float(as_number(base, "logspace: base")), dtype=np.float64)
    return Tensor._make(backend.cast(backend.from_numpy(arr), dtype), False, backend)


def _check_int64_range(fn: str, low: int, high: int) -> None:
    """Draws from [low, high) are int64: the bounds must be within its range."""
    if low < -2 ** 63 or high - 1 > 2 ** 63 - 1:
        raise ArgumentValueError(f"{fn}: the range [{low}, {high}) does not fit in int64 "
                                 f"(-2**63 to 2**63 - 1)")


def _count(value, fn: str, name: str = "steps") -> int:
    """A count of values (linspace's steps, eye's sizes, randperm's n): an int, at least 0."""
    count = as_int(value, f"{fn}: {name}")
    if count < 0:
        raise ShapeError(f"{fn}: {name} must be non-negative, got {count}")
    check_fits_in_memory(f"{fn}: {name}={count}", count, 1)
    return count


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n`` by ``m`` identity matrix."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    n = _count(n, "eye", "n")
    arr = np.eye(n, n if m is None else _count(m, "eye", "m"))
    return _wrap(backend.cast(backend.from_numpy(arr), dtype), backend, requires_grad)


# ---------------------------------------------------------------------- random
def _gen(generator):
    if generator is not None and not isinstance(generator, Generator):
        raise ArgumentTypeError(f"generator must be a gradient.Generator, not "
                                f"{type(generator).__name__}")
    return (generator or default_generator)._state


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform random numbers in [0, 1)."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    return _wrap(backend.uniform(_gen(generator), _shape(size), 0.0, 1.0, dtype), backend, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal random numbers."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    return _wrap(backend.normal(_gen(generator), _shape(size), 0.0, 1.0, dtype), backend, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None) -> Tensor:
    """Random integers in [low, high): ``randint(10, (3,))`` or ``randint(2, 10, (3,))``."""
    if size is None:
        if isinstance(high, (tuple, list)):
            low, high, size = 0, low, high
        else:
            raise ArgumentTypeError("randint: give the size, e.g. randint(10, (3,))")
    if high is None:
        low, high = 0, low
    low, high = as_int(low, "randint: low"), as_int(high, "randint: high")
    if high <= low:
        raise ArgumentValueError(f"randint: expected low < high, got low={low}, high={high}")
    _check_int64_range("randint", low, high)
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else int64
    return Tensor._make(backend.randint(_gen(generator), low, high, _shape((size,)), dtype), False, backend)


def randperm(n: int, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 .. n-1."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else int64
    n = _count(n, "randperm", "n")
    return Tensor._make(backend.permutation(_gen(generator), n, dtype), False, backend)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
              memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _laid_out_like(rand(*input.shape, dtype=dtype, device=device,
                               requires_grad=requires_grad), input, memory_format)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
               memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _laid_out_like(randn(*input.shape, dtype=dtype, device=device,
                                requires_grad=requires_grad), input, memory_format)


def randint_like(input: Tensor, low, high=None, dtype=None, device=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randint(low, high, tuple(input.shape), dtype=dtype, device=device)


# ---------------------------------------------------------------------- random draws from tensors
def _uniform64(input: Tensor, generator, shape=None):
    b = input._backend
    return b.uniform(_gen(generator), tuple(input.shape) if shape is None else shape, 0.0, 1.0,
                     as_dtype("float64"))


def _probabilities(fn: str, p, like: Tensor):
    """``p`` (a number or a tensor) as a float64 array, after checking it lies in [0, 1]."""
    b = like._backend
    if isinstance(p, Tensor):
        if not p.dtype.is_floating_point:
            raise DTypeError(f"{fn}: expected floating-point probabilities, got {p.dtype}")
        arr = b.cast(p._data, as_dtype("float64"))
        if p.numel():
            lo = float(b.to_numpy(b.reduce("min", arr, None, False)))
            hi = float(b.to_numpy(b.reduce("max", arr, None, False)))
            if not 0.0 <= lo <= hi <= 1.0:  # (also catches nan)
                raise ArgumentValueError(
                    f"{fn}: expected probabilities in [0, 1], got values from {lo} to {hi}")
        return arr
    p = as_number(p, f"{fn}: p")
    if not 0.0 <= float(p) <= 1.0:
        raise ArgumentValueError(f"{fn}: expected a probability in [0, 1], got {p}")
    return b.full((), float(p), as_dtype("float64"))


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """0 or 1 per element, 1 with probability ``input`` (or ``p`` when given), in ``input``'s
    dtype and shape.

    Not differentiable (PyTorch's records a zero gradient). Uses gradient's own generator.
    Example: ``gradient.bernoulli(gradient.full((2, 3), 0.25))``
    """
    probs = _probabilities("bernoulli", input if p is None else p, input)
    b = input._backend
    hit = b.binary("lt", _uniform64(input, generator), probs)
    return Tensor._make(b.cast(hit, input.dtype), False, b)


def poisson(input: Tensor, generator=None) -> Tensor:
    """A Poisson draw per element with rate ``input`` (nonnegative), in its dtype and shape,
    from gradient's generator (its NumPy state); not differentiable.

    Example: ``gradient.poisson(gradient.full((3,), 2.0))``
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"poisson: expected floating-point rates, got {input.dtype}")
    b = input._backend
    rates = b.to_numpy(b.cast(input._data, as_dtype("float64")))
    if (rates < 0).any() or not np.isfinite(rates).all():
        raise ArgumentValueError("poisson: rates must be finite and nonnegative")
    draws = _gen(generator).poisson(rates)
    return Tensor._make(b.cast(b.from_numpy(draws), input.dtype), False, b)


def binomial(count: Tensor, prob: Tensor, generator=None) -> Tensor:
    """A binomial draw per element: successes in ``count`` trials of probability ``prob``
    (broadcast together), in ``prob``'s dtype, from gradient's generator (its NumPy state); not
    differentiable, as ``torch.binomial``.

    Example: ``gradient.binomial(gradient.full((3,), 10.0), gradient.full((3,), 0.5))``
    """
    if not prob.dtype.is_floating_point or not count.dtype.is_floating_point:
        raise DTypeError(f"binomial: expected floating-point count and prob, got {count.dtype} "
                         f"and {prob.dtype}")
    b = prob._backend
    n = b.to_numpy(b.cast(count._data, as_dtype("float64")))
    p = b.to_numpy(b.cast(prob._data, as_dtype("float64")))
    if (n < 0).any() or not np.isfinite(n).all() or ((p < 0) | (p > 1)).any():
        raise ArgumentValueError(
            "binomial: counts must be finite and nonnegative, probabilities in [0, 1]")
    draws = _gen(generator).binomial(n.astype(np.int64), p).astype(np.float64)
    return Tensor._make(b.cast(b.from_numpy(draws), prob.dtype), False, b)


def _refill(input: Tensor, op: str, values) -> Tensor:
    """Overwrite ``input`` with the array ``values`` (random draws), as an in-place op: the
    version counter moves, a leaf that requires grad is refused (as PyTorch does), and a
    non-leaf in a recorded graph passes a zero gradient back to what it held before."""
    b = input._backend
    values = b.cast(values, input.dtype)
    if input._check_inplace(op):
        from .elementwise import where
        everywhere = Tensor._make(b.full((), True, bool_), False, b)
        return input._write(op, where(everywhere, Tensor._make(values, False, b), input._snapshot()))
    b.setitem(input._data, Ellipsis, values)
    input._version.bump(op)
    return input


def bernoulli_(input: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill with 0 or 1, 1 with probability ``p`` (a number, or a tensor broadcasting to
    ``input``); in place. Example: ``mask = gradient.empty(4, 4).bernoulli_(0.9)``."""
    probs = _probabilities("bernoulli_", p, input)
    b = input._backend
    if isinstance(p, Tensor):
        from .shape import broadcast_shapes
        if tuple(broadcast_shapes(tuple(input.shape), tuple(p.shape))) != tuple(input.shape):
            raise ShapeError(f"bernoulli_: p of shape {tuple(p.shape)} does not broadcast to the "
                             f"tensor's shape {tuple(input.shape)}")
    return _refill(input, "bernoulli_", b.binary("lt", _uniform64(input, generator), probs))


def _integer_range(dtype) -> tuple[int, int]:
    """The integers ``random_()`` draws for ``dtype`` by default, inclusive: [0, max]; for floats
    every integer the dtype holds exactly, [0, 2 ** mantissa digits]."""
    if dtype is bool_:
        return 0, 1
    if dtype.is_floating_point:
        import ml_dtypes
        return 0, 2 ** (int(ml_dtypes.finfo(dtype.numpy).nmant) + 1)
    return 0, int(np.iinfo(dtype.numpy).max)


def random_(input: Tensor, from_=0, to=None, *, generator=None) -> Tensor:
    """Fill with random integers, in place: ``x.random_(to)`` draws from [0, to),
    ``x.random_(from, to)`` from [from, to), and ``x.random_()`` from [0, largest], where largest
    is the dtype's maximum (integers) or 2 ** mantissa digits (floats: 2 ** 24 for float32).

    Example: ``gradient.empty(5, dtype=gradient.int64).random_(10)``
    """
    if to is None:
        if type(from_) is int and from_ == 0:
            low, high = _integer_range(input.dtype)
            high += 1
        else:  # random_(to)
            low, high = 0, as_int(from_, "random_: to")
    else:
        low, high = as_int(from_, "random_: from"), as_int(to, "random_: to")
    if low >= high:
        raise ArgumentValueError(f"random_: expected from < to, got from={low}, to={high}")
    _check_int64_range("random_", low, high)
    if not input.dtype.is_floating_point and input.dtype is not bool_:
        info = np.iinfo(input.dtype.numpy)
        if low < info.min or high - 1 > info.max:
            raise ArgumentValueError(
                f"random_: the range [{low}, {high}) does not fit in {input.dtype} "
                f"({info.min} to {info.max})")
    b = input._backend
    draws = b.randint(_gen(generator), low, high, tuple(input.shape), int64)
    return _refill(input, "random_", draws)


def exponential_(input: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from the exponential distribution of rate ``lambd``, in place."""
    if not input.dtype.is_floating_point:
        raise DTypeError(f"exponential_: expected a floating tensor, got {input.dtype}")
    lambd = as_number(lambd, "exponential_: lambd")
    if not lambd > 0:
        raise ArgumentValueError(f"exponential_: expected lambd > 0, got {lambd}")
    b = input._backend
    f64 = as_dtype("float64")
    e = b.unary("neg", b.unary("log1p", b.unary("neg", _uniform64(input, generator))))  # -log(1-u)
    return _refill(input, "exponential_", b.binary("div", e, b.full((), float(lambd), f64)))


def _scalar(b, value):
    return b.full((), float(value), as_dtype("float64"))


def log_normal_(input: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """Fill with ``exp(N(mean, std ** 2))`` draws (a log-normal distribution whose logarithm has
    that mean and standard deviation), in place.

    Example: ``gradient.empty(3).log_normal_(0.0, 0.5)``
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"log_normal_: expected a floating tensor, got {input.dtype}")
    mean, std = as_number(mean, "log_normal_: mean"), as_number(std, "log_normal_: std")
    if not std > 0:
        raise ArgumentValueError(f"log_normal_ expects std > 0.0, but found std={std}")
    b = input._backend
    draws = b.normal(_gen(generator), tuple(input.shape), float(mean), float(std),
                     as_dtype("float64"))
    return _refill(input, "log_normal_", b.unary("exp", draws))


def cauchy_(input: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from the Cauchy distribution centred on ``median`` with scale ``sigma``
    (``median + sigma * tan(pi * (u - 1/2))`` for uniform ``u``), in place.

    Example: ``gradient.empty(3).cauchy_()``
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"cauchy_: expected a floating tensor, got {input.dtype}")
    median, sigma = as_number(median, "cauchy_: median"), as_number(sigma, "cauchy_: sigma")
    if not sigma > 0:
        raise ArgumentValueError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    b = input._backend
    angle = b.binary("mul", b.binary("sub", _uniform64(input, generator), _scalar(b, 0.5)),
                     _scalar(b, math.pi))
    draws = b.binary("add", b.binary("mul", b.unary("tan", angle), _scalar(b, sigma)),
                     _scalar(b, median))
    return _refill(input, "cauchy_", draws)


def geometric_(input: Tensor, p: float, *, generator=None) -> Tensor:
    """Fill with the number of Bernoulli(``p``) trials up to and including the first success
    (1, 2, 3, ...), in place; integer tensors too.

    Drawn by inversion: ``floor(log(1 - u) / log(1 - p)) + 1`` for uniform ``u`` in [0, 1).
    Example: ``gradient.empty(5, dtype=gradient.int64).geometric_(0.3)``
    """
    p = as_number(p, "geometric_: p")
    if not 0 < p < 1:
        raise ArgumentValueError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    if input.dtype is bool_:
        raise DTypeError("geometric_: not supported for bool tensors")
    b = input._backend
    log_fail = _scalar(b, math.log1p(-p))
    trials = b.unary("floor", b.binary("div", b.unary("log1p", b.unary("neg", _uniform64(
        input, generator))), log_fail))
    return _refill(input, "geometric_", b.binary("add", trials, _scalar(b, 1.0)))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Normal random numbers with the given ``mean`` and ``std`` (numbers or tensors, which
    broadcast), or ``normal(mean, std, size)`` for numbers.

    The draws are ``mean + std * eps`` with ``eps`` standard normal, so the result is
    differentiable in tensor ``mean`` and ``std`` (the reparameterization PyTorch uses too).
    Example: ``gradient.normal(gradient.zeros(3), gradient.tensor([1.0, 2.0, 3.0]))``,
    ``gradient.normal(0.0, 1.0, size=(2, 3))``.
    """
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise ArgumentTypeError("normal: with a number mean and std, give the size, e.g. "
                                    "normal(0.0, 1.0, size=(2, 3))")
        if std < 0:
            raise ArgumentValueError(f"normal: expected std >= 0, got {std}")
        return randn(*_shape((size,)), generator=generator, dtype=dtype, device=device,
                     requires_grad=False).mul_(std).add_(mean).requires_grad_(requires_grad)
    if size is not None:
        raise ArgumentTypeError("normal: size is only taken with a number mean and std; the shape "
                                "comes from the tensors")
    from .shape import broadcast_shapes
    for t in tensors:
        if not t.dtype.is_floating_point:
            raise DTypeError(f"normal: expected floating-point mean and std, got {t.dtype}")
    if isinstance(std, Tensor):
        if std.numel() and float(std.detach().min()) < 0:
            raise ArgumentValueError("normal: expected std >= 0, got a negative entry")
    elif std < 0:
        raise ArgumentValueError(f"normal: expected std >= 0, got {std}")
    like = tensors[0]
    out_dtype = result_type(*tensors)
    shape = tuple(broadcast_shapes(*(tuple(t.shape) for t in tensors)))
    b = like._backend
    eps = Tensor._make(b.normal(_gen(generator), shape, 0.0, 1.0, out_dtype), False, b)
    return mean + std * eps


# ---------------------------------------------------------------------- triangle indices
def _triangle_indices(fn: str, np_fn, row: int, col: int, offset: int, dtype, device) -> Tensor:
    row, col, offset = operator.index(row), operator.index(col), operator.index(offset)
    if row < 0 or col < 0:
        raise ArgumentValueError(
            f"{fn}: row and col must be non-negative, got row={row}, col={col}")
    dtype = as_dtype(dtype) if dtype is not None else int64
    if dtype.is_floating_point or dtype is bool_:
        raise DTypeError(f"{fn}: expected an integer dtype, got {dtype}")
    rows, cols = np_fn(row, k=offset, m=col)  # row-major order, as PyTorch's
    backend = _backend(device)
    return Tensor._make(backend.from_numpy(np.stack([rows, cols]).astype(dtype.numpy).reshape(2, -1)),
                        False, backend)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) coordinates of the lower triangle (on and below diagonal ``offset``) of a
    ``row`` by ``col`` matrix, row by row. Example: ``x[tuple(gradient.tril_indices(3, 3))]``."""
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) coordinates of the upper triangle (on and above diagonal ``offset``) of a
    ``row`` by ``col`` matrix, row by row. Example: ``gradient.triu_indices(3, 4, offset=1)``."""
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device)
