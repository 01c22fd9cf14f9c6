"""Distributions of transformed draws: ``y = t_n(...t_1(x))`` with ``x`` from a base distribution."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .distribution import Distribution
from .transforms import Transform
from .utils import sum_rightmost
from ..errors import ArgumentValueError, UnsupportedError


class TransformedDistribution(Distribution):
    """The law of ``transforms`` applied in order to draws of ``base_distribution``.

    ``log_prob(y)`` is the base's at ``x = inverse(y)`` minus the transforms' log-Jacobians;
    ``rsample`` is reparameterized when the base's is; ``cdf``/``icdf`` go through the base's for
    monotone transforms. A transform may change the event's shape (StickBreaking: K reals to K
    + 1 simplex entries): the shapes follow its ``forward_shape``.

    Example::

        >>> from gradient.distributions import Normal, TransformedDistribution, ExpTransform
        >>> d = TransformedDistribution(Normal(0.0, 1.0), [ExpTransform()])   # a log-normal
        >>> d.log_prob(gradient.tensor(1.0))
        tensor(-0.9189)
    """
    arg_constraints = {}

    def __init__(self, base_distribution, transforms, validate_args=None):
        if isinstance(transforms, Transform):
            transforms = [transforms]
        if not isinstance(transforms, (list, tuple)) or not all(
                isinstance(t, Transform) for t in transforms):
            raise ArgumentValueError(
                "TransformedDistribution: expected a Transform or a list of them")
        self.base_dist = base_distribution
        self.transforms = list(transforms)
        base_event = len(base_distribution.event_shape)
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        event_dim = base_event
        for t in self.transforms:
            shape = t.forward_shape(shape)
            event_dim = max(event_dim, t.event_dim)
        cut = len(shape) - event_dim
        super().__init__(shape[:cut], shape[cut:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = _instance if _instance is not None else type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.base_dist = self.base_dist.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    @property
    def support(self):
        return self.transforms[-1].codomain if self.transforms else self.base_dist.support

    def sample(self, sample_shape=()):
        with no_grad():
            x = self.base_dist.sample(sample_shape)
            for t in self.transforms:
                x = t(x)
            return x

    def rsample(self, sample_shape=()):
        x = self.base_dist.rsample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        event_dim = len(self.event_shape)
        log_prob, y = 0.0, value
        for t in reversed(self.transforms):
            x = t.inv(y)
            log_prob = log_prob - sum_rightmost(t.log_abs_det_jacobian(x, y), event_dim - t.event_dim)
            y = x
        return log_prob + self.base_dist.log_prob(y)

    def _monotone_sign(self):
        sign = 1
        for t in self.transforms:
            sign = sign * t.sign
        if isinstance(sign, Tensor):
            raise UnsupportedError("cdf/icdf need transforms of one known direction (number scales)")
        return sign

    def cdf(self, value):
        sign = self._monotone_sign()
        for t in reversed(self.transforms):
            value = t.inv(value)
        value = self.base_dist.cdf(value)
        return value if sign == 1 else 1 - value

    def icdf(self, value):
        if self._monotone_sign() != 1:
            value = 1 - value
        value = self.base_dist.icdf(value)
        for t in self.transforms:
            value = t(value)
        return value
