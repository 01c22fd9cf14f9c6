"""``autocast``: run matrix products and convolutions in bfloat16/float16, the rest as written.

Inside ``with gradient.amp.autocast("cpu"):`` the ops on PyTorch's CPU "lower precision" list
cast their floating inputs to the autocast dtype (bfloat16 by default on the CPU, float16 on
CUDA) and run there; every other op runs in the dtype its inputs promote to, as outside. The
casts are differentiable, so float32 parameters receive float32 gradients.

Ops that autocast to the lower-precision dtype (PyTorch 2.13's CPU list, as far as gradient
has the op): ``matmul`` (and ``@``), ``mm``, ``bmm``, ``addmm``, ``baddbmm``, ``F.linear``,
``F.conv1d/2d/3d``, ``F.conv_transpose1d/2d/3d``, ``F.scaled_dot_product_attention``, and the
composites that PyTorch runs through ``bmm``/``mm``: ``einsum`` when it sums a subscript shared
by two operands, ``tensordot`` unless it contracts everything (then it is a float32 dot).
``dot``, ``mv``, ``vdot``, ``outer`` and ``addmv`` are not on the list, here as in PyTorch.

The losses on PyTorch's CPU "float32" list (``mse_loss``, ``cross_entropy``, ``nll_loss``,
``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``kl_div``, ``binary_cross_entropy*``) cast
their inputs to float32, so the loss and its gradient are float32 as in PyTorch.

Differences from PyTorch (``torch.autocast("cpu")``):

* ``prelu`` (on PyTorch's CPU list) is not autocast.
* The linear-algebra decompositions and solvers (``linalg.qr``, ``svd``, ``solve``, ``inv`` ...)
  are on PyTorch's CPU float32 list; here they are not cast, and a bfloat16 or float16 matrix
  (the result of an autocast matmul) is refused with an error saying to call ``.float()``.
* Softmax, log_softmax and the norms are on PyTorch's *CUDA* float32 list only; on the CPU
  both frameworks run them in their input's dtype, and gradient computes their statistics in
  float32 for bfloat16/float16 inputs anyway.
* The weight cache also keys on the grad mode and the parameter's version (PyTorch's does not):
  a cast made under ``no_grad`` is not reused with grad on, and a parameter changed in place
  inside the region is cast again.
* :func:`is_autocast_enabled` without a device type answers for any device type (PyTorch's
  answers for CUDA).
"""

from __future__ import annotations

import functools
import warnings

from ..autograd import autocast_state as _state
from ..backends import get_backend
from ..dtypes import DType, as_dtype
from ..errors import ArgumentTypeError, ArgumentValueError, DeviceError, DTypeError

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled",
           "set_autocast_dtype", "get_autocast_cpu_dtype", "get_autocast_gpu_dtype",
           "set_autocast_cpu_dtype", "set_autocast_gpu_dtype", "is_autocast_cpu_enabled",
           "set_autocast_cpu_enabled", "is_autocast_cache_enabled", "set_autocast_cache_enabled",
           "clear_autocast_cache", "autocast_increment_nesting", "autocast_decrement_nesting"]

# device types PyTorch knows: asking for one whose backend gradient lacks warns and disables
# autocast, as torch.autocast("cuda") does on a machine without CUDA; other strings are errors
_TORCH_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hpu", "mtia", "maia", "xla", "ipu")
_SUPPORTED_DTYPES = _state.LOWER_PRECISION_DTYPES


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on for ``device_type`` (any device type when None) in this thread.

    ``with gradient.amp.autocast("cpu"): gradient.amp.is_autocast_enabled("cpu")`` is True.
    """
    if device_type is None:
        return _state.any_enabled()
    return _state.is_enabled(device_type)


def get_autocast_dtype(device_type: str) -> DType:
    """The dtype autocast uses on ``device_type``: bfloat16 for "cpu", float16 for "cuda" by default."""
    return _state.get_dtype(device_type)


# ---------------------------------------------------------------------- torch's state functions
# (what autocast sets on entry and restores on exit; library code reads and sets them directly)
def set_autocast_enabled(device_type, enabled: bool | None = None) -> None:
    """``set_autocast_enabled(device_type, enabled)``, or the older
    ``set_autocast_enabled(enabled)`` for "cuda"."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    _state.set_enabled(device_type, bool(enabled))


def set_autocast_dtype(device_type: str, dtype) -> None:
    if dtype not in _SUPPORTED_DTYPES:
        raise DTypeError(f"set_autocast_dtype: autocast computes in one of "
                         f"{sorted(d.name for d in _SUPPORTED_DTYPES)}, got {dtype}")
    _state.set_dtype(device_type, dtype)


def get_autocast_cpu_dtype() -> DType:
    return _state.get_dtype("cpu")


def get_autocast_gpu_dtype() -> DType:
    return _state.get_dtype("cuda")


