"""The multivariate normal distribution, parameterized by a covariance, precision or Cholesky factor."""

from __future__ import annotations

import math

from ..ops import creation as _creation
from ..ops import reduce as _reduce
from ..ops.linalg import matmul
from ..ops.linalg_decompositions import cholesky_inverse, inv, linalg_cholesky, solve_triangular
from ..ops.shape import broadcast_shapes, diag_embed, diagonal
from . import constraints
from .distribution import Distribution
from .utils import lazy_property
from ..errors import ArgumentValueError


def batch_mahalanobis(L, x):
    """``x^T (L L^T)^-1 x`` for a lower Cholesky factor ``L`` (..., n, n) and vectors ``x``
    (..., n), batch dimensions broadcast: the squared norm of ``L^-1 x``, one triangular solve."""
    batch = broadcast_shapes(tuple(L.shape[:-2]), tuple(x.shape[:-1]))
    n = x.shape[-1]
    L = L.expand(*batch, n, n)
    x = x.expand(*batch, n)
    z = solve_triangular(L, x.unsqueeze(-1), upper=False).squeeze(-1)
    return _reduce.sum(z * z, -1)


def half_log_det(L):
    """``log det(L L^T) / 2`` for a lower Cholesky factor: the sum of the logs of its diagonal."""
    return _reduce.sum(diagonal(L, 0, -2, -1).log(), -1)


