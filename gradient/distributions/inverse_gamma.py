"""The inverse gamma distribution."""

from __future__ import annotations

from ..ops import elementwise as _ew
from . import constraints
from .gamma import Gamma
from .transformed_distribution import TransformedDistribution
from .transforms import PowerTransform


class InverseGamma(TransformedDistribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)``: the conjugate prior of a normal
    variance; here ``rate`` is the scale of ``1 / X``. ``rsample`` is reparameterized (through
    the gamma draws').

    Example: ``InverseGamma(3.0, 2.0).mean`` is ``tensor(1.)``.
    """
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        super().__init__(Gamma(concentration, rate, validate_args=validate_args),
                         PowerTransform(-1.0), validate_args=validate_args)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        c = self.concentration
        return _ew.where(c > 1, self.rate / (c - 1), float("inf"))

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c = self.concentration
        return _ew.where(c > 2, self.rate ** 2 / ((c - 1) ** 2 * (c - 2)), float("inf"))

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + c.lgamma() - (1 + c) * c.digamma()
