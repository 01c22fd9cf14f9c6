"""Randomized low-rank SVD and PCA, as ``torch.svd_lowrank`` and ``torch.pca_lowrank``.

Halko, Martinsson and Tropp (2009): a random Gaussian test matrix ``R`` (n, q) samples the range
of ``A`` (m, n) as ``Q = orth(A R)``; ``niter`` power iterations (``Q = orth(A^T Q)``,
``Q = orth(A Q)``) sharpen it when the singular values decay slowly; then the small matrix
``Q^T A`` (q, n) has an exact SVD, lifted back by ``Q``. Cost O(m n q) instead of a full SVD's,
for the ``q`` leading singular triplets. Everything is gradient's differentiable ops (``qr``,
``svd``, products), so gradients flow to ``A``; batches of matrices work too.

The test matrix comes from gradient's generator, so the approximate triplets differ from
PyTorch's in their last digits where ``A``'s rank exceeds ``q``; up to rank ``q`` both are
exact (up to the signs of singular vectors).

Example::

    >>> A = gradient.randn(100, 8) @ gradient.randn(8, 60)     # rank 8
    >>> U, S, V = gradient.svd_lowrank(A, q=10)
    >>> bool(((U * S) @ V.mT - A).abs().max() < 1e-3)
    True
"""

from __future__ import annotations

from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .creation import randn
from .linalg_decompositions import linalg_qr, linalg_svd

__all__ = ["svd_lowrank", "pca_lowrank"]


def svd_lowrank(A: Tensor, q: int | None = 6, niter: int | None = 2, M: Tensor | None = None):
    """``(U, S, V)`` with ``A ~= U diag(S) V^T`` (of ``A - M`` when ``M`` is given): ``U``
    (*, m, q), ``S`` (*, q), ``V`` (*, n, q), for the ``q`` largest singular values, by
    randomized subspace iteration (``niter`` power iterations). As ``torch.svd_lowrank``."""
    q = 6 if q is None else q
    niter = 2 if niter is None else niter
    if A.ndim < 2:
        raise ShapeError(f"svd_lowrank: expected a matrix or a batch of matrices, got shape "
                         f"{tuple(A.shape)}")
    m, n = A.shape[-2:]
    if not 0 < q <= min(m, n):
        raise ArgumentValueError(f"svd_lowrank: q={q} must be in 1..min(m, n) = {min(m, n)} for a "
                                 f"matrix of {m} x {n}")
    if niter < 0:
        raise ArgumentValueError(f"svd_lowrank: niter must be non-negative, got {niter}")
    if M is not None:
        A = A - M      # (the difference as it is: gradient has no sparse M to keep apart)
    if m < n:
        # the basis of the transpose's range keeps the small matrix (q, m) the smaller one
        Q = _approximate_basis(A.mT, q, niter)
        U, S, Vh = linalg_svd(A @ Q, full_matrices=False)
        return U, S, Q @ Vh.mT
    Q = _approximate_basis(A, q, niter)
    U, S, Vh = linalg_svd(Q.mT @ A, full_matrices=False)
    return Q @ U, S, Vh.mT


def pca_lowrank(A: Tensor, q: int | None = None, center: bool = True, niter: int = 2):
    """``(U, S, V)`` of a principal component analysis of the rows of ``A`` (*, m, n): the
    columns of ``V`` are the ``q`` leading principal directions, ``S**2 / (m - 1)`` their
    variances, ``U`` the rows' coordinates in them (scaled by ``S``). ``center`` subtracts the
    column means first; ``q`` defaults to ``min(6, m, n)``. As ``torch.pca_lowrank``."""
    if A.ndim < 2:
        raise ShapeError(f"pca_lowrank: expected a matrix or a batch of matrices, got shape "
                         f"{tuple(A.shape)}")
    m, n = A.shape[-2:]
    q = min(6, m, n) if q is None else q
    if not 0 <= q <= min(m, n):
        raise ArgumentValueError(f"pca_lowrank: q={q} must be in 0..min(m, n) = {min(m, n)}")
    if niter < 0:
        raise ArgumentValueError(f"pca_lowrank: niter must be non-negative, got {niter}")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)
    return svd_lowrank(A, q, niter)


def _approximate_basis(A: Tensor, q: int, niter: int) -> Tensor:
    """An orthonormal (*, m, q) basis ``Q`` of most of ``A``'s range: ``A ~= Q Q^T A``."""
    R = randn(A.shape[-1], q, dtype=A.dtype, device=A.device)
    Q = linalg_qr(A @ R).Q
    for _ in range(niter):
        Q = linalg_qr(A.mT @ Q).Q
        Q = linalg_qr(A @ Q).Q
    return Q
