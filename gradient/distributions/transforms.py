"""Bijective transforms for :class:`~gradient.distributions.TransformedDistribution`.

Each transform maps ``x`` to ``y = t(x)``, inverts with ``t.inv(y)`` and gives
``log_abs_det_jacobian(x, y)``, the log of ``|dy/dx|`` elementwise (the transforms act on
scalars, ``event_dim`` 0, except an AffineTransform given ``event_dim`` and the
StickBreakingTransform, which maps vectors of K reals to points of the K-simplex, K + 1
entries: ``forward_shape``/``inverse_shape`` say how a shape changes). ``sign`` is +1 for
increasing maps and -1 for decreasing ones (cdf and icdf use it).

``cache_size=1`` (as PyTorch's) keeps the last pair ``(x, y)``: ``t.inv(y)`` of the very
``y`` that ``t(x)`` gave returns that ``x`` instead of computing the inverse. A squashed
Gaussian policy (Soft Actor-Critic: ``TransformedDistribution(Normal(mu, sigma),
[TanhTransform(cache_size=1)])``) then scores its own samples exactly, where ``atanh`` of a
sample rounded to +-1 would be infinite.

Example::

    >>> t = AffineTransform(loc=1.0, scale=2.0)
    >>> t(gradient.tensor(3.0)), t.inv(gradient.tensor(7.0))
    (tensor(7.), tensor(3.))
"""

from __future__ import annotations

import math

from ..dtypes import finfo
from ..ops import creation as _creation
from ..ops import nn as _nn
from ..ops import shape as _shape
from ..ops import special as _special
from ..ops.linalg_decompositions import linalg_cholesky
from ..ops.reduce import sum as _sum
from ..tensor import Tensor
from . import constraints
from .utils import clamp_probs, softplus, sum_rightmost
from ..errors import ArgumentValueError

__all__ = ["Transform", "ExpTransform", "AffineTransform", "SigmoidTransform", "TanhTransform",
           "ComposeTransform", "PowerTransform", "SoftplusTransform", "AbsTransform",
           "StickBreakingTransform", "IndependentTransform", "ReshapeTransform",
           "SoftmaxTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
           "identity_transform"]


class Transform:
    """A bijection with its inverse and the log-determinant of its Jacobian; ``cache_size``
    (0 or 1): see the module's doc."""
    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = 1
    event_dim = 0
    _cache_size = 0
    _cached = (None, None)

    def __init__(self, cache_size: int = 0):
        if cache_size not in (0, 1):
            raise ArgumentValueError(f"{type(self).__name__}: cache_size must be 0 or 1, got "
                                     f"{cache_size!r}")
        self._cache_size = cache_size

    @property
    def inv(self) -> "Transform":
        """The inverse transform: ``t.inv(t(x)) == x``."""
        return _InverseTransform(self)

    def __call__(self, x):
        if not self._cache_size:
            return self._call(x)
        if x is self._cached[0]:
            return self._cached[1]
        y = self._call(x)
        self._cached = (x, y)
        return y

    def _inverse_call(self, y):
        """``inv(y)``, the cached ``x`` where ``y`` is the last result."""
        if not self._cache_size:
            return self._inverse(y)
        if y is self._cached[1]:
            return self._cached[0]
        x = self._inverse(y)
        self._cached = (x, y)
        return x

    def _call(self, x):
        raise NotImplementedError

    def _inverse(self, y):
        raise NotImplementedError

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError

    def forward_shape(self, shape) -> tuple:
        """The shape of ``t(x)`` for ``x`` of ``shape`` (the same, but for shape-changing maps)."""
        return tuple(shape)

    def inverse_shape(self, shape) -> tuple:
        """The shape of ``t.inv(y)`` for ``y`` of ``shape``."""
        return tuple(shape)

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


def _sign_of(value):
    """The sign of a number (an int) or of a tensor's elements (a tensor): whether a
    transform scaling or raising by ``value`` increases or decreases."""
    if isinstance(value, Tensor):
        return value.sign()
    return 1 if value > 0 else -1 if value < 0 else 0


class _InverseTransform(Transform):
    def __init__(self, transform: Transform):
        self._inv = transform
        self.domain, self.codomain = transform.codomain, transform.domain
        self.sign, self.event_dim = transform.sign, transform.event_dim

    @property
    def inv(self):
        return self._inv

    def __call__(self, x):
        return self._inv._inverse_call(x)

    def _inverse_call(self, y):
        return self._inv(y)

    def _call(self, x):
        return self._inv._inverse(x)

    def _inverse(self, y):
        return self._inv._call(y)

    def log_abs_det_jacobian(self, x, y):
        return -self._inv.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape) -> tuple:
        return self._inv.inverse_shape(shape)

    def inverse_shape(self, shape) -> tuple:
        return self._inv.forward_shape(shape)


