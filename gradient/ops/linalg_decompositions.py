"""Matrix decompositions and what is built on them: solve, inv, det, cholesky, qr, eigh, svd, pinv ...

Each decomposition is one :class:`ArrayFunction`: its forward calls one LAPACK-style backend
primitive (``solve``, ``solve_triangular``, ``cholesky``, ``det``, ``slogdet``, ``qr``, ``eigh``,
``svd``, ``matrix_exp``) on raw arrays; its backward is the standard matrix-calculus formula
written with gradient's differentiable ops and the forward's *outputs*, so a second backward runs
through the same nodes again (``create_graph=True``, gradgradcheck). The formulas, for real
matrices (``X̄`` is the gradient with respect to ``X``):

* solve ``X = A⁻¹B``: ``B̄ = A⁻ᵀX̄``, ``Ā = -B̄Xᵀ``; inv is solve with ``B = I``;
* det: ``Ā = ḡ·det(A)·A⁻ᵀ``; slogdet: ``Ā = ḡ·A⁻ᵀ`` (Giles 2008, "Collected matrix derivative results");
* cholesky ``A = LLᵀ``: ``Ā = sym(L⁻ᵀ Φ(LᵀL̄) L⁻¹)``, Φ the lower triangle with the diagonal halved
  (Murray 2016, "Differentiation of the Cholesky decomposition");
* qr ``A = QR`` (m ≥ n): ``M = RR̄ᵀ - Q̄ᵀQ``, ``Ā = (Q̄ + Q·copyltu(M))R⁻ᵀ``; wide matrices split as
  ``A = [X | Y]`` (Liao, Liu, Wang, Xiang 2019, "Differentiable programming tensor networks");
* eigh ``A = V diag(w) Vᵀ``: ``Ā = V (diag(w̄) + F ∘ VᵀV̄) Vᵀ`` with ``F_ij = 1/(w_j - w_i)``;
* svd: Townsend 2016, "Differentiating the singular value decomposition", with
  ``F_ij = 1/(s_j² - s_i²)``;
* pinv: Golub and Pereyra 1973 (the derivative of the pseudo-inverse at constant rank);
* matrix_exp: the gradient is a block of the exponential of ``[[Aᵀ, Ḡ], [0, Aᵀ]]`` (Mathias 1996).

Eigenvectors and singular vectors are defined up to sign, and their gradients only for distinct
eigenvalues / singular values (a loss that depends on the sign gets an arbitrary gradient, as in
PyTorch). Only float32 and float64 are supported; batch dimensions lead, as in PyTorch, and
broadcast between the operands of solve and friends.

Example::

    >>> A = gradient.tensor([[4.0, 1.0], [1.0, 3.0]], requires_grad=True)
    >>> L = gradient.linalg.cholesky(A)
    >>> gradient.linalg.solve(A, gradient.tensor([1.0, 2.0]))
    tensor([0.0909, 0.6364], grad_fn=<ReshapeBackward>)
    >>> gradient.linalg.det(A).backward()    # A.grad is det(A) * inv(A).T
"""

from __future__ import annotations

import math
import warnings
from collections import namedtuple

import numpy as np

from ..autograd.function import ArrayFunction
from ..dtypes import bool_, float32, float64, int64
from ..errors import ArgumentValueError, AutogradError, DTypeError, LinAlgError, ShapeError
from ..tensor import Tensor
from . import elementwise as _ew
from . import reduce as _reduce
from .creation import eye, zeros
from .linalg import _broadcast_batch, matmul
from .shape import broadcast_shapes, cat, diag_embed, diagonal, expand, narrow, reshape, squeeze, \
    tril, triu, unsqueeze, wrap_dim
from ..errors import ArgumentTypeError

__all__ = ["inverse", "det", "logdet", "slogdet", "cholesky", "cholesky_solve", "cholesky_inverse",
           "qr", "svd", "pinverse", "matrix_power", "matrix_exp", "trace", "kron", "cross",
           "triangular_solve"]
TENSOR_METHODS = ("inverse", "det", "logdet", "slogdet", "cholesky", "cholesky_solve",
                  "cholesky_inverse", "qr", "svd", "pinverse", "matrix_power", "matrix_exp", "trace",
                  "kron", "cross", "triangular_solve")

# The named tuples PyTorch returns (torch.return_types.*): same names, same fields
LinalgSlogdet = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])
LinalgInvEx = namedtuple("linalg_inv_ex", ["inverse", "info"])
LinalgSolveEx = namedtuple("linalg_solve_ex", ["result", "info"])
LinalgCholeskyEx = namedtuple("linalg_cholesky_ex", ["L", "info"])
LinalgQR = namedtuple("linalg_qr", ["Q", "R"])
QRResult = namedtuple("qr", ["Q", "R"])
LinalgEigh = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
LinalgSVD = namedtuple("linalg_svd", ["U", "S", "Vh"])
SVDResult = namedtuple("svd", ["U", "S", "V"])
LinalgLstsq = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


# ---------------------------------------------------------------------- checks
def _check_matrix(fn: str, A, square: bool = True, what: str = "A") -> None:
    """A float32/float64 matrix or batch of matrices (square when ``square``)."""
    if not isinstance(A, Tensor):
        raise ArgumentTypeError(f"{fn}: expected {what} to be a Tensor, got {type(A).__name__}")
    if A.dtype not in (float32, float64):
        raise DTypeError(f"{fn}: expected {what} to be a float32 or float64 tensor, got "
                         f"{A.dtype.name}; convert it with .float() or .double()")
    if A.ndim < 2:
        raise ShapeError(f"{fn}: expected {what} to be a matrix or a batch of matrices (at least "
                         f"2-d), got shape {tuple(A.shape)}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{fn}: expected {what} to be a square matrix or a batch of square "
                         f"matrices, got shape {tuple(A.shape)} ({A.shape[-2]} by {A.shape[-1]} "
                         "matrices)")


def _check_same_dtype(fn: str, A: Tensor, B: Tensor) -> None:
    if A.dtype is not B.dtype:
        raise DTypeError(f"{fn}: expected A and B to have the same dtype, got {A.dtype.name} and "
                         f"{B.dtype.name}; convert one with .to(dtype)")


