"""DLPack exchange, as ``torch.utils.dlpack``: tensors shared with NumPy, JAX, CuPy or PyTorch
without a copy.

``gradient.from_dlpack(x)`` takes anything with ``__dlpack__`` (a NumPy array, a JAX or
PyTorch tensor on the CPU, another gradient tensor) or the capsule of :func:`to_dlpack`, and
returns a tensor over the same memory; a gradient tensor's ``__dlpack__`` is what those
libraries' ``from_dlpack`` read. Memory on the CPU only: an array on an accelerator is refused
(move it to the host first).

Example::

    >>> import numpy as np
    >>> a = np.arange(3.0)
    >>> t = gradient.from_dlpack(a)
    >>> t[0] = 7.0
    >>> a
    array([7., 1., 2.])
    >>> np.from_dlpack(t)           # and back, still the same memory
    array([7., 1., 2.])
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, DeviceError
from ..ops.creation import from_numpy
from ..tensor import Tensor

__all__ = ["from_dlpack", "to_dlpack"]

_CPU = 1   # DLPack's device type kDLCPU (kDLCUDA is 2)


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing the memory of ``ext_tensor``: an object with ``__dlpack__`` and
    ``__dlpack_device__``, or a DLPack capsule (from :func:`to_dlpack` or another library's)."""
    if isinstance(ext_tensor, Tensor):
        return ext_tensor.detach()
    if not hasattr(ext_tensor, "__dlpack__"):
        if type(ext_tensor).__name__ != "PyCapsule":
            raise ArgumentTypeError(
                f"from_dlpack: expected an object with __dlpack__ (a NumPy array, a "
                f"tensor of another library) or a DLPack capsule, got "
                f"{type(ext_tensor).__name__}")
        ext_tensor = _Capsule(ext_tensor)
    device_type, device_id = ext_tensor.__dlpack_device__()
    if device_type != _CPU:
        raise DeviceError(f"from_dlpack: the array is on DLPack device type {device_type} "
                          f"(id {device_id}); gradient takes CPU memory (type {_CPU}) this way: "
                          f"move it to the host first")
    return from_numpy(np.from_dlpack(ext_tensor))


def to_dlpack(tensor: Tensor):
    """The DLPack capsule of ``tensor`` (its memory, not a copy), as ``torch.utils.dlpack.
    to_dlpack``; newer code passes the tensor itself to the other library's ``from_dlpack``."""
    return tensor.__dlpack__()


class _Capsule:
    """A bare capsule given the protocol's two methods, for ``numpy.from_dlpack`` (which takes
    only objects): capsules reach here from ``to_dlpack`` of CPU memory."""

    def __init__(self, capsule):
        self._capsule = capsule

    def __dlpack__(self, **kwargs):
        return self._capsule

    def __dlpack_device__(self):
        return (_CPU, 0)
