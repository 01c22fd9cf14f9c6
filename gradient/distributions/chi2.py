"""The chi-squared distribution, a gamma distribution with rate 1/2."""

from __future__ import annotations

from . import constraints
from .distribution import Distribution
from .gamma import Gamma
from .utils import broadcast_all


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``.
    Like :class:`Gamma`'s, its samples are reparameterized (``rsample``).

    Example::

        >>> Chi2(gradient.tensor(4.0)).mean
        tensor(4.)
    """
    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    @property
    def df(self):
        return self.concentration * 2

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new.concentration = self.concentration.expand(*batch_shape)
        new.rate = self.rate.expand(*batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new
