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
from .errors import ArgumentTypeError, ArgumentValueError

__all__ = ["set_default_device", "get_default_device", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled",
           "set_flush_denormal", "set_deterministic_debug_mode", "get_deterministic_debug_mode",
           "set_warn_always", "is_warn_always_enabled", "init_num_threads"]

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
        raise ArgumentTypeError(
            f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}")
    _deterministic["mode"], _deterministic["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True)`` is in effect."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True, warn_only=True)`` is in effect."""
    return _deterministic["mode"] and _deterministic["warn_only"]


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode) -> None:
    """``use_deterministic_algorithms`` by another name: 0 or "default" (off), 1 or "warn"
    (on, warn only), 2 or "error" (on)."""
    mode = _DEBUG_MODES.get(debug_mode, debug_mode)
    if mode not in (0, 1, 2):
        raise ArgumentValueError(
            f"set_deterministic_debug_mode: expected 0, 1, 2 or 'default', 'warn', "
            f"'error', got {debug_mode!r}")
    use_deterministic_algorithms(mode > 0, warn_only=mode == 1)


def get_deterministic_debug_mode() -> int:
    """0 (off), 1 (warn only) or 2 (on), as :func:`set_deterministic_debug_mode` sets it."""
    if not _deterministic["mode"]:
        return 0
    return 1 if _deterministic["warn_only"] else 2


_warn_always = [False]


def set_warn_always(flag: bool) -> None:
    """Recorded for PyTorch's API: gradient's warnings follow Python's ``warnings`` filters."""
    _warn_always[0] = bool(flag)


def is_warn_always_enabled() -> bool:
    return _warn_always[0]


def init_num_threads() -> None:
    """Nothing to do: gradient's thread pools start when first used (``set_num_threads``)."""


def set_flush_denormal(mode: bool) -> bool:
    """Whether flushing subnormal floats to zero could be set: False, as PyTorch answers on a
    CPU without the control (gradient's kernels do not change the CPU's floating-point
    state), and nothing changes."""
    return False
