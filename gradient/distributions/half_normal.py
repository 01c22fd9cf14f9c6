"""The half-normal distribution: the absolute value of a centred normal."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all


class HalfNormal(Distribution):
    """``|X|`` for ``X ~ Normal(0, scale)``: support ``[0, inf)``; ``rsample`` is reparameterized.

    Example::

        >>> HalfNormal(1.0).log_prob(gradient.tensor(0.0))
        tensor(-0.2258)
    """
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return self.scale * 0

    @property
    def variance(self):
        return self.scale ** 2 * (1 - 2 / math.pi)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = _creation.randn(*shape, dtype=self.scale.dtype, device=self.scale.device)
        return (eps * self.scale).abs()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        # twice the normal density on the positive half line, zero (log: -inf) below it
        lp = -(value ** 2) / (2 * self.scale ** 2) - self.scale.log() + 0.5 * math.log(2 / math.pi)
        return _ew.where(value >= 0, lp, float("-inf"))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (value / (self.scale * math.sqrt(2))).erf()

    def icdf(self, value):
        return self.scale * math.sqrt(2) * value.erfinv()

    def entropy(self):
        return 0.5 * math.log(math.pi / 2) + 0.5 + self.scale.log()
