"""The geometric distribution."""

from __future__ import annotations

from ..dtypes import finfo
from ..ops import creation as _creation
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .utils import BinaryProbsOrLogits, broadcast_all, softplus, store_probs_or_logits
from ..errors import ArgumentValueError


class Geometric(BinaryProbsOrLogits, Distribution):
    """The number of failures before the first success of Bernoulli(``probs``) trials (0, 1, ...);
    ``probs`` or ``logits``, not both.

    Example: ``Geometric(probs=0.5).log_prob(gradient.tensor(1.0))`` is ``tensor(-1.3863)``.
    """
    arg_constraints = {"probs": constraints.interval(0.0, 1.0), "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        shape = store_probs_or_logits(self, probs, logits).shape
        super().__init__(shape, validate_args=validate_args)
        if self._validate_args and probs is not None and not bool((self.probs > 0).all()):
            raise ArgumentValueError("Geometric: expected probs > 0")

    @property
    def mean(self):
        return 1 / self.probs - 1

    @property
    def mode(self):
        return self.probs * 0

    @property
    def variance(self):
        return (1 / self.probs - 1) / self.probs

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        probs = self.probs.detach()
        u = _creation.rand(*shape, dtype=probs.dtype, device=probs.device).clamp(min=finfo(probs.dtype).tiny)
        return (u.log() / (-probs).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        return _special.xlog1py(value, -probs) + self.probs.log()

    def entropy(self):
        # the Bernoulli entropy of one trial over the success probability
        return (softplus(self.logits) - self.probs * self.logits) / self.probs
