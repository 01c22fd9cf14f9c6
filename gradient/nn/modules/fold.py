"""Fold and Unfold: sliding local blocks to columns and back, as ``torch.nn.Fold``/``Unfold``.

Thin modules around ``F.fold`` and ``F.unfold``; they store their arguments as given (so reprs
match PyTorch's) and hold no parameters.
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    """Sum columns ``(N, C * prod(kernel_size), L)`` back into an image ``(N, C, *output_size)``
    (overlapping blocks add up): the adjoint of :class:`Unfold`.

    Example::

        fold = nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
        y = fold(gradient.randn(1, 3 * 2 * 2, 12))   # (1, 3, 4, 5)
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class Unfold(Module):
    """Extract sliding blocks of an image ``(N, C, H, W)`` as columns
    ``(N, C * prod(kernel_size), L)`` (im2col).

    Example::

        unfold = nn.Unfold(kernel_size=3, padding=1)
        cols = unfold(gradient.randn(2, 4, 8, 8))     # (2, 36, 64)
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
