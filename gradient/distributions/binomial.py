"""The binomial distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .utils import (BinaryProbsOrLogits, from_host, host_array, host_generator,
                    store_count_and_probs)


class Binomial(BinaryProbsOrLogits, Distribution):
    """Successes in ``total_count`` Bernoulli(``probs``) trials; ``probs`` or ``logits``.
    Draws come from the default generator's host state.

    Example: ``Binomial(4, gradient.tensor(0.5)).log_prob(gradient.tensor(2.0))`` is
    ``tensor(-0.9808)``.
    """
    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = False

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        store_count_and_probs(self, total_count, probs, logits)
        super().__init__(self.total_count.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            n = host_array(self.total_count).astype("int64")
            draws = host_generator().binomial(n, host_array(self.probs), size=shape)
            return from_host(draws, self.probs)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, p = self.total_count, self.probs
        log_choose = (n + 1).lgamma() - (value + 1).lgamma() - (n - value + 1).lgamma()
        return log_choose + _special.xlogy(value, p) + _special.xlog1py(n - value, -p)
