"""``gradient.linalg``: PyTorch's ``torch.linalg`` namespace.

The norms (``vector_norm``, ``matrix_norm``, ``norm``, ``cond``), ``matmul``, ``vecdot``,
``diagonal``, ``cross`` and ``multi_dot``, and the decompositions and solvers: ``inv``,
``inv_ex``, ``det``, ``slogdet``, ``solve``, ``solve_triangular``, ``cholesky``, ``cholesky_ex``,
``qr``, ``eigh``, ``eigvalsh``, ``svd``, ``svdvals``, ``pinv``, ``lstsq``, ``matrix_power``,
``matrix_exp`` and ``matrix_rank`` (from :mod:`gradient.ops.linalg_decompositions`, where their
backward formulas are), LU (``lu_factor``, ``lu``, ``lu_solve``), ``householder_product``
(composed of products, differentiable), and the compositions ``solve_ex``, ``tensorinv``,
``tensorsolve`` and ``vander``. Everything has first and second derivatives. Functions that return
several tensors return named tuples with PyTorch's field names (``Q, R = linalg.qr(A)``,
``linalg.eigh(A).eigenvalues``). Real float32/float64 matrices only (no complex dtypes, no
general ``eig``/``eigvals``); a singular matrix given to ``inv`` or ``solve``, or one that is not
positive-definite given to ``cholesky``, raises :class:`LinAlgError`, as in PyTorch.

Example::

    >>> import gradient
    >>> x = gradient.tensor([[3.0, 4.0], [0.0, 1.0]])
    >>> gradient.linalg.vector_norm(x, dim=-1)
    tensor([5., 1.])
    >>> gradient.linalg.matrix_norm(x, ord=1)    # the largest column sum of |x|
    tensor(5.)
"""

from __future__ import annotations

import math

from .dtypes import as_dtype
from .errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from .ops import elementwise as _elementwise
from .ops import reduce as _reduce
from .ops.linalg import matmul
from .ops.creation import ones_like
from .ops.shape import cat
from .ops.shape import diagonal as _diagonal
from .ops.shape import movedim as _movedim
from .ops.shape import squeeze, wrap_dim
from .ops.shape import unsqueeze as _unsqueeze
from .tensor import Tensor
from .errors import LinAlgError  # noqa: F401  (torch.linalg.LinAlgError)
from .ops.linalg_decompositions import (cholesky_ex, det, eigh, eigvalsh, householder_product,
                                        inv, inv_ex, lstsq, matrix_exp, matrix_power,
                                        matrix_rank, multi_dot, pinv, solve, solve_ex,
                                        solve_triangular, svdvals)
from .ops.linalg_decompositions import linalg_cholesky as cholesky
from .ops.linalg_decompositions import linalg_cross as cross
from .ops.linalg_decompositions import linalg_qr as qr
from .ops.linalg_decompositions import linalg_slogdet as slogdet
from .ops.linalg_decompositions import linalg_svd as svd
from .ops.lu_factorization import linalg_lu as lu
from .ops.lu_factorization import linalg_lu_solve as lu_solve
from .ops.lu_factorization import lu_factor, lu_factor_ex

__all__ = ["vector_norm", "matrix_norm", "norm", "cond", "matmul", "vecdot", "diagonal", "cross",
           "multi_dot", "inv", "inv_ex", "det", "slogdet", "solve", "solve_triangular", "cholesky",
           "cholesky_ex", "qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "lstsq",
           "matrix_power", "matrix_exp", "matrix_rank", "householder_product", "lu", "lu_factor",
           "lu_factor_ex", "lu_solve", "solve_ex", "tensorinv", "tensorsolve", "vander",
           "LinAlgError"]


