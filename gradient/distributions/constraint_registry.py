"""``biject_to`` and ``transform_to``: from a constraint to a transform that maps the real
numbers onto the set it describes, as ``torch.distributions.constraint_registry``.

Optimizing a constrained parameter (a scale, a probability vector, a covariance) is then
optimizing an unconstrained tensor: ``scale = transform_to(constraints.positive)(raw)``.
``biject_to`` gives bijections (for change of variables: :class:`StickBreakingTransform` onto
the simplex); ``transform_to`` may give simpler maps that are not (``SoftmaxTransform``).
``register`` adds a constraint type, as PyTorch's registries do.

Example::

    >>> raw = gradient.zeros(3, requires_grad=True)
    >>> probs = transform_to(constraints.simplex)(raw)      # tensor([0.3333, 0.3333, 0.3333])
    >>> scale = biject_to(constraints.interval(0.0, 2.0))(gradient.tensor(0.0))   # tensor(1.)
"""

from __future__ import annotations

from ..tensor import Tensor
from . import constraints
from . import transforms as T
from ..errors import UnsupportedError

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]


class ConstraintRegistry:
    """A map from constraint types (or objects) to functions of a constraint making a
    transform; call it with a constraint to get one."""

    def __init__(self):
        self._registry = {}

    def register(self, constraint, factory=None):
        """``registry.register(constraints.positive, lambda c: ExpTransform())``, or as a
        decorator: ``@registry.register(MyConstraint)``."""
        if factory is None:
            return lambda f: self.register(constraint, f)
        kind = constraint if isinstance(constraint, type) else type(constraint)
        self._registry[kind] = factory
        return factory

    def __call__(self, constraint) -> T.Transform:
        for kind in type(constraint).__mro__:
            if kind in self._registry:
                return self._registry[kind](constraint)
        raise UnsupportedError(f"cannot transform {type(constraint).__name__} constraints: "
                               f"register a transform for it with register()")


biject_to = ConstraintRegistry()
transform_to = ConstraintRegistry()


def _is_constant(value, number: float) -> bool:
    return not isinstance(value, Tensor) and value == number


def _to_greater_than(constraint):
    return T.ComposeTransform([T.ExpTransform(), T.AffineTransform(constraint.lower_bound, 1)])


def _to_less_than(constraint):
    return T.ComposeTransform([T.ExpTransform(), T.AffineTransform(constraint.upper_bound, -1)])


def _to_interval(constraint):
    low, high = constraint.lower_bound, constraint.upper_bound
    if _is_constant(low, 0) and _is_constant(high, 1):
        return T.SigmoidTransform()
    return T.ComposeTransform([T.SigmoidTransform(), T.AffineTransform(low, high - low)])


def _to_independent(registry):
    def factory(constraint):
        base = registry(constraint.base_constraint)
        return T.IndependentTransform(base, constraint.reinterpreted_batch_ndims)
    return factory


for _registry in (biject_to, transform_to):
    _registry.register(constraints.real, lambda c: T.identity_transform)
    _registry.register(constraints.independent, _to_independent(_registry))
    _registry.register(constraints.greater_than, _to_greater_than)
    _registry.register(constraints.greater_than_eq, _to_greater_than)
    _registry.register(constraints.less_than, _to_less_than)
    _registry.register(constraints.interval, _to_interval)
    _registry.register(constraints.half_open_interval, _to_interval)
biject_to.register(constraints.simplex, lambda c: T.StickBreakingTransform())
transform_to.register(constraints.simplex, lambda c: T.SoftmaxTransform())
# (onto these sets PyTorch has maps, not bijections: transform_to only)
transform_to.register(constraints.lower_cholesky, lambda c: T.LowerCholeskyTransform())
transform_to.register(constraints.positive_definite, lambda c: T.PositiveDefiniteTransform())
