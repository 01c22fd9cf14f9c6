"""The gamma distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..dtypes import finfo
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, from_host, host_array, host_generator


def standard_gamma(concentration, sample_shape=()):
    """Draws from Gamma(concentration, 1) of shape ``sample_shape + concentration.shape``, made on
    the host by the default generator's NumPy state (no backend has a gamma primitive); no
    gradient. Values are kept at least the dtype's smallest normal number, as PyTorch does."""
    alpha = host_array(concentration)
    draws = host_generator().standard_gamma(alpha, size=tuple(sample_shape) + alpha.shape)
    out = from_host(draws, concentration)
    return out.clamp(min=finfo(out.dtype).tiny)


class Gamma(Distribution):
    """The gamma distribution with shape ``concentration`` and ``rate`` (mean ``c / rate``).

    Sampling is *not* reparameterized (``has_rsample = False``: PyTorch's ``rsample`` has
    implicit gradients for the concentration, gradient's has none); ``cdf`` is not provided
    (it needs the regularized incomplete gamma function).

    Example: ``Gamma(2.0, 1.0).log_prob(gradient.tensor(1.0))`` is ``tensor(-1.)``.
    """
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = False

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate ** 2

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with no_grad():
            draws = standard_gamma(self.concentration.expand(*shape) if shape else self.concentration)
            return (draws / self.rate).clamp(min=finfo(draws.dtype).tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, rate = self.concentration, self.rate
        return _special.xlogy(c, rate) + _special.xlogy(c - 1, value) - rate * value - c.lgamma()

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1 - c) * c.digamma()