def _raise_on_failure(fn: str, info: Tensor, what: str) -> None:
    """PyTorch's error for a failed factorization, naming the first failed batch element."""
    codes = np.asarray(info.numpy()).reshape(-1)
    failed = np.flatnonzero(codes)
    if failed.size == 0:
        return
    where = f"(Batch element {failed[0]}): " if info.ndim > 0 else ""
    k = int(codes[failed[0]])
    if what == "singular":
        raise LinAlgError(f"{fn}: {where}The diagonal element {k} is zero, the inversion could not be "
                          "completed because the input matrix is singular. Check the matrix (its "
                          "determinant is 0), or use linalg.pinv or linalg.lstsq")
    if what == "zero pivot":
        raise LinAlgError(f"{fn}: {where}U[{k - 1},{k - 1}] is zero and using it on lu_solve "
                          f"would result in a division by zero. If you still want to perform "
                          f"the factorization, consider calling linalg.lu(A, pivot) or "
                          f"linalg.lu_factor_ex(A, pivot)")
    raise LinAlgError(f"{fn}: {where}The factorization could not be completed because the input is "
                      f"not positive-definite (the leading minor of order {k} is not "
                      "positive-definite). Check that the matrix is symmetric positive-definite, or "
                      "use cholesky_ex to get the info without an error")


def _inverse_gaps(w: Tensor) -> Tensor:
    """``F[..., i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (the eigh/svd F-matrix)."""
    n = w.shape[-1]
    gaps = unsqueeze(w, -2) - unsqueeze(w, -1)
    on_diag = eye(n, dtype=bool_, device=w.device)
    # the diagonal gap is 0: divide by 1 there instead, then zero it (no inf enters the graph)
    return _ew.where(on_diag, 0.0, 1.0 / _ew.where(on_diag, 1.0, gaps))


def _batch_of(fn: str, A: Tensor, B: Tensor) -> tuple:
    return _broadcast_batch(fn, tuple(A.shape), tuple(B.shape))


def _eye_like(A: Tensor) -> Tensor:
    return eye(A.shape[-1], dtype=A.dtype, device=A.device)


# ---------------------------------------------------------------------- solve and inverse
class Solve(ArrayFunction):
    """``X = A⁻¹B`` for square ``A`` (..., n, n) and ``B`` (..., n, k), batch dims broadcast;
    outputs ``(X, info)`` with LAPACK's info (non-differentiable)."""

    @staticmethod
    def forward(ctx, a, b, batch):
        backend = ctx.backend
        x, info = backend.solve(backend.broadcast_to(a, batch + a.shape[-2:]),
                                backend.broadcast_to(b, batch + b.shape[-2:]))
        ctx.save_for_backward(a, x)
        ctx.mark_non_differentiable(info)
        return x, info

    @staticmethod
    def backward(ctx, grad, _info):
        a, x = ctx.saved_tensors
        grad_b = _solve(a.mT, grad)                 # A⁻ᵀ X̄; the engine sums broadcast dims away
        grad_a = -matmul(grad_b, x.mT) if ctx.needs_input_grad[0] else None
        return grad_a, grad_b, None


def _solve_ex(A: Tensor, B: Tensor, fn: str = "linalg.solve"):
    """(X, info) for a matrix right-hand side, batch dims broadcast."""
    return Solve.apply(A, B, _batch_of(fn, A, B))


def _solve(A: Tensor, B: Tensor) -> Tensor:
    return _solve_ex(A, B)[0]


def inv_ex(A: Tensor, *, check_errors: bool = False):
    """``torch.linalg.inv_ex``: ``(inverse, info)``; info (int32, one per matrix) is 0 where the
    matrix was invertible, k > 0 where the k-th pivot of its LU factorization was zero (the
    inverse is then NaN there; PyTorch leaves whatever LAPACK wrote).

    Example: ``Ainv, info = gradient.linalg.inv_ex(A)``
    """
    _check_matrix("linalg.inv_ex", A)
    X, info = _solve_ex(A, _eye_like(A), "linalg.inv_ex")
    if check_errors:
        _raise_on_failure("linalg.inv_ex", info, "singular")
    return LinalgInvEx(X, info)


def inv(A: Tensor) -> Tensor:
    """The inverse of a square matrix (or of each in a batch); a singular matrix raises
    :class:`~gradient.errors.LinAlgError`, as in PyTorch.

    Example: ``gradient.linalg.inv(gradient.tensor([[2.0, 0.0], [0.0, 4.0]]))`` is
    ``[[0.5, 0], [0, 0.25]]``.
    """
    _check_matrix("linalg.inv", A)
    X, info = _solve_ex(A, _eye_like(A), "linalg.inv")
    _raise_on_failure("linalg.inv", info, "singular")
    return X


def inverse(input: Tensor) -> Tensor:
    """``torch.inverse``: :func:`gradient.linalg.inv`. Example: ``A.inverse() @ A``."""
    return inv(input)


def _vector_rhs(A: Tensor, B: Tensor) -> bool:
    """PyTorch's rule: B is a (batch of) vector(s) when 1-d, or when it has one dimension less
    than A and that shape is A's without its last dimension."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """The solution ``X`` of ``A @ X = B`` (``X @ A = B`` when ``left=False``) for square ``A``;
    ``B`` is a matrix (..., n, k) or a vector (..., n); batch dimensions broadcast. A singular
    ``A`` raises :class:`~gradient.errors.LinAlgError`.

    Example: ``gradient.linalg.solve(A, b)`` is ``inv(A) @ b``, computed without the inverse.
    """
    return solve_ex(A, B, left=left, check_errors=True, fn="linalg.solve").result


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False,
             fn: str = "linalg.solve_ex"):
    """``(result, info)``, as ``torch.linalg.solve_ex``: :func:`solve` without raising for a
    singular ``A`` (unless ``check_errors``): ``info`` (int32, one per matrix) is k > 0 where
    LU's k-th pivot was zero (that result is NaN), else 0."""
    _check_matrix(fn, A)
    if not isinstance(B, Tensor) or B.ndim < 1:
        raise ShapeError(f"{fn}: expected B to be a vector or matrix Tensor, got "
                         f"{getattr(B, 'shape', type(B).__name__)}")
    _check_same_dtype(fn, A, B)
    vector = _vector_rhs(A, B)
    if not left:   # X A = B  <=>  Aᵀ Xᵀ = Bᵀ
        if vector:
            raise ShapeError(f"{fn}: with left=False, B must be a matrix (..., k, n), got "
                             f"shape {tuple(B.shape)} for A of shape {tuple(A.shape)}; use "
                             "B.unsqueeze(-2) for a row vector")
        X, info = solve_ex(A.mT, B.mT, check_errors=check_errors, fn=fn)
        return LinalgSolveEx(X.mT, info)
    B2 = unsqueeze(B, -1) if vector else B
    n = A.shape[-1]
    if B2.shape[-2] != n:
        raise ShapeError(f"{fn}: A of shape {tuple(A.shape)} and B of shape "
                         f"{tuple(B.shape)} do not fit: B needs {n} rows")
    X, info = _solve_ex(A, B2, fn)
    if check_errors:
        _raise_on_failure(fn, info, "singular")
    return LinalgSolveEx(squeeze(X, -1) if vector else X, info)


