"""``torch.cpu.amp``: autocast and GradScaler for device "cpu" in their deprecated spellings
(``torch.cpu.amp.autocast(dtype=torch.bfloat16)``); each warns, as PyTorch's does, and is
:mod:`gradient.amp`'s for "cpu".

Example::

    >>> with gradient.cpu.amp.autocast():         # bfloat16 unless dtype= says otherwise
    ...     y = model(x)
"""

from __future__ import annotations

from ..amp.device_aliases import DeviceAutocast, DeviceGradScaler
from ..dtypes import bfloat16

__all__ = ["autocast", "GradScaler"]


class autocast(DeviceAutocast):  # noqa: N801  (PyTorch's name)
    """``gradient.amp.autocast("cpu", dtype=bfloat16 unless given)``."""

    device_type, default_dtype = "cpu", bfloat16


class GradScaler(DeviceGradScaler):
    """``gradient.amp.GradScaler("cpu")``."""

    device_type = "cpu"
