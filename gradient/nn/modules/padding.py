"""Padding layers, as in ``torch.nn``: Constant/Zero/Reflection/Replication/CircularPad{1,2,3}d.

Each layer stores ``padding`` as PyTorch does, a flat tuple in ``F.pad``'s order (last dimension
first: ``(left, right, top, bottom, front, back)``), and calls :func:`gradient.nn.functional.pad`.
An int pads every side of the ``d`` trailing dimensions by the same amount.

Example::

    >>> pad = nn.ReflectionPad2d((1, 1, 2, 0))
    >>> pad(gradient.randn(1, 3, 4, 4)).shape
    gradient.Size([1, 3, 6, 6])

Deliberate difference: a tuple of the wrong length (not ``2 * d`` values) is refused when the
layer is built; PyTorch stores it and fails, or pads other dimensions, when called.
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module
from ...errors import ArgumentTypeError

__all__ = ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
           "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"]


def _flat_padding(cls: str, padding, d: int) -> tuple:
    """An int (every side) or a sequence of ``2 * d`` ints, as a tuple of ``2 * d`` ints."""
    if isinstance(padding, bool):
        raise ArgumentTypeError(
            f"{cls}: padding must be an int or a tuple of {2 * d} ints, got {padding!r}")
    if isinstance(padding, int):
        return (padding,) * (2 * d)
    if isinstance(padding, (list, tuple)) and len(padding) == 2 * d \
            and all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
        return tuple(padding)
    raise ArgumentTypeError(
        f"{cls}: padding must be an int or a tuple of {2 * d} ints (last dimension "
        f"first: left, right{', top, bottom' if d > 1 else ''}"
        f"{', front, back' if d > 2 else ''}), got {padding!r}")


class _PadNd(Module):
    """Shared body: ``_dims`` trailing dimensions padded with F.pad in ``_mode``."""

    _dims = 1
    _mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _flat_padding(type(self).__name__, padding, self._dims)

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value``. ``nn.ConstantPad1d((1, 2), 3.5)(x)``."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value``. ``nn.ConstantPad2d(1, -1.0)(img)``."""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dimensions with ``value``. ``nn.ConstantPad3d(1, 0.5)(volume)``."""

    _dims = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd, ConstantPad1d):
    """Pad the last dimension with zeros. ``nn.ZeroPad1d(2)(x)``."""


class ZeroPad2d(_ZeroPadNd, ConstantPad2d):
    """Pad the last two dimensions with zeros. ``nn.ZeroPad2d((1, 1, 2, 0))(img)``."""


class ZeroPad3d(_ZeroPadNd, ConstantPad3d):
    """Pad the last three dimensions with zeros. ``nn.ZeroPad3d(1)(volume)``."""


class ReflectionPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) by reflecting at the edges (edge not repeated): ``abc`` -> ``cbabcb``.

    ``nn.ReflectionPad1d(2)(gradient.randn(1, 2, 4))``
    """

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Reflection padding of (C, H, W) or (N, C, H, W). ``nn.ReflectionPad2d(1)(img)``."""

    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Reflection padding of (C, D, H, W) or (N, C, D, H, W). ``nn.ReflectionPad3d(1)(vol)``."""

    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) by repeating the edge value: ``abc`` -> ``aaabccc``.

    ``nn.ReplicationPad1d((2, 3))(gradient.randn(1, 2, 4))``
    """

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Replication padding of (C, H, W) or (N, C, H, W). ``nn.ReplicationPad2d(1)(img)``."""

    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Replication padding of (C, D, H, W) or (N, C, D, H, W). ``nn.ReplicationPad3d(1)(vol)``."""

    _dims, _mode = 3, "replicate"


class CircularPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) by wrapping around: ``abc`` -> ``bcabca``.

    ``nn.CircularPad1d(1)(gradient.randn(1, 2, 4))``
    """

    _dims, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Circular padding of (C, H, W) or (N, C, H, W). ``nn.CircularPad2d(1)(img)``."""

    _dims, _mode = 2, "circular"


class CircularPad3d(_PadNd):
    """Circular padding of (C, D, H, W) or (N, C, D, H, W). ``nn.CircularPad3d(1)(vol)``."""

    _dims, _mode = 3, "circular"
