"""``gradient.cpu``: the CPU as a device module, as ``torch.cpu``, for device-agnostic code.

Scripts that run on any device call the device's module by its type
(``gradient.get_device_module(device).synchronize()``, ``getattr(torch, device.type)``); on the
CPU those calls have nothing to wait for or choose: one device, always there, no streams. The
streams and events exist so such code runs unchanged, and do nothing, as PyTorch's.

Example::

    >>> module = gradient.get_device_module("cpu")     # this module
    >>> module.synchronize(); module.device_count()
    1
"""

from __future__ import annotations

import contextlib

from ..device import device as _device
from ..errors import DeviceError

__all__ = ["is_available", "is_initialized", "device_count", "current_device", "set_device",
           "synchronize", "Stream", "Event", "current_stream", "stream", "amp"]


def is_available() -> bool:
    """Always True."""
    return True


def is_initialized() -> bool:
    """Always True: the CPU needs no set-up."""
    return True


def device_count() -> int:
    """One: gradient's CPU device is all of the machine's cores."""
    return 1


def current_device() -> str:
    """``"cpu"``."""
    return "cpu"


def _cpu(device, what: str) -> None:
    """Refuse a device that is not the CPU (None, "cpu", a cpu device or index 0 are)."""
    if device is None or device == 0:
        return
    if isinstance(device, int) or _device(device).type != "cpu":
        raise DeviceError(f"gradient.cpu.{what}: expected the CPU (None, 'cpu' or 0), "
                          f"got {device!r}; another device type's module is "
                          f"gradient.get_device_module(device)")


def set_device(device) -> None:
    """Nothing to choose: one CPU device."""
    _cpu(device, "set_device")


def synchronize(device=None) -> None:
    """Nothing to wait for: the CPU's operations are done when they return."""
    _cpu(device, "synchronize")


class Stream:
    """A stream for device-agnostic code: the CPU runs one, in order, so it does nothing."""

    def __init__(self, priority: int = -1) -> None:
        self.priority = priority

    def wait_stream(self, stream) -> None:
        pass

    def record_event(self, event=None):
        return event if event is not None else Event()

    def wait_event(self, event) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True


class Event:
    """An event for device-agnostic code: every CPU operation is done when it returns."""

    def query(self) -> bool:
        return True

    def record(self, stream=None) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def wait(self, stream=None) -> None:
        pass


_stream = Stream()


def current_stream(device=None) -> Stream:
    """The CPU's one stream."""
    _cpu(device, "current_stream")
    return _stream


@contextlib.contextmanager
def stream(stream: Stream | None):
    """``with gradient.cpu.stream(s):``: runs the block as it is (one stream)."""
    yield


from . import amp  # noqa: E402  (torch.cpu.amp: the deprecated aliases, a module)
