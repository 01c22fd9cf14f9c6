"""The von Mises distribution: a normal distribution wrapped onto the circle."""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..ops import special as _special
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, from_host, host_array, host_generator


def _log_i0(x):
    """``log I0(x)`` for x >= 0 without overflow: ``log(i0e(x)) + x``."""
    return _special.i0e(x).log() + x


class VonMises(Distribution):
    """The von Mises distribution on angles in ``[-pi, pi)``: density proportional to
    ``exp(concentration * cos(x - loc))``.

    Sampling is not reparameterized and draws on the host (NumPy's von Mises sampler, from
    gradient's default generator). Differs from PyTorch: ``I0``/``I1`` are SciPy's (PyTorch uses
    polynomial approximations, so values agree to about 1e-7), and ``entropy`` is provided.

    Example::

        >>> VonMises(0.0, 1.0).log_prob(gradient.tensor(0.0))
        tensor(-1.0738)
    """
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.interval(-math.pi, math.pi)
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        # the circular variance 1 - I1(k) / I0(k) (the exp(-k) factors of i1e and i0e cancel)
        k = self.concentration
        return 1 - _special.i1e(k) / _special.i0e(k)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * (value - self.loc).cos() - math.log(2 * math.pi) - _log_i0(k)

    def entropy(self):
        k = self.concentration
        return math.log(2 * math.pi) + _log_i0(k) - k * _special.i1e(k) / _special.i0e(k)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            kappa = host_array(self.concentration.expand(*shape) if shape else self.concentration)
            draws = from_host(host_generator().vonmises(0.0, kappa), self.loc)
            # centred draws in [-pi, pi], moved to loc and wrapped back into [-pi, pi)
            return (draws + self.loc + math.pi) % (2 * math.pi) - math.pi
