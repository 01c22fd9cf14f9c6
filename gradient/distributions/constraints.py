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
    "Constraint", "boolean", "cat", "corr_cholesky", "dependent", "dependent_property",
    "greater_than", "greater_than_eq", "half_open_interval", "independent", "integer_interval",
    "interval", "is_dependent", "less_than", "lower_cholesky", "lower_triangular", "multinomial",
    "nonnegative", "nonnegative_integer", "one_hot", "positive", "positive_definite",
    "positive_integer", "positive_semidefinite", "real", "real_vector", "simplex", "square",
    "stack", "symmetric", "unit_interval",
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


class _LowerTriangular(Constraint):
    """Lower-triangular square matrices."""
    event_dim = 2

    def check(self, value):
        from ..ops.shape import tril
        return _reduce.all(_reduce.all(tril(value) == value, dim=-1), dim=-1)


class _CorrCholesky(Constraint):
    """Cholesky factors of correlation matrices: lower Cholesky factors whose rows have unit
    length (to ``10 * n * eps`` of their dtype)."""
    event_dim = 2

    def check(self, value):
        from ..dtypes import finfo
        tol = finfo(value.dtype).eps * value.shape[-1] * 10
        rows = value.detach()
        row_norm = _ew.sqrt(_reduce.sum(rows * rows, -1))
        unit_rows = _reduce.all(_ew.abs(row_norm - 1.0) <= tol, dim=-1)
        return lower_cholesky.check(value) & unit_rows


class _Square(Constraint):
    """Square matrices (any values)."""
    event_dim = 2

    def check(self, value):
        from ..ops.creation import full
        from ..dtypes import bool_
        return full(tuple(value.shape[:-2]), value.shape[-2] == value.shape[-1], dtype=bool_,
                    device=value.device)


class _Symmetric(_Square):
    """Symmetric square matrices (to ``isclose``'s tolerance, ``atol=1e-6``)."""

    def check(self, value):
        square = super().check(value)
        if not square.all():
            return square
        close = _ew.isclose(value, value.mT, atol=1e-6)
        return _reduce.all(_reduce.all(close, dim=-2), dim=-1)


class _PositiveSemidefinite(_Symmetric):
    """Symmetric matrices whose eigenvalues are all nonnegative."""

    def check(self, value):
        from ..ops.linalg_decompositions import eigvalsh
        symmetric = super().check(value)
        if not symmetric.all():
            return symmetric
        return _reduce.all(eigvalsh(value) >= 0, dim=-1)


class _OneHot(Constraint):
    """Vectors of zeros with a single one (a category as a one-hot vector)."""
    is_discrete = True
    event_dim = 1

    def check(self, value):
        binary = _reduce.all((value == 0) | (value == 1), dim=-1)
        return binary & (_reduce.sum(value, -1) == 1)


class cat(Constraint):
    """Constraints ``cseq`` on consecutive slices of ``dim``: slice i holds ``lengths[i]``
    entries (1 each by default)."""

    def __init__(self, cseq, dim: int = 0, lengths=None):
        self.cseq = list(cseq)
        self.lengths = [1] * len(self.cseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.cseq):
            raise ArgumentValueError(f"constraints.cat: {len(self.cseq)} constraints and "
                                     f"{len(self.lengths)} lengths; give one length each")
        self.dim = dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        from ..ops.shape import cat as _cat, narrow
        if not -value.ndim <= self.dim < value.ndim:
            raise ArgumentValueError(f"constraints.cat: dim {self.dim} is out of range for a "
                                     f"value of {value.ndim} dimensions")
        checks, start = [], 0
        for constraint, length in zip(self.cseq, self.lengths):
            checks.append(constraint.check(narrow(value, self.dim, start, length)))
            start += length
        return _cat(checks, self.dim)


class stack(Constraint):
    """Constraint ``cseq[i]`` on the value's entry i along ``dim`` (as many as constraints)."""

    def __init__(self, cseq, dim: int = 0):
        self.cseq, self.dim = list(cseq), dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        from ..ops.index import select
        from ..ops.shape import stack as _stack
        if not -value.ndim <= self.dim < value.ndim or value.shape[self.dim] != len(self.cseq):
            raise ArgumentValueError(f"constraints.stack: expected {len(self.cseq)} entries "
                                     f"along dim {self.dim}, got a value of shape "
                                     f"{tuple(value.shape)}")
        return _stack([c.check(select(value, self.dim, i)) for i, c in enumerate(self.cseq)],
                      self.dim)


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
lower_triangular = _LowerTriangular()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
one_hot = _OneHot()
multinomial = _Multinomial
