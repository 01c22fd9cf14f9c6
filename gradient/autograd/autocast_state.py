"""Autocast state: which device types run selected ops in a lower-precision dtype.

This is the low-level half of :class:`gradient.amp.autocast`. The context manager (in
``gradient.amp``, above the ops) sets the state kept here; the ops (below ``amp``) read it
through two hooks:

* :func:`to_lower_precision` -- called at the entry of the ops on PyTorch's "lower precision"
  list (matmul, mm, bmm, addmm, baddbmm, linear, conv*, conv_transpose*,
  scaled_dot_product_attention, and einsum/tensordot when they contract like a matmul): their
  floating inputs are cast to the autocast dtype, so the op runs there;
* :func:`to_float32` -- for ops on the "float32" list (PyTorch's CPU list holds the losses):
  their floating inputs are cast up to float32.

Both return their arguments unchanged (at the cost of one attribute lookup) when no autocast
region is active. The casts are ordinary differentiable ``Tensor.to`` calls, so a float32
parameter used in bfloat16 gets its gradient back in float32.

As in PyTorch, the state is thread-local and kept per device type ("cpu", "cuda"): an op
consults the state of the device its tensors live on. Also as in PyTorch, casts of float32
leaf tensors that require grad (the parameters) are cached while the outermost autocast region
is open, so a weight used by several ops is cast once per forward pass.
"""

from __future__ import annotations

import threading
import weakref

from ..dtypes import bfloat16, float16, float32, float64
from . import grad_mode

# PyTorch's defaults: torch.get_autocast_dtype("cpu") is bfloat16, for "cuda" float16
_DEFAULT_DTYPES = {"cpu": bfloat16, "cuda": float16}

_state = threading.local()


def _per_thread():
    """This thread's state, made on first use (threading.local starts empty in each thread)."""
    s = getattr(_state, "s", None)
    if s is None:
        s = _state.s = _ThreadState()
    return s


class _ThreadState:
    __slots__ = ("enabled", "dtypes", "cache_enabled", "nesting", "cache")

    def __init__(self):
        self.enabled: set = set()        # the device types with autocast on
        self.dtypes: dict = {}           # device type -> lower-precision dtype (when not the default)
        self.cache_enabled = True
        self.nesting = 0                 # open autocast regions (all device types together)
        self.cache: dict = {}            # id(param) -> (weakref, version, grad mode, dtype, cast)


# ---------------------------------------------------------------------- state, as torch.* names it
def is_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` in this thread (``torch.is_autocast_enabled``)."""
    return device_type in _per_thread().enabled


def any_enabled() -> bool:
    """Whether autocast is on for some device type in this thread."""
    return bool(_per_thread().enabled)


def set_enabled(device_type: str, enabled: bool) -> None:
    s = _per_thread()
    if enabled:
        s.enabled.add(device_type)
    else:
        s.enabled.discard(device_type)


def get_dtype(device_type: str):
    """The lower-precision dtype of ``device_type`` (``torch.get_autocast_dtype``)."""
    return _per_thread().dtypes.get(device_type, _DEFAULT_DTYPES.get(device_type, float16))


def set_dtype(device_type: str, dtype) -> None:
    _per_thread().dtypes[device_type] = dtype


def is_cache_enabled() -> bool:
    return _per_thread().cache_enabled


def set_cache_enabled(enabled: bool) -> None:
    _per_thread().cache_enabled = bool(enabled)


def increment_nesting() -> int:
    s = _per_thread()
    s.nesting += 1
    return s.nesting


def decrement_nesting() -> int:
    s = _per_thread()
    s.nesting -= 1
    return s.nesting


def clear_cache() -> None:
    """Forget the cached casts of parameters (done when the outermost autocast region exits)."""
    _per_thread().cache.clear()


# ---------------------------------------------------------------------- the op hooks
_Tensor = None


def _tensor_class():
    # gradient.tensor imports gradient.autograd, so Tensor is looked up on first use
    global _Tensor
    if _Tensor is None:
        from ..tensor import Tensor
        _Tensor = Tensor
    return _Tensor


def to_lower_precision(*args):
    """``args`` with each floating tensor on an autocast-enabled device cast to that device's
    autocast dtype; other arguments (None, numbers, integer or float64 tensors) unchanged.

    PyTorch's rule, float64 included: float64 tensors are not cast (an op that then mixes
    float64 with bfloat16 raises its usual dtype error, as PyTorch's does).
    """
    s = _per_thread()
    if not s.enabled:
        return args
    Tensor = _tensor_class()
    return tuple(_cast(s, a, get_dtype(a.device.type))
                 if isinstance(a, Tensor) and a.device.type in s.enabled and castable(a) else a
                 for a in args)


def to_float32(*args):
    """``args`` with each floating tensor on an autocast-enabled device cast to float32."""
    s = _per_thread()
    if not s.enabled:
        return args
    Tensor = _tensor_class()
    return tuple(a.to(float32) if isinstance(a, Tensor) and a.device.type in s.enabled and castable(a)
                 else a for a in args)


def castable(t) -> bool:
    """Whether autocast casts the tensor ``t``: floating point, not float64 (as PyTorch's
    autocast and its custom_fwd leave double precision alone)."""
    return t.dtype.is_floating_point and t.dtype is not float64


def _cast(s: _ThreadState, t, dtype):
    if t.dtype is dtype:
        return t
    # Only float32 parameters are cached (PyTorch: float32 leaves that require grad, not views).
    # Unlike PyTorch, the key also holds the grad mode (a cast made under no_grad has no graph
    # and must not be reused with grad on) and the version (a parameter updated in place inside
    # the region is cast again instead of serving the stale copy).
    cacheable = (s.cache_enabled and t.dtype is float32 and t.requires_grad and t.is_leaf
                 and t._base is None)
    if not cacheable:
        return t.to(dtype)
    grad_on = grad_mode.is_grad_enabled()
    hit = s.cache.get(id(t))
    if hit is not None:
        ref, version, grad, cast_dtype, cast = hit
        if ref() is t and version == t._version.value and grad == grad_on and cast_dtype is dtype:
            return cast
    cast = t.to(dtype)
    s.cache[id(t)] = (weakref.ref(t), t._version.value, grad_on, dtype, cast)
    return cast


LOWER_PRECISION_DTYPES = (bfloat16, float16)
