"""Functional writes into a slice, a diagonal or an index set: ``select_scatter``,
``slice_scatter``, ``diagonal_scatter`` and ``index_reduce`` (with ``Tensor.index_reduce_``).

Each returns a new tensor: ``input`` with the addressed part replaced by (or, for
``index_reduce``, reduced with) ``src``. They are written with ``index_put`` and
``scatter_reduce``, so the gradient reaches ``input`` outside the written part and ``src``
inside it, as in PyTorch.

Example::

    >>> gradient.slice_scatter(gradient.zeros(4), gradient.ones(2), start=1, end=3)
    tensor([0., 1., 1., 0.])
"""

from __future__ import annotations

import operator as _operator

from ..errors import ArgumentValueError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .creation import arange
from .elementwise import _make_inplace
from .index import getitem, index_put, scatter_reduce
from .shape import diagonal, movedim, reshape, wrap_dim

__all__ = ["select_scatter", "slice_scatter", "diagonal_scatter", "index_reduce"]
TENSOR_METHODS = ("select_scatter", "slice_scatter", "diagonal_scatter", "index_reduce",
                  "index_reduce_")


def _put(name: str, input: Tensor, index, src: Tensor) -> Tensor:
    """``input`` with ``input[index] = src``, where ``src`` must have the shape of ``input[index]``
    exactly (PyTorch does not broadcast ``src`` here)."""
    target = tuple(getitem(input.detach(), index).shape)
    if tuple(src.shape) != target:
        raise ShapeError(f"{name}: expected src to have a size equal to the slice of self. src size "
                         f"= {list(src.shape)}, slice size = {list(target)}")
    return index_put(input, index, src.to(input.dtype))


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """``input`` with ``input.select(dim, index)`` replaced by ``src``.

    Example: ``gradient.select_scatter(gradient.zeros(2, 2), gradient.ones(2), 0, 0)`` is
    ``[[1., 1.], [0., 0.]]``.
    """
    dim = wrap_dim(dim, input.ndim)
    index = _operator.index(index)
    size = input.shape[dim]
    if not -size <= index < size:
        raise IndexRangeError(f"select_scatter(): index {index} out of range for tensor of size "
                              f"{list(input.shape)} at dimension {dim}")
    return _put("select_scatter", input, (slice(None),) * dim + (index,), src)


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None,
                  step: int = 1) -> Tensor:
    """``input`` with ``input[..., start:end:step, ...]`` (along ``dim``) replaced by ``src``.

    Example: ``gradient.slice_scatter(gradient.zeros(4), gradient.ones(2), start=1, end=3)``
    """
    dim = wrap_dim(dim, input.ndim)
    if step <= 0:
        raise ArgumentValueError(f"slice_scatter: slice step must be positive, got {step}")
    return _put("slice_scatter", input, (slice(None),) * dim + (slice(start, end, step),), src)


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0,
                     dim2: int = 1) -> Tensor:
    """``input`` with ``input.diagonal(offset, dim1, dim2)`` replaced by ``src``.

    Example: ``gradient.diagonal_scatter(gradient.zeros(2, 2), gradient.ones(2))`` is the
    identity.
    """
    target = tuple(diagonal(input.detach(), offset, dim1, dim2).shape)
    if tuple(src.shape) != target:
        raise ShapeError(f"diagonal_scatter: expected src to have a size equal to the slice of self. "
                         f"src size = {list(src.shape)}, slice size = {list(target)}")
    d1, d2 = wrap_dim(dim1, input.ndim), wrap_dim(dim2, input.ndim)
    # with the two dimensions last, the diagonal is input[..., rows, cols]
    moved = movedim(input, (d1, d2), (-2, -1))
    k = target[-1]
    steps = arange(k, device=input.device)
    rows, cols = (steps, steps + offset) if offset >= 0 else (steps - offset, steps)
    out = index_put(moved, (Ellipsis, rows, cols), src.to(input.dtype))
    return movedim(out, (-2, -1), (d1, d2))


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """``input`` with the slices of ``source`` along ``dim`` reduced into the slices of ``input``
    that the 1-d ``index`` names: ``reduce`` is ``'prod'``, ``'mean'``, ``'amax'`` or ``'amin'``;
    ``include_self=False`` leaves the old values of the written slices out.

    Example: ``gradient.ones(3).index_reduce(0, gradient.tensor([0, 0]), gradient.tensor([2.0, 3.0]), 'prod')``
    is ``tensor([6., 1., 1.])``.
    """
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ArgumentValueError(
            f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin "
            f"but got {reduce}.")
    if index.ndim > 1:
        raise ShapeError(f"index_reduce_(): Index is supposed to be a vector, got shape "
                         f"{tuple(index.shape)}")
    dim = wrap_dim(dim, input.ndim)
    src = reshape(source, (1,)) if source.ndim == 0 else source
    x = reshape(input, (1,)) if input.ndim == 0 else input
    index = reshape(index, (-1,))
    if src.ndim != x.ndim or any(s != t for d, (s, t) in enumerate(zip(src.shape, x.shape)) if d != dim):
        raise ShapeError(f"index_reduce_(): Source {tuple(source.shape)} and destination "
                         f"{tuple(input.shape)} must have the same shape except along dim {dim}")
    if index.numel() != src.shape[dim]:
        raise ShapeError(f"index_reduce_(): Number of indices ({index.numel()}) should be equal to "
                         f"source.size(dim) ({src.shape[dim]})")
    # index_reduce is scatter_reduce with the index repeated across the other dimensions
    view = [1] * src.ndim
    view[dim] = -1
    out = scatter_reduce(x, dim, reshape(index, view).expand(tuple(src.shape)), src.to(x.dtype),
                         reduce, include_self=include_self)
    return reshape(out, ()) if input.ndim == 0 else out


index_reduce_ = _make_inplace(index_reduce, "index_reduce_")