class SolveTriangular(ArrayFunction):
    """``X = A⁻¹B`` reading one triangle of ``A`` (its diagonal taken as ones when unitriangular)."""

    @staticmethod
    def forward(ctx, a, b, upper, unitriangular, batch):
        backend = ctx.backend
        x = backend.solve_triangular(backend.broadcast_to(a, batch + a.shape[-2:]),
                                     backend.broadcast_to(b, batch + b.shape[-2:]), upper, unitriangular)
        ctx.upper, ctx.unitriangular = upper, unitriangular
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        # Aᵀ is triangular the other way round
        grad_b = solve_triangular(a.mT, grad, upper=not ctx.upper, unitriangular=ctx.unitriangular)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = -matmul(grad_b, x.mT)
            # only the triangle that was read gets a gradient (not the diagonal, if taken as ones)
            k = 1 if ctx.unitriangular else 0
            grad_a = triu(grad_a, k) if ctx.upper else tril(grad_a, -k)
        return grad_a, grad_b, None, None, None


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True,
                     unitriangular: bool = False) -> Tensor:
    """The solution of ``A @ X = B`` (``X @ A = B`` when ``left=False``) for a triangular ``A``:
    only its upper (``upper=True``) or lower triangle is read, and its diagonal is taken as ones
    when ``unitriangular``. ``B`` is (..., n, k) (``left=False``: (..., k, n)); batch dims broadcast.

    Example: ``gradient.linalg.solve_triangular(L, B, upper=False)``
    """
    _check_matrix("linalg.solve_triangular", A)
    _check_matrix("linalg.solve_triangular", B, square=False, what="B")
    _check_same_dtype("linalg.solve_triangular", A, B)
    if not left:   # X A = B  <=>  Aᵀ Xᵀ = Bᵀ, and Aᵀ is triangular the other way round
        return solve_triangular(A.mT, B.mT, upper=not upper, unitriangular=unitriangular).mT
    n = A.shape[-1]
    if B.shape[-2] != n:
        raise ShapeError(f"linalg.solve_triangular: A of shape {tuple(A.shape)} and B of shape "
                         f"{tuple(B.shape)} do not fit: B needs {n} rows (or pass left=False)")
    batch = _batch_of("linalg.solve_triangular", A, B)
    return SolveTriangular.apply(A, B, bool(upper), bool(unitriangular), batch)


def triangular_solve(b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False):
    """``torch.triangular_solve`` (deprecated there in favour of linalg.solve_triangular, whose
    arguments are the other way round): ``(solution, cloned_coefficient)`` of ``A X = b``
    (``Aᵀ X = b`` when ``transpose``).

    Example: ``X = gradient.triangular_solve(b, A).solution``
    """
    coefficient = A.mT if transpose else A
    X = solve_triangular(coefficient, b, upper=upper != bool(transpose), unitriangular=unitriangular)
    return TriangularSolveResult(X, A.clone())


# ---------------------------------------------------------------------- determinants
class Det(ArrayFunction):
    @staticmethod
    def forward(ctx, a):
        d = ctx.backend.det(a)
        ctx.save_for_backward(a, d)
        return d

    @staticmethod
    def backward(ctx, grad):
        a, d = ctx.saved_tensors
        # d det(A) = det(A) tr(A⁻¹ dA). Not defined through the inverse at a singular matrix
        # (PyTorch falls back to an SVD there; gradient raises, see _inverse_for_backward).
        return unsqueeze(unsqueeze(grad * d, -1), -1) * _inverse_for_backward("det", a).mT


class SlogDet(ArrayFunction):
    @staticmethod
    def forward(ctx, a):
        sign, logabsdet = ctx.backend.slogdet(a)
        ctx.save_for_backward(a)
        ctx.mark_non_differentiable(sign)
        return sign, logabsdet

    @staticmethod
    def backward(ctx, _sign, grad):
        (a,) = ctx.saved_tensors
        return unsqueeze(unsqueeze(grad, -1), -1) * _inverse_for_backward("slogdet", a).mT


def _inverse_for_backward(fn: str, a: Tensor) -> Tensor:
    X, info = _solve_ex(a, _eye_like(a), fn)
    if np.any(np.asarray(info.numpy())):
        raise LinAlgError(f"{fn} backward: the gradient at a singular matrix is not supported "
                          "(it needs the inverse); perturb the matrix or compute the adjugate yourself")
    return X


def det(A: Tensor) -> Tensor:
    """The determinant of a square matrix (or of each in a batch); 0 for a singular matrix.

    Example: ``gradient.linalg.det(gradient.tensor([[1.0, 2.0], [3.0, 4.0]]))`` is ``-2``.
    The gradient at an exactly singular matrix raises LinAlgError (PyTorch computes it).
    """
    _check_matrix("linalg.det", A)
    return Det.apply(A)


def linalg_slogdet(A: Tensor):
    """``(sign, logabsdet)``: the sign of the determinant and the log of its absolute value, a
    named tuple; the stable way to get ``log|det A|`` (``det`` over/underflows for large
    matrices). A singular matrix gives ``(0, -inf)``. Only ``logabsdet`` has a gradient.

    Example: ``sign, logabsdet = gradient.linalg.slogdet(A)``
    """
    _check_matrix("linalg.slogdet", A)
    return LinalgSlogdet(*SlogDet.apply(A))


def _slogdet_tensor(input: Tensor):
    """``torch.slogdet`` / ``Tensor.slogdet``: :func:`gradient.linalg.slogdet`."""
    _check_matrix("slogdet", input)
    return SlogdetResult(*SlogDet.apply(input))


def logdet(input: Tensor) -> Tensor:
    """``log(det(A))``: NaN where the determinant is negative, -inf where it is 0 (PyTorch's).

    Example: ``gradient.logdet(A @ A.mT + gradient.eye(3))``
    """
    _check_matrix("logdet", input)
    sign, logabsdet = SlogDet.apply(input)
    return logabsdet + _ew.log(sign)     # log(1) = 0, log(-1) = nan, log(0) = -inf; no gradient


