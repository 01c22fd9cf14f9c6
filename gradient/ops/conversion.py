"""Tensors from other objects, sharing memory where possible: ``asarray``, ``frombuffer``, and
``scalar_tensor``.

Example::

    >>> a = numpy.arange(3.0)
    >>> t = gradient.asarray(a)          # shares a's memory on the CPU
    >>> gradient.frombuffer(bytearray(8), dtype=gradient.int32)   # tensor([0, 0], dtype=gradient.int32)
"""

from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype, get_default_dtype
from ..errors import ArgumentValueError, DTypeError
from ..tensor import Tensor
from .creation import from_numpy, tensor

__all__ = ["asarray", "frombuffer", "scalar_tensor"]
TENSOR_METHODS = ()


def asarray(obj, *, dtype=None, device=None, copy: bool | None = None,
            requires_grad: bool = False) -> Tensor:
    """``obj`` (a tensor, a NumPy array, a buffer, nested sequences, a number) as a tensor.

    Shares memory with a tensor or CPU NumPy array when no conversion is needed and ``copy`` is
    not True; ``copy=False`` raises when a copy cannot be avoided. Example:
    ``gradient.asarray([1, 2], dtype=gradient.float64)``.
    """
    dtype = as_dtype(dtype) if dtype is not None else None
    if isinstance(obj, Tensor):
        out = obj
        if device is not None:
            out = out.to(device)
        if dtype is not None:
            out = out.to(dtype)
        if out is not obj and copy is False:
            raise ArgumentValueError(
                "asarray: a copy is needed to change the device or dtype, but copy=False")
        if copy:
            out = out.clone() if out is obj else out
    else:
        if not isinstance(obj, np.ndarray) and hasattr(obj, "__array_interface__") \
                or isinstance(obj, (bytes, bytearray, memoryview)) and dtype is not None:
            obj = np.asarray(obj) if not isinstance(obj, (bytes, bytearray, memoryview)) \
                else np.frombuffer(obj, dtype=dtype.numpy)
        if isinstance(obj, np.ndarray) and (dtype is None or obj.dtype == dtype.numpy) and not copy:
            out = from_numpy(np.ascontiguousarray(obj) if copy is None else obj)
            if device is not None:
                out = out.to(device)
        elif copy is False:
            raise ArgumentValueError(
                f"asarray: a {type(obj).__name__} cannot be used without a copy "
                "(copy=False)")
        else:
            if isinstance(obj, np.ndarray) and dtype is None:
                out = from_numpy(obj.copy())
                out = out.to(device) if device is not None else out
            else:
                out = tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        out = out.detach().requires_grad_(True) if out.is_leaf else out
    return out


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0,
               requires_grad: bool = False) -> Tensor:
    """A 1-d tensor of ``dtype`` reading (and sharing) ``buffer``'s bytes from ``offset``:
    ``count`` elements, or all the rest with -1. ``gradient.frombuffer(b, dtype=gradient.float32)``."""
    dtype = as_dtype(dtype)
    raw = memoryview(buffer)
    itemsize = dtype.itemsize
    available = raw.nbytes - offset
    if offset < 0 or available < 0:
        raise ArgumentValueError(
            f"frombuffer: offset ({offset} bytes) must be non-negative and no greater "
            f"than the buffer length ({raw.nbytes} bytes) minus 1")
    if count == 0 or (count < 0 and available == 0):
        raise ArgumentValueError(
            f"frombuffer: both buffer length ({raw.nbytes}) and count ({count}) must "
            "not be 0")
    if count < 0 and available % itemsize:
        raise ArgumentValueError(
            f"frombuffer: buffer length ({raw.nbytes} bytes) after offset ({offset} "
            f"bytes) must be a multiple of element size ({itemsize})")
    if count > 0 and count * itemsize > available:
        raise ArgumentValueError(
            f"frombuffer: requested buffer length ({count} * {itemsize} bytes) after "
            f"offset ({offset} bytes) must not be greater than actual buffer length "
            f"({raw.nbytes} bytes)")
    arr = np.frombuffer(raw, dtype=dtype.numpy, count=count, offset=offset)
    out = from_numpy(arr)
    return out.requires_grad_(True) if requires_grad else out


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding the number ``s``, of the default float dtype unless ``dtype`` says
    otherwise (as PyTorch; ``gradient.tensor(3)`` would be int64). ``gradient.scalar_tensor(3)``
    is ``tensor(3.)``."""
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    if isinstance(s, Tensor):
        raise DTypeError("scalar_tensor(): argument 's' must be a Number, not Tensor")
    return tensor(s, dtype=dtype, device=device, requires_grad=requires_grad)
