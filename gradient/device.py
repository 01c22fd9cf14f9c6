"""Device objects and device strings: ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

A device is a type and an optional index. ``"cuda:1"`` is GPU 1; ``"cuda"`` (no index) is the
current GPU, 0 unless ``gradient.cuda.set_device`` or ``gradient.cuda.device(n)`` says
otherwise, and a tensor made there reports the index it got (``cuda:0``), as in PyTorch. An
integer is a GPU index (``device(1)`` is ``cuda:1``).

Example::

    >>> gradient.device("cpu")
    device(type='cpu')
    >>> gradient.device("cuda:1")
    device(type='cuda', index=1)
    >>> str(gradient.device("cuda", 1))
    'cuda:1'
"""

from __future__ import annotations

from .backends import get_backend, parse_device
from .errors import DeviceError


class device:
    """A device: a type (``"cpu"``, ``"cuda"``) and an optional index, like ``torch.device``.

    ``device("cuda:1")``, ``device("cuda", 1)``, ``device(1)`` (a GPU index) and
    ``device(other_device)`` are accepted. Unlike PyTorch, a device without an index equals
    index 0 (``device("cuda") == device("cuda:0")``); it does not follow the current device.

    As a context manager it is the default device of factory functions for its block, as
    ``gradient.set_default_device`` is outside: ``with gradient.device("cuda"): model = Net()``.
    """

    __slots__ = ("type", "index")

    def __init__(self, spec, index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        elif isinstance(spec, int) and not isinstance(spec, bool) and index is None:
            spec, index = "cuda", spec  # torch.device(1) is cuda:1
        self.type, self.index = parse_device(spec, index)

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{extra})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except DeviceError:
                return False
        return isinstance(other, device) and (self.type, self.index or 0) == (other.type, other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __enter__(self) -> "device":
        _entered.append(factory_default[0])
        factory_default[0] = self
        return self

    def __exit__(self, *exc) -> None:
        factory_default[0] = _entered.pop()


# The device factory functions (zeros, randn, tensor ...) use when given none, None meaning the
# CPU: gradient.settings.set_default_device writes it, a ``with device(...)`` block sets it for
# the block (the defaults it replaced wait in _entered).
factory_default: list = [None]
_entered: list = []


CPU = device("cpu")
_CHECKED: dict[str, device] = {"cpu": CPU}  # device strings already parsed and found to exist


def as_device(spec) -> device:
    """A :class:`device` from a string, a device, a GPU index or None (the CPU).

    Checks that it exists: DeviceError for an unknown type, an unavailable one (saying why),
    or an index past the type's devices (saying how many there are).
    """
    if spec is None:
        return CPU
    if spec.__class__ is str:
        dev = _CHECKED.get(spec)
        if dev is None:
            dev = device(spec)
            get_backend(dev)
            if len(_CHECKED) < 256:
                _CHECKED[spec] = dev
        return dev
    dev = spec if isinstance(spec, device) else device(spec)
    get_backend(dev)
    return dev
