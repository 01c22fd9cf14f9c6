"""``torch.nn.attention``: which kernels scaled dot-product attention may use, and causal
masks as objects (:mod:`.bias`).

gradient picks its attention kernels itself (the decode kernels, a backend's fused kernels,
or the composition of ops: the same results), so :func:`sdpa_kernel` only checks what it is
given and lets the code inside run as it would: a PyTorch program that asks for a backend
runs unchanged.

Example::

    >>> from gradient.nn.attention import SDPBackend, sdpa_kernel
    >>> with sdpa_kernel(SDPBackend.MATH):
    ...     out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
"""

from __future__ import annotations

import contextlib
import enum

from . import bias
from ...errors import ArgumentTypeError

__all__ = ["SDPBackend", "sdpa_kernel", "bias"]


class SDPBackend(enum.IntEnum):
    """The attention kernels PyTorch names (``torch.nn.attention.SDPBackend``)."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Accept PyTorch's choice of attention backends (one or a list of :class:`SDPBackend`);
    gradient's own choice of kernel stands inside."""
    chosen = backends if isinstance(backends, (list, tuple)) else [backends]
    for b in chosen:
        if not isinstance(b, SDPBackend):
            raise ArgumentTypeError(f"sdpa_kernel: expected SDPBackend values, got {b!r}")
    yield
