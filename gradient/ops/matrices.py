"""Building matrices and small matrix products from other tensors.

``diagflat``, ``block_diag``, ``combinations``, ``rot90`` arrange existing elements;
``renorm`` rescales slices; ``addr``, ``addbmm``, ``inner``, ``dist`` and ``chain_matmul`` are
products and distances written as one matmul (or norm) of reshaped operands. All of them are
compositions of differentiable ops, so backward and double backward come for free.

Example::

    >>> gradient.block_diag(gradient.ones(2, 2), gradient.tensor([[5.0]]))   # 3x3
    >>> gradient.rot90(gradient.arange(4).reshape(2, 2))                      # [[1, 3], [0, 2]]
"""

from __future__ import annotations

import itertools as _itertools
import operator as _operator

from ..dtypes import result_type
from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_ints
from .creation import tensor as _tensor, zeros
from .elementwise import _floating, where
from .linalg import addmm, matmul
from .linalg_decompositions import multi_dot
from .reduce import norm
from .shape import cat, clone, diag, flatten, flip, permute, reshape, transpose, wrap_dim

__all__ = ["diagflat", "block_diag", "combinations", "rot90", "renorm", "addr", "addbmm", "inner",
           "dist", "chain_matmul"]
TENSOR_METHODS = ("diagflat", "rot90", "renorm", "addr", "addbmm", "inner", "dist")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A square matrix with the flattened ``input`` on its ``offset``-th diagonal.

    Example: ``gradient.diagflat(gradient.tensor([[1, 2], [3, 4]])).shape`` is ``(4, 4)``.
    """
    return diag(flatten(input), offset)


def block_diag(*tensors) -> Tensor:
    """The tensors (0-, 1- or 2-d) as blocks along the diagonal of a matrix of zeros; the dtype
    is their promoted dtype.

    Example: ``gradient.block_diag(gradient.tensor([[1, 2]]), gradient.tensor(3))`` is
    ``[[1, 2, 0], [0, 0, 3]]``.
    """
    blocks = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise ShapeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                             f"Input {i} has {t.ndim} dimensions")
        blocks.append(reshape(t, (1, 1)) if t.ndim == 0 else reshape(t, (1, -1)) if t.ndim == 1 else t)
    if not blocks:
        return zeros(1, 0)
    dtype = result_type(*blocks)
    device = blocks[0].device
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        rows.append(cat([zeros(r, left, dtype=dtype, device=device), b.to(dtype),
                         zeros(r, width - left - c, dtype=dtype, device=device)], 1))
        left += c
    return cat(rows, 0)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-``r`` combinations of the elements of the 1-d ``input``, one per row, in
    ``itertools.combinations`` order (``combinations_with_replacement`` when asked).

    Example: ``gradient.combinations(gradient.tensor([1, 2, 3]))`` is
    ``[[1, 2], [1, 3], [2, 3]]``.
    """
    if input.ndim != 1:
        raise ShapeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    r = _operator.index(r)
    if r < 0:
        raise ArgumentValueError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_empty((0,))
    pick = (_itertools.combinations_with_replacement if with_replacement
            else _itertools.combinations)(range(input.shape[0]), r)
    index = list(pick)
    if not index:
        return input.new_empty((0, r))
    return input[_tensor(index, device=input.device)]


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """``input`` rotated by 90 degrees ``k`` times in the plane of ``dims``, from the first
    towards the second dimension.

    Example: ``gradient.rot90(gradient.tensor([[1, 2], [3, 4]]))`` is ``[[2, 4], [1, 3]]``.
    """
    dims = as_ints(dims, "rot90: dims")
    if len(dims) != 2:
        raise ArgumentValueError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise ShapeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = wrap_dim(dims[0], input.ndim), wrap_dim(dims[1], input.ndim)
    if d0 == d1:
        raise ArgumentValueError(
            f"expected rotation dims to be different, but got dim0 = {d0} and "
            f"dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, [d1]), d0, d1)
    if k == 2:
        return flip(input, [d0, d1])
    if k == 3:
        return transpose(flip(input, [d0]), d0, d1)
    return clone(input)


def renorm(input: Tensor, p, dim: int, maxnorm) -> Tensor:
    """Each slice of ``input`` along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to
    norm ``maxnorm`` (the others unchanged). Differentiable through the norm, as in PyTorch.

    Example: ``gradient.renorm(w, p=2, dim=0, maxnorm=1.0)`` caps each row's length at 1.
    """
    if p <= 0:
        raise ArgumentValueError(f"renorm: non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise ArgumentValueError(f"renorm: non-negative maxnorm expected, got {maxnorm}")
    if input.ndim <= 1:
        raise ShapeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} dimensions")
    dim = wrap_dim(dim, input.ndim)
    others = tuple(d for d in range(input.ndim) if d != dim)
    norms = norm(input, p, others, keepdim=True)
    # the same 1e-7 as PyTorch, so that a slice exactly at maxnorm lands just under it
    return input * where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)`` (``input`` is ignored when ``beta`` is 0, so
    NaN there does not propagate).

    Example: ``gradient.addr(gradient.zeros(2, 3), gradient.ones(2), gradient.arange(3.0))``
    """
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(f"addr: expected 1-D vectors, got {vec1.ndim}-D and {vec2.ndim}-D")
    return addmm(input, reshape(vec1, (-1, 1)), reshape(vec2, (1, -1)), beta=beta, alpha=alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]``: the batch of products summed,
    computed as one (n, b*m) @ (b*m, p) product.

    Example: ``gradient.addbmm(gradient.zeros(3, 5), a, c)`` for ``a`` (b, 3, 4), ``c`` (b, 4, 5).
    """
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise ShapeError(f"addbmm: batch1 and batch2 must be 3-D tensors, got {batch1.ndim}-D and "
                         f"{batch2.ndim}-D")
    b, n, m = batch1.shape
    if batch2.shape[0] != b or batch2.shape[1] != m:
        raise ShapeError(f"addbmm: batch1 {tuple(batch1.shape)} and batch2 {tuple(batch2.shape)} "
                         "must have the same batch size and matching inner dimensions")
    left = reshape(permute(batch1, (1, 0, 2)), (n, b * m))
    return addmm(input, left, reshape(batch2, (b * m, batch2.shape[2])), beta=beta, alpha=alpha)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum of products over the last dimension of both tensors; the result has shape
    ``input.shape[:-1] + other.shape[:-1]`` (a product when either is 0-d).

    Example: ``gradient.inner(gradient.tensor([1.0, 2.0]), gradient.tensor([3.0, 4.0]))`` is ``11.``
    """
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    k = input.shape[-1]
    if other.shape[-1] != k:
        raise ShapeError(f"inner() the last dimension must match on both input tensors but got "
                         f"shapes {list(input.shape)} and {list(other.shape)}")
    out = matmul(reshape(input, (-1, k)), reshape(other, (-1, k)).mT)
    return reshape(out, tuple(input.shape[:-1]) + tuple(other.shape[:-1]))


def dist(input: Tensor, other: Tensor, p=2) -> Tensor:
    """The ``p``-norm of ``input - other`` (broadcast) over all elements.

    Example: ``gradient.dist(gradient.zeros(2), gradient.tensor([3.0, 4.0]))`` is ``5.``
    """
    diff = _floating(input) - _floating(other)
    return norm(flatten(diff), p)


def chain_matmul(*matrices) -> Tensor:
    """The product of the 2-d ``matrices`` in the cheapest order (``torch.chain_matmul``, which
    PyTorch deprecates for ``torch.linalg.multi_dot``).

    Example: ``gradient.chain_matmul(a, b, c)``
    """
    for i, m in enumerate(matrices):
        if m.ndim != 2:
            raise ShapeError(f"chain_matmul(): Expected 2D tensors, got tensor {i} with shape "
                             f"{tuple(m.shape)}")
    if len(matrices) == 0:
        raise ArgumentValueError("chain_matmul(): Expected one or more matrices")
    if len(matrices) == 1:
        return clone(matrices[0])
    return multi_dot(list(matrices))