def _floating(fn: str, x, dtype) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = x.to(as_dtype(dtype))
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{fn}: expected a floating-point tensor, got {x.dtype}; convert it with "
                         ".float() or pass dtype=")
    return x


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ``ord``-norm of ``x`` over ``dim`` (every element when None, whatever the shape):
    ``(sum |x|^ord)^(1/ord)``; ``ord`` is a number, ``inf`` (max |x|), ``-inf`` (min |x|) or 0
    (the count of nonzeros). The gradient at a zero vector is 0.

    Example: ``gradient.linalg.vector_norm(x, ord=1, dim=(0, 1))``
    """
    x = _floating("linalg.vector_norm", x, dtype)
    if isinstance(ord, str) or isinstance(ord, bool):
        raise ArgumentTypeError(
            f"linalg.vector_norm: ord must be a number (or inf, -inf), got {ord!r}; "
            "use linalg.matrix_norm for 'fro' and 'nuc'")
    return _reduce.norm(x, float(ord), dim, keepdim)


def _matrix_dims(fn: str, A: Tensor, dim) -> tuple[int, int]:
    if A.ndim < 2:
        raise ShapeError(f"{fn}: expected a tensor of at least 2 dimensions (a matrix or a batch of "
                         f"them), got shape {tuple(A.shape)}")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ShapeError(f"{fn}: dim must be a pair of dimensions, got {dim!r}")
    d0, d1 = (wrap_dim(int(d), A.ndim) for d in dim)
    if d0 == d1:
        raise ShapeError(f"{fn}: the two dimensions of dim must differ, got {tuple(dim)}")
    return d0, d1


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """The matrix norm of ``A`` (or of each matrix in a batch) over the two dimensions ``dim``.

    ``ord`` is ``"fro"`` (the square root of the sum of squares), ``"nuc"`` (the sum of the
    singular values), ``2`` / ``-2`` (the largest / smallest singular value), ``1`` / ``-1`` (the
    largest / smallest sum of ``|A|`` down a column) or ``inf`` / ``-inf`` (the same along a row).
    Example: ``gradient.linalg.matrix_norm(A, ord=float("inf"))``
    """
    A = _floating("linalg.matrix_norm", A, dtype)
    rows, cols = _matrix_dims("linalg.matrix_norm", A, dim)
    if ord == "fro":
        return _reduce.norm(A, 2.0, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        # by the singular values: their sum, the largest, the smallest
        moved = _movedim(A, (rows, cols), (-2, -1))
        s = svdvals(moved)
        out = _reduce.sum(s, -1) if ord == "nuc" else (_reduce.amax if ord == 2 else _reduce.amin)(s, -1)
        if keepdim:
            for d in sorted((rows, cols)):
                out = _unsqueeze(out, d)
        return out
    if ord in (1, -1):
        summed, across = rows, cols   # column sums (down the rows), then the extreme column
    elif ord in (math.inf, -math.inf):
        summed, across = cols, rows   # row sums, then the extreme row
    else:
        raise ArgumentValueError(
            f"linalg.matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, "
            f"got {ord!r}")
    sums = _reduce.sum(_elementwise.abs(A), summed, True)
    extreme = _reduce.amax if ord > 0 else _reduce.amin
    out = extreme(sums, across, True)
    return out if keepdim else squeeze(out, (rows, cols))


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``vector_norm`` or ``matrix_norm``, chosen as PyTorch's ``linalg.norm`` does: an int
    ``dim`` (or a 1-d input) gives a vector norm, a pair of dims (or a 2-d input with ``ord``
    given) a matrix norm; with neither ``ord`` nor ``dim``, the 2-norm of all elements.

    Example: ``gradient.linalg.norm(x)``, ``gradient.linalg.norm(A, ord=1, dim=(1, 2))``
    """
    A = _floating("linalg.norm", A, dtype)
    if dim is not None:
        if isinstance(dim, (tuple, list)):
            if len(dim) == 1:
                return vector_norm(A, 2 if ord is None else ord, tuple(dim), keepdim)
            return matrix_norm(A, "fro" if ord is None else ord, tuple(dim), keepdim)
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim)
    if ord is None:
        return vector_norm(A, 2, None, keepdim)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim)
    raise ShapeError(f"linalg.norm: with ord given and dim=None the input must be 1-d or 2-d, got "
                     f"shape {tuple(A.shape)}; pass dim")


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of ``x`` and ``y`` along ``dim``, broadcasting the other dimensions."""
    return _reduce.sum(_elementwise.mul(x, y), dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """``gradient.diagonal`` with the last two dimensions as the default (``torch.linalg``'s)."""
    return _diagonal(A, offset, dim1, dim2)


def cond(A: Tensor, p=None) -> Tensor:
    """The condition number of ``A`` in the matrix norm ``p``: for ``None`` or ``2`` the ratio of
    the largest to the smallest singular value (``-2``: its inverse; any shape), for ``'fro'``,
    ``'nuc'``, ``1``, ``-1``, ``inf`` and ``-inf`` ``norm(A) * norm(inv(A))`` (square, invertible).

    Example: ``gradient.linalg.cond(gradient.tensor([[1.0, 0.0], [0.0, 1e-3]]))`` is ``1000`` (up to rounding).
    """
    A = _floating("linalg.cond", A, None)
    if p is None or p in (2, -2):
        s = svdvals(A)
        ratio = s[..., 0] / s[..., -1]
        return ratio if p != -2 else 1.0 / ratio
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"linalg.cond: p={p!r} needs square matrices, got shape {tuple(A.shape)}; "
                         "use p=None or 2 for rectangular ones")
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


