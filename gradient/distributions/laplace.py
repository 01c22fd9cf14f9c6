"""The Laplace (double exponential) distribution."""

from __future__ import annotations

from ..dtypes import finfo
from ..ops import creation as _creation
from .location_scale import LocationScale


class Laplace(LocationScale):
    """The Laplace distribution with location ``loc`` and scale ``scale``; reparameterized
    ``rsample`` (inverse cdf of a uniform draw).

    Example: ``Laplace(0.0, 1.0).log_prob(gradient.tensor(0.0))`` is ``tensor(-0.6931)``.
    """
    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return 2 * self.scale ** 2

    @property
    def stddev(self):
        return 2 ** 0.5 * self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = _creation.rand(*shape, dtype=self.loc.dtype, device=self.loc.device)
        # u in (-1, 1): a draw of exactly -1 would give log(0)
        u = (u * 2 - 1).clamp(min=finfo(self.loc.dtype).eps - 1)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = value - self.loc
        return 0.5 - 0.5 * z.sign() * (-z.abs() / self.scale).expm1()

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self):
        return 1 + (2 * self.scale).log()
