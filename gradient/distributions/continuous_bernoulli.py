"""The continuous Bernoulli distribution (Loaiza-Ganem and Cunningham, 2019)."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops import elementwise as _ew
from . import constraints
from .distribution import Distribution
from .utils import (store_probs_or_logits, clamp_probs, lazy_property, logits_to_probs, probs_to_logits,
                    softplus)


class ContinuousBernoulli(Distribution):
    """The density ``C(p) p^x (1 - p)^(1 - x)`` on ``[0, 1]``, with ``probs`` ``p`` (or
    ``logits``) and the normalizing constant ``C(p)``: a Bernoulli likelihood made a proper
    density for values in [0, 1] (pixel intensities). ``rsample`` is reparameterized.

    ``C(p)``, the mean and the variance have removable singularities at ``p = 1/2``: within
    ``lims`` of it they are evaluated by their Taylor expansions (as PyTorch does).

    Example::

        >>> ContinuousBernoulli(probs=gradient.tensor(0.5)).log_prob(gradient.tensor(0.3))
        tensor(0.)
    """
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        shape = store_probs_or_logits(self, probs, logits).shape
        self._lims = lims
        super().__init__(shape, validate_args=validate_args)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        # probabilities near 1/2 replaced by a safe one, so the exact formulas (used only away
        # from 1/2) do not produce nan values or gradients there
        return _ew.where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _log_normalizer(self):
        p = self._cut_probs()
        below, above = _ew.where(p <= 0.5, p, 0.0), _ew.where(p >= 0.5, p, 1.0)
        exact = ((-p).log1p() - p.log()).abs().log() - _ew.where(
            p <= 0.5, (-2.0 * below).log1p(), (2.0 * above - 1.0).log())
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return _ew.where(self._outside_unstable_region(), exact, taylor)

    @property
    def mean(self):
        p = self._cut_probs()
        exact = p / (2.0 * p - 1.0) + 1.0 / ((-p).log1p() - p.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x ** 2) * x
        return _ew.where(self._outside_unstable_region(), exact, taylor)

    @property
    def variance(self):
        p = self._cut_probs()
        exact = p * (p - 1.0) / (1.0 - 2.0 * p) ** 2 + 1.0 / ((-p).log1p() - p.log()) ** 2
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return _ew.where(self._outside_unstable_region(), exact, taylor)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = _creation.rand(*shape, dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        # x log p + (1 - x) log(1 - p) written with logits: x * logits - softplus(logits)
        return value * self.logits - softplus(self.logits) + self._log_normalizer()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        p = self._cut_probs()
        exact = (p ** value * (1.0 - p) ** (1.0 - value) + p - 1.0) / (2.0 * p - 1.0)
        inside = _ew.where(self._outside_unstable_region(), exact, value)
        return _ew.where(value <= 0.0, 0.0, _ew.where(value >= 1.0, 1.0, inside))

    def icdf(self, value):
        p = self._cut_probs()
        exact = ((-p + value * (2.0 * p - 1.0)).log1p() - (-p).log1p()) / (p.log() - (-p).log1p())
        return _ew.where(self._outside_unstable_region(), exact, value)

    def entropy(self):
        log_p0, log_p1 = (-self.probs).log1p(), self.probs.log()
        return self.mean * (log_p0 - log_p1) - self._log_normalizer() - log_p0
