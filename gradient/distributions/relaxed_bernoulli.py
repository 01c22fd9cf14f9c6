"""The relaxed (Concrete) Bernoulli distribution: a differentiable stand-in for coin flips."""

from __future__ import annotations

from ..ops import creation as _creation
from . import constraints
from .distribution import Distribution
from .transformed_distribution import TransformedDistribution
from .transforms import SigmoidTransform
from .utils import as_tensor_like as _as_tensor
from .utils import BinaryProbsOrLogits, clamp_probs, softplus, store_probs_or_logits


class LogitRelaxedBernoulli(BinaryProbsOrLogits, Distribution):
    """The logit of a :class:`RelaxedBernoulli` draw: ``(logits + logistic noise) / temperature``,
    on the real line. ``rsample`` is reparameterized.

    Example::

        >>> d = LogitRelaxedBernoulli(gradient.tensor(0.5), logits=gradient.zeros(3))
        >>> d.rsample().shape
        gradient.Size([3])
    """
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        shape = store_probs_or_logits(self, probs, logits).shape
        self.temperature = _as_tensor(temperature, self.probs if probs is not None else self.logits)
        super().__init__(shape, validate_args=validate_args)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        logits = self.logits
        u = clamp_probs(_creation.rand(*shape, dtype=logits.dtype, device=logits.device))
        return (u.log() - (-u).log1p() + logits) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = self.logits - value * self.temperature
        return self.temperature.log() + diff - 2 * softplus(diff)


class RelaxedTransformed(TransformedDistribution):
    """A relaxed distribution made by a transform of its logit-space base (RelaxedBernoulli,
    RelaxedOneHotCategorical): ``temperature``, ``logits`` and ``probs`` are the base's, which
    checked them."""

    def _check_parameters(self):
        pass  # the base distribution checked them

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class RelaxedBernoulli(RelaxedTransformed):
    """The Concrete / Gumbel-softmax relaxation of :class:`Bernoulli`: values in (0, 1) that
    approach 0/1 draws as ``temperature`` goes to 0; ``rsample`` is reparameterized.
    (A :class:`LogitRelaxedBernoulli` pushed through a sigmoid.)

    Example::

        >>> d = RelaxedBernoulli(gradient.tensor(0.1), probs=gradient.tensor([0.3, 0.9]))
        >>> x = d.rsample()        # close to 0 or 1, with gradients to probs
    """
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)
