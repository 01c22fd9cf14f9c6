"""``custom_fwd`` and ``custom_bwd``: a custom autograd Function's forward and backward under
autocast, as ``torch.amp.custom_fwd`` / ``custom_bwd``.

A Function's forward runs in whatever autocast region calls it, but its backward runs later,
outside that region: without help the two see different dtypes. ``custom_fwd`` notes on the
context whether autocast was on for ``device_type`` (and its dtype) when the forward ran, and
``custom_bwd`` runs the backward in that same state. With ``cast_inputs``, an autocast region
instead runs the forward with autocast off and its floating-point tensor inputs on
``device_type`` cast to ``cast_inputs`` (so the Function computes in one known dtype); the
backward then runs with autocast off too. Outside any region both leave the Function as it is.

Example::

    >>> class Square(gradient.autograd.Function):
    ...     @staticmethod
    ...     @gradient.amp.custom_fwd(device_type="cpu", cast_inputs=gradient.float32)
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     @gradient.amp.custom_bwd(device_type="cpu")
    ...     def backward(ctx, grad):
    ...         x, = ctx.saved_tensors
    ...         return 2 * x * grad
"""

from __future__ import annotations

import functools

from ..autograd.autocast_state import castable
from ..dtypes import as_dtype
from ..errors import ArgumentTypeError
from ..tensor import Tensor
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled

__all__ = ["custom_fwd", "custom_bwd"]


def _device_type(device_type, decorator: str) -> str:
    if not isinstance(device_type, str):
        raise ArgumentTypeError(f"{decorator}: expected device_type as a string ('cpu', 'cuda'), "
                                f"got {type(device_type).__name__}")
    return device_type


def _cast(value, device_type: str, dtype):
    """``value`` with the tensors on ``device_type`` that autocast casts (floating point, not
    float64) cast to ``dtype``, inside lists, tuples and dicts too; everything else as it is."""
    if isinstance(value, Tensor):
        return value.to(dtype) if value.device.type == device_type and castable(value) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device_type, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, device_type, dtype) for k, v in value.items()}
    return value


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """Decorate a custom Function's ``forward`` (see the module's docstring); usable as
    ``@custom_fwd(device_type="cuda")`` or with ``cast_inputs=gradient.float32``."""
    device_type = _device_type(device_type, "custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    dtype = None if cast_inputs is None else as_dtype(cast_inputs)

    @functools.wraps(fwd)
    def forward(ctx, *args, **kwargs):
        ctx._autocast_dtype = get_autocast_dtype(device_type)
        enabled = is_autocast_enabled(device_type)
        if dtype is None:
            ctx._fwd_used_autocast = enabled
            return fwd(ctx, *args, **kwargs)
        ctx._fwd_used_autocast = False
        if not enabled:
            return fwd(ctx, *args, **kwargs)
        with autocast(device_type, enabled=False):
            return fwd(ctx, *_cast(args, device_type, dtype), **_cast(kwargs, device_type, dtype))

    return forward


def custom_bwd(bwd=None, *, device_type: str):
    """Decorate a custom Function's ``backward``: it runs in the autocast state its forward
    (decorated by :func:`custom_fwd`) ran in."""
    device_type = _device_type(device_type, "custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def backward(ctx, *args, **kwargs):
        with autocast(device_type, enabled=getattr(ctx, "_fwd_used_autocast", False),
                      dtype=getattr(ctx, "_autocast_dtype", None)):
            return bwd(ctx, *args, **kwargs)

    return backward
