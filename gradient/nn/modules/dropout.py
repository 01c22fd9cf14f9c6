"""Dropout layers, as in ``torch.nn``: active in training mode, the identity after ``eval()``.

Masks are drawn from gradient's default generator (``gradient.manual_seed`` makes them
reproducible); they are not the same random numbers PyTorch would draw.
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module
from ...errors import ArgumentValueError
from ...ops.argument_errors import as_number

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not 0 <= as_number(p, f"{type(self).__name__}: p") <= 1:
            raise ArgumentValueError(
                f"{type(self).__name__}: dropout probability has to be between 0 "
                f"and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` while training and scale the rest by 1/(1-p).

    Example::

        drop = nn.Dropout(0.1)
        y = drop(x)        # training
        drop.eval()
        drop(x)            # returns x unchanged in evaluation
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) inputs while training. ``nn.Dropout1d(0.2)``."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) inputs while training. ``nn.Dropout2d(0.2)``."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) inputs while training. ``nn.Dropout3d(0.2)``."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks: dropped elements take SELU's negative saturation value and the
    result is rescaled so that zero-mean unit-variance inputs keep their mean and variance.

    Example::

        net = nn.Sequential(nn.Linear(16, 16), nn.SELU(), nn.AlphaDropout(0.1))
    """

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace)


class FeatureAlphaDropout(_DropoutNd):
    """:class:`AlphaDropout` of whole channels of (N, C, *) inputs. ``nn.FeatureAlphaDropout(0.2)``."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace)