class ExpTransform(Transform):
    """``y = exp(x)``, onto the positive numbers."""
    codomain = constraints.positive

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class AffineTransform(Transform):
    """``y = loc + scale * x`` (numbers or tensors), over ``event_dim`` rightmost dimensions."""

    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0):
        super().__init__(cache_size)
        self.loc, self.scale, self.event_dim = loc, scale, event_dim

    @property
    def sign(self):
        return _sign_of(self.scale)

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        if isinstance(self.scale, Tensor):
            result = self.scale.abs().log().expand(*x.shape) if x.shape != self.scale.shape \
                else self.scale.abs().log()
        else:
            result = x * 0 + math.log(abs(self.scale))
        return sum_rightmost(result, self.event_dim)


class PowerTransform(Transform):
    """``y = x ** exponent`` (a number or a tensor) on the positive numbers."""
    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent, cache_size: int = 0):
        super().__init__(cache_size)
        self.exponent = exponent

    @property
    def sign(self):
        return _sign_of(self.exponent)

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()


class SoftplusTransform(Transform):
    """``y = log(1 + exp(x))``, onto the positive numbers."""
    codomain = constraints.positive

    def _call(self, x):
        return softplus(x)

    def _inverse(self, y):
        return (-y).expm1().neg().log() + y

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x)


class AbsTransform(Transform):
    """``y = |x|``: not a bijection (its "inverse" gives ``y`` back, the positive preimage)."""
    codomain = constraints.positive
    bijective = False

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class SigmoidTransform(Transform):
    """``y = sigmoid(x)``, onto (0, 1); the inverse clamps ``y`` inside (0, 1) first."""
    codomain = constraints.unit_interval

    def _call(self, x):
        return clamp_probs(x.sigmoid())

    def _inverse(self, y):
        return _special.logit(clamp_probs(y))

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x) - softplus(x)


class TanhTransform(Transform):
    """``y = tanh(x)``, onto (-1, 1)."""
    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return _special.atanh(y)

    def log_abs_det_jacobian(self, x, y):
        # log(1 - tanh(x)^2) written without cancellation: 2 (log 2 - x - softplus(-2x))
        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))


