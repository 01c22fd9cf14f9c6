"""The Pareto (type I) distribution."""

from __future__ import annotations

from ..ops import creation as _creation
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, clamp_probs


class Pareto(Distribution):
    """The Pareto distribution with minimum ``scale`` and tail index ``alpha``:
    ``cdf(x) = 1 - (scale / x)^alpha`` on ``x >= scale``. The mean is infinite for
    ``alpha <= 1`` and the variance for ``alpha <= 2``. ``rsample`` is reparameterized.

    Example::

        >>> Pareto(1.0, 3.0).mean
        tensor(1.5000)
    """
    arg_constraints = {"scale": constraints.positive, "alpha": constraints.positive}
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)      # a = 1 divides by zero: inf, as in PyTorch
        return a * self.scale / (a - 1)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)
        return self.scale ** 2 * a / ((a - 1) ** 2 * (a - 2))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = clamp_probs(_creation.rand(*shape, dtype=self.scale.dtype, device=self.scale.device))
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.alpha.log() + self.alpha * self.scale.log() - (self.alpha + 1) * value.log()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - (self.scale / value) ** self.alpha

    def icdf(self, value):
        return self.scale * ((-value).log1p() * -self.alpha.reciprocal()).exp()

    def entropy(self):
        return (self.scale / self.alpha).log() + 1 + self.alpha.reciprocal()

