"""Constraints: the sets a distribution's parameters and samples live in (``torch.distributions.constraints``).

A constraint's :meth:`Constraint.check` gives a bool tensor saying, per batch element, whether a
value lies in the set; ``event_dim`` is how many rightmost dimensions form one element (1 for
a simplex). Distributions use them for ``validate_args`` and to state their ``support``.

Example::

    >>> from gradient.distributions import constraints
    >>> constraints.positive.check(gradient.tensor([1.0, -1.0]))
    tensor([ True, False])
    >>> constraints.interval(0.0, 2.0).check(gradient.tensor(3.0))
    tensor(False)
"""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import elementwise as _ew
from ..ops import reduce as _reduce
from ..errors import ArgumentValueError

__all__ = [
    "Constraint", "boolean", "dependent", "dependent_property", "greater_than", "greater_than_eq",
    "half_open_interval", "independent", "integer_interval", "interval", "is_dependent",
    "less_than", "lower_cholesky", "multinomial", "nonnegative", "nonnegative_integer", "positive",
    "positive_definite", "positive_integer", "real", "real_vector", "simplex", "unit_interval",
]


class Constraint:
    """A set of values; subclasses define :meth:`check`."""
    is_discrete = False
    event_dim = 0

    def check(self, value):
        """A bool tensor of shape ``value.shape[:value.ndim - event_dim]``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A placeholder for constraints that depend on other parameters (not checked)."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        self._is_discrete, self._event_dim = is_discrete, event_dim

    @property
    def is_discrete(self):
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self):
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value):
        raise ArgumentValueError(
            "cannot check a dependent constraint: its bounds come from the parameters")


def is_dependent(constraint) -> bool:
    """Whether ``constraint`` is the ``dependent`` placeholder (skipped by argument validation)."""
    return isinstance(constraint, _Dependent)


class dependent_property(property, _Dependent):
    """A property of a distribution that returns its (parameter-dependent) support, and reads as
    ``dependent`` on the class: ``@constraints.dependent_property(is_discrete=False, event_dim=0)``.
    """

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return dependent_property(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value % 1 == 0) & (self.lower_bound <= value) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound)

    def __repr__(self) -> str:
        return f"IntegerGreaterThan(lower_bound={self.lower_bound})"


class _Real(Constraint):
    def check(self, value):
        return value == value  # False only for nan


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return self.lower_bound < value

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return self.lower_bound <= value

    def __repr__(self) -> str:
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (self.lower_bound <= value) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        return (self.lower_bound <= value) & (value < self.upper_bound)

    def __repr__(self) -> str:
        return f"HalfOpenInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Simplex(Constraint):
    """Nonnegative vectors along the last dimension summing to 1 (to 1e-6)."""
    event_dim = 1

    def check(self, value):
        nonnegative_ = _reduce.all(value >= 0, dim=-1)
        return nonnegative_ & (_ew.abs(_reduce.sum(value, -1) - 1) < 1e-6)


class _LowerCholesky(Constraint):
    """Lower-triangular square matrices with a positive diagonal (Cholesky factors)."""
    event_dim = 2

    def check(self, value):
        from ..ops.shape import diagonal, tril
        lower = _reduce.all(_reduce.all(tril(value) == value, dim=-1), dim=-1)
        return lower & _reduce.all(diagonal(value, 0, -2, -1) > 0, dim=-1)


class _PositiveDefinite(Constraint):
    """Symmetric positive-definite square matrices (those with a Cholesky factor)."""
    event_dim = 2

    def check(self, value):
        from ..ops.linalg_decompositions import cholesky_ex
        symmetric = _reduce.all(_reduce.all(_ew.abs(value - value.mT) <= 1e-6 * (1 + _ew.abs(value)),
                                            dim=-1), dim=-1)
        return symmetric & (cholesky_ex(value).info == 0)


class _Multinomial(Constraint):
    """Vectors of nonnegative integers (counts) that sum to at most ``upper_bound``."""
    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        whole = _ew.floor(value) == value
        return _reduce.all((value >= 0) & whole, dim=-1) & \
            (_reduce.sum(value, -1) <= self.upper_bound)


class independent(Constraint):
    """``base_constraint`` over ``reinterpreted_batch_ndims`` more rightmost dimensions."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims: int):
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        for _ in range(self.reinterpreted_batch_ndims):
            result = _reduce.all(result, dim=-1)
        return result


def _checked(constraint, value):
    """``constraint.check(value)`` without recording a graph."""
    with no_grad():
        return constraint.check(value)


dependent = _Dependent()
boolean = _Boolean()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_cholesky = _LowerCholesky()
positive_definite = _PositiveDefinite()
multinomial = _Multinomial
