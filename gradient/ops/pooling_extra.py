"""More pooling ops of ``gradient.nn.functional``, composed from those in :mod:`.conv`:

- ``max_unpool1d/2d/3d``: the partial inverse of max pooling, a scatter of the pooled values
  to the positions ``max_pool(..., return_indices=True)`` reported (zeros elsewhere);
- ``lp_pool1d/2d/3d``: ``(sum over the window of x^p)^(1/p)``, an average pool of ``x^p``;
- ``adaptive_avg_pool3d`` / ``adaptive_max_pool3d``: the n-d adaptive pools of :mod:`.conv`
  in three dimensions.

Example::

    >>> x = gradient.randn(1, 1, 4, 4)
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_unpool2d(y, idx, 2).shape
    gradient.Size([1, 1, 4, 4])
"""

from __future__ import annotations

import math

from ..errors import ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .conv import (_adaptive_avg_poolnd, _adaptive_max_poolnd, _ntuple, avg_pool1d, avg_pool2d,
                   avg_pool3d)
from .creation import zeros
from .index import scatter

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d",
           "adaptive_avg_pool3d", "adaptive_max_pool3d"]
TENSOR_METHODS = ()


# ---------------------------------------------------------------------- max_unpool
def _max_unpoolnd(d, input, indices, kernel_size, stride, padding, output_size, fname):
    if input.ndim not in (d + 1, d + 2):
        raise ShapeError(f"{fname}: expected a {d + 1}-d (unbatched) or {d + 2}-d input, got shape "
                         f"{tuple(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{fname}: indices of shape {tuple(indices.shape)} must have the input's "
                         f"shape {tuple(input.shape)}")
    if indices.dtype.is_floating_point:
        raise DTypeError(f"{fname}: expected integer indices, got {indices.dtype}")
    k = _ntuple(kernel_size, d, "kernel_size", fname)
    st = k if stride is None else _ntuple(stride, d, "stride", fname)
    p = _ntuple(padding, d, "padding", fname)
    spatial = tuple(input.shape[-d:])
    default = tuple((n - 1) * s - 2 * q + kk for n, s, q, kk in zip(spatial, st, p, k))
    if output_size is None:
        size = default
    else:
        size = tuple(int(v) for v in output_size)
        if len(size) == d + 2 or len(size) == d + 1 and input.ndim == d + 1:
            size = size[-d:]
        if len(size) != d:
            raise ArgumentValueError(
                f"{fname}: output_size must have {d} (or {d + 2}) elements, got {output_size}")
        for v, lo, s in zip(size, default, st):
            if not lo - s < v < lo + s:
                raise ArgumentValueError(
                    f"{fname}: output_size {tuple(size)} must be within a stride of the "
                    f"default size {default}")
    lead = tuple(input.shape[:-d])
    flat_in = input.reshape(*lead, -1)
    flat_idx = indices.reshape(*lead, -1).long()
    plane = math.prod(size)
    if flat_idx.numel():
        lo, hi = int(flat_idx.min()), int(flat_idx.max())
        if lo < 0 or hi >= plane:
            raise IndexRangeError(
                f"{fname}: index {lo if lo < 0 else hi} is out of range for an output "
                f"plane of {plane} elements (output size {tuple(size)})")
    out = zeros(*lead, plane, dtype=input.dtype, device=input.device)
    return scatter(out, -1, flat_idx, flat_in).reshape(*lead, *size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of :func:`max_pool1d`: each value put back at its index, zeros
    elsewhere. ``F.max_unpool1d(y, idx, 2)``."""
    return _max_unpoolnd(1, input, indices, kernel_size, stride, padding, output_size, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of :func:`max_pool2d`: ``indices`` are the flat positions
    ``h * W + w`` that ``max_pool2d(..., return_indices=True)`` returns; the output has
    ``(H - 1) * stride - 2 * padding + kernel_size`` rows (or ``output_size``).

    Example::

        >>> y, idx = F.max_pool2d(gradient.randn(1, 1, 5, 5), 2, return_indices=True)
        >>> F.max_unpool2d(y, idx, 2, output_size=(5, 5)).shape
        gradient.Size([1, 1, 5, 5])
    """
    return _max_unpoolnd(2, input, indices, kernel_size, stride, padding, output_size, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of :func:`max_pool3d`. ``F.max_unpool3d(y, idx, 2)``."""
    return _max_unpoolnd(3, input, indices, kernel_size, stride, padding, output_size, "max_unpool3d")


# ---------------------------------------------------------------------- lp_pool
def _lp_poolnd(d, avg_pool, input, norm_type, kernel_size, stride, ceil_mode, fname):
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{fname}: expected a floating-point input, got {input.dtype}")
    k = _ntuple(kernel_size, d, "kernel_size", fname)
    mean = avg_pool(input ** norm_type, kernel_size, stride, 0, ceil_mode)
    # the window sum of x^p (negative for odd p and negative inputs: the root is then nan, as
    # in PyTorch)
    return (mean * math.prod(k)) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """Power-average pooling over ``(N, C, L)``: ``(sum of x^p over each window)^(1/p)``
    (``p = 1`` is sum pooling, ``p = inf`` would be max pooling). ``F.lp_pool1d(x, 2, 3)``."""
    return _lp_poolnd(1, avg_pool1d, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """Power-average pooling over ``(N, C, H, W)``: ``(sum of x^p over each window)^(1/p)``.

    Example::

        >>> F.lp_pool2d(gradient.ones(1, 1, 4, 4), 2, 2)     # sqrt(4) per 2x2 window
        tensor([[[[2., 2.],
                  [2., 2.]]]])
    """
    return _lp_poolnd(2, avg_pool2d, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """Power-average pooling over ``(N, C, D, H, W)``. ``F.lp_pool3d(x, 2, 2)``."""
    return _lp_poolnd(3, avg_pool3d, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool3d")


# ---------------------------------------------------------------------- adaptive 3-d
def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average pooling of ``(N, C, D, H, W)`` to ``output_size`` (None keeps that size).

    Example::

        >>> F.adaptive_avg_pool3d(gradient.randn(1, 2, 5, 6, 7), (2, 3, None)).shape
        gradient.Size([1, 2, 2, 3, 7])
    """
    return _adaptive_avg_poolnd(3, input, output_size, "adaptive_avg_pool3d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, D, H, W)`` to ``output_size``; with ``return_indices`` also
    the flat positions ``(d * H + h) * W + w`` of the maxima. ``F.adaptive_max_pool3d(x, 2)``."""
    return _adaptive_max_poolnd(3, input, output_size, return_indices, "adaptive_max_pool3d")
