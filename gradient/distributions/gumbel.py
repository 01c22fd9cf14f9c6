"""The Gumbel (type-I extreme value) distribution."""

from __future__ import annotations

import math

from ..dtypes import finfo
from ..ops import creation as _creation
from .location_scale import LocationScale

_EULER_GAMMA = 0.57721566490153286060


class Gumbel(LocationScale):
    """The Gumbel distribution with location ``loc`` and scale ``scale``: the law of the maximum
    of many draws. ``rsample`` is reparameterized (``loc - scale * log(-log u)``).

    PyTorch builds it as a TransformedDistribution of a Uniform; the formulas here are direct.
    Example: ``Gumbel(0.0, 1.0).mean`` is ``tensor(0.5772)``.
    """
    @property
    def mean(self):
        return self.loc + self.scale * _EULER_GAMMA

    @property
    def variance(self):
        return (math.pi ** 2 / 6) * self.scale ** 2

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        info = finfo(self.loc.dtype)
        u = _creation.rand(*shape, dtype=self.loc.dtype, device=self.loc.device)
        u = u.clamp(info.tiny, 1 - info.eps)  # log(-log u) finite
        return self.loc - self.scale * (-u.log()).log()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -(self.scale.log() + z + (-z).exp())

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (-(-(value - self.loc) / self.scale).exp()).exp()

    def icdf(self, value):
        return self.loc - self.scale * (-value.log()).log()

    def entropy(self):
        return self.scale.log() + (1 + _EULER_GAMMA)
