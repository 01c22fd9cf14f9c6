"""``gradient.cuda``: the CUDA device's state, as ``torch.cuda``.

Importing gradient never needs a GPU: :func:`is_available` and :func:`device_count` answer
anywhere, and the other functions raise :class:`~gradient.errors.DeviceError` (saying what is
missing) on a machine without CuPy or a GPU.

Example::

    >>> import gradient
    >>> device = "cuda" if gradient.cuda.is_available() else "cpu"
    >>> x = gradient.randn(4, 4, device=device)
"""

from __future__ import annotations

from .backends import cuda as _cuda
from .backends import get_backend
from .ops.creation import default_generator

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "synchronize",
           "manual_seed", "manual_seed_all", "memory_allocated", "max_memory_allocated",
           "reset_peak_memory_stats", "memory_reserved", "empty_cache"]


def is_available() -> bool:
    """Whether device ``"cuda"`` can be used (CuPy installed and a GPU found)."""
    return _cuda.available()[0]


def device_count() -> int:
    """Number of CUDA devices (0 without CuPy or a GPU)."""
    return _cuda.device_count()


def _backend():
    return get_backend("cuda")  # DeviceError, with the reason, when CUDA is unavailable


def current_device() -> int:
    """Index of the device CUDA work goes to."""
    return int(_backend().cupy.cuda.runtime.getDevice())


def get_device_name(device: int | None = None) -> str:
    """The GPU's name, e.g. ``'NVIDIA H100 80GB HBM3'``."""
    cupy = _backend().cupy
    index = current_device() if device is None else int(device)
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize() -> None:
    """Wait until every kernel queued on the current device has finished."""
    _backend().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the random numbers of the CUDA device.

    gradient draws random numbers for every device from one generator (on the host, then
    uploaded), so this seeds that generator, as :func:`gradient.manual_seed` does: one seed gives
    the same numbers on the CPU and on the GPU.
    """
    default_generator.manual_seed(seed)


manual_seed_all = manual_seed


def memory_allocated() -> int:
    """Bytes of GPU memory held by tensors now (CuPy's memory pool, in use)."""
    return _backend().memory_allocated()


def max_memory_allocated() -> int:
    """The peak of :func:`memory_allocated` since start or :func:`reset_peak_memory_stats`."""
    return _backend().max_memory_allocated()


def reset_peak_memory_stats() -> None:
    """Start measuring :func:`max_memory_allocated` again from now."""
    _backend().reset_peak_memory_stats()


def memory_reserved() -> int:
    """Bytes of GPU memory CuPy's pool holds, in use or cached for reuse."""
    return _backend().memory_reserved()


def empty_cache() -> None:
    """Give the pool's cached, unused blocks back to the driver."""
    _backend().empty_cache()
