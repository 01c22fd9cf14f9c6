"""The multinomial distribution: counts of ``total_count`` draws among ``K`` categories."""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..ops import reduce as _reduce
from ..ops.creation import arange
from . import constraints
from .binomial import Binomial
from .categorical import Categorical, OfCategorical
from .distribution import Distribution
from .utils import from_host, host_array, host_generator, probs_or_logits
from ..errors import UnsupportedError


class Multinomial(OfCategorical, Distribution):
    """How many of ``total_count`` independent draws fall in each of ``K`` categories, with
    ``probs`` or ``logits`` over the last dimension (as :class:`Categorical`'s): a sample is a
    vector of ``K`` counts (``event_shape`` ``(K,)``). Draws come from the default generator's
    host state. ``log_prob`` takes any ``total_count``; sampling needs it to be an integer.

    Example: ``Multinomial(4, gradient.tensor([0.2, 0.8])).log_prob(gradient.tensor([1., 3.]))``
    is ``tensor(-0.9056)``.
    """
    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        probs_or_logits("Multinomial", probs, logits)
        if not isinstance(total_count, int):
            raise UnsupportedError("Multinomial: total_count must be a Python integer (one "
                                   "count for the whole batch, as in PyTorch)")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self._categorical.probs)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        with no_grad():
            p = host_array(self.probs).astype("float64")
            p = p / p.sum(-1, keepdims=True)     # (NumPy checks that they sum to 1 exactly)
            draws = host_generator().multinomial(self.total_count, p, size=shape)
            return from_host(draws, self.probs)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits
        # 0 * log(0): a category of probability 0 that holds no count adds nothing
        logits = logits.masked_fill((value == 0) & (logits == float("-inf")), 0.0)
        log_factorial_n = (_reduce.sum(value, -1) + 1).lgamma()
        log_factorial_xs = _reduce.sum((value + 1).lgamma(), -1)
        return log_factorial_n - log_factorial_xs + _reduce.sum(value * logits, -1)

    def entropy(self):
        """The entropy, summed over the counts each category can hold (PyTorch's formula)."""
        n = self.total_count
        support = arange(1, n + 1, dtype=self.probs.dtype, device=self.probs.device)
        support = support.reshape((n,) + (1,) * (len(self.batch_shape) + 1))
        binomial_probs = self._binomial.log_prob(support).exp()
        weights = (support + 1).lgamma()
        return n * self._categorical.entropy() - math.lgamma(n + 1) + \
            _reduce.sum(weights * binomial_probs, [0, -1])