# ---------------------------------------------------------------------- cholesky
class Cholesky(ArrayFunction):
    """``A = L Lᵀ`` from the lower triangle of ``A``; outputs ``(L, info)``."""

    @staticmethod
    def forward(ctx, a):
        l, info = ctx.backend.cholesky(a)
        ctx.save_for_backward(l)
        ctx.mark_non_differentiable(info)
        return l, info

    @staticmethod
    def backward(ctx, grad, _info):
        (l,) = ctx.saved_tensors
        p = tril(matmul(l.mT, grad))
        p = p - 0.5 * diag_embed(diagonal(p, 0, -2, -1))           # Φ: the diagonal halved
        s = solve_triangular(l.mT, p, upper=True)                   # L⁻ᵀ P
        s = solve_triangular(l, s, upper=False, left=False)         # L⁻ᵀ P L⁻¹
        return 0.5 * (s + s.mT)        # A is symmetric: its gradient is too (PyTorch's choice)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False):
    """``(L, info)``: the Cholesky factor and, per matrix, 0 when it is positive-definite, else
    the order of the leading minor that is not (``L`` is then only partly computed).

    Example: ``L, info = gradient.linalg.cholesky_ex(A)``; ``bool(info.any())`` tells a failure.
    """
    _check_matrix("linalg.cholesky_ex", A)
    L, info = Cholesky.apply(A)
    if check_errors:
        _raise_on_failure("linalg.cholesky_ex", info, "not positive-definite")
    return LinalgCholeskyEx(L.mT if upper else L, info)


def _cholesky(fn: str, A: Tensor, upper: bool) -> Tensor:
    _check_matrix(fn, A)
    L, info = Cholesky.apply(A)
    _raise_on_failure(fn, info, "not positive-definite")
    return L.mT if upper else L


