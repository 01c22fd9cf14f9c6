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

import numpy as np

from ..backends import get_backend
from ..device import as_device
from ..dtypes import as_dtype, bool_, from_numpy_dtype, get_default_dtype, int64
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor

TENSOR_METHODS = ("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor")


# ---------------------------------------------------------------------- random state
class Generator:
    """A seeded source of random numbers for one device, like ``torch.Generator``."""

    def __init__(self, device="cpu"):
        self.device = as_device(device)
        self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
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
    default_generator.set_state(state)


# ---------------------------------------------------------------------- helpers
def _shape(size) -> tuple:
    """Accept f(2, 3), f((2, 3)) and f([2, 3]) as PyTorch does."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ShapeError(f"negative dimension in shape {shape}")
    return shape


def _backend(device):
    return get_backend(as_device(device))


def _wrap(array, backend, requires_grad) -> Tensor:
    return Tensor._make(array, False, backend).requires_grad_(requires_grad) if requires_grad \
        else Tensor._make(array, False, backend)


def _infer_dtype(data):
    """PyTorch's dtype for Python data: bool, int64, or the default float."""
    kinds = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Tensor):
            kinds.add(item.dtype)
        elif isinstance(item, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(item, (int, np.integer)):
            kinds.add("int")
        elif isinstance(item, (float, np.floating)):
            kinds.add("float")
        else:
            raise DTypeError(f"tensor(): cannot make a tensor from {type(item).__name__} {item!r}; "
                             "expected numbers, nested lists of numbers, or an array")
    if "float" in kinds:
        return get_default_dtype()
    if "int" in kinds:
        return int64
    if "bool" in kinds:
        return bool_
    return get_default_dtype()  # an empty list


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
    else:
        dtype = as_dtype(dtype) if dtype is not None else _infer_dtype(data)
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
            data = _nested_values(data)
        try:
            arr = np.array(data, dtype=np.float64 if dtype.is_floating_point else None)
        except ValueError as e:
            raise ShapeError(f"tensor(): nested sequences must be rectangular ({e})") from None
        if arr.dtype == object:
            raise ShapeError("tensor(): nested sequences must be rectangular and hold numbers only")
    return backend.from_numpy(np.array(arr, dtype=dtype.numpy, copy=True))


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
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    from_numpy_dtype(array.dtype)  # clear error for unsupported dtypes
    return Tensor._make(array, False)


# ---------------------------------------------------------------------- filled
def _filled(size, value, dtype, device, requires_grad, default=None) -> Tensor:
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else (default or get_default_dtype())
    return _wrap(backend.full(_shape(size), value, dtype), backend, requires_grad)


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
        dtype = _infer_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    if isinstance(size, int):
        size = (size,)
    return _filled((tuple(size),), fill_value, dtype, device, requires_grad)


def _like(t: Tensor, dtype, device):
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _filled((tuple(input.shape),), 0, dtype, device, requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _filled((tuple(input.shape),), 1, dtype, device, requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros_like(input, dtype, device, requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return _filled((tuple(input.shape),), fill_value, dtype, device, requires_grad)


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
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) \
            else get_default_dtype()
    backend = _backend(device)
    dtype = as_dtype(dtype)
    n = max(math.ceil((end - start) / step), 0)
    if dtype.is_floating_point:
        arr = backend.cast(backend.from_numpy(np.arange(n, dtype=np.float64) * step + start), dtype)
    else:
        arr = backend.arange(start, end, step, dtype)
    return _wrap(arr, backend, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    arr = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    return _wrap(backend.cast(backend.from_numpy(arr), dtype), backend, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None) -> Tensor:
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    arr = np.logspace(float(start), float(end), int(steps), base=base, dtype=np.float64)
    return Tensor._make(backend.cast(backend.from_numpy(arr), dtype), False, backend)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n`` by ``m`` identity matrix."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    arr = np.eye(n, n if m is None else m)
    return _wrap(backend.cast(backend.from_numpy(arr), dtype), backend, requires_grad)


# ---------------------------------------------------------------------- random
def _gen(generator):
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
            raise TypeError("randint: give the size, e.g. randint(10, (3,))")
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else int64
    return Tensor._make(backend.randint(_gen(generator), low, high, _shape((size,)), dtype), False, backend)


def randperm(n: int, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 .. n-1."""
    backend = _backend(device)
    dtype = as_dtype(dtype) if dtype is not None else int64
    return Tensor._make(backend.permutation(_gen(generator), int(n), dtype), False, backend)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return rand(*input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randn(*input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randint_like(input: Tensor, low, high=None, dtype=None, device=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randint(low, high, tuple(input.shape), dtype=dtype, device=device)
