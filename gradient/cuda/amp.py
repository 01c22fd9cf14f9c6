"""``torch.cuda.amp``: autocast and GradScaler for device "cuda", and ``custom_fwd`` /
``custom_bwd`` for it, in their deprecated spellings (``from torch.cuda.amp import autocast,
GradScaler`` in a ported script). Each warns, as PyTorch's does, and is
:mod:`gradient.amp`'s for "cuda"; on a machine without a GPU, autocast warns that "cuda" is not
available and leaves the region disabled, as PyTorch's does.

Example::

    >>> scaler = gradient.cuda.amp.GradScaler(enabled=use_fp16)
    >>> with gradient.cuda.amp.autocast(dtype=gradient.bfloat16):
    ...     loss = model(x)
"""

from __future__ import annotations

import functools
import warnings

from ..amp import custom_bwd as _custom_bwd
from ..amp import custom_fwd as _custom_fwd
from ..amp.device_aliases import DeviceAutocast, DeviceGradScaler
from ..dtypes import float16

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]


class autocast(DeviceAutocast):  # noqa: N801  (PyTorch's name)
    """``gradient.amp.autocast("cuda", dtype=float16 unless given)``."""

    device_type, default_dtype = "cuda", float16


class GradScaler(DeviceGradScaler):
    """``gradient.amp.GradScaler("cuda")``."""

    device_type = "cuda"


def custom_fwd(fwd=None, *, cast_inputs=None):
    """:func:`gradient.amp.custom_fwd` for device "cuda"."""
    if fwd is None:
        return functools.partial(custom_fwd, cast_inputs=cast_inputs)
    warnings.warn("`gradient.cuda.amp.custom_fwd(args...)` is deprecated. Please use "
                  "`gradient.amp.custom_fwd(args..., device_type='cuda')` instead.",
                  FutureWarning, stacklevel=2)
    return _custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd):
    """:func:`gradient.amp.custom_bwd` for device "cuda"."""
    warnings.warn("`gradient.cuda.amp.custom_bwd(args...)` is deprecated. Please use "
                  "`gradient.amp.custom_bwd(args..., device_type='cuda')` instead.",
                  FutureWarning, stacklevel=2)
    return _custom_bwd(bwd, device_type="cuda")
