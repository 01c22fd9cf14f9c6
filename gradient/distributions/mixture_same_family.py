"""Mixtures of distributions of one family, weighted by a categorical distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import index as _index
from ..ops import nn as _nn
from ..ops import reduce as _reduce
from .categorical import Categorical
from .distribution import Distribution
from ..errors import ArgumentValueError


class MixtureSameFamily(Distribution):
    """A mixture of ``K`` components: ``mixture_distribution`` (a :class:`Categorical` with
    batch shape ``B``) picks one of the components of ``component_distribution`` (batch shape
    ``B + (K,)``, any event shape), which then draws the value.

    ``log_prob`` is ``logsumexp_k(log w_k + log p_k(x))``; ``mean`` and ``variance`` follow the
    laws of total expectation and variance; ``cdf`` is the weighted sum of the components'.
    Sampling is not reparameterized (the choice of component is discrete).

    Example: a mixture of two normals per batch element::

        >>> mix = Categorical(probs=gradient.tensor([0.3, 0.7]))
        >>> comp = Normal(gradient.tensor([-1.0, 1.0]), gradient.tensor([0.5, 0.5]))
        >>> MixtureSameFamily(mix, comp).mean
        tensor(0.4000)
    """
    arg_constraints = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ArgumentValueError(
                "MixtureSameFamily: mixture_distribution must be a Categorical, got "
                f"{type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ArgumentValueError(
                "MixtureSameFamily: component_distribution must be a Distribution")
        mix_batch = tuple(mixture_distribution.batch_shape)
        comp_batch = tuple(component_distribution.batch_shape)
        compatible = len(comp_batch) >= 1 and len(mix_batch) <= len(comp_batch) - 1 and all(
            a == b or a == 1 or b == 1 for a, b in zip(reversed(mix_batch), reversed(comp_batch[:-1])))
        if not compatible:
            raise ArgumentValueError(
                f"MixtureSameFamily: the mixture's batch shape {mix_batch} must match "
                f"the components' batch shape {comp_batch} without its last dimension")
        k = mixture_distribution.logits.shape[-1]
        if comp_batch[-1] != k:
            raise ArgumentValueError(
                f"MixtureSameFamily: the mixture has {k} categories but the components' "
                f"last batch dimension is {comp_batch[-1]}")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = k
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(comp_batch[:-1], component_distribution.event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = tuple(batch_shape)
        new = type(self).__new__(type(self))
        new._component_distribution = self._component_distribution.expand(
            batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component, new._event_ndims = self._num_component, self._event_ndims
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    @property
    def support(self):
        return self._component_distribution.support

    def _pad(self, x):
        """``x`` with a component dimension, where the components' batch has it."""
        return x.unsqueeze(-1 - self._event_ndims)

    def _weights(self):
        """The mixture probabilities shaped to broadcast against the components' values."""
        probs = self._mixture_distribution.probs
        return probs.reshape(tuple(probs.shape) + (1,) * self._event_ndims)

    @property
    def mean(self):
        dim = -1 - self._event_ndims
        return _reduce.sum(self._weights() * self._component_distribution.mean, dim)

    @property
    def variance(self):
        # total variance = E[Var(X | k)] + Var(E[X | k])
        dim = -1 - self._event_ndims
        w, means = self._weights(), self._component_distribution.mean
        mean_cond_var = _reduce.sum(w * self._component_distribution.variance, dim)
        mixture_mean = _reduce.sum(w * means, dim)
        var_cond_mean = _reduce.sum(w * (means - self._pad(mixture_mean)) ** 2, dim)
        return mean_cond_var + var_cond_mean

    def cdf(self, x):
        cdf_x = self._component_distribution.cdf(self._pad(x))
        return _reduce.sum(cdf_x * self._mixture_distribution.probs, -1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        log_prob_x = self._component_distribution.log_prob(self._pad(x))     # (S, B, K)
        log_mix = _nn.log_softmax(self._mixture_distribution.logits, dim=-1)  # (B, K)
        return _reduce.logsumexp(log_prob_x + log_mix, dim=-1)

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        with no_grad():
            mixture = self._mixture_distribution
            if tuple(mixture.batch_shape) != tuple(self.batch_shape):
                mixture = mixture.expand(self.batch_shape)
            choice = mixture.sample(sample_shape)                             # (S, B)
            values = self._component_distribution.sample(sample_shape)        # (S, B, K, E)
            # pick component choice[s, b] from dimension len(S + B) of the values
            event = tuple(self.event_shape)
            index = choice.reshape(tuple(choice.shape) + (1,) + (1,) * len(event))
            index = index.expand(*choice.shape, 1, *event)
            return _index.gather(values, len(choice.shape), index).squeeze(len(choice.shape))
