"""The Cauchy distribution."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from .location_scale import LocationScale


class Cauchy(LocationScale):
    """The Cauchy (Lorentz) distribution: no mean (nan) and infinite variance. ``rsample`` is
    reparameterized (``loc + scale * tan(pi (u - 1/2))``).

    Example: ``Cauchy(0.0, 1.0).cdf(gradient.tensor(1.0))`` is ``tensor(0.7500)``.
    """
    @property
    def mean(self):
        return self.loc * float("nan")

    @property
    def variance(self):
        return self.loc * 0 + float("inf")

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = _creation.rand(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * (math.pi * (u - 0.5)).tan()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (z ** 2).log1p()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value):
        return (math.pi * (value - 0.5)).tan() * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()
