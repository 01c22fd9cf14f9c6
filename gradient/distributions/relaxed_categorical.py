"""The relaxed (Concrete / Gumbel-softmax) one-hot categorical distribution."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops.reduce import logsumexp, sum as _sum
from . import constraints
from .categorical import Categorical
from .distribution import Distribution
from .relaxed_bernoulli import RelaxedTransformed
from .transforms import ExpTransform
from .utils import as_tensor_like as _as_tensor, clamp_probs


class ExpRelaxedCategorical(Distribution):
    """The log of a :class:`RelaxedOneHotCategorical` draw: ``log_softmax((logits + Gumbel
    noise) / temperature)``. ``rsample`` is reparameterized.

    Example::

        >>> d = ExpRelaxedCategorical(gradient.tensor(0.5), logits=gradient.zeros(4))
        >>> d.rsample().exp().sum()
        tensor(1.0000)
    """
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        param = self._categorical.probs if probs is not None else self._categorical.logits
        self.temperature = _as_tensor(temperature, param)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def _check_parameters(self):
        pass  # the inner Categorical checked them

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new._categorical = self._categorical.expand(batch_shape)
        new.temperature = self.temperature
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        logits = self.logits
        u = clamp_probs(_creation.rand(*shape, dtype=logits.dtype, device=logits.device))
        scores = (logits - (-u.log()).log()) / self.temperature     # logits + Gumbel(0, 1) noise
        return scores - logsumexp(scores, dim=-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.event_shape[0]
        # the density of the Concrete distribution, in log space: the normalizer
        # (k - 1)! t^(k - 1), then the log-softmax of logits - t * value summed over the events
        log_scale = math.lgamma(k) + (k - 1) * self.temperature.log()
        score = self.logits - value * self.temperature
        score = _sum(score - logsumexp(score, dim=-1, keepdim=True), -1)
        return score + log_scale


class RelaxedOneHotCategorical(RelaxedTransformed):
    """The Concrete / Gumbel-softmax relaxation of :class:`OneHotCategorical`: points of the
    simplex that approach one-hot vectors as ``temperature`` goes to 0; ``rsample`` is
    reparameterized. (An :class:`ExpRelaxedCategorical` pushed through ``exp``.)

    Example::

        >>> d = RelaxedOneHotCategorical(gradient.tensor(0.5), probs=gradient.tensor([0.2, 0.8]))
        >>> d.rsample().sum()
        tensor(1.)
    """
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)
