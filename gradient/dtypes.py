"""Data types and PyTorch's type-promotion rules.

A :class:`DType` names an element type and knows its NumPy equivalent
(bfloat16 comes from ``ml_dtypes``, since NumPy has none).

Promotion follows PyTorch, not NumPy:

* categories are ordered bool < integer < floating; a result takes the highest category present;
* Python scalars and 0-d tensors only decide the *category*: ``int8_tensor + 1000`` stays int8,
  ``int_tensor * 2.5`` becomes the default float dtype (float32), ``float16_tensor * 2.5`` stays float16;
* float16 with bfloat16 gives float32; uint8 with int8 gives int16.

Example::

    >>> import gradient
    >>> gradient.promote_types(gradient.uint8, gradient.int8)
    gradient.int16
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .errors import DTypeError

__all__ = [
    "DType", "bool_", "uint8", "int8", "int16", "int32", "int64",
    "float16", "bfloat16", "float32", "float64",
    "get_default_dtype", "set_default_dtype", "promote_types", "result_type", "as_dtype",
    "finfo", "iinfo", "legacy_type_name", "from_legacy_type_name",
]


class DType:
    """An element type: ``gradient.float32``, ``gradient.int64``, ..."""

    __slots__ = ("name", "numpy", "is_floating_point", "is_signed", "itemsize", "_kind")

    def __init__(self, name: str, numpy_dtype, kind: int):
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = kind == _FLOAT
        self.is_signed = name not in ("bool", "uint8")
        self.itemsize = self.numpy.itemsize
        self._kind = kind  # category: 0 bool, 1 integer, 2 floating

    def __repr__(self) -> str:
        return f"gradient.{self.name}"

    def __reduce__(self):  # dtypes are singletons, also across copy/pickle of user objects
        return (as_dtype, (self.name,))

    @property
    def is_complex(self) -> bool:
        return False


_BOOL, _INT, _FLOAT = 0, 1, 2

bool_ = DType("bool", np.bool_, _BOOL)
uint8 = DType("uint8", np.uint8, _INT)
int8 = DType("int8", np.int8, _INT)
int16 = DType("int16", np.int16, _INT)
int32 = DType("int32", np.int32, _INT)
int64 = DType("int64", np.int64, _INT)
float16 = DType("float16", np.float16, _FLOAT)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, _FLOAT)
float32 = DType("float32", np.float32, _FLOAT)
float64 = DType("float64", np.float64, _FLOAT)

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_BY_NUMPY = {d.numpy: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64,
                 "int": int32, "short": int16, "char": int8, "byte": uint8, "bool_": bool_})

_default_float = float32


def get_default_dtype() -> DType:
    """The floating dtype used for Python floats and integer division (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype, like ``torch.set_default_dtype``."""
    global _default_float
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point:
        raise DTypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_float = dtype


def as_dtype(obj) -> DType:
    """Turn a DType, a NumPy dtype, a Python type or a name ('float32', 'half') into a DType.

    Python types mean what they mean to PyTorch: ``float`` is float64 (whatever the default
    dtype), ``int`` is int64 and ``bool`` is bool.
    """
    if isinstance(obj, DType):
        return obj
    if obj is float:
        return float64
    if obj is int:
        return int64
    if obj is bool:
        return bool_
    if isinstance(obj, str):
        name = obj.removeprefix("gradient.").removeprefix("torch.")
        if name in _BY_NAME:
            return _BY_NAME[name]
    elif obj is not None:  # np.dtype(None) would be float64
        try:
            found = _BY_NUMPY.get(np.dtype(obj))
        except (TypeError, ValueError):   # (a Tensor: NumPy reads its .dtype and gives up)
            found = None
        if found is not None:
            return found
    known = ", ".join(d.name for d in ALL_DTYPES)
    shown = repr(obj)
    if len(shown) > 40 or "\n" in shown:
        shown = f"a {type(obj).__name__}"
    raise DTypeError(f"unknown dtype {shown}: expected one of {known}")


#: PyTorch's legacy tensor type names (``torch.FloatTensor``, ``torch.LongTensor`` ...), by
#: dtype name: what ``x.type()`` says and the classes of :mod:`gradient.tensor_types` are.
LEGACY_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor",
                     "float16": "HalfTensor", "bfloat16": "BFloat16Tensor",
                     "uint8": "ByteTensor", "int8": "CharTensor", "int16": "ShortTensor",
                     "int32": "IntTensor", "int64": "LongTensor", "bool": "BoolTensor"}
_BY_LEGACY_NAME = {legacy: name for name, legacy in LEGACY_TYPE_NAMES.items()}


def legacy_type_name(dtype: DType, device_type: str = "cpu") -> str:
    """PyTorch's legacy name of a tensor type, under gradient's name: ``'gradient.FloatTensor'``
    for float32 on the CPU, ``'gradient.cuda.LongTensor'`` for int64 on a GPU."""
    place = "" if device_type == "cpu" else f"{device_type}."
    return f"gradient.{place}{LEGACY_TYPE_NAMES[dtype.name]}"


def from_legacy_type_name(name: str) -> tuple[DType, str]:
    """``(dtype, device type)`` of a legacy tensor type name: ``'torch.FloatTensor'``,
    ``'torch.cuda.LongTensor'`` or the same under ``gradient.``."""
    parts = name.split(".")
    if (len(parts) in (2, 3) and parts[0] in ("torch", "gradient")
            and parts[-1] in _BY_LEGACY_NAME):
        device_type = parts[1] if len(parts) == 3 else "cpu"
        return _BY_NAME[_BY_LEGACY_NAME[parts[-1]]], device_type
    raise DTypeError(f"unknown tensor type {name!r}: expected a name such as "
                     f"'torch.FloatTensor' or 'torch.cuda.LongTensor' (or a dtype)")


class finfo:  # noqa: N801  (PyTorch's name)
    """The limits of a floating dtype, as ``torch.finfo``: ``bits``, ``eps``, ``max``, ``min``,
    ``tiny`` (= ``smallest_normal``), ``resolution`` and ``dtype`` (its name).

    Example: ``gradient.finfo(gradient.float32).min`` (the default dtype when none is given).
    """

    def __init__(self, dtype=None):
        dtype = get_default_dtype() if dtype is None else as_dtype(dtype)
        if not dtype.is_floating_point:
            raise DTypeError(f"finfo: expected a floating dtype, got {dtype}; use gradient.iinfo "
                             "for integer dtypes")
        info = ml_dtypes.finfo(dtype.numpy)   # NumPy's for NumPy's types, bfloat16's too
        self.bits, self.dtype = info.bits, dtype.name
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -info.precision   # exact, not rounded to the dtype

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801
    """The limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``max``, ``min``, ``dtype``.

    Example: ``gradient.iinfo(gradient.int64).max``
    """

    def __init__(self, dtype):
        dtype = as_dtype(dtype)
        if dtype._kind != _INT:
            raise DTypeError(f"iinfo: expected an integer dtype, got {dtype}; use gradient.finfo "
                             "for floating dtypes")
        info = np.iinfo(dtype.numpy)
        self.bits, self.max, self.min, self.dtype = info.bits, int(info.max), int(info.min), dtype.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def from_numpy_dtype(np_dtype) -> DType:
    """The DType of a NumPy array's dtype; a clear error for the ones gradient does not support."""
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        found = _BY_NUMPY.get(np.dtype(np_dtype))
    if found is None:
        raise DTypeError(f"NumPy dtype {np_dtype} is not supported by gradient: "
                         f"convert the array to one of {', '.join(d.name for d in ALL_DTYPES)} first")
    return found


_INT_ORDER = {int8: 0, int16: 1, int32: 2, int64: 3}


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both ``a`` and ``b`` convert to, by PyTorch's table."""
    if a is b:
        return a
    if not (isinstance(a, DType) and isinstance(b, DType)):
        raise DTypeError(f"promote_types: expected two dtypes, got {type(a).__name__} and "
                         f"{type(b).__name__}")
    if a._kind != b._kind:
        return a if a._kind > b._kind else b
    if a._kind == _FLOAT:
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.itemsize > b.itemsize else b
    # both integers
    if a is uint8 or b is uint8:
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    return a if _INT_ORDER[a] > _INT_ORDER[b] else b


def scalar_kind(value) -> int:
    """Category of a Python scalar: bool, integer or floating."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _INT
    if isinstance(value, (float, np.floating)):
        return _FLOAT
    raise DTypeError(f"expected a Python number, got {type(value).__name__}")


_KIND_DEFAULT = {_BOOL: bool_, _INT: int64}


def result_type(*operands) -> DType:
    """PyTorch's ``result_type`` over tensors and Python scalars.

    Dimensioned tensors decide first; 0-d tensors only count when they are of a higher
    category; Python scalars after that, and only through their category.
    """
    dims = zero_dims = None
    scalar = -1
    for op in operands:
        if isinstance(getattr(op, "dtype", None), DType):   # a Tensor (dtypes sits below it)
            if op.ndim:
                dims = op.dtype if dims is None else promote_types(dims, op.dtype)
            else:
                zero_dims = op.dtype if zero_dims is None else promote_types(zero_dims, op.dtype)
        else:
            scalar = max(scalar, scalar_kind(op))
    result = dims
    if zero_dims is not None and (result is None or zero_dims._kind > result._kind):
        result = zero_dims
    if scalar >= 0 and (result is None or scalar > result._kind):
        result = _default_float if scalar == _FLOAT else _KIND_DEFAULT[scalar]
    return result
