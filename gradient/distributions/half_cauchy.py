"""The half-Cauchy distribution: the absolute value of a centred Cauchy."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all


class HalfCauchy(Distribution):
    """``|X|`` for ``X ~ Cauchy(0, scale)``: support ``[0, inf)``, infinite mean and variance;
    ``rsample`` is reparameterized (``scale * tan(pi u / 2)``).

    Example::

        >>> HalfCauchy(1.0).cdf(gradient.tensor(1.0))
        tensor(0.5000)
    """
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * 0 + float("inf")

    @property
    def mode(self):
        return self.scale * 0

    @property
    def variance(self):
        return self.scale * 0 + float("inf")

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = _creation.rand(*shape, dtype=self.scale.dtype, device=self.scale.device)
        return self.scale * (0.5 * math.pi * u).tan()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lp = math.log(2 / math.pi) - self.scale.log() - ((value / self.scale) ** 2).log1p()
        return _ew.where(value >= 0, lp, float("-inf"))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (value / self.scale).atan() * (2 / math.pi)

    def icdf(self, value):
        return self.scale * (0.5 * math.pi * value).tan()

    def entropy(self):
        return math.log(2 * math.pi) + self.scale.log()
