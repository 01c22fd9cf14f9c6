"""Backends, found by device type.

``register_backend("cpu", cpu_backend)`` is all it takes to add a device; a device type that
is known but not available (CUDA without a GPU, say) registers a loader that raises a clear
:class:`~gradient.errors.DeviceError` explaining what is missing.
"""

from __future__ import annotations

from typing import Callable

from ..errors import DeviceError
from .base import Backend
from .numpy_backend import ArrayBackend, cpu_backend

_BACKENDS: dict[str, Backend] = {"cpu": cpu_backend}
_LOADERS: dict[str, Callable[[], Backend]] = {}


def register_backend(device_type: str, backend: Backend | Callable[[], Backend]) -> None:
    """Make ``device_type`` usable in device strings; ``backend`` may be a loader called on first use."""
    if isinstance(backend, Backend):
        _BACKENDS[device_type] = backend
    else:
        _LOADERS[device_type] = backend


def get_backend(device_type: str) -> Backend:
    """The backend serving ``device_type``, loading it on first use."""
    backend = _BACKENDS.get(device_type)
    if backend is None:
        loader = _LOADERS.get(device_type)
        if loader is None:
            known = ", ".join(sorted(set(_BACKENDS) | set(_LOADERS)))
            raise DeviceError(f"unknown device type {device_type!r}: expected one of {known}")
        backend = _BACKENDS[device_type] = loader()
    return backend


def _load_cuda() -> Backend:
    from .cuda import load_backend  # imports CuPy: only when device "cuda" is first used
    return load_backend()


register_backend("cuda", _load_cuda)

__all__ = ["Backend", "ArrayBackend", "cpu_backend", "get_backend", "register_backend"]
