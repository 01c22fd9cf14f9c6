"""The Fisher-Snedecor (F) distribution."""

from __future__ import annotations

from ..dtypes import finfo
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .gamma import standard_gamma
from .utils import broadcast_all


class FisherSnedecor(Distribution):
    """The ratio of two chi-squared variables each divided by its degrees of freedom, ``df1``
    over ``df2``. Mean, mode and variance are NaN where they do not exist (``df2 <= 2``, ``df1
    <= 2``, ``df2 <= 4``), as in PyTorch. Sampling is reparameterized (``rsample``), as Gamma's.

    Example: ``FisherSnedecor(4.0, 6.0).mean`` is ``tensor(1.5000)``.
    """
    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)

    @property
    def mean(self):
        df2 = self.df2.masked_fill(self.df2 <= 2, float("nan"))
        return df2 / (df2 - 2)

    @property
    def mode(self):
        df1 = self.df1.masked_fill(self.df1 <= 2, float("nan"))
        return (df1 - 2) / df1 * self.df2 / (self.df2 + 2)

    @property
    def variance(self):
        df2 = self.df2.masked_fill(self.df2 <= 4, float("nan"))
        return 2 * df2 ** 2 * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2) ** 2 * (df2 - 4))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        tiny = finfo(self.df1.dtype).tiny
        x1 = standard_gamma(self.df1.expand(*shape) * 0.5) / (self.df1 * 0.5)
        x2 = standard_gamma(self.df2.expand(*shape) * 0.5) / (self.df2 * 0.5)
        return (x1.clamp(min=tiny) / x2.clamp(min=tiny)).clamp(min=tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        half1, half2 = self.df1 * 0.5, self.df2 * 0.5
        ratio = self.df1 / self.df2
        normalization = (half1 + half2).lgamma() - half1.lgamma() - half2.lgamma()
        return normalization + half1 * ratio.log() + (half1 - 1) * value.log() - \
            (half1 + half2) * _ew.log1p(ratio * value)
