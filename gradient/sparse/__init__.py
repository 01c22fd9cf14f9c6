"""``torch.sparse``'s functions over gradient's sparse COO tensors (see
:mod:`gradient.ops.sparse`, where the tensor and its arithmetic live).

* :func:`mm` and :func:`addmm`: a sparse matrix times a dense one (a graph convolution's
  ``adj @ x``), differentiable in both; ``gradient.spmm``, ``gradient.mm`` and ``@`` are the same.
* :func:`sum`: over every dimension or some; :func:`softmax` and :func:`log_softmax` along a
  dimension, the elements not present taken as minus infinity (as PyTorch's).
* ``FloatTensor(indices, values, size)`` and the other legacy constructors older scripts call
  (``torch.sparse.FloatTensor``).

Example::

    >>> adj = gradient.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 1.0], (2, 2))
    >>> gradient.sparse.mm(adj, gradient.eye(2))          # adj.to_dense()
    >>> gradient.sparse.softmax(adj, dim=1).to_dense()    # each row's present elements
"""

from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype, float16, float32, float64, int32, int64
from ..errors import LayoutError, ShapeError
from ..ops.creation import tensor as _tensor, zeros
from ..ops.index import index_add, index_select
from ..ops.shape import wrap_dim
from ..ops.sparse import (SparseCOOTensor, is_sparse, sparse_coo_tensor, sparse_mm,
                          sparse_sum, to_sparse)

__all__ = ["mm", "addmm", "sum", "softmax", "log_softmax", "SparseCOOTensor", "is_sparse",
           "sparse_coo_tensor", "to_sparse", "FloatTensor", "DoubleTensor", "HalfTensor",
           "LongTensor", "IntTensor"]


def mm(mat1: SparseCOOTensor, mat2, reduce: str | None = None):
    """``mat1`` (sparse, n x k) times ``mat2`` (dense, k x m): a dense (n, m) tensor,
    differentiable in both. ``reduce`` other than "sum" (PyTorch's CSR-only reductions) is
    not supported.

    Example: ``gradient.sparse.mm(adj, features)``
    """
    if reduce not in (None, "sum"):
        raise LayoutError(f"sparse.mm: reduce={reduce!r} is not supported (only the sum)")
    return sparse_mm(mat1, mat2)


def addmm(mat, mat1: SparseCOOTensor, mat2, *, beta=1.0, alpha=1.0):
    """``beta * mat + alpha * (mat1 @ mat2)`` with ``mat1`` sparse, as ``torch.sparse.addmm``.

    Example: ``gradient.sparse.addmm(bias, adj, x)``
    """
    product = sparse_mm(mat1, mat2)
    product = product if alpha == 1 else product * alpha
    return product if beta == 0 else (mat if beta == 1 else mat * beta) + product


def sum(input: SparseCOOTensor, dim=None, dtype=None):  # noqa: A001  (torch's name)
    """The sum over every dimension (a 0-d dense tensor) or over ``dim``: a sparse tensor of
    the others, dense where every sparse dimension is summed, as ``torch.sparse.sum``.

    Example: ``gradient.sparse.sum(adj, dim=1)``   (each row's sum, sparse)
    """
    _need_sparse("sum", input)
    return sparse_sum(input, dim, dtype)


def softmax(input: SparseCOOTensor, dim: int, dtype=None) -> SparseCOOTensor:
    """Softmax along ``dim`` over the elements present (those not present count as minus
    infinity, so they stay absent): a sparse tensor of the same coordinates, coalesced.

    Example: ``gradient.sparse.softmax(scores, dim=1)``   (attention over a graph's edges)
    """
    shifted, totals, groups, c = _normalised(input, dim, dtype, "softmax")
    values = shifted.exp() / index_select(totals, 0, groups)
    return SparseCOOTensor._make(c._indices(), values, c.shape, True)


def log_softmax(input: SparseCOOTensor, dim: int, dtype=None) -> SparseCOOTensor:
    """The logarithm of :func:`softmax`, computed as ``x - max - log(sum(exp(x - max)))``."""
    shifted, totals, groups, c = _normalised(input, dim, dtype, "log_softmax")
    values = shifted - index_select(totals.log(), 0, groups)
    return SparseCOOTensor._make(c._indices(), values, c.shape, True)


def _normalised(input, dim, dtype, name):
    """For (log-)softmax along ``dim``: the values minus their group's largest, the sums of
    their exponentials per group, each value's group, and the coalesced input."""
    _need_sparse(name, input)
    c = input.coalesce()
    values = c._values() if dtype is None else c._values().to(as_dtype(dtype))
    d = wrap_dim(dim, input.ndim)
    k = input.sparse_dim()
    if d >= k:
        raise LayoutError(f"sparse.{name}: along a dense dimension ({d}) is not supported; "
                          f"the sparse dimensions are 0 .. {k - 1}")
    coords = np.delete(c._indices().numpy(), d, axis=0)
    shape = tuple(input.shape[i] for i in range(k) if i != d)
    key = np.ravel_multi_index(coords, shape) if shape else np.zeros(coords.shape[1], np.int64)
    _, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = int(inverse.max()) + 1 if inverse.size else 0
    detached = values.detach().numpy()
    largest = np.full((count,) + detached.shape[1:], -np.inf, detached.dtype)
    np.maximum.at(largest, inverse, detached)   # (a shift softmax does not see: no gradient)
    groups = _tensor(inverse, dtype=int64, device=values.device)
    shifted = values - _tensor(largest[inverse], dtype=values.dtype, device=values.device)
    totals = index_add(zeros((count,) + tuple(values.shape[1:]), dtype=values.dtype,
                             device=values.device), 0, groups, shifted.exp())
    return shifted, totals, groups, c


def _need_sparse(name: str, input) -> None:
    if not isinstance(input, SparseCOOTensor):
        raise LayoutError(f"sparse.{name}: expected a sparse tensor, got "
                          f"{type(input).__name__}; use gradient.{name} for a dense one")


def _legacy(dtype, name: str):
    """``torch.sparse.FloatTensor`` and its kin: ``(indices, values, size)``,
    ``(indices, values)``, or sizes (an empty sparse tensor of that shape)."""
    def make(*args, device=None):
        sizes = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
        if all(isinstance(n, int) for n in sizes):
            return sparse_coo_tensor(np.zeros((len(sizes), 0), np.int64),
                                     zeros(0, dtype=dtype), sizes, device=device)
        if len(args) not in (2, 3):
            raise ShapeError(f"sparse.{name}: expected (indices, values[, size]) or sizes, got "
                             f"{len(args)} arguments")
        return sparse_coo_tensor(*args, dtype=dtype, device=device)
    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"A sparse {dtype} tensor, as ``torch.sparse.{name}``: " + \
        "``(indices, values[, size])``, or sizes for an empty one."
    return make


FloatTensor = _legacy(float32, "FloatTensor")
DoubleTensor = _legacy(float64, "DoubleTensor")
HalfTensor = _legacy(float16, "HalfTensor")
LongTensor = _legacy(int64, "LongTensor")
IntTensor = _legacy(int32, "IntTensor")
