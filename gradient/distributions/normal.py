"""The normal distribution."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from .location_scale import LocationScale


class Normal(LocationScale):
    """The normal (Gaussian) distribution with mean ``loc`` and standard deviation ``scale``.

    ``rsample`` is reparameterized (``loc + scale * eps`` with ``eps ~ N(0, 1)``).

    Example::

        >>> d = Normal(gradient.tensor([0.0, 1.0]), gradient.tensor([1.0, 2.0]))
        >>> d.log_prob(gradient.tensor([0.0, 0.0]))
        tensor([-0.9189, -1.6433])
    """
    @property
    def mean(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale ** 2

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = _creation.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -((value - self.loc) ** 2) / (2 * self.scale ** 2) - self.scale.log() \
            - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + ((value - self.loc) / (self.scale * math.sqrt(2))).erf())

    def icdf(self, value):
        return self.loc + self.scale * (2 * value - 1).erfinv() * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()