def linalg_cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor ``L`` (lower triangular, ``A = L @ L.mT``) of a symmetric
    positive-definite matrix, reading its lower triangle; ``upper=True`` gives ``U = L.mT``.
    A matrix that is not positive-definite raises :class:`~gradient.errors.LinAlgError`.

    Example: ``L = gradient.linalg.cholesky(X @ X.mT + gradient.eye(3))``
    """
    return _cholesky("linalg.cholesky", A, upper)


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """``torch.cholesky`` (deprecated there for linalg.cholesky, same result): the lower (or, with
    ``upper=True``, upper) Cholesky factor. Example: ``A.cholesky()``."""
    return _cholesky("cholesky", input, upper)


def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False) -> Tensor:
    """The solution of ``A X = B`` given ``B`` (``input``) and the Cholesky factor of ``A``
    (``input2``, lower, or upper when ``upper=True``), as ``torch.cholesky_solve``.

    Example: ``gradient.cholesky_solve(B, gradient.linalg.cholesky(A))``
    """
    _check_matrix("cholesky_solve", input, square=False, what="B")
    _check_matrix("cholesky_solve", input2, what="the Cholesky factor")
    L = input2.mT if upper else input2
    Y = solve_triangular(L, input, upper=False)       # L Y = B
    return solve_triangular(L.mT, Y, upper=True)       # Lᵀ X = Y


def cholesky_inverse(input: Tensor, upper: bool = False) -> Tensor:
    """The inverse of ``A`` from its Cholesky factor (lower, or upper when ``upper=True``):
    ``gradient.cholesky_inverse(L)`` is ``inv(L @ L.mT)``."""
    _check_matrix("cholesky_inverse", input, what="the Cholesky factor")
    return cholesky_solve(_eye_like(input), input, upper)


# ---------------------------------------------------------------------- qr
class QR(ArrayFunction):
    """``A = QR``; outputs ``(Q, R)``, reduced or complete."""

    @staticmethod
    def forward(ctx, a, complete):
        q, r = ctx.backend.qr(a, complete)
        ctx.set_materialize_grads(False)      # backward gets None for an unused Q or R
        ctx.complete = complete
        ctx.save_for_backward(q, r)
        return q, r

    @staticmethod
    def backward(ctx, grad_q, grad_r):
        if grad_q is None and grad_r is None:
            return None, None
        q, r = ctx.saved_tensors
        m, n = q.shape[-2], r.shape[-1]
        if m > n and ctx.complete:
            if grad_q is not None:
                raise AutogradError("The QR decomposition is not differentiable when mode='complete' "
                                    "and nrows > ncols: the last columns of Q are not determined by A. "
                                    "Use mode='reduced'")
            q, r = narrow(q, -1, 0, n), narrow(r, -2, 0, n)      # R's last rows are zeros
            grad_r = narrow(grad_r, -2, 0, n)
        if m >= n:
            return _qr_backward_square_or_tall(q, r, grad_q, grad_r), None
        # wide: A = [X | Y] with X = Q U (square) and Y = Q V, so V = Qᵀ Y
        grad_u = narrow(grad_r, -1, 0, m) if grad_r is not None else None
        grad_v = narrow(grad_r, -1, m, n - m) if grad_r is not None else None
        y = matmul(q, narrow(r, -1, m, n - m))
        if grad_v is not None:
            extra = matmul(y, grad_v.mT)
            grad_q = extra if grad_q is None else grad_q + extra
        grad_x = _qr_backward_square_or_tall(q, narrow(r, -1, 0, m), grad_q, grad_u)
        grad_y = matmul(q, grad_v) if grad_v is not None else _ew.mul(y, 0.0)
        return cat([grad_x, grad_y], -1), None


def _qr_backward_square_or_tall(q, r, grad_q, grad_r):
    """Ā for A = QR with m >= n (Q m×n, R n×n upper): (Q̄ + Q copyltu(M)) R⁻ᵀ, M = R R̄ᵀ - Q̄ᵀ Q."""
    m_term = None
    if grad_r is not None:
        m_term = matmul(r, grad_r.mT)
    if grad_q is not None:
        qq = matmul(grad_q.mT, q)
        m_term = -qq if m_term is None else m_term - qq
    copyltu = tril(m_term) + tril(m_term, -1).mT     # symmetric, from M's lower triangle
    b = matmul(q, copyltu)
    if grad_q is not None:
        b = b + grad_q
    # b R⁻ᵀ, as the solution of X Rᵀ = b (Rᵀ is lower triangular)
    return solve_triangular(r.mT, b, upper=False, left=False)


def _qr(fn: str, A: Tensor, mode: str, result):
    _check_matrix(fn, A, square=False)
    if mode not in ("reduced", "complete", "r"):
        raise ArgumentValueError(f"{fn}: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    Q, R = QR.apply(A, mode == "complete")
    if mode == "r":
        # PyTorch returns an empty Q; R keeps its gradient here (PyTorch refuses to differentiate
        # mode='r', gradient computes Q anyway and can)
        Q = zeros(0, dtype=A.dtype, device=A.device)
    return result(Q, R)


def linalg_qr(A: Tensor, mode: str = "reduced"):
    """``(Q, R)`` with ``A = Q @ R``, ``Q`` orthonormal columns and ``R`` upper triangular, a named
    tuple. ``mode``: ``'reduced'`` (Q m×k, R k×n, k = min(m, n)), ``'complete'`` (Q m×m, R m×n)
    or ``'r'`` (R only; Q is empty).

    Example: ``Q, R = gradient.linalg.qr(A)``
    """
    return _qr("linalg.qr", A, mode, LinalgQR)


def qr(input: Tensor, some: bool = True):
    """``torch.qr``: ``linalg.qr`` with ``some=True`` for mode 'reduced', False for 'complete'.
    Example: ``Q, R = A.qr()``."""
    return _qr("qr", input, "reduced" if some else "complete", QRResult)


# ---------------------------------------------------------------------- eigh
class Eigh(ArrayFunction):
    """``A = V diag(w) Vᵀ`` for a symmetric ``A`` (one triangle read); outputs ``(w, V)``."""

    @staticmethod
    def forward(ctx, a, upper):
        w, v = ctx.backend.eigh(a, upper)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(w, v)
        return w, v

    @staticmethod
    def backward(ctx, grad_w, grad_v):
        if grad_w is None and grad_v is None:
            return None, None
        w, v = ctx.saved_tensors
        inner = diag_embed(grad_w) if grad_w is not None else None
        if grad_v is not None:
            # only the eigenvector part needs the eigenvalues distinct
            term = _inverse_gaps(w) * matmul(v.mT, grad_v)
            inner = term if inner is None else inner + term
        return matmul(matmul(v, inner), v.mT), None


def _check_uplo(fn: str, UPLO: str) -> bool:
    if UPLO not in ("L", "U"):
        raise ArgumentValueError(f"{fn}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return UPLO == "U"


def eigh(A: Tensor, UPLO: str = "L"):
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix, eigenvalues ascending, a named tuple;
    only the lower (``UPLO='L'``) or upper triangle is read. Each eigenvector is determined up to
    its sign, and its gradient only when the eigenvalues are distinct.

    Example: ``w, V = gradient.linalg.eigh(A)``; ``V @ gradient.diag_embed(w) @ V.mT`` is ``A``.
    """
    _check_matrix("linalg.eigh", A)
    w, V = Eigh.apply(A, _check_uplo("linalg.eigh", UPLO))
    return LinalgEigh(w, V)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of a symmetric matrix, ascending (see :func:`eigh`).
    Example: ``gradient.linalg.eigvalsh(A)``."""
    _check_matrix("linalg.eigvalsh", A)
    return Eigh.apply(A, _check_uplo("linalg.eigvalsh", UPLO))[0]


# ---------------------------------------------------------------------- svd
class SVD(ArrayFunction):
    """``A = U diag(S) Vh``; outputs ``(U, S, Vh)``."""

    @staticmethod
    def forward(ctx, a, full_matrices):
        u, s, vh = ctx.backend.svd(a, full_matrices)
        ctx.set_materialize_grads(False)
        ctx.full_matrices = full_matrices
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx, grad_u, grad_s, grad_vh):
        if grad_u is None and grad_s is None and grad_vh is None:
            return None, None
        u, s, vh = ctx.saved_tensors
        k = s.shape[-1]
        if ctx.full_matrices:
            # the columns of U (rows of Vh) beyond k are not determined by A: their gradients
            # are dropped (PyTorch does the same)
            u, vh = narrow(u, -1, 0, k), narrow(vh, -2, 0, k)
            grad_u = narrow(grad_u, -1, 0, k) if grad_u is not None else None
            grad_vh = narrow(grad_vh, -2, 0, k) if grad_vh is not None else None
        if grad_u is None and grad_vh is None:
            # singular values only: U diag(S̄) Vh, defined even for repeated singular values
            return matmul(u * unsqueeze(grad_s, -2), vh), None
        m, n = u.shape[-2], vh.shape[-1]
        gaps = _inverse_gaps(s * s)                  # 1 / (s_j² - s_i²)
        inner = diag_embed(grad_s) if grad_s is not None else None
        extra = None
        if grad_u is not None:
            ut_gu = matmul(u.mT, grad_u)
            term = (gaps * (ut_gu - ut_gu.mT)) * unsqueeze(s, -2)          # (F ∘ [UᵀŪ - ŪᵀU]) S
            inner = term if inner is None else inner + term
            if m > k:   # the part of Ū outside the column space of U: (I - UUᵀ) Ū S⁻¹ Vh
                extra = matmul((grad_u - matmul(u, ut_gu)) / unsqueeze(s, -2), vh)
        if grad_vh is not None:
            v, grad_v = vh.mT, grad_vh.mT
            vt_gv = matmul(v.mT, grad_v)
            term = unsqueeze(s, -1) * (gaps * (vt_gv - vt_gv.mT))          # S (F ∘ [VᵀV̄ - V̄ᵀV])
            inner = term if inner is None else inner + term
            if n > k:   # U S⁻¹ V̄ᵀ (I - VVᵀ)
                part = matmul(u, ((grad_v - matmul(v, vt_gv)) / unsqueeze(s, -2)).mT)
                extra = part if extra is None else extra + part
        grad_a = matmul(matmul(u, inner), vh)
        return (grad_a if extra is None else grad_a + extra), None


def linalg_svd(A: Tensor, full_matrices: bool = True, *, driver=None):
    """``(U, S, Vh)`` with ``A = U @ diag(S) @ Vh``, singular values descending, a named tuple.
    ``full_matrices=True`` (the default, as in PyTorch) gives square U (m×m) and Vh (n×n);
    False the reduced ones (k = min(m, n) columns). Singular vectors are determined up to a
    common sign, and their gradients only for distinct singular values; ``driver`` (CUDA only
    in PyTorch) is accepted and ignored.

    Example: ``U, S, Vh = gradient.linalg.svd(A, full_matrices=False)``
    """
    _check_matrix("linalg.svd", A, square=False)
    return LinalgSVD(*SVD.apply(A, bool(full_matrices)))


def svdvals(A: Tensor, *, driver=None) -> Tensor:
    """The singular values of ``A``, descending. Example: ``gradient.linalg.svdvals(A)[..., 0]``
    is the spectral norm."""
    _check_matrix("linalg.svdvals", A, square=False)
    return SVD.apply(A, False)[1]


def svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """``torch.svd``, the old API: ``(U, S, V)`` with ``A = U @ diag(S) @ V.mT`` (V, not Vh);
    ``some=True`` gives the reduced factors. With ``compute_uv=False``, U and V are zeros of
    shapes (m, m) and (n, n), as in PyTorch.

    Example: ``U, S, V = A.svd()``
    """
    _check_matrix("svd", input, square=False)
    if not compute_uv:
        S = SVD.apply(input, False)[1]
        m, n = input.shape[-2], input.shape[-1]
        batch = tuple(input.shape[:-2])
        return SVDResult(zeros(*batch, m, m, dtype=input.dtype, device=input.device), S,
                          zeros(*batch, n, n, dtype=input.dtype, device=input.device))
    U, S, Vh = SVD.apply(input, not some)
    return SVDResult(U, S, Vh.mT)


# ---------------------------------------------------------------------- pinv and lstsq
def _default_rtol(A: Tensor) -> float:
    """PyTorch's default relative tolerance: eps of the dtype times the larger dimension."""
    return float(np.finfo(A.dtype.numpy).eps) * max(A.shape[-2], A.shape[-1])


