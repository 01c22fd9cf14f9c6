"""The Dirichlet distribution."""

from __future__ import annotations

from ..ops import reduce as _reduce
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .gamma import standard_gamma
from ..errors import ArgumentValueError


class Dirichlet(Distribution):
    """The Dirichlet distribution over the probability simplex, with ``concentration`` (the last
    dimension is the event: ``k`` categories).

    Sampling normalizes gamma draws; it is reparameterized (``rsample``) through their
    implicit gradients (:func:`~gradient.distributions.gamma.standard_gamma`). The gradient
    of one draw differs from PyTorch's (which differentiates the Dirichlet's own quantiles);
    both are unbiased, so expectations of their gradients agree.

    Example: ``Dirichlet(gradient.ones(3)).sample()`` is a point of the 2-simplex.
    """
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.ndim < 1:
            raise ArgumentValueError(
                "Dirichlet: the concentration must have at least one dimension")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / _reduce.sum(self.concentration, -1, keepdim=True)

    @property
    def mode(self):
        # (c - 1) / (sum c - k) where every c > 1; below 1 the mass piles up at the corners
        shifted = (self.concentration - 1).clamp(min=0)
        mode = shifted / _reduce.sum(shifted, -1, keepdim=True)
        from ..ops import elementwise as _ew
        from ..ops.nn import one_hot
        corner = one_hot(_reduce.argmax(self.concentration, dim=-1), self.concentration.shape[-1])
        all_below = _reduce.all(self.concentration < 1, dim=-1, keepdim=True)
        return _ew.where(all_below, corner.to(mode.dtype), mode)

    @property
    def variance(self):
        total = _reduce.sum(self.concentration, -1, keepdim=True)
        return self.concentration * (total - self.concentration) / (total ** 2 * (total + 1))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        draws = standard_gamma(self.concentration.expand(*shape))
        return draws / _reduce.sum(draws, -1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return (_reduce.sum(_special.xlogy(c - 1, value), -1) + _reduce.sum(c, -1).lgamma()
                - _reduce.sum(c.lgamma(), -1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        total = _reduce.sum(c, -1)
        return (_reduce.sum(c.lgamma(), -1) - total.lgamma() - (k - total) * total.digamma()
                - _reduce.sum((c - 1) * c.digamma(), -1))
