"""PyTorch's legacy tensor types: ``gradient.FloatTensor``, ``gradient.LongTensor`` ... (and
``gradient.cuda.FloatTensor`` ...), as older PyTorch programs use them.

Each is a name for a dtype on a kind of device: called, it makes a tensor of that type from
sizes (zeros: PyTorch's are uninitialised) or from values; ``isinstance(x, FloatTensor)`` asks
whether ``x`` is a float32 tensor on the CPU; ``x.type(LongTensor)`` converts. They are not
subclasses of :class:`~gradient.Tensor`, as PyTorch's are not. :func:`set_default_tensor_type`
sets the default dtype (and device) from one, as PyTorch's deprecated function does.

Example::

    >>> gradient.LongTensor([1, 2]).dtype
    gradient.int64
    >>> isinstance(gradient.zeros(2), gradient.FloatTensor)
    True
    >>> gradient.ones(2).type(gradient.DoubleTensor).type()
    'gradient.DoubleTensor'
"""

from __future__ import annotations

import warnings

from .dtypes import LEGACY_TYPE_NAMES, as_dtype, from_legacy_type_name, set_default_dtype
from .errors import DTypeError
from .settings import set_default_device
from .tensor import Tensor

__all__ = [*LEGACY_TYPE_NAMES.values(), "set_default_tensor_type"]   # (and cuda_types)


class _TensorType(type):
    """The class of each legacy type: what calling it and ``isinstance`` against it do."""

    def __call__(cls, *data, device=None):
        return Tensor(*data, dtype=cls.dtype, device=device or cls.legacy_device_type)

    def __instancecheck__(cls, obj) -> bool:
        return (isinstance(obj, Tensor) and obj.dtype is cls.dtype
                and obj.device.type == cls.legacy_device_type)

    def __repr__(cls) -> str:
        place = "" if cls.legacy_device_type == "cpu" else f"{cls.legacy_device_type}."
        return f"<class 'gradient.{place}{cls.__name__}'>"


def _tensor_type(dtype_name: str, device_type: str) -> _TensorType:
    name = LEGACY_TYPE_NAMES[dtype_name]
    return _TensorType(name, (), {"dtype": as_dtype(dtype_name),
                                  "legacy_device_type": device_type,
                                  "is_cuda": device_type == "cuda",
                                  "__doc__": f"{as_dtype(dtype_name)} tensors on the "
                                             f"{device_type.upper()} (PyTorch's legacy "
                                             f"torch.{'cuda.' if device_type == 'cuda' else ''}"
                                             f"{name})."})


_CPU = {name: _tensor_type(dtype_name, "cpu") for dtype_name, name in LEGACY_TYPE_NAMES.items()}
#: The CUDA ones, ``gradient.cuda.FloatTensor`` ... by name.
cuda_types = {name: _tensor_type(dtype_name, "cuda")
              for dtype_name, name in LEGACY_TYPE_NAMES.items()}
globals().update(_CPU)


def set_default_tensor_type(t) -> None:
    """Make ``t`` (a floating legacy type, or its name: ``'torch.DoubleTensor'``,
    ``'torch.cuda.FloatTensor'``) the default: its dtype the default dtype, and, for a CUDA
    type, ``"cuda"`` the default device. Deprecated in PyTorch for
    :func:`~gradient.set_default_dtype` and :func:`~gradient.set_default_device`, which this
    calls."""
    warnings.warn("set_default_tensor_type() is deprecated, as in PyTorch: use "
                  "set_default_dtype() and set_default_device()", DeprecationWarning,
                  stacklevel=2)
    if isinstance(t, str):
        dtype, device_type = from_legacy_type_name(t)
    elif isinstance(t, _TensorType):
        dtype, device_type = t.dtype, t.legacy_device_type
    else:
        raise DTypeError(f"set_default_tensor_type: expected a tensor type such as "
                         f"gradient.DoubleTensor or its name, got {t!r}")
    set_default_dtype(dtype)
    set_default_device(device_type)
