"""``gradient.cuda``: the CUDA devices' state, as ``torch.cuda``.

Each GPU is a device, ``"cuda:0"``, ``"cuda:1"``...; ``"cuda"`` means the *current* one, 0
unless :func:`set_device` or a ``with gradient.cuda.device(n):`` block says otherwise (per
thread, as in PyTorch). Functions taking ``device`` accept an index, ``"cuda:1"`` or a
:class:`gradient.device`; None means the current device.

Importing gradient never needs a GPU: :func:`is_available` and :func:`device_count` answer
anywhere, and the other functions raise :class:`~gradient.errors.DeviceError` (saying what is
missing) on a machine without CuPy or a GPU.

Example::

    >>> import gradient
    >>> device = "cuda" if gradient.cuda.is_available() else "cpu"
    >>> x = gradient.randn(4, 4, device=device)
    >>> if gradient.cuda.device_count() > 1:
    ...     with gradient.cuda.device(1):
    ...         y = gradient.zeros(3, device="cuda")     # on cuda:1
    ...     gradient.cuda.memory_allocated(1)           # bytes held by tensors on GPU 1
"""

from __future__ import annotations

from .. import backends as _backends
from ..backends import cuda as _cuda
from ..device import as_device as _as_device
from ..errors import DeviceError
from ..ops.creation import default_generator
from ..tensor_types import cuda_types as _cuda_types

__all__ = ["is_available", "device_count", "current_device", "set_device", "device",
           "get_device_name", "synchronize", "manual_seed", "manual_seed_all", "memory_allocated",
           "max_memory_allocated", "reset_peak_memory_stats", "memory_reserved", "empty_cache",
           "amp", *_cuda_types]

# PyTorch's legacy CUDA tensor types: gradient.cuda.FloatTensor, gradient.cuda.LongTensor ...
globals().update(_cuda_types)


def is_available() -> bool:
    """Whether device ``"cuda"`` can be used (CuPy installed and a GPU found)."""
    return _cuda.available()[0]


def device_count() -> int:
    """Number of CUDA devices (0 without CuPy or a GPU)."""
    return _cuda.device_count()


def _index(device) -> int | None:
    """The GPU index ``device`` names (None: the current one); DeviceError for a non-CUDA one."""
    if device is None or isinstance(device, int):
        return device
    dev = _as_device(device)
    if dev.type != "cuda":
        raise DeviceError(f"expected a CUDA device (an index, 'cuda:1' or a gradient.device), "
                          f"got {device!r}")
    return dev.index


def _backend(device=None):
    """The backend of ``device``: DeviceError, with the reason, when CUDA is unavailable, and
    saying how many GPUs there are for an index past them."""
    index = _index(device)
    return _backends.get_backend("cuda" if index is None else f"cuda:{index}")


def current_device() -> int:
    """Index of the GPU that ``"cuda"`` means in this thread (0 unless :func:`set_device`)."""
    return _backend().index


def set_device(device) -> None:
    """Make ``"cuda"`` mean GPU ``device`` in this thread (an index, ``"cuda:1"`` or a device).

    Like ``torch.cuda.set_device``, it also makes that GPU CuPy's current device. Tensors
    already made stay where they are; ``"cuda:N"`` strings are not affected.
    """
    index = _index(device)
    if index is None:
        raise DeviceError(f"set_device: expected a GPU index or 'cuda:N', got {device!r}")
    _backends.set_current_index("cuda", index)  # checks the index
    _backend(index).cupy.cuda.runtime.setDevice(index)


class device:
    """Context manager: ``"cuda"`` means GPU ``device`` inside the block, as ``torch.cuda.device``.

    ``device`` is an index, ``"cuda:1"`` or a :class:`gradient.device`; None or -1 changes
    nothing. The previous current device comes back on exit.

    Example::

        >>> with gradient.cuda.device(1):
        ...     x = gradient.ones(2, device="cuda")
        >>> x.device
        device(type='cuda', index=1)
    """

    def __init__(self, device):
        index = _index(device)
        self.index = None if index is None or index < 0 else index
        self._previous = None

    def __enter__(self):
        if self.index is not None:
            self._previous = current_device()
            set_device(self.index)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            set_device(self._previous)
            self._previous = None


def get_device_name(device=None) -> str:
    """The GPU's name, e.g. ``'NVIDIA H100 80GB HBM3'`` (the current GPU's by default)."""
    backend = _backend(device)
    name = backend.cupy.cuda.runtime.getDeviceProperties(backend.index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize(device=None) -> None:
    """Wait until every kernel queued on the GPU (the current one by default) has finished."""
    _backend(device).synchronize()


def manual_seed(seed: int) -> None:
    """Seed the random numbers of the CUDA devices.

    gradient draws random numbers for every device from one generator (on the host, then
    uploaded), so this seeds that generator, as :func:`gradient.manual_seed` does: one seed gives
    the same numbers on the CPU and on every GPU.
    """
    default_generator.manual_seed(seed)


manual_seed_all = manual_seed


def memory_allocated(device=None) -> int:
    """Bytes of the GPU's memory (the current GPU's by default) held by tensors now (CuPy's
    memory pool, in use)."""
    return _backend(device).memory_allocated()


def max_memory_allocated(device=None) -> int:
    """The peak of :func:`memory_allocated` on the GPU since start or
    :func:`reset_peak_memory_stats`."""
    return _backend(device).max_memory_allocated()


def reset_peak_memory_stats(device=None) -> None:
    """Start measuring :func:`max_memory_allocated` of the GPU again from now."""
    _backend(device).reset_peak_memory_stats()


def memory_reserved(device=None) -> int:
    """Bytes of the GPU's memory CuPy's pool holds, in use or cached for reuse."""
    return _backend(device).memory_reserved()


def empty_cache() -> None:
    """Give the pools' cached, unused blocks back to the driver, on every GPU used so far."""
    _backend()  # DeviceError, saying why, without CUDA
    for backend in _backends.loaded_backends("cuda"):
        backend.empty_cache()


from . import amp  # noqa: E402  (torch.cuda.amp: the deprecated aliases, a module)
