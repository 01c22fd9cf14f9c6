"""The rest of ``torch.nn.functional``'s names: the pooling functions that always return their
indices (``max_pool2d_with_indices`` ...), the in-place ``celu_``/``selu_``, and the
``__torch_function__`` queries library code asks before dispatching (gradient tensors never
override torch functions, so the answer is always no).

Example::

    >>> out, idx = F.max_pool2d_with_indices(gradient.randn(1, 1, 4, 4), 2)
"""

from __future__ import annotations

from ..ops import conv as _conv
from ..ops import pooling_extra as _pooling
from ..ops.torch_functional import celu_, selu_  # noqa: F401  (F.celu_, F.selu_ too)
from ..errors import UnsupportedError

__all__ = ["max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
           "adaptive_max_pool3d_with_indices", "celu_", "selu_", "has_torch_function",
           "has_torch_function_unary", "has_torch_function_variadic", "handle_torch_function"]


def _with_indices(pool, adaptive: bool):
    if adaptive:
        def fn(input, output_size, return_indices=True):
            return pool(input, output_size, return_indices=True)
    else:
        def fn(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=True):
            return pool(input, kernel_size, stride, padding, dilation, ceil_mode, True)
    fn.__name__ = fn.__qualname__ = f"{pool.__name__}_with_indices"
    fn.__doc__ = f"``F.{pool.__name__}(..., return_indices=True)``: ``(output, indices)``."
    return fn


max_pool1d_with_indices = _with_indices(_conv.max_pool1d, False)
max_pool2d_with_indices = _with_indices(_conv.max_pool2d, False)
max_pool3d_with_indices = _with_indices(_conv.max_pool3d, False)
adaptive_max_pool1d_with_indices = _with_indices(_conv.adaptive_max_pool1d, True)
adaptive_max_pool2d_with_indices = _with_indices(_conv.adaptive_max_pool2d, True)
adaptive_max_pool3d_with_indices = _with_indices(_pooling.adaptive_max_pool3d, True)


def has_torch_function(relevant_args) -> bool:
    """Whether an argument overrides torch functions (``__torch_function__``): never here."""
    return False


def has_torch_function_unary(arg) -> bool:
    return False


def has_torch_function_variadic(*args) -> bool:
    return False


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    """Only called after a ``has_torch_function`` that said yes, which never happens here."""
    raise UnsupportedError("handle_torch_function: gradient tensors do not override torch "
                           "functions (__torch_function__); has_torch_function is False")
