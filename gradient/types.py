"""``torch.types``: the aliases type-annotated code imports (``Number``, ``Device``,
``_size``, ``_TensorOrTensors``), over gradient's classes.

Example::

    >>> from gradient.types import Device, Number
    >>> def scale(x, by: Number, device: Device = None): ...
"""

from __future__ import annotations

import builtins
import os
from typing import IO, Sequence, Union

from .device import device as _device_class
from .dtypes import DType
from .layouts import layout as _layout_class
from .tensor import Size, Tensor

_int = builtins.int
_float = builtins.float
_bool = builtins.bool
_complex = builtins.complex
_str = builtins.str
_bytes = builtins.bytes

_dtype = DType
_device = _device_class
_layout = _layout_class
_size = Union[Size, list, tuple]

Number = Union[int, float, bool]
_Number = (int, float, bool)
Device = Union[_device_class, str, int, None]
FileLike = Union[str, os.PathLike, IO[bytes]]

_TensorOrTensors = Union[Tensor, Sequence[Tensor]]
_TensorOrOptionalTensors = Union[Tensor, Sequence[Union[Tensor, None]]]

__all__ = ["Number", "Device", "FileLike"]
