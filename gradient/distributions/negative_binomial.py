"""The negative binomial distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import nn as _nn
from . import constraints
from .distribution import Distribution
from .utils import (BinaryProbsOrLogits, from_host, host_array, host_generator,
                    store_count_and_probs)


class NegativeBinomial(BinaryProbsOrLogits, Distribution):
    """Successes, each of probability ``probs`` (or ``logits``), before ``total_count``
    failures (any positive number: a gamma-Poisson mixture), as PyTorch's. Draws come from the
    default generator's host state.

    Example: ``NegativeBinomial(3.0, gradient.tensor(0.4)).mean`` is ``tensor(2.)``.
    """
    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        store_count_and_probs(self, total_count, probs, logits)
        super().__init__(self.total_count.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            # NumPy counts failures of probability 1 - p before n successes of probability p
            r = host_array(self.total_count)
            failure = 1.0 - host_array(self.probs)
            draws = host_generator().negative_binomial(r, failure, size=shape)
            return from_host(draws, self.probs)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        r, logits = self.total_count, self.logits
        unnormalized = r * _nn.logsigmoid(-logits) + value * _nn.logsigmoid(logits)
        normalization = -(r + value).lgamma() + (1.0 + value).lgamma() + r.lgamma()
        # no failures asked for and none seen: probability 1 (lgamma(0) would be infinite)
        normalization = normalization.masked_fill(r + value == 0.0, 0.0)
        return unnormalized - normalization
