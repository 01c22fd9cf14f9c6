"""The bases of ``gradient.cuda.amp`` and ``gradient.cpu.amp``: PyTorch's deprecated per-device
spellings of autocast and GradScaler (``torch.cuda.amp.autocast(dtype=...)``,
``torch.cpu.amp.GradScaler()``), still common in training scripts. Each is
:class:`~gradient.amp.autocast` or :class:`~gradient.amp.GradScaler` for one device type, with
PyTorch's FutureWarning pointing at the current spelling.

Example::

    >>> class autocast(DeviceAutocast):       # gradient.cuda.amp.autocast
    ...     device_type, default_dtype = "cuda", float16
"""

from __future__ import annotations

import warnings

from .autocast_mode import autocast
from .grad_scaler import GradScaler

__all__ = ["DeviceAutocast", "DeviceGradScaler"]


def _deprecated(device_type: str, name: str) -> None:
    warnings.warn(f"`gradient.{device_type}.amp.{name}(args...)` is deprecated. Please use "
                  f"`gradient.amp.{name}('{device_type}', args...)` instead.", FutureWarning,
                  stacklevel=3)


class DeviceAutocast(autocast):
    """:class:`~gradient.amp.autocast` for :attr:`device_type`, ``default_dtype`` unless
    given."""

    device_type: str
    default_dtype = None

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        _deprecated(self.device_type, "autocast")
        super().__init__(self.device_type, dtype=self.default_dtype if dtype is None else dtype,
                         enabled=enabled, cache_enabled=cache_enabled)


class DeviceGradScaler(GradScaler):
    """:class:`~gradient.amp.GradScaler` for :attr:`device_type`."""

    device_type: str

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        _deprecated(self.device_type, "GradScaler")
        super().__init__(self.device_type, init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)