def _tolerance(backend, s_max, atol, rtol, dtype):
    """max(atol, rtol * s_max) per matrix, on raw arrays (atol/rtol: numbers or arrays)."""
    def arr(v):
        return backend.cast(v, dtype) if hasattr(v, "shape") else backend.full((), v, dtype)
    return backend.binary("maximum", arr(atol), backend.binary("mul", arr(rtol), s_max))


class Pinv(ArrayFunction):
    """The Moore-Penrose pseudo-inverse, singular values at most ``max(atol, rtol * s_max)`` taken
    as zero; by an SVD, or an eigendecomposition when ``hermitian``."""

    @staticmethod
    def forward(ctx, a, atol, rtol, hermitian):
        b = ctx.backend
        dtype = float32 if a.dtype == np.float32 else float64
        zero, one = b.full((), 0, dtype), b.full((), 1, dtype)
        if hermitian:
            w, v = b.eigh(a, False)
            left, right, vals = v, b.permute(v, tuple(range(v.ndim - 2)) + (v.ndim - 1, v.ndim - 2)), w
            size = b.unary("abs", w)
        else:
            u, s, vh = b.svd(a, False)
            axes = tuple(range(u.ndim - 2)) + (u.ndim - 1, u.ndim - 2)
            left, right, vals, size = b.permute(vh, axes), b.permute(u, axes), s, s
        if size.shape[-1] == 0:
            out = b.full(a.shape[:-2] + (a.shape[-1], a.shape[-2]), 0, dtype)
        else:
            s_max = b.reduce("max", size, -1, True)
            keep = b.binary("gt", size, _tolerance(b, s_max, atol, rtol, dtype))
            inv_vals = b.where(keep, b.unary("reciprocal", b.where(keep, vals, one)), zero)
            # V diag(1/s) Uᵀ (or V diag(1/w) Vᵀ): the columns of V scaled, times Uᵀ
            out = b.matmul(b.binary("mul", left, _row(b, inv_vals)), right)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        # dX = -X dA X + X Xᵀ dAᵀ (I - A X) + (I - X A) dAᵀ Xᵀ X  (rank kept constant), so
        # Ā = -Xᵀ Ḡ Xᵀ + (I - A X) Ḡᵀ X Xᵀ + Xᵀ X Ḡᵀ (I - X A)
        xt, gt = x.mT, grad.mT
        x_xt = matmul(x, xt)
        xt_x = matmul(xt, x)
        first = -matmul(matmul(xt, grad), xt)
        second = matmul(gt, x_xt) - matmul(matmul(a, x), matmul(gt, x_xt))
        third = matmul(xt_x, gt) - matmul(matmul(xt_x, gt), matmul(x, a))
        return first + second + third, None, None, None


def _row(backend, v):
    """``v`` (..., k) as (..., 1, k), to scale the columns of a matrix."""
    return backend.reshape(v, v.shape[:-1] + (1, v.shape[-1]))


def _tol_arg(t, A: Tensor):
    if isinstance(t, Tensor):
        # per-matrix tolerances: (batch,) broadcasts against the (batch, 1) largest value
        return unsqueeze(t.to(A.dtype).detach(), -1)._data
    return float(t)


