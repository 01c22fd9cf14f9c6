"""What the location-scale families on the real line share: Normal, Laplace, Cauchy, Gumbel."""

from __future__ import annotations

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all


class LocationScale(Distribution):
    """A distribution of ``loc + scale * Z`` for a fixed standard law of ``Z`` on the real line:
    the parameters ``loc`` (real) and ``scale`` (positive), broadcast to one batch shape, with
    the mode at ``loc``. Subclasses give the rest (moments, ``rsample``, ``log_prob`` ...).

    Example: ``Normal(gradient.zeros(3), 1.0).batch_shape`` is ``Size([3])``.
    """
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mode(self):
        return self.loc