def set_autocast_cpu_dtype(dtype) -> None:
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    set_autocast_dtype("cuda", dtype)


def is_autocast_cpu_enabled() -> bool:
    return _state.is_enabled("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    _state.set_enabled("cpu", bool(enabled))


def is_autocast_cache_enabled() -> bool:
    return _state.is_cache_enabled()


def set_autocast_cache_enabled(enabled: bool) -> None:
    _state.set_cache_enabled(enabled)


def clear_autocast_cache() -> None:
    _state.clear_cache()


def autocast_increment_nesting() -> int:
    return _state.increment_nesting()


def autocast_decrement_nesting() -> int:
    return _state.decrement_nesting()


class autocast:
    """Context manager and decorator for mixed precision, like ``torch.autocast``.

    Args:
        device_type: "cpu" or "cuda" (a tensor's ``.device.type``). A device type whose backend
            is not available here (say "cuda" without a GPU) gives a warning and a disabled
            region, as in PyTorch.
        dtype: the lower-precision dtype, bfloat16 or float16; None is bfloat16 on the CPU and
            float16 on CUDA. Another dtype gives a warning and a disabled region, as in PyTorch.
        enabled: False makes a region without autocast (also inside an enabled one).
        cache_enabled: cache the casts of float32 parameters while the outermost region is open
            (None means the current setting, True outside any region).

    Regions nest; each restores on exit what it found on entry. The state is per thread.

    Example::

        >>> w = gradient.randn(4, 3, requires_grad=True)
        >>> with gradient.amp.autocast("cpu"):
        ...     y = F.linear(gradient.randn(2, 3), w)
        ...     z = y.sum()                       # not on the list: runs in y's dtype
        >>> y.dtype
        gradient.bfloat16
        >>> z.float().backward(); w.grad.dtype   # the gradient comes back in w's dtype
        gradient.float32

        @gradient.amp.autocast("cpu")             # or as a decorator
        def forward(model, x): return model(x)
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        if not isinstance(device_type, str):
            # PyTorch raises ValueError here (not TypeError); so do we
            raise ArgumentValueError(
                f"autocast: expected `device_type` of type `str` ('cpu' or 'cuda'), got "
                f"`{type(device_type).__name__}`; pass tensor.device.type")
        self.device = device_type
        self.fast_dtype = _state.get_dtype(device_type) if dtype is None else as_dtype(dtype)
        self._cache_enabled = cache_enabled
        self._init_args = (device_type, dtype, enabled, cache_enabled)
        if enabled:
            try:
                get_backend(device_type)
            except DeviceError as err:
                if device_type not in _TORCH_DEVICE_TYPES:
                    raise DeviceError(f"autocast: unsupported device_type {device_type!r}; expected "
                                      f"'cpu' or 'cuda' (a tensor's .device.type)") from None
                warnings.warn(f"autocast: device_type {device_type!r} is not available ({err}) "
                              "Disabling autocast.", stacklevel=2)
                enabled = False
        if enabled and self.fast_dtype not in _SUPPORTED_DTYPES:
            warnings.warn(f"In {device_type.upper()} autocast, but the target dtype "
                          f"{self.fast_dtype} is not supported. Disabling autocast.\n"
                          f"{device_type.upper()} Autocast only supports dtypes of gradient.bfloat16, "
                          "gradient.float16 currently.", stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)

    def __enter__(self):
        self._prev = (_state.is_enabled(self.device), _state.get_dtype(self.device),
                      _state.is_cache_enabled())
        _state.set_enabled(self.device, self._enabled)
        _state.set_dtype(self.device, self.fast_dtype)
        _state.increment_nesting()
        if self._cache_enabled is not None:
            _state.set_cache_enabled(self._cache_enabled)
        return self

    def __exit__(self, *exc):
        # leaving the outermost region drops the cached parameter casts (and the memory they hold)
        if _state.decrement_nesting() == 0:
            _state.clear_cache()
        enabled, dtype, cache_enabled = self._prev
        _state.set_enabled(self.device, enabled)
        _state.set_dtype(self.device, dtype)
        _state.set_cache_enabled(cache_enabled)
        return False

    def __call__(self, func):
        if not callable(func):
            raise ArgumentTypeError(
                f"autocast()(func) requires a callable, but got {type(func).__name__}. "
                "Did you mean to use autocast as a context manager? For example:\n"
                "    with gradient.amp.autocast(device_type='cpu'):\n"
                "        output = model(input)")

        # a fresh region per call, so the decorated function may recurse or run in several threads
        # (PyTorch reuses one object; its warnings are given once, here at decoration time)
        device_type, _, _, cache_enabled = self._init_args
        fast_dtype, enabled = self.fast_dtype, self._enabled

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            region = object.__new__(autocast)
            region.device, region.fast_dtype = device_type, fast_dtype
            region._enabled, region._cache_enabled = enabled, cache_enabled
            with region:
                return func(*args, **kwargs)
        return wrapper
