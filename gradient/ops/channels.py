"""Ops across the channel dimension of ``(N, C, *)`` inputs: ``local_response_norm``
(AlexNet's normalization by the energy of neighbouring channels) and ``channel_shuffle``
(ShuffleNet's interleaving of channel groups). Both are compositions of differentiable ops.

Example::

    >>> x = gradient.randn(2, 6, 4, 4)
    >>> F.local_response_norm(x, size=3).shape
    gradient.Size([2, 6, 4, 4])
    >>> F.channel_shuffle(gradient.arange(6.0).reshape(1, 6, 1), 2).flatten()
    tensor([0., 3., 1., 4., 2., 5.])
"""

from __future__ import annotations

from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .conv import pad
from .shape import transpose

__all__ = ["local_response_norm", "channel_shuffle"]
TENSOR_METHODS = ()


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """``x / (k + alpha * mean(x^2 over size neighbouring channels))^beta``, the channel window
    running from ``c - size // 2`` to ``c + (size - 1) // 2`` (zeros beyond the edges count in
    the mean, as in PyTorch). The input is ``(N, C, *)`` with at least one spatial dimension.

    Example::

        >>> F.local_response_norm(gradient.ones(1, 3, 2), 3, alpha=1.0, beta=1.0, k=0.0)
        tensor([[[1.5000, 1.5000],
                 [1.0000, 1.0000],
                 [1.5000, 1.5000]]])
    """
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected an input of at least 3 dimensions "
                         f"(N, C, *), got shape {tuple(input.shape)}")
    if input.numel() == 0:
        return input
    channels = input.shape[1]
    squares = input * input
    # zero padding on the channel dimension (F.pad lists the last dimension first)
    widths = (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2)
    padded = pad(squares, widths)
    window_sum = padded[:, 0:channels]
    for j in range(1, size):
        window_sum = window_sum + padded[:, j:j + channels]
    return input / (window_sum * (alpha / size) + k) ** beta


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` groups of channels: ``(N, g * n, *)`` seen as ``(N, g, n, *)`` is
    transposed to ``(N, n, g, *)``, so each new group takes one channel from every old one.

    Example::

        >>> F.channel_shuffle(gradient.arange(4.0).reshape(1, 4, 1, 1), 2).flatten()
        tensor([0., 2., 1., 3.])
    """
    if input.ndim < 3:
        raise ShapeError(f"channel_shuffle: expected an input of at least 3 dimensions (N, C, *), "
                         f"got shape {tuple(input.shape)}")
    if groups <= 0:
        raise ArgumentValueError(f"channel_shuffle: groups must be positive, got {groups}")
    n, c = input.shape[:2]
    if c % groups:
        raise ArgumentValueError(
            f"channel_shuffle: the number of channels ({c}) must be divisible by "
            f"groups ({groups})")
    rest = tuple(input.shape[2:])
    grouped = input.reshape(n, groups, c // groups, *rest)
    return transpose(grouped, 1, 2).reshape(n, c, *rest)
