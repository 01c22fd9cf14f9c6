"""Tensor parallelism (Megatron-LM's splits): one linear layer's weight divided among the ranks
of a process group, each rank computing its part, with the communication in forward and
backward that makes the result the unsplit layer's.

* :class:`ColumnParallelLinear` splits the output features: rank r holds rows ``r*k ..
  (r+1)*k`` of the weight. Its input is the full activation (its gradient is summed over the
  ranks in backward); its output is the rank's slice of features, or, with
  ``gather_output=True``, all of them (gathered in forward, sliced in backward).
* :class:`RowParallelLinear` splits the input features: rank r holds columns ``r*k ..
  (r+1)*k``. Its input is the rank's slice (``input_is_parallel=True``, what a column-parallel
  layer before it produces) or the full activation, sliced here; the partial products are
  summed over the ranks in forward, and the bias added once after.

A column-parallel layer followed by a row-parallel one (an MLP, or attention's projections)
communicates once in forward and once in backward.

* :class:`VocabParallelEmbedding` splits an embedding table's rows (the vocabulary): rank r
  holds ids ``r*k .. (r+1)*k``, looks up the ids it holds (zeros for the others), and the
  rows are summed over the ranks in forward; each rank's gradient reaches its own rows.

Example (``gradient run -n 2 script.py``)::

    >>> up = ColumnParallelLinear.from_linear(mlp.fc1, gather_output=False)
    >>> down = RowParallelLinear.from_linear(mlp.fc2, input_is_parallel=True)
    >>> y = down(gelu(up(x)))           # y equals mlp.fc2(gelu(mlp.fc1(x))) on every rank
"""

from __future__ import annotations

import math

from ... import distributed as dist
from ...distributed.differentiable import copy_to_group, reduce_from_group
from ...autograd import Function, no_grad
from ...ops.creation import empty
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ...errors import ArgumentValueError

__all__ = ["ColumnParallelLinear", "RowParallelLinear", "VocabParallelEmbedding"]


class _GatherLastDim(Function):
    """The ranks' slices concatenated along the last dimension in forward; this rank's slice
    of the gradient in backward."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group, ctx.width = group, x.shape[-1]
        size = dist.get_world_size(group)
        parts = [empty(*x.shape, dtype=x.dtype) for _ in range(size)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return parts[0] if size == 1 else _cat_last(parts)

    @staticmethod
    def backward(ctx, grad):
        r, w = dist.get_rank(ctx.group), ctx.width
        return grad[..., r * w:(r + 1) * w].contiguous(), None


class _SliceLastDim(Function):
    """This rank's slice along the last dimension in forward; the slices gathered in
    backward."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        size, r = dist.get_world_size(group), dist.get_rank(group)
        w = x.shape[-1] // size
        return x[..., r * w:(r + 1) * w].contiguous()

    @staticmethod
    def backward(ctx, grad):
        return _GatherLastDim.apply(grad, ctx.group), None


def _cat_last(parts):
    from ...ops.shape import cat
    return cat(parts, -1)


def _split(n: int, size: int, what: str) -> int:
    if n % size:
        raise ArgumentValueError(f"{what} ({n}) must divide evenly among the {size} ranks")
    return n // size


class ColumnParallelLinear(Module):
    """``nn.Linear(in_features, out_features)`` with the output features split among the
    ranks of ``group`` (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 gather_output: bool = True, group=None, dtype=None):
        super().__init__()
        self.group = dist.get_group(group)
        self.in_features, self.out_features = in_features, out_features
        self.gather_output = gather_output
        part = _split(out_features, self.group.size, "out_features")
        self.weight = Parameter(empty(part, in_features, dtype=dtype))
        self.bias = Parameter(empty(part, dtype=dtype)) if bias else None
        _init_like_linear(self.weight, self.bias, in_features)

    @classmethod
    def from_linear(cls, linear, gather_output: bool = True, group=None):
        """This rank's part of a full ``nn.Linear`` (the same on every rank)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None,
                    gather_output, group, linear.weight.dtype)
        r, k = layer.group.rank, layer.weight.shape[0]
        with no_grad():
            layer.weight.copy_(linear.weight[r * k:(r + 1) * k])
            if layer.bias is not None:
                layer.bias.copy_(linear.bias[r * k:(r + 1) * k])
        return layer

    def forward(self, x):
        y = F.linear(copy_to_group(x, self.group), self.weight, self.bias)
        return _GatherLastDim.apply(y, self.group) if self.gather_output else y


class RowParallelLinear(Module):
    """``nn.Linear(in_features, out_features)`` with the input features split among the
    ranks of ``group`` (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 input_is_parallel: bool = False, group=None, dtype=None):
        super().__init__()
        self.group = dist.get_group(group)
        self.in_features, self.out_features = in_features, out_features
        self.input_is_parallel = input_is_parallel
        part = _split(in_features, self.group.size, "in_features")
        self.weight = Parameter(empty(out_features, part, dtype=dtype))
        self.bias = Parameter(empty(out_features, dtype=dtype)) if bias else None
        _init_like_linear(self.weight, self.bias, in_features)

    @classmethod
    def from_linear(cls, linear, input_is_parallel: bool = False, group=None):
        """This rank's part of a full ``nn.Linear`` (the same on every rank)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None,
                    input_is_parallel, group, linear.weight.dtype)
        r, k = layer.group.rank, layer.weight.shape[1]
        with no_grad():
            layer.weight.copy_(linear.weight[:, r * k:(r + 1) * k])
            if layer.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer

    def forward(self, x):
        if not self.input_is_parallel:
            x = _SliceLastDim.apply(x, self.group)
        y = reduce_from_group(F.linear(x, self.weight), self.group)
        return y if self.bias is None else y + self.bias


class VocabParallelEmbedding(Module):
    """``nn.Embedding(num_embeddings, embedding_dim)`` with the rows split among the ranks of
    ``group`` (see the module docstring); every rank gets the whole lookup."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, group=None,
                 dtype=None):
        super().__init__()
        self.group = dist.get_group(group)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        part = _split(num_embeddings, self.group.size, "num_embeddings")
        self.start, self.end = self.group.rank * part, (self.group.rank + 1) * part
        self.padding_idx = padding_idx
        self.weight = Parameter(empty(part, embedding_dim, dtype=dtype))
        with no_grad():
            init.normal_(self.weight)
            if padding_idx is not None and self.start <= padding_idx < self.end:
                self.weight[padding_idx - self.start].zero_()

    @classmethod
    def from_embedding(cls, embedding, group=None):
        """This rank's rows of a full ``nn.Embedding`` (the same on every rank)."""
        layer = cls(embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx,
                    group, embedding.weight.dtype)
        with no_grad():
            layer.weight.copy_(embedding.weight[layer.start:layer.end])
        return layer

    def forward(self, ids):
        mine = (ids >= self.start) & (ids < self.end)
        local = (ids - self.start) * mine                 # others look up row 0, then zeroed
        padding = None
        if self.padding_idx is not None and self.start <= self.padding_idx < self.end:
            padding = self.padding_idx - self.start
        rows = F.embedding(local, self.weight, padding) * mine.unsqueeze(-1).to(self.weight.dtype)
        return reduce_from_group(rows, self.group)


def _init_like_linear(weight, bias, fan_in: int) -> None:
    """nn.Linear's initialisation, with the full layer's fan-in."""
    bound = 1 / math.sqrt(fan_in) if fan_in else 0
    init.uniform_(weight, -bound, bound)
    if bias is not None:
        init.uniform_(bias, -bound, bound)