class MultivariateNormal(Distribution):
    """The normal distribution over vectors of size ``n`` with mean ``loc`` (..., n) and one of
    ``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` (the lower Cholesky factor of
    the covariance), each (..., n, n); the batch shape is the broadcast of the leading dimensions.

    Everything goes through the Cholesky factor ``L``: ``log_prob`` solves one triangular
    system, ``rsample`` is ``loc + L @ eps`` (reparameterized). A precision matrix is inverted
    once (PyTorch avoids the inverse with a flipped Cholesky; the result is the same).

    Example::

        >>> d = MultivariateNormal(gradient.zeros(2), covariance_matrix=gradient.eye(2))
        >>> d.log_prob(gradient.zeros(2))
        tensor(-1.8379)
        >>> d.rsample((5,)).shape
        gradient.Size([5, 2])
    """
    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ArgumentValueError("MultivariateNormal: give exactly one of covariance_matrix, "
                                     "precision_matrix or scale_tril")
        if loc.ndim < 1:
            raise ArgumentValueError(
                "MultivariateNormal: loc must be at least one-dimensional, got a 0-d tensor")
        matrix = given[0]
        if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
            raise ArgumentValueError(f"MultivariateNormal: the matrix must be square and at least "
                                     f"two-dimensional, got shape {tuple(matrix.shape)}")
        if matrix.shape[-1] != loc.shape[-1]:
            raise ArgumentValueError(
                f"MultivariateNormal: loc of size {loc.shape[-1]} does not match the "
                f"matrix of size {matrix.shape[-1]}")
        batch_shape = broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        n = loc.shape[-1]
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(*batch_shape, n, n)
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(*batch_shape, n, n)
        else:
            self.precision_matrix = precision_matrix.expand(*batch_shape, n, n)
        self.loc = loc.expand(*batch_shape, n)
        # validate first, so that a matrix that is not positive-definite raises ValueError (as
        # in PyTorch) rather than the Cholesky factorization's LinAlgError
        super().__init__(batch_shape, (n,), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = linalg_cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = linalg_cholesky(inv(precision_matrix))

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        batch_shape = tuple(batch_shape)
        n = self.event_shape[0]
        new.loc = self.loc.expand(*batch_shape, n)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "precision_matrix", "scale_tril"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(*batch_shape, n, n)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self):
        return tuple(self.batch_shape) + tuple(self.event_shape) * 2

    @lazy_property
    def scale_tril(self):
        """The lower Cholesky factor ``L`` of the covariance (``covariance = L @ L.mT``)."""
        return self._unbroadcasted_scale_tril.expand(*self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return matmul(L, L.mT).expand(*self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        return cholesky_inverse(self._unbroadcasted_scale_tril).expand(*self._matrix_shape())

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        L = self._unbroadcasted_scale_tril
        return _reduce.sum(L * L, -1).expand(*self.batch_shape, *self.event_shape)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = _creation.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + matmul(self._unbroadcasted_scale_tril, eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        L = self._unbroadcasted_scale_tril
        m = batch_mahalanobis(L, value - self.loc)
        return -0.5 * (self.event_shape[0] * math.log(2 * math.pi) + m) - half_log_det(L)

    def entropy(self):
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + half_log_det(self._unbroadcasted_scale_tril)
        return h.expand(*self.batch_shape) if tuple(h.shape) != tuple(self.batch_shape) else h


class LowRankMultivariateNormal(MultivariateNormal):
    """The multivariate normal with covariance ``cov_factor @ cov_factor.mT + diag(cov_diag)``:
    ``loc`` (..., n), ``cov_factor`` (..., n, r) and a positive ``cov_diag`` (..., n).

    ``rsample`` draws ``loc + W @ eps_r + sqrt(D) * eps_n`` (reparameterized) without forming
    the covariance. Differs from PyTorch: ``log_prob`` and ``entropy`` use the Cholesky factor
    of the full covariance (O(n^3)) instead of the Woodbury and determinant-lemma identities
    (O(n r^2)); the values are the same.

    Example::

        >>> d = LowRankMultivariateNormal(gradient.zeros(3), gradient.ones(3, 1), gradient.ones(3))
        >>> d.covariance_matrix
        tensor([[2., 1., 1.],
                [1., 2., 1.],
                [1., 1., 2.]])
    """
    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.ndim < 1:
            raise ArgumentValueError(
                "LowRankMultivariateNormal: loc must be at least one-dimensional")
        n = loc.shape[-1]
        if cov_factor.ndim < 2 or cov_factor.shape[-2] != n or cov_diag.ndim < 1 or cov_diag.shape[-1] != n:
            raise ArgumentValueError(
                f"LowRankMultivariateNormal: expected cov_factor (..., {n}, rank) and "
                f"cov_diag (..., {n}), got {tuple(cov_factor.shape)} and "
                f"{tuple(cov_diag.shape)}")
        batch_shape = broadcast_shapes(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                       tuple(cov_diag.shape[:-1]))
        self.loc = loc.expand(*batch_shape, n)
        self.cov_factor = cov_factor.expand(*batch_shape, *cov_factor.shape[-2:])
        self.cov_diag = cov_diag.expand(*batch_shape, n)
        self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag = cov_factor, cov_diag
        Distribution.__init__(self, batch_shape, (n,), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        batch_shape = tuple(batch_shape)
        n = self.event_shape[0]
        new.loc = self.loc.expand(*batch_shape, n)
        new.cov_factor = self.cov_factor.expand(*batch_shape, *self.cov_factor.shape[-2:])
        new.cov_diag = self.cov_diag.expand(*batch_shape, n)
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def _unbroadcasted_covariance(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return matmul(W, W.mT) + diag_embed(D)

    @lazy_property
    def _unbroadcasted_scale_tril(self):
        return linalg_cholesky(self._unbroadcasted_covariance)

    @lazy_property
    def covariance_matrix(self):
        return self._unbroadcasted_covariance.expand(*self._matrix_shape())

    @property
    def variance(self):
        W = self._unbroadcasted_cov_factor
        return (_reduce.sum(W * W, -1) + self._unbroadcasted_cov_diag).expand(*self.batch_shape,
                                                                               *self.event_shape)

    def rsample(self, sample_shape=()):
        W = self._unbroadcasted_cov_factor
        shape = self._extended_shape(sample_shape)
        eps_w = _creation.randn(*shape[:-1], W.shape[-1], dtype=self.loc.dtype, device=self.loc.device)
        eps_d = _creation.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + matmul(W, eps_w.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)

