"""Global switches PyTorch scripts flip at the top: the default device of factory functions and
deterministic algorithms.

- ``set_default_device("cuda")`` makes ``gradient.zeros``, ``randn``, ``tensor``, ``arange`` ...
  create tensors there when they are given no ``device`` (ops on existing tensors are
  unaffected, as in PyTorch). ``None`` goes back to the CPU.
- ``use_deterministic_algorithms(True)`` is recorded and reported back; gradient's CPU ops are
  deterministic already (NumPy kernels, fixed reduction orders, no atomics), so nothing else
  changes. On the GPU, ``index_add``/``scatter_add`` accumulate with atomics, whose order (and
  so the last bits of float sums) may vary from run to run.

Example::

    >>> gradient.use_deterministic_algorithms(True)
    >>> gradient.are_deterministic_algorithms_enabled()
    True
"""

from __future__ import annotations

from . import device as _device_module
from .device import as_device

__all__ = ["set_default_device", "get_default_device", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled",
           "set_flush_denormal"]

_deterministic = {"mode": False, "warn_only": False}


def set_default_device(device) -> None:
    """The device factory functions use when given none (``None``: the CPU).

    Example: ``gradient.set_default_device("cuda")``
    """
    _device_module.factory_default[0] = None if device is None else as_device(device)


def get_default_device():
    """The device factory functions use when given none: ``device(type='cpu')`` by default."""
    return as_device(_device_module.factory_default[0])


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Ask for deterministic algorithms. Recorded only: gradient's CPU ops are deterministic
    (see the module docstring). Example: ``gradient.use_deterministic_algorithms(True)``."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}")
    _deterministic["mode"], _deterministic["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True)`` is in effect."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True, warn_only=True)`` is in effect."""
    return _deterministic["mode"] and _deterministic["warn_only"]


def set_flush_denormal(mode: bool) -> bool:
    """Whether flushing subnormal floats to zero could be set: False, as PyTorch answers on a
    CPU without the control (gradient's kernels do not change the CPU's floating-point
    state), and nothing changes."""
    return False