def vander(x: Tensor, N: int | None = None) -> Tensor:
    """The Vandermonde matrix of ``x`` (..., n) with increasing powers ``x**0 .. x**(N-1)`` in
    its columns (``N`` defaults to n), as ``torch.linalg.vander`` (``gradient.vander`` has
    decreasing powers by default, as NumPy's).

    Example: ``gradient.linalg.vander(gradient.tensor([1.0, 2.0]), N=3)`` is
    ``[[1, 1, 1], [1, 2, 4]]``.
    """
    if x.ndim < 1:
        raise ShapeError("linalg.vander: expected x to have at least one dimension, got a 0-d "
                         "tensor")
    N = x.shape[-1] if N is None else N
    if N < 1:
        raise ArgumentValueError(f"linalg.vander: N must be at least 1, got {N}")
    # 1, x, x*x ... as a running product (as PyTorch computes it: no pow, no 0**0 gradient)
    column = _unsqueeze(x, -1)
    factors = [ones_like(column)] + [column] * (N - 1)
    return _reduce.cumprod(cat(factors, -1), -1)


def tensorinv(A: Tensor, ind: int = 2) -> Tensor:
    """The inverse of ``A`` as a linear map from its last ``A.ndim - ind`` dimensions to its
    first ``ind``: the result has shape ``A.shape[ind:] + A.shape[:ind]``, as
    ``torch.linalg.tensorinv``."""
    if ind <= 0:
        raise ArgumentValueError(f"linalg.tensorinv: ind must be a positive integer, got {ind}")
    out_shape, in_shape = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    rows, cols = math.prod(out_shape), math.prod(in_shape)
    if rows != cols:
        raise ShapeError(f"linalg.tensorinv: the product of the first {ind} dimensions "
                         f"({rows}) must equal that of the rest ({cols}); shape "
                         f"{tuple(A.shape)}")
    return inv(A.reshape(rows, cols)).reshape(in_shape + out_shape)


def tensorsolve(A: Tensor, B: Tensor, dims=None) -> Tensor:
    """``X`` with ``tensordot(A, X, X.ndim) == B``, as ``torch.linalg.tensorsolve``: ``X`` has
    shape ``A.shape[B.ndim:]``; ``dims`` first moves those dimensions of ``A`` to the end."""
    if dims is not None:
        dims = [d % A.ndim for d in (dims if isinstance(dims, (tuple, list)) else [dims])]
        A = _movedim(A, dims, list(range(A.ndim - len(dims), A.ndim)))
    x_shape = tuple(A.shape[B.ndim:])
    rows, cols = B.numel(), math.prod(x_shape)
    if tuple(A.shape[:B.ndim]) != tuple(B.shape) or rows != cols:
        raise ShapeError(f"linalg.tensorsolve: A's leading dimensions must be B's shape "
                         f"{tuple(B.shape)} and hold as many elements as the rest "
                         f"{x_shape}; A has shape {tuple(A.shape)}")
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(x_shape)

