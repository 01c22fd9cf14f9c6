"""``gradient.accelerator``: the current accelerator, as ``torch.accelerator`` (PyTorch 2.6+).

Current PyTorch scripts pick their device without naming a vendor::

    >>> device = gradient.accelerator.current_accelerator() or "cpu"
    >>> model.to(device)

gradient's accelerator is a CUDA GPU (:mod:`gradient.cuda`) where CuPy sees one. Plugin
devices (``"plugin:webgpu"``, ``"metal"``) are asked for by name, not picked here: they run
in another process and a script that did not ask for one should not land there. Without an
accelerator :func:`is_available` is False, :func:`current_accelerator` None and
:func:`device_count` 0, and the functions that need a device raise
:class:`~gradient.errors.DeviceError` ("Cannot access accelerator device when none is
available", as PyTorch's RuntimeError says; DeviceError is a RuntimeError).
"""

from __future__ import annotations

import contextlib

from . import cuda as _cuda
from .device import device as _device
from .errors import DeviceError

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "current_device_idx", "set_device_index", "set_device_idx", "device_index",
           "synchronize", "empty_cache", "memory_allocated", "max_memory_allocated",
           "memory_reserved", "reset_peak_memory_stats"]


def is_available() -> bool:
    """Whether an accelerator can be used: ``gradient.cuda.is_available()``."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """The accelerator's device type, ``gradient.device("cuda")``, or None where there is none
    (``check_available`` is accepted for PyTorch's signature: gradient has no accelerator that
    is built in but not usable).

    Example: ``device = gradient.accelerator.current_accelerator() or "cpu"``
    """
    return _device("cuda") if is_available() else None


def device_count() -> int:
    """How many accelerator devices there are (0 without one)."""
    return _cuda.device_count() if is_available() else 0


def _required() -> None:
    if not is_available():
        raise DeviceError("Cannot access accelerator device when none is available: "
                          "gradient.accelerator.is_available() is False (a CUDA GPU and CuPy, "
                          "pip install -e \".[cuda]\", make one available)")


def current_device_index() -> int:
    """The index of the accelerator device in use (``"cuda"`` means that one)."""
    _required()
    return _cuda.current_device()


def set_device_index(device, /) -> None:
    """Use the accelerator device ``device`` (an index, ``"cuda:1"`` or a device) from now on,
    in this thread."""
    _required()
    _cuda.set_device(device)


# PyTorch's earlier names
current_device_idx = current_device_index
set_device_idx = set_device_index


@contextlib.contextmanager
def device_index(device, /):
    """``with gradient.accelerator.device_index(1):`` the accelerator device 1 in the block, the
    previous one after it; ``None`` changes nothing (as in PyTorch)."""
    if device is None:
        yield
        return
    _required()
    with _cuda.device(device):
        yield


def synchronize(device=None, /) -> None:
    """Wait until the device (default: the current one) has finished its queued work."""
    _required()
    _cuda.synchronize(device)


def empty_cache() -> None:
    """Give the memory the accelerator's allocator keeps for reuse back to the device."""
    _required()
    _cuda.empty_cache()


def memory_allocated(device=None, /) -> int:
    """Bytes held by tensors on the device."""
    _required()
    return _cuda.memory_allocated(device)


def max_memory_allocated(device=None, /) -> int:
    """The most bytes tensors held on the device since the start or the last reset."""
    _required()
    return _cuda.max_memory_allocated(device)


def memory_reserved(device=None, /) -> int:
    """Bytes the device's allocator holds, in use or kept for reuse."""
    _required()
    return _cuda.memory_reserved(device)


def reset_peak_memory_stats(device=None, /) -> None:
    """Start :func:`max_memory_allocated` afresh."""
    _required()
    _cuda.reset_peak_memory_stats(device)
