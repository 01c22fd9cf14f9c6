"""Backends, found by device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

A device type has one device (``"cpu"``) or several, numbered from 0 (``"cuda:0"``,
``"cuda:1"``). Every device has a backend object of its own, named by its device string, so a
tensor's backend says where it lives, and an op given tensors of two backends refuses them
(``ArrayFunction.apply`` compares backends). A type with several devices and no index
(``"cuda"``) means the type's *current* device: 0 unless :func:`set_current_index` (which
``gradient.cuda.set_device`` and ``gradient.cuda.device(n)`` call) says otherwise, per
thread, as in PyTorch.

``register_backend("cpu", cpu_backend)`` adds a type with one device;
``register_backend("cuda", loader, device_count=count)`` a type with several, whose
``loader(index)`` makes the backend of one device when it is first used. A device type that is
known but not available (CUDA without a GPU) registers a loader or a count that raises a clear
:class:`~gradient.errors.DeviceError` explaining what is missing.

Example::

    >>> from gradient.backends import get_backend
    >>> get_backend("cpu").name
    'cpu'
    >>> get_backend("cuda:1")          # the backend of GPU 1; DeviceError where there is none
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

from .. import kernels
from ..errors import DeviceError
from .base import Backend
from .numpy_backend import ArrayBackend, cpu_backend
from . import cudnn, mps  # noqa: F401,E402  (torch.backends.cudnn's flags, mps's questions)

_BACKENDS: dict[str, Backend] = {"cpu": cpu_backend}  # loaded, by device string: "cpu", "cuda:1"
_LOADERS: dict[str, Callable[..., Backend]] = {}      # by device type: loader() or loader(index)
_COUNTS: dict[str, Callable[[], int]] = {}            # types with several devices: how many


class _CurrentIndex(threading.local):
    """The current device index of each device type, per thread (like CUDA's current device)."""

    def __init__(self):
        self.by_type: dict[str, int] = {}


_current = _CurrentIndex()


def register_backend(device_type: str, backend: Backend | Callable[..., Backend], *,
                     device_count: int | Callable[[], int] | None = None) -> None:
    """Make ``device_type`` usable in device strings.

    ``backend`` is the backend of the type's one device, or a loader called on first use:
    ``loader()`` for a type with one device, ``loader(index)`` for a type with several, given
    by ``device_count`` (a number, or a function that answers it and raises DeviceError when
    the type is unavailable). ``loader(index)`` returns a backend named ``"<type>:<index>"``.
    Registering a type again replaces it, and drops its backends loaded so far.

    Example (three devices whose arrays live in host memory)::

        >>> register_backend("x", lambda i: ArrayBackend(np, f"x:{i}"), device_count=3)
        >>> gradient.ones(2, device="x:2").device
        device(type='x', index=2)
    """
    if (":" in device_type and not _is_plugin_type(device_type)) or not device_type:
        raise DeviceError(f"register_backend: expected a device type like 'cuda' (no index), "
                          f"got {device_type!r}")
    for key in [k for k in _BACKENDS if k == device_type or k.startswith(device_type + ":")]:
        del _BACKENDS[key]
    _LOADERS.pop(device_type, None)
    _COUNTS.pop(device_type, None)
    if device_count is not None:
        if isinstance(backend, Backend):
            raise DeviceError(f"register_backend({device_type!r}): a type with several devices "
                              "takes a loader(index), not one backend")
        _COUNTS[device_type] = device_count if callable(device_count) else lambda: device_count
        _LOADERS[device_type] = backend
    elif isinstance(backend, Backend):
        _BACKENDS[device_type] = backend
    else:
        _LOADERS[device_type] = backend


def parse_device(spec: str, index: int | None = None) -> tuple[str, int | None]:
    """``(type, index)`` of a device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``), the index
    given apart or None: the one parser of device strings (:class:`gradient.device` uses it).
    DeviceError for a malformed string or index; it does not check that the device exists.

    Example: ``parse_device("cuda:1")`` is ``("cuda", 1)``
    """
    if not isinstance(spec, str):
        raise DeviceError(f"expected a device string like 'cpu' or 'cuda:0', got {spec!r}")
    kind, colon, idx = spec.partition(":")
    if kind == "plugin":   # "plugin:NAME" is the type, "plugin:NAME:1" its device 1
        name, colon, idx = idx.partition(":")
        if not name or (colon and not idx):
            raise DeviceError(f"bad device string {spec!r}: expected 'plugin:NAME' or "
                              "'plugin:NAME:INDEX', like 'plugin:reference'")
        kind = f"plugin:{name}"
    elif not kind or (colon and not idx):
        raise DeviceError(f"bad device string {spec!r}: expected a type, then optionally ':' "
                          "and an index, like 'cuda' or 'cuda:1'")
    if idx:
        if not idx.isdigit():
            raise DeviceError(f"bad device string {spec!r}: the index after ':' must be a "
                              "non-negative number")
        if index is not None and int(idx) != index:
            raise DeviceError(f"device({spec!r}, {index}): the string already names index "
                              f"{idx}; pass the index once")
        index = int(idx)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise DeviceError(f"device index must be a non-negative integer, got {index!r}")
        index = int(index)
    return kind, index


def get_backend(device="cpu") -> Backend:
    """The backend of ``device``, loading it on first use.

    ``device`` is a device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``), a
    :class:`gradient.device`, or None (the CPU). Raises DeviceError for an unknown type, an
    unavailable one (saying why), or an index past the type's devices (saying how many exist).
    """
    if device.__class__ is str:
        backend = _BACKENDS.get(device)  # "cpu", "cuda:0": a dictionary lookup, nothing more
        if backend is not None:
            return backend
        kind, index = parse_device(device)
    elif device is None:
        return cpu_backend
    else:
        try:
            kind, index = device.type, device.index
        except AttributeError:
            raise DeviceError(f"expected a device string like 'cpu' or 'cuda:0', or a "
                              f"gradient.device; got {device!r}") from None
    backend = _BACKENDS.get(kind) if index is None else _BACKENDS.get(f"{kind}:{index}")
    return backend if backend is not None else _resolve(kind, index)


def _resolve(kind: str, index: int | None) -> Backend:
    if kind == "metal" and "metal" not in _LOADERS:   # Apple's GPUs: the WebGPU plugin
        if sys.platform != "darwin":
            raise DeviceError("'metal' is Apple's GPU API: on macOS it is the WebGPU plugin "
                              "(pip install 'gradient[webgpu]'); on this machine use "
                              "'plugin:webgpu' (Vulkan or D3D12) or 'cpu'")
        return get_backend("plugin:webgpu" if index is None else f"plugin:webgpu:{index}")
    if _is_plugin_type(kind) and kind not in _COUNTS:
        from . import plugin   # the plugin is found, and registered, on first use
        loader, count = plugin.loader(kind)
        register_backend(kind, loader, device_count=count)
    count = _COUNTS.get(kind)
    if count is None:  # a type with one device (or an unknown type)
        backend = _BACKENDS.get(kind)
        if backend is None:
            loader = _LOADERS.get(kind)
            if loader is None:
                raise DeviceError(f"unknown device type {kind!r}: expected one of {known_types()}")
            backend = _BACKENDS[kind] = loader()
        if index not in (None, 0):
            raise DeviceError(f"device '{kind}:{index}' does not exist: there is one {kind} "
                              f"device; use '{kind}'")
        return backend
    if index is None:
        index = current_index(kind)
    key = f"{kind}:{index}"
    backend = _BACKENDS.get(key)
    if backend is None:
        n = int(count())  # raises DeviceError, with the reason, when the type is unavailable
        if not 0 <= index < n:
            raise DeviceError(f"device '{key}' does not exist: {_how_many(n, kind)}")
        backend = _LOADERS[kind](index)
        if backend.name != key:
            raise DeviceError(f"the loader of device type {kind!r} made a backend named "
                              f"{backend.name!r} for device {key!r}; name it {key!r}")
        _BACKENDS[key] = backend
    return backend


def _is_plugin_type(kind: str) -> bool:
    return kind.startswith("plugin:") and kind.count(":") == 1 and len(kind) > 7


def _how_many(n: int, kind: str) -> str:
    if n == 0:
        return f"there is no {kind} device"
    if n == 1:
        return f"there is 1 {kind} device ({kind}:0); use '{kind}:0' or '{kind}'"
    return f"there are {n} {kind} devices ({kind}:0 to {kind}:{n - 1}); pick an index below {n}"


def known_types() -> str:
    """The registered device types, comma-separated (for error messages)."""
    return ", ".join(sorted({k.partition(":")[0] for k in _BACKENDS} | set(_LOADERS)))


def device_count(device_type: str) -> int:
    """How many devices of ``device_type`` there are (1 for a type with one device)."""
    count = _COUNTS.get(device_type)
    if count is not None:
        return int(count())
    get_backend(device_type)  # unknown or unavailable: DeviceError
    return 1


def current_index(device_type: str) -> int:
    """The index that ``device_type`` without one (``"cuda"``) means in this thread."""
    return _current.by_type.get(device_type, 0)


def set_current_index(device_type: str, index: int) -> None:
    """Make ``device_type`` without an index mean device ``index`` in this thread.

    Checks that the device exists (DeviceError otherwise, saying how many do) and loads it.
    """
    get_backend(f"{device_type}:{int(index)}")  # unknown type, or an index past its devices
    if device_type in _COUNTS:
        _current.by_type[device_type] = int(index)


def loaded_backends(device_type: str) -> list[Backend]:
    """The backends of ``device_type`` used so far (in index order)."""
    found = [(k, b) for k, b in _BACKENDS.items() if k == device_type or
             k.startswith(device_type + ":")]
    return [b for _, b in sorted(found, key=lambda kb: int(kb[0].partition(":")[2] or 0))]


def _load_cuda(index: int) -> Backend:
    from .cuda import load_backend  # imports CuPy: only when device "cuda" is first used
    return load_backend(index)


def _count_cuda() -> int:
    from .cuda import checked_device_count
    return checked_device_count()


def _load_cuda_kernels():
    """Register the launchers of cuda/kernels/*.cu (they import CuPy only when they run)."""
    from .cuda import fused  # noqa: F401


register_backend("cuda", _load_cuda, device_count=_count_cuda)
kernels.add_loader("cuda", _load_cuda_kernels)

__all__ = ["Backend", "ArrayBackend", "cpu_backend", "get_backend", "parse_device", "register_backend",
           "device_count", "current_index", "set_current_index", "loaded_backends"]
