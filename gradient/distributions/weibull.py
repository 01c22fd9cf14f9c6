"""The Weibull distribution."""

from __future__ import annotations

from ..ops import creation as _creation
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, clamp_probs

_EULER_GAMMA = 0.57721566490153286061


class Weibull(Distribution):
    """The Weibull distribution with ``scale`` (lambda) and shape ``concentration`` (k):
    ``cdf(x) = 1 - exp(-(x / lambda)^k)`` on ``x > 0``. ``rsample`` is reparameterized (the
    inverse cdf of a uniform draw).

    Example::

        >>> Weibull(1.0, 1.0).log_prob(gradient.tensor(2.0))   # k = 1 is Exponential(1)
        tensor(-2.)
    """
    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * (1 + self.concentration.reciprocal()).lgamma().exp()

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k) ** k.reciprocal()

    @property
    def variance(self):
        k = self.concentration
        return self.scale ** 2 * ((1 + 2 / k).lgamma().exp() - (2 * (1 + 1 / k).lgamma()).exp())

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = clamp_probs(_creation.rand(*shape, dtype=self.scale.dtype, device=self.scale.device))
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k, z = self.concentration, value / self.scale
        return k.log() - self.scale.log() + (k - 1) * z.log() - z ** k

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - (-((value / self.scale) ** self.concentration)).exp()

    def icdf(self, value):
        return self.scale * (-(-value).log1p()) ** self.concentration.reciprocal()

    def entropy(self):
        k = self.concentration
        return _EULER_GAMMA * (1 - 1 / k) + (self.scale / k).log() + 1