def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The pseudo-inverse of ``A`` (..., m, n), of shape (..., n, m): singular values at most
    ``max(atol, rtol * largest)`` count as zero. With neither given, ``rtol`` is
    ``eps * max(m, n)``; with only ``atol``, ``rtol`` is 0 (PyTorch's rules). ``hermitian=True``
    uses an eigendecomposition of the lower triangle instead of an SVD.

    Example: ``gradient.linalg.pinv(A) @ b`` is the least-squares solution of ``A x = b``.
    """
    _check_matrix("linalg.pinv", A, square=hermitian)
    if rtol is None:
        rtol = _default_rtol(A) if atol is None else 0.0
    if atol is None:
        atol = 0.0
    return Pinv.apply(A, _tol_arg(atol, A), _tol_arg(rtol, A), bool(hermitian))


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """``torch.pinverse``: the pseudo-inverse with relative tolerance ``rcond``.
    Example: ``A.pinverse()``."""
    _check_matrix("pinverse", input, square=False)
    return Pinv.apply(input, 0.0, float(rcond), False)


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None):
    """The least-squares solution of ``A X = B`` (minimum-norm when ``A`` is rank-deficient), a
    named tuple ``(solution, residuals, rank, singular_values)`` like ``torch.linalg.lstsq``.

    What is filled follows PyTorch's CPU drivers: ``rank`` for all but ``'gels'``;
    ``singular_values`` for ``'gelsd'`` and ``'gelss'``; ``residuals`` (the squared residual
    of each column) for all but ``'gelsy'`` (the default), when m > n and ``A`` has full rank.
    The rest are empty. The solution is ``pinv(A, rtol=rcond) @ B`` (``rcond`` defaults to
    ``eps * max(m, n)``), computed by an SVD whichever driver is named.

    Example: ``x = gradient.linalg.lstsq(A, b).solution``
    """
    _check_matrix("linalg.lstsq", A, square=False)
    if not isinstance(B, Tensor):
        raise ArgumentTypeError(f"linalg.lstsq: expected B to be a Tensor, got {type(B).__name__}")
    _check_same_dtype("linalg.lstsq", A, B)
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise ArgumentValueError(
            f"linalg.lstsq: driver must be 'gels', 'gelsy', 'gelsd' or 'gelss', got "
            f"{driver!r}")
    if not (A.ndim == B.ndim or A.ndim == B.ndim + 1):
        raise ShapeError(f"linalg.lstsq: expected B to have as many dimensions as A, or one less "
                         f"(a vector), got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    vector = B.ndim == A.ndim - 1
    B2 = unsqueeze(B, -1) if vector else B
    m, n = A.shape[-2], A.shape[-1]
    if B2.shape[-2] != m:
        raise ShapeError(f"linalg.lstsq: A of shape {tuple(A.shape)} and B of shape {tuple(B.shape)} "
                         f"do not fit: B needs {m} rows")
    rtol = _default_rtol(A) if rcond is None else float(rcond)
    X = matmul(Pinv.apply(A, 0.0, rtol, False), B2)
    batch = tuple(A.shape[:-2])
    empty = zeros(0, dtype=A.dtype, device=A.device)
    s = svdvals(A.detach())
    rank = empty.long()
    if driver != "gels":
        if s.shape[-1]:
            rank = _reduce.sum(s > unsqueeze(s[..., 0] * rtol, -1), -1)
        else:
            rank = zeros(*batch, dtype=int64, device=A.device)
    residuals = empty
    full_rank = driver == "gels" or bool((rank == min(m, n)).all())
    if driver != "gelsy" and m > n and full_rank:
        residuals = _reduce.sum((matmul(A, X) - B2) ** 2, -2)
        if vector:
            residuals = squeeze(residuals, -1)
    singular_values = s if driver in ("gelsd", "gelss") else empty
    return LinalgLstsq(squeeze(X, -1) if vector else X, residuals, rank, singular_values)


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False, tol=None) -> Tensor:
    """The number of singular values (|eigenvalues| when ``hermitian``) above
    ``max(atol, rtol * largest)``, an int64 per matrix; the tolerances follow :func:`pinv`'s
    rules (``tol``, the deprecated name, is ``atol``). Example: ``gradient.linalg.matrix_rank(A)``.
    """
    _check_matrix("linalg.matrix_rank", A, square=hermitian)
    if tol is not None:
        atol = tol
    if rtol is None:
        rtol = _default_rtol(A) if atol is None else 0.0
    atol = 0.0 if atol is None else atol
    A = A.detach()
    s = _ew.abs(eigvalsh(A)) if hermitian else svdvals(A)
    if s.shape[-1] == 0:
        return zeros(*A.shape[:-2], dtype=int64, device=A.device)
    s_max = _reduce.amax(s, -1, True)
    atol = unsqueeze(atol.to(A.dtype), -1) if isinstance(atol, Tensor) else atol
    rtol = unsqueeze(rtol.to(A.dtype), -1) if isinstance(rtol, Tensor) else rtol
    tol = _ew.maximum(s_max * rtol, s_max * 0 + atol)
    return _reduce.sum(s > tol, -1)


# ---------------------------------------------------------------------- matrix functions
class MatrixExp(ArrayFunction):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.matrix_exp(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        n = a.shape[-1]
        at = a.mT
        # exp([[Aᵀ, Ḡ], [0, Aᵀ]]) = [[exp(Aᵀ), Ā], [0, exp(Aᵀ)]]: the gradient is its top-right
        # block (a matrix_exp again, so second derivatives come the same way)
        at = expand(at, tuple(grad.shape))
        big = cat([cat([at, grad], -1), cat([at * 0.0, at], -1)], -2)
        return narrow(narrow(matrix_exp(big), -2, 0, n), -1, n, n)


def matrix_exp(A: Tensor) -> Tensor:
    """The matrix exponential ``sum_k A^k / k!`` of a square matrix (or each in a batch), by
    scaling and squaring with a Padé approximant (SciPy's expm on the CPU).

    Example: ``gradient.linalg.matrix_exp(gradient.zeros(2, 2))`` is the identity.
    """
    _check_matrix("linalg.matrix_exp", A)
    return MatrixExp.apply(A)


def matrix_power(input: Tensor, n: int) -> Tensor:
    """``A`` multiplied by itself ``n`` times (by repeated squaring); ``n = 0`` gives the identity,
    a negative ``n`` the power of the inverse. Example: ``A.matrix_power(3)`` is ``A @ A @ A``.
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"linalg.matrix_power: expected a Tensor, got {type(input).__name__}")
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise ShapeError(f"linalg.matrix_power: expected a square matrix or a batch of square "
                         f"matrices, got shape {tuple(input.shape)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ArgumentTypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__}")
    n = int(n)
    if n == 0:
        identity = eye(input.shape[-1], dtype=input.dtype, device=input.device)
        # connected to the input with a zero gradient, as in PyTorch (a where that always picks
        # the identity: input * 0 would turn an inf in the input into NaN)
        always = eye(1, dtype=bool_, device=input.device)
        return _ew.where(always, identity, input)
    base = input
    if n < 0:
        base, n = inv(input), -n   # (the inverse checks the dtype)
    result = None
    while n:                        # binary powering: log2(n) squarings
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


# ---------------------------------------------------------------------- small helpers of torch
def trace(input: Tensor) -> Tensor:
    """The sum of the diagonal of a 2-d tensor. Example: ``gradient.eye(3).trace()`` is 3."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"trace: expected a Tensor, got {type(input).__name__}")
    if input.ndim != 2:
        raise ShapeError(f"trace: expected a matrix (2-d), got shape {tuple(input.shape)}; for a "
                         "batch use gradient.diagonal(x, dim1=-2, dim2=-1).sum(-1)")
    return _reduce.sum(diagonal(input, 0, 0, 1))


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of ``input`` times the whole of ``other``, laid out
    block by block; the shorter shape is padded with leading ones.

    Example: ``gradient.kron(gradient.eye(2), B)`` is the block-diagonal ``[[B, 0], [0, B]]``.
    """
    for t in (input, other):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"kron: expected Tensor operands, got {type(t).__name__}")
    nd = max(input.ndim, other.ndim)
    a_shape = (1,) * (nd - input.ndim) + tuple(input.shape)
    b_shape = (1,) * (nd - other.ndim) + tuple(other.shape)
    # a as (a0, 1, a1, 1, ...) and b as (1, b0, 1, b1, ...): the product interleaves them
    a = reshape(input, tuple(x for d in a_shape for x in (d, 1)))
    b = reshape(other, tuple(x for d in b_shape for x in (1, d)))
    return reshape(a * b, tuple(p * q for p, q in zip(a_shape, b_shape)))


