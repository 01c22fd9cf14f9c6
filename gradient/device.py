"""Device objects and device strings: ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

Example::

    >>> gradient.device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

from .backends import get_backend
from .errors import DeviceError


class device:
    """A device: a type (``"cpu"``, ``"cuda"``) and an optional index, like ``torch.device``."""

    __slots__ = ("type", "index")

    def __init__(self, spec, index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if not isinstance(spec, str):
            raise DeviceError(f"expected a device string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if idx:
            if not idx.isdigit():
                raise DeviceError(f"bad device string {spec!r}: the index after ':' must be a number")
            index = int(idx)
        self.type = kind
        self.index = index

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{extra})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index or 0) == (other.type, other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))


CPU = device("cpu")


def as_device(spec) -> device:
    """A :class:`device` from a string, a device or None (the CPU); checks the backend exists."""
    if spec is None:
        return CPU
    dev = spec if isinstance(spec, device) else device(spec)
    get_backend(dev.type)  # raises a clear error for unknown or unavailable devices
    return dev
