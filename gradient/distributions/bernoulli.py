"""The Bernoulli distribution."""

from __future__ import annotations

from ..ops import creation as _creation
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .utils import BinaryProbsOrLogits, broadcast_all, softplus, store_probs_or_logits


class Bernoulli(BinaryProbsOrLogits, Distribution):
    """1 with probability ``probs`` and 0 otherwise; give either ``probs`` or ``logits``
    (log-odds), not both. Not reparameterizable (``sample`` has no gradient).

    Example: ``Bernoulli(logits=gradient.tensor([0.0])).log_prob(gradient.tensor([1.0]))`` is
    ``tensor([-0.6931])``.
    """
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        shape = store_probs_or_logits(self, probs, logits).shape
        super().__init__(shape, validate_args=validate_args)

    @property
    def param_shape(self):
        return self.__dict__.get("probs", self.__dict__.get("logits")).shape

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return _ew.where(self.probs == 0.5, float("nan"), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        probs = self.probs.detach().expand(*shape) if shape else self.probs.detach()
        return _creation.bernoulli(probs)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        # value * logits - log(1 + exp(logits)), the negative binary cross entropy
        return value * logits - softplus(logits)

    def entropy(self):
        return softplus(self.logits) - self.probs * self.logits

    def enumerate_support(self, expand: bool = True):
        values = _creation.arange(2, dtype=self.probs.dtype if "probs" in self.__dict__
                                  else self.logits.dtype)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((2,) + tuple(self.batch_shape)) if expand else values
