"""The LU factorization with partial pivoting, as ``torch.linalg.lu_factor``, ``lu``,
``lu_solve`` and ``torch.lu_unpack``: ``A = P L U`` with ``P`` a permutation, ``L`` unit lower
triangular (m, k) and ``U`` upper triangular (k, n), ``k = min(m, n)``.

The factorization is LAPACK's ``getrf``, run on the host (the backends' contract has no LU
primitive; the factors come back to the tensor's device). ``L`` and ``U`` are returned packed in
one matrix ``LU`` (``U`` on and above the diagonal, ``L`` below it, its unit diagonal implied)
with LAPACK's 1-based ``pivots`` (int32): row ``i`` was swapped with row ``pivots[i] - 1``.
Everything after the factorization (unpacking, solving) is gradient's ops, and the
factorization's own gradient is the matrix form for square and rectangular ``A``, so gradients
reach ``A`` (twice, for square matrices).

Example::

    >>> A = gradient.randn(3, 3)
    >>> LU, pivots = gradient.linalg.lu_factor(A)
    >>> x = gradient.linalg.lu_solve(LU, pivots, gradient.randn(3, 2))    # A @ x = B
    >>> P, L, U = gradient.lu_unpack(LU, pivots)                          # A == P @ L @ U
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ..autograd.function import ArrayFunction
from ..errors import ShapeError, UnsupportedError
from ..tensor import Tensor
from .creation import empty, eye, tensor
from .linalg import matmul
from .linalg_decompositions import (_check_matrix, _check_same_dtype, _raise_on_failure,
                                     solve_triangular)
from .shape import cat, tril, triu

__all__ = ["lu", "lu_solve", "lu_unpack"]   # torch.lu, torch.lu_solve (the old forms), lu_unpack

TENSOR_METHODS = ("lu", "lu_solve")

LinalgLUFactor = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LinalgLUFactorEx = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LinalgLU = namedtuple("linalg_lu", ["P", "L", "U"])
LUUnpack = namedtuple("lu_unpack", ["P", "L", "U"])


class LUFactor(ArrayFunction):
    """``(LU, pivots, info)`` of a (batch of) matrix: LAPACK's getrf, matrix by matrix."""

    @staticmethod
    def forward(ctx, a):
        from scipy.linalg import lapack   # (imported here: SciPy's import is slow)
        b = ctx.backend
        host = b.to_numpy(a)
        m, n = host.shape[-2:]
        # (the batch's size spelled out: -1 cannot be inferred where a matrix has no values)
        mats = host.reshape((math.prod(host.shape[:-2]), m, n))
        lu = np.empty_like(mats)
        pivots = np.empty((len(mats), min(m, n)), np.int32)
        info = np.zeros(len(mats), np.int32)
        for i, mat in enumerate(mats if m and n else ()):   # (an empty matrix: nothing to do)
            (getrf,) = lapack.get_lapack_funcs(("getrf",), (mat,))
            lu[i], piv, info[i] = getrf(mat)
            pivots[i] = piv + 1                       # SciPy's are 0-based, LAPACK's 1-based
        lu = b.from_numpy(lu.reshape(host.shape))
        pivots = b.from_numpy(pivots.reshape(host.shape[:-2] + (min(m, n),)))
        info = b.from_numpy(info.reshape(host.shape[:-2]))
        ctx.save_for_backward(lu, pivots)
        ctx.mark_non_differentiable(pivots, info)
        return lu, pivots, info

    @staticmethod
    def backward(ctx, grad, _pivots, _info):
        lu, pivots = ctx.saved_tensors
        P, L, U = lu_unpack(lu, pivots)
        m, n = lu.shape[-2:]
        k = min(m, n)
        gL, gU = tril(grad, -1)[..., :, :k], triu(grad)[..., :k, :]
        if m == n:
            return matmul(P, _square_grad(L, U, gL, gU))
        if m < n:
            # A = P L [U1 | U2]: U2 = L^-1 P^T A2 adds to L's gradient, A2's is P L^-T gU2
            U1, U2 = U[..., :, :m], U[..., :, m:]
            gU1, gU2 = gU[..., :, :m], gU[..., :, m:]
            gA2 = solve_triangular(L.mT, gU2, upper=True, unitriangular=True)
            gL = gL - tril(matmul(gA2, U2.mT), -1)
            return matmul(P, cat([_square_grad(L, U1, gL, gU1), gA2], -1))
        # m > n: P^T A = [L1; L2] U: L2 = A2 U^-1 adds to U's gradient, A2's is gL2 U^-T
        L1, L2 = L[..., :n, :], L[..., n:, :]
        gL1, gL2 = gL[..., :n, :], gL[..., n:, :]
        gA2 = solve_triangular(U.mT, gL2, upper=False, left=False)
        gU = gU - triu(matmul(L2.mT, gA2))
        return matmul(P, cat([_square_grad(L1, U, gL1, gU), gA2], -2))


def _square_grad(L: Tensor, U: Tensor, gL: Tensor, gU: Tensor) -> Tensor:
    """The gradient of ``A = L U`` (square, no pivoting) for the gradients of its factors:
    ``L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T``."""
    inner = tril(matmul(L.mT, gL), -1) + triu(matmul(gU, U.mT))
    left = solve_triangular(L.mT, inner, upper=True, unitriangular=True)
    return solve_triangular(U.mT, left, upper=False, left=False)


