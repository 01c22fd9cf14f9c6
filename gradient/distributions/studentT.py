"""Student's t distribution."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .gamma import standard_gamma
from .utils import broadcast_all


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``.

    Sampling (a normal over the root of a scaled chi-square, from gamma draws) is
    reparameterized (``rsample``), as PyTorch's.
    Example: ``StudentT(3.0).variance`` is ``tensor(3.)``.
    """
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self):
        return _ew.where(self.df > 1, self.loc, float("nan"))

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        var = self.scale ** 2 * self.df / _ew.where(self.df > 2, self.df - 2, 1.0)
        return _ew.where(self.df > 2, var, _ew.where(self.df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = _creation.randn(*shape, dtype=self.df.dtype, device=self.df.device)
        chi2 = 2 * standard_gamma((0.5 * self.df).expand(*shape) if shape else 0.5 * self.df)
        return self.loc + self.scale * x * (self.df / chi2).sqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi)
             + (0.5 * self.df).lgamma() - (0.5 * (self.df + 1)).lgamma())
        return -0.5 * (self.df + 1) * (y ** 2 / self.df).log1p() - z

    def entropy(self):
        half_df = 0.5 * self.df
        log_beta = half_df.lgamma() + math.lgamma(0.5) - (half_df + 0.5).lgamma()
        return (self.scale.log() + (half_df + 0.5) * ((half_df + 0.5).digamma() - half_df.digamma())
                + 0.5 * self.df.log() + log_beta)
