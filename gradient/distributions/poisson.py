"""The Poisson distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, from_host, host_array, host_generator


class Poisson(Distribution):
    """Counts with mean ``rate``; draws come from the default generator's host state.

    Example: ``Poisson(2.0).log_prob(gradient.tensor(0.0))`` is ``tensor(-2.)``.
    """
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            draws = host_generator().poisson(host_array(self.rate), size=shape)
            return from_host(draws, self.rate)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return _special.xlogy(value, rate) - rate - (value + 1).lgamma()