def _cross(fn: str, input: Tensor, other: Tensor, dim: int) -> Tensor:
    for t in (input, other):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{fn}: expected Tensor operands, got {type(t).__name__}")
    try:
        shape = tuple(np.broadcast_shapes(tuple(input.shape), tuple(other.shape)))
    except ValueError:
        raise ShapeError(f"{fn}: shapes {tuple(input.shape)} and {tuple(other.shape)} do not "
                         "broadcast") from None
    d = wrap_dim(dim, len(shape))
    if shape[d] != 3:
        raise ShapeError(f"{fn}: dimension {dim} must have size 3, got shape {shape}")
    a, b = expand(input, shape), expand(other, shape)
    a0, a1, a2 = (narrow(a, d, i, 1) for i in range(3))
    b0, b1, b2 = (narrow(b, d, i, 1) for i in range(3))
    return cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (default the last); the other dims broadcast.
    Example: ``gradient.linalg.cross(x, y)``."""
    return _cross("linalg.cross", input, other, dim)


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:
    """``torch.cross``: as :func:`gradient.linalg.cross`, but without ``dim`` it takes the first
    dimension of size 3 (PyTorch's deprecated default; pass ``dim``, as PyTorch's warning says).
    Example: ``gradient.cross(x, y, dim=1)``."""
    if dim is None:
        shape = tuple(broadcast_shapes(tuple(input.shape), tuple(other.shape)))
        sizes3 = [i for i, s in enumerate(shape) if s == 3]
        if not sizes3:
            raise ShapeError(f"cross: no dimension of size 3 in shape {shape}")
        warnings.warn("Using gradient.cross without specifying the dim arg is deprecated (as in "
                      "PyTorch); pass dim or use gradient.linalg.cross", UserWarning, stacklevel=2)
        dim = sizes3[0]
    return _cross("cross", input, other, dim)


def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices, the first and last of which may be vectors (a row and
    a column), as ``torch.linalg.multi_dot``; multiplied in the cheapest order (by the classic
    dynamic programme over the chain).

    Example: ``gradient.linalg.multi_dot([a, B, C, d])``
    """
    tensors = list(tensors)
    if len(tensors) < 2:
        raise ShapeError(f"linalg.multi_dot: expected at least 2 tensors, got {len(tensors)}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"linalg.multi_dot: expected Tensors, got {type(t).__name__}")
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            raise ShapeError(f"linalg.multi_dot: tensor {i} must be "
                             f"{' or '.join(f'{d}-d' for d in allowed)}, got shape {tuple(t.shape)}")
    first_vec, last_vec = tensors[0].ndim == 1, tensors[-1].ndim == 1
    mats = list(tensors)
    if first_vec:
        mats[0] = unsqueeze(mats[0], 0)
    if last_vec:
        mats[-1] = unsqueeze(mats[-1], -1)
    for i in range(len(mats) - 1):
        if mats[i].shape[-1] != mats[i + 1].shape[-2]:
            raise ShapeError(f"linalg.multi_dot: tensors {i} and {i + 1} of shapes "
                             f"{tuple(tensors[i].shape)} and {tuple(tensors[i + 1].shape)} do not "
                             "align")
    out = _chain(mats, _chain_order([m.shape[-2] for m in mats] + [mats[-1].shape[-1]]), 0,
                 len(mats) - 1)
    if first_vec:
        out = squeeze(out, 0)
    if last_vec:
        out = squeeze(out, -1)
    return out


def _chain_order(dims):
    """split[i][j]: where to split the product of matrices i..j for the fewest multiplications."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(mats, split, i, j):
    if i == j:
        return mats[i]
    k = split[i][j]
    return matmul(_chain(mats, split, i, k), _chain(mats, split, k + 1, j))


# torch.slogdet returns torch.return_types.slogdet, linalg.slogdet a linalg_slogdet: the
# top-level name and the Tensor method are the former
slogdet = _slogdet_tensor
slogdet.__name__ = slogdet.__qualname__ = "slogdet"


def householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first ``k`` columns of ``H_1 H_2 ... H_k``, ``H_i = I - tau_i v_i v_i^T`` with ``v_i``
    column ``i`` of ``A`` (n x k, n >= k) below its diagonal and 1 on it, as
    ``torch.linalg.householder_product`` (LAPACK's orgqr): the Q of a QR decomposition stored as
    reflectors. Batched over leading dimensions; differentiable in ``A`` and ``tau``.

    Example: ``householder_product(gradient.zeros(3, 2), gradient.zeros(2))`` is ``eye(3, 2)``.
    """
    if not A.dtype.is_floating_point:
        raise DTypeError(f"householder_product: expected a floating-point tensor, got {A.dtype}")
    n, k = A.shape[-2], A.shape[-1]
    if A.ndim < 2 or n < k:
        raise ShapeError(f"householder_product: A must be a matrix (or a batch) with at least as "
                         f"many rows as columns, got shape {tuple(A.shape)}")
    if tuple(tau.shape) != tuple(A.shape[:-2]) + (min(n, k),):
        raise ShapeError(f"householder_product: tau must have shape "
                         f"{tuple(A.shape[:-2]) + (min(n, k),)}, got {tuple(tau.shape)}")
    identity = eye(n, dtype=A.dtype, device=A.device)
    V = A.tril(-1) + identity[:, :k]                    # the reflectors, 1 on the diagonal
    Q = identity.expand(*A.shape[:-2], n, n)
    for i in range(tau.shape[-1]):
        v = V[..., i:i + 1]                             # (..., n, 1)
        Q = Q - tau[..., i, None, None] * matmul(matmul(Q, v), v.mT)
    return Q[..., :k]