class ComposeTransform(Transform):
    """The ``parts`` applied in order: ``y = parts[-1](... parts[0](x))``; its
    log-determinant is the sum of theirs at the intermediate values."""

    def __init__(self, parts, cache_size: int = 0):
        super().__init__(cache_size)
        self.parts = list(parts)
        if self.parts:
            self.domain, self.codomain = self.parts[0].domain, self.parts[-1].codomain
        self.event_dim = max((t.event_dim for t in self.parts), default=0)

    @property
    def sign(self):
        sign = 1
        for t in self.parts:
            sign = sign * t.sign
        return sign

    def _call(self, x):
        for t in self.parts:
            x = t(x)
        return x

    def forward_shape(self, shape) -> tuple:
        for t in self.parts:
            shape = t.forward_shape(shape)
        return tuple(shape)

    def inverse_shape(self, shape) -> tuple:
        for t in reversed(self.parts):
            shape = t.inverse_shape(shape)
        return tuple(shape)

    def _inverse(self, y):
        for t in reversed(self.parts):
            y = t.inv(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        if not self.parts:
            return x * 0
        total = 0
        for t in self.parts:
            y_t = t(x)
            term = sum_rightmost(t.log_abs_det_jacobian(x, y_t), self.event_dim - t.event_dim)
            total = total + term
            x = y_t
        return total


class StickBreakingTransform(Transform):
    """Vectors of K reals onto the K-simplex (K + 1 nonnegative entries summing to 1) by
    breaking a stick: entry ``i`` takes the share ``sigmoid(x_i - log(K - i))`` of what the
    entries before it left (the shift makes ``x = 0`` the simplex's centre), the last entry the
    rest. ``event_dim`` 1; its log-determinant is over the first K entries."""
    domain = constraints.real_vector
    codomain = constraints.simplex
    event_dim = 1

    @staticmethod
    def _offsets(x):
        """``log(K - i)`` for i = 0 .. K - 1, as x's dtype and device."""
        k = x.shape[-1]
        return _creation.arange(k, 0, -1, dtype=x.dtype, device=x.device).log()

    def _call(self, x):
        info = finfo(x.dtype)
        z = (x - self._offsets(x)).sigmoid().clamp(min=info.tiny, max=1.0 - info.eps)
        left = (1 - z).cumprod(-1)                     # what is left after each break
        ones = _creation.ones(tuple(x.shape[:-1]) + (1,), dtype=x.dtype, device=x.device)
        return _shape.cat([z, ones], -1) * _shape.cat([ones, left], -1)

    def _inverse(self, y):
        head = y[..., :-1]
        left = (1 - head.cumsum(-1)).clamp(min=finfo(y.dtype).tiny)
        return head.log() - left.log() + self._offsets(head)

    def log_abs_det_jacobian(self, x, y):
        shifted = x - self._offsets(x)
        return _sum(-shifted + _nn.logsigmoid(shifted) + y[..., :-1].log(), -1)

    def forward_shape(self, shape) -> tuple:
        if not len(shape):
            raise ArgumentValueError(
                "StickBreakingTransform: needs a vector (at least one dimension)")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape) -> tuple:
        if not len(shape) or shape[-1] < 1:
            raise ArgumentValueError(
                "StickBreakingTransform: the inverse needs a simplex point of at "
                "least one entry")
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class IndependentTransform(Transform):
    """``base_transform`` with its ``reinterpreted_batch_ndims`` rightmost batch dimensions
    made part of the event: the same values, log-determinants summed over those dimensions."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int,
                 cache_size: int = 0):
        super().__init__(cache_size)
        self.base_transform = base_transform
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.event_dim = base_transform.event_dim + reinterpreted_batch_ndims
        self.domain = constraints.independent(base_transform.domain, reinterpreted_batch_ndims)
        self.codomain = constraints.independent(base_transform.codomain,
                                                reinterpreted_batch_ndims)
        self.sign = base_transform.sign
        self.bijective = base_transform.bijective

    def _call(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y),
                             self.reinterpreted_batch_ndims)

    def forward_shape(self, shape) -> tuple:
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape) -> tuple:
        return self.base_transform.inverse_shape(shape)

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class ReshapeTransform(Transform):
    """The rightmost dimensions of shape ``in_shape`` reshaped to ``out_shape`` (as many
    elements): a volume-preserving bijection, log-determinant 0."""

    def __init__(self, in_shape, out_shape, cache_size: int = 0):
        super().__init__(cache_size)
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ArgumentValueError(f"ReshapeTransform: in_shape {self.in_shape} and out_shape "
                                     f"{self.out_shape} hold different numbers of elements")
        self.event_dim = len(self.in_shape)
        self.domain = constraints.independent(constraints.real, len(self.in_shape))
        self.codomain = constraints.independent(constraints.real, len(self.out_shape))

    def _call(self, x):
        batch = tuple(x.shape[:x.ndim - len(self.in_shape)])
        return x.reshape(batch + self.out_shape)

    def _inverse(self, y):
        batch = tuple(y.shape[:y.ndim - len(self.out_shape)])
        return y.reshape(batch + self.in_shape)

    def log_abs_det_jacobian(self, x, y):
        batch = tuple(x.shape[:x.ndim - len(self.in_shape)])
        return _creation.zeros(batch, dtype=x.dtype, device=x.device)

    def forward_shape(self, shape) -> tuple:
        cut = len(shape) - len(self.in_shape)
        if cut < 0 or tuple(shape[cut:]) != self.in_shape:
            raise ArgumentValueError(f"ReshapeTransform: shape {tuple(shape)} does not end in "
                                     f"{self.in_shape}")
        return tuple(shape[:cut]) + self.out_shape

    def inverse_shape(self, shape) -> tuple:
        cut = len(shape) - len(self.out_shape)
        if cut < 0 or tuple(shape[cut:]) != self.out_shape:
            raise ArgumentValueError(f"ReshapeTransform: shape {tuple(shape)} does not end in "
                                     f"{self.out_shape}")
        return tuple(shape[:cut]) + self.in_shape


class SoftmaxTransform(Transform):
    """Vectors of reals onto the simplex by ``softmax`` (``event_dim`` 1). Not a bijection
    (adding a constant changes nothing), so it has no log-determinant; its ``inv`` is ``log``,
    one of the preimages. :class:`StickBreakingTransform` is the bijection."""
    domain = constraints.real_vector
    codomain = constraints.simplex
    event_dim = 1
    bijective = False

    def _call(self, x):
        return _nn.softmax(x, -1)

    def _inverse(self, y):
        return y.log()


class LowerCholeskyTransform(Transform):
    """Square matrices onto lower-triangular ones with a positive diagonal (Cholesky factors):
    the strictly lower triangle kept, the diagonal exponentiated, the rest zero. Not a
    bijection of the whole space (the upper triangle is dropped)."""
    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky
    event_dim = 2
    bijective = False

    def _call(self, x):
        return x.tril(-1) + x.diagonal(dim1=-2, dim2=-1).exp().diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + y.diagonal(dim1=-2, dim2=-1).log().diag_embed()


class PositiveDefiniteTransform(Transform):
    """Square matrices onto positive-definite ones: ``L L^T`` of the
    :class:`LowerCholeskyTransform` ``L`` of the input; the inverse takes the Cholesky factor."""
    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite
    event_dim = 2
    bijective = False

    def _call(self, x):
        lower = LowerCholeskyTransform()(x)
        return lower @ lower.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(linalg_cholesky(y))


#: The transform that changes nothing (an empty composition), as PyTorch's.
identity_transform = ComposeTransform([])
