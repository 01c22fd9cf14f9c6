"""The logistic-normal distribution."""

from __future__ import annotations

from . import constraints
from .independent import Independent
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms import StickBreakingTransform


class LogisticNormal(TransformedDistribution):
    """Points of the simplex: a Gaussian vector of K (``loc``, ``scale``) stick-broken into
    K + 1 entries summing to 1 (:class:`~.transforms.StickBreakingTransform`); reparameterized.
    A Dirichlet-like prior whose samples carry gradients, as in topic models' encoders.

    Example: ``LogisticNormal(gradient.zeros(3), gradient.ones(3)).rsample()`` has 4 entries.
    """
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex

    def __init__(self, loc, scale, validate_args=None):
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand((1,))
        super().__init__(Independent(base, 1), StickBreakingTransform(),
                         validate_args=validate_args)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale
