"""The gamma distribution."""

from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..dtypes import finfo
from ..errors import AutogradError
from ..ops import special as _special
from ..ops.creation import tensor as _tensor
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, from_host, host_array, host_generator


def standard_gamma(concentration):
    """Draws from Gamma(concentration, 1), one per element of ``concentration``, made on
    the host by the default generator's NumPy state (no backend has a gamma primitive). Values
    are kept at least the dtype's smallest normal number, as PyTorch does.

    Reparameterized: the draw has a gradient with respect to ``concentration``, the implicit
    one (Figurnov et al., 2018): holding the draw's quantile ``u = P(alpha, x)`` fixed,
    ``dx/dalpha = -(dP/dalpha) / (dP/dx)``; see :func:`standard_gamma_grad`.
    """
    return _StandardGamma.apply(concentration)


class _StandardGamma(Function):
    @staticmethod
    def forward(ctx, concentration):
        draws = host_generator().standard_gamma(host_array(concentration))
        out = from_host(draws, concentration).clamp(min=finfo(concentration.dtype).tiny)
        ctx.save_for_backward(concentration, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        concentration, out = ctx.saved_tensors
        return grad * _ImplicitGrad.apply(out, concentration)


class _ImplicitGrad(Function):
    """:func:`standard_gamma_grad` as an op of the draws and the concentration: not
    differentiable again, and saying so (as PyTorch's ``_standard_gamma_grad``) rather than
    giving a second derivative without its dependence on the concentration."""

    @staticmethod
    def forward(ctx, draws, concentration):
        return from_host(standard_gamma_grad(host_array(draws), host_array(concentration)), draws)

    @staticmethod
    def backward(ctx, grad):
        raise AutogradError("the derivative of a gamma draw's implicit gradient (a second "
                            "derivative through Gamma, Beta, Dirichlet, Chi2, StudentT or "
                            "FisherSnedecor rsample) is not implemented, as in PyTorch")


def standard_gamma_grad(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``dx/dalpha`` of a Gamma(alpha, 1) draw ``x`` at a fixed quantile (float64 NumPy arrays
    that broadcast), to ~1e-10 relative (1e-9 beyond ``alpha = 1e4``; checked against mpmath;
    PyTorch's approximation of the same derivative is within ~1e-4).

    With the regularized lower incomplete gamma function written as its series
    ``P(alpha, x) = x^alpha e^-x sum_n x^n / Gamma(alpha + n + 1)``, whose terms differentiate
    to ``term_n (log x - digamma(alpha + n + 1))``, and the density ``dP/dx = x^(alpha-1) e^-x /
    Gamma(alpha)``, the ratio is ``-(x / alpha) sum_n r_n (log x - digamma(alpha + n + 1))``
    with ``r_0 = 1`` and ``r_n = r_(n-1) x / (alpha + n)``: no gamma function, and one digamma
    per element (the rest by its recurrence). The series needs about ``x - alpha + 10
    sqrt(alpha)`` terms, so from ``alpha = 1e6`` on, where the Wilson-Hilferty cube-root normal
    approximation is the more accurate, the derivative of that is used.
    """
    x, alpha = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(alpha, np.float64))
    out = np.empty(x.shape)
    large = alpha >= 1e6
    out[large] = _wilson_hilferty_grad(x[large], alpha[large])
    x, alpha = x[~large], alpha[~large]
    log_x = np.log(x)
    psi = host_array(_special.digamma(_tensor(alpha + 1.0)))
    ratio, total = np.ones_like(x), np.zeros_like(x)
    active = np.ones(x.shape, bool)
    n = 0
    while active.any():
        total[active] += ratio[active] * (log_x[active] - psi[active])
        n += 1
        ratio = ratio * x / (alpha + n)
        psi = psi + 1.0 / (alpha + n)
        # past the largest term the terms fall geometrically: stop once they are negligible
        negligible = ratio * (1.0 + np.abs(log_x - psi)) <= 1e-17 * np.abs(total)
        active &= ~((n > x - alpha) & negligible)
    out[~large] = -(x / alpha) * total
    return out


def _wilson_hilferty_grad(x, alpha):
    """``dx/dalpha`` at fixed ``z`` of ``x = alpha (1 - 1/(9 alpha) + z / (3 sqrt(alpha)))^3``."""
    w = np.cbrt(x / alpha)
    z = (w - 1.0 + 1.0 / (9.0 * alpha)) * 3.0 * np.sqrt(alpha)
    dw = 1.0 / (9.0 * alpha ** 2) - z / (6.0 * alpha ** 1.5)
    return w ** 3 + 3.0 * alpha * w ** 2 * dw


class Gamma(Distribution):
    """The gamma distribution with shape ``concentration`` and ``rate`` (mean ``c / rate``).

    Sampling is reparameterized (``rsample``): the draw has the implicit gradient of
    :func:`standard_gamma` for the concentration, as PyTorch's. ``cdf`` is the regularized
    incomplete gamma function ``P(concentration, rate * value)``.

    Example: ``Gamma(2.0, 1.0).log_prob(gradient.tensor(1.0))`` is ``tensor(-1.)``.
    """
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

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

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        draws = standard_gamma(self.concentration.expand(*shape) if shape else self.concentration)
        draws = draws / self.rate
        return draws.clamp(min=finfo(draws.dtype).tiny)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return _special.igamma(self.concentration, self.rate * value)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, rate = self.concentration, self.rate
        return _special.xlogy(c, rate) + _special.xlogy(c - 1, value) - rate * value - c.lgamma()

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1 - c) * c.digamma()
