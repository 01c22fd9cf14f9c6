"""Upsample, UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle and PixelUnshuffle, as in
``torch.nn``.

Parameter-free wrappers around ``F.interpolate``, ``F.pixel_shuffle`` and ``F.pixel_unshuffle``
(see gradient/ops/sampling.py for the geometry of each mode). They keep their arguments as
attributes under PyTorch's names, and print as PyTorch's do.
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module
from ...ops.argument_errors import as_number

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
           "PixelUnshuffle"]


class Upsample(Module):
    """Resample the spatial dimensions of (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs to
    ``size`` or by ``scale_factor``; ``mode`` is ``'nearest'`` (the default), ``'nearest-exact'``,
    ``'linear'``, ``'bilinear'``, ``'bicubic'``, ``'trilinear'`` or ``'area'``, as
    :func:`gradient.nn.functional.interpolate`.

    Example::

        up = nn.Upsample(scale_factor=2, mode="bilinear")
        y = up(gradient.randn(1, 3, 16, 16))       # (1, 3, 32, 32)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        # stored as floats, as PyTorch does (a 0 scale_factor counts as none given)
        what = f"{self.name}: scale_factor"
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(as_number(factor, what)) for factor in scale_factor)
        else:
            self.scale_factor = float(as_number(scale_factor, what)) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W) inputs: ``Upsample(size, scale_factor,
    mode='nearest')`` (PyTorch keeps it for old code; prefer :class:`Upsample`).

    Example::

        up = nn.UpsamplingNearest2d(scale_factor=2)
        y = up(gradient.randn(1, 3, 8, 8))          # (1, 3, 16, 16)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) inputs with ``align_corners=True`` (PyTorch's choice
    for this legacy layer; ``Upsample(mode='bilinear')`` defaults to False).

    Example::

        up = nn.UpsamplingBilinear2d(size=(12, 12))
        y = up(gradient.randn(1, 3, 8, 8))          # (1, 3, 12, 12)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """Rearrange (*, C * r * r, H, W) into (*, C, H * r, W * r), as in sub-pixel convolution
    super-resolution; ``r`` is ``upscale_factor``.

    Example::

        shuffle = nn.PixelShuffle(3)
        y = shuffle(gradient.randn(1, 9, 4, 4))     # (1, 1, 12, 12)
    """

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """The inverse of :class:`PixelShuffle`: (*, C, H * r, W * r) -> (*, C * r * r, H, W).

    Example::

        unshuffle = nn.PixelUnshuffle(2)
        y = unshuffle(gradient.randn(1, 1, 8, 8))   # (1, 4, 4, 4)
    """

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
