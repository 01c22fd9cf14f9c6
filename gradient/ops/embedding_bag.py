"""``embedding_bag``: sums, means or maxima of bags of embedding rows, without the intermediate
``(bags, bag_size, dim)`` tensor.

A composition: look the rows up with :func:`~gradient.ops.nn.embedding`, then reduce them into
their bags with ``index_add`` (sum, mean) or ``scatter_reduce(..., "amax")`` (max). Entries equal
to ``padding_idx`` are dropped before the reduction, so they neither count toward a bag's mean
nor receive a gradient; an empty bag gives a row of zeros, as in PyTorch.
"""

from __future__ import annotations

from ..errors import ArgumentValueError, DTypeError, IndexRangeError, ShapeError, UnsupportedError
from ..tensor import Tensor
from .creation import arange, zeros
from .index import bincount, index_add, index_select, nonzero, scatter_reduce, searchsorted
from .nn import embedding

__all__ = ["embedding_bag"]
TENSOR_METHODS = ()

_MODES = ("sum", "mean", "max")


def _bags_of(input: Tensor, offsets, include_last_offset: bool):
    """The flat ids, the bag of each id and the number of bags."""
    if input.ndim == 2:
        if offsets is not None:
            raise ArgumentValueError(
                "embedding_bag: offsets must be None for a 2-d input (each row is a bag), "
                f"got offsets of shape {tuple(offsets.shape)}")
        num_bags, length = input.shape
        bag = arange(num_bags, device=input.device).reshape(-1, 1).expand(num_bags, length).reshape(-1)
        return input.reshape(-1), bag, num_bags
    if input.ndim != 1:
        raise ShapeError(f"embedding_bag: expected a 1-d (with offsets) or 2-d input, got shape "
                         f"{tuple(input.shape)}")
    if offsets is None:
        raise ArgumentValueError(
            "embedding_bag: a 1-d input needs offsets (where each bag starts)")
    if offsets.ndim != 1 or offsets.dtype.is_floating_point:
        raise ArgumentValueError(f"embedding_bag: offsets must be a 1-d integer tensor, got shape "
                                 f"{tuple(offsets.shape)} and dtype {offsets.dtype}")
    num_bags = offsets.shape[0] - (1 if include_last_offset else 0)
    if offsets.shape[0] and int(offsets[0]) != 0:
        raise ArgumentValueError(f"embedding_bag: offsets[0] has to be 0, got {int(offsets[0])}")
    starts = offsets[:num_bags].long()
    # the bag of position i is the last bag starting at or before i
    bag = searchsorted(starts, arange(input.shape[0], device=input.device), right=True) - 1
    return input, bag, num_bags


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2.0,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Reduce bags of embedding rows: ``out[b] = reduce(weight[ids] for ids in bag b)``.

    The bags are the rows of a 2-d ``input``, or the runs of a 1-d ``input`` starting at
    ``offsets`` (with ``include_last_offset`` the last offset is the end of the last bag).
    ``mode`` is ``"sum"``, ``"mean"`` or ``"max"``; ``per_sample_weights`` (same shape as
    ``input``, mode ``"sum"`` only) scales each row first. Entries equal to ``padding_idx`` are
    left out. With ``sparse=True`` the table's gradient is sparse, as :func:`embedding`'s.

    Example::

        >>> w = gradient.randn(10, 3)
        >>> ids = gradient.tensor([1, 2, 4, 5, 4, 3, 2, 9])
        >>> F.embedding_bag(ids, w, gradient.tensor([0, 4]), mode="sum").shape
        gradient.Size([2, 3])
    """
    if mode not in _MODES:
        raise ArgumentValueError(
            f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if not isinstance(input, Tensor) or input.dtype.is_floating_point:
        raise DTypeError(f"embedding_bag: expected integer ids, got "
                         f"{input.dtype if isinstance(input, Tensor) else type(input).__name__}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding_bag: expected a 2-d weight, got shape {tuple(weight.shape)}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise UnsupportedError(f"embedding_bag: per_sample_weights is only supported for "
                                   f"mode='sum', got mode={mode!r}")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ArgumentValueError(
                f"embedding_bag: per_sample_weights of shape {tuple(per_sample_weights.shape)} "
                f"must have the input's shape {tuple(input.shape)}")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise IndexRangeError(
                f"embedding_bag: padding_idx {padding_idx} is out of range for {n} embeddings")
        padding_idx %= n
    ids, bag, num_bags = _bags_of(input, offsets, include_last_offset)
    psw = per_sample_weights.reshape(-1) if per_sample_weights is not None else None
    if padding_idx is not None:
        kept = nonzero(ids != padding_idx).reshape(-1)
        ids, bag = index_select(ids, 0, kept), index_select(bag, 0, kept)
        psw = index_select(psw, 0, kept) if psw is not None else None
    rows = embedding(ids, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    out = zeros(num_bags, weight.shape[1], dtype=weight.dtype, device=weight.device)
    if mode == "max":
        if ids.shape[0] == 0:
            return out + 0 * weight.sum()      # keep the graph (a zero gradient) for the weight
        index = bag.reshape(-1, 1).expand(*rows.shape)
        return scatter_reduce(out, 0, index, rows, "amax", include_self=False)
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    if mode == "mean":
        counts = bincount(bag, minlength=num_bags).to(weight.dtype).clamp(min=1)
        rows = rows / index_select(counts, 0, bag).unsqueeze(-1)
    return index_add(out, 0, bag, rows)