def _factor(fn: str, A: Tensor, pivot: bool):
    _check_matrix(fn, A, square=False)
    if not pivot:
        raise UnsupportedError(f"{fn}: LU without pivoting is not implemented on the CPU "
                               f"(as in PyTorch); use pivot=True")
    return LUFactor.apply(A)


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False):
    """``(LU, pivots, info)``, as ``torch.linalg.lu_factor_ex``: ``info`` (int32, one per
    matrix) is 0, or k > 0 where ``U[k-1, k-1]`` is exactly zero (the factors are still given)."""
    LU, pivots, info = _factor("linalg.lu_factor_ex", A, pivot)
    if check_errors:
        _raise_on_failure("linalg.lu_factor_ex", info, "zero pivot")
    return LinalgLUFactorEx(LU, pivots, info)


def lu_factor(A: Tensor, *, pivot: bool = True):
    """``(LU, pivots)``, as ``torch.linalg.lu_factor``; a zero on ``U``'s diagonal raises
    :class:`~gradient.errors.LinAlgError` (``lu_factor_ex`` and ``linalg.lu`` do not)."""
    LU, pivots, info = _factor("linalg.lu_factor", A, pivot)
    _raise_on_failure("linalg.lu_factor", info, "zero pivot")
    return LinalgLUFactor(LU, pivots)


def linalg_lu(A: Tensor, *, pivot: bool = True):
    """``(P, L, U)`` with ``A = P @ L @ U``, as ``torch.linalg.lu``."""
    LU, pivots, _ = _factor("linalg.lu", A, pivot)
    return LinalgLU(*lu_unpack(LU, pivots))


def lu(A: Tensor, pivot: bool = True, get_infos: bool = False):
    """``torch.lu`` (the older form of :func:`lu_factor`): ``(LU, pivots)``, or ``(LU, pivots,
    infos)`` with ``get_infos``; it does not raise for a singular matrix."""
    LU, pivots, info = _factor("lu", A, pivot)
    return (LU, pivots, info) if get_infos else (LU, pivots)


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True,
              unpack_pivots: bool = True):
    """``(P, L, U)`` from the packed factors and pivots, as ``torch.lu_unpack``; what is not
    unpacked comes back empty."""
    _check_matrix("lu_unpack", LU_data, square=False, what="LU_data")
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    if unpack_pivots and (tuple(LU_pivots.shape) != tuple(LU_data.shape[:-2]) + (k,)
                          or LU_pivots.dtype.is_floating_point):
        raise ShapeError(f"lu_unpack: LU_pivots must be integers of shape "
                         f"{tuple(LU_data.shape[:-2]) + (k,)} (one row index per step of the "
                         f"factorization of LU_data {tuple(LU_data.shape)}), got "
                         f"{LU_pivots.dtype} of shape {tuple(LU_pivots.shape)}")
    none = empty(0, dtype=LU_data.dtype, device=LU_data.device)
    if unpack_data:
        L = tril(LU_data, -1)[..., :, :k] + eye(m, k, dtype=LU_data.dtype, device=LU_data.device)
        U = triu(LU_data)[..., :k, :]
    else:
        L = U = none
    P = _permutation(LU_pivots, m, LU_data) if unpack_pivots else none
    return LUUnpack(P, L, U)


def _permutation(pivots: Tensor, m: int, like: Tensor) -> Tensor:
    """The matrix ``P`` of LAPACK's row swaps (made on the host: k swaps per matrix)."""
    swaps = pivots.detach().cpu().numpy().astype(np.int64) - 1
    flat = swaps.reshape((math.prod(swaps.shape[:-1]), swaps.shape[-1]))
    order = np.tile(np.arange(m), (len(flat), 1))
    for b, row in enumerate(flat):
        for i, j in enumerate(row):
            order[b, i], order[b, j] = order[b, j], order[b, i]
    # P^T A takes row order[i] of A to row i, so P's column i is the unit vector order[i]
    P = np.zeros((len(flat), m, m), np.float64)
    P[np.arange(len(flat))[:, None], order, np.arange(m)[None, :]] = 1.0
    return tensor(P.reshape(swaps.shape[:-1] + (m, m)), dtype=like.dtype, device=like.device)


def linalg_lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True,
                    adjoint: bool = False) -> Tensor:
    """The solution ``X`` of ``A X = B`` from ``A``'s factors (``X A = B`` when not ``left``;
    ``A^T`` for ``A`` with ``adjoint``), as ``torch.linalg.lu_solve``; differentiable in ``LU``
    and ``B``."""
    _check_matrix("linalg.lu_solve", LU)
    _check_matrix("linalg.lu_solve", B, square=False, what="B")
    _check_same_dtype("linalg.lu_solve", LU, B)
    if not left:    # X A = B  <=>  A^T X^T = B^T
        return linalg_lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    P, L, U = lu_unpack(LU, pivots)
    if adjoint:     # A^T = U^T L^T P^T
        y = solve_triangular(U.mT, B, upper=False)
        return matmul(P, solve_triangular(L.mT, y, upper=True, unitriangular=True))
    y = solve_triangular(L, matmul(P.mT, B), upper=False, unitriangular=True)
    return solve_triangular(U, y, upper=True)


def lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """``torch.lu_solve(b, LU_data, LU_pivots)`` (and ``b.lu_solve(...)``): the older argument
    order of :func:`linalg_lu_solve`."""
    return linalg_lu_solve(LU_data, LU_pivots, b)
