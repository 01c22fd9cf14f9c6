"""Sums over a process group's ranks that autograd can pass through, the pieces the parallel
layers are built from: the sum in forward, in backward, or in both.

* :func:`summed`: the sum over the ranks in forward, and the gradient summed the same way in
  backward (each rank's input reaches every rank's output): ``SyncBatchNorm``'s statistics,
  as ``torch.distributed.nn.functional.all_reduce``;
* :func:`copy_to_group`: the identity in forward, the gradient summed in backward: a full
  activation entering a tensor-parallel layer, each rank's part of which uses it;
* :func:`reduce_from_group`: the sum in forward, the identity in backward: partial products
  leaving a row-parallel layer.

Example (on every rank of ``gradient run -n 2``)::

    >>> total = summed(x.sum(0), group)      # the whole batch's sum; differentiable
"""

from __future__ import annotations

from ..autograd.function import Function
from . import collectives

__all__ = ["summed", "copy_to_group", "reduce_from_group"]


class _SumOverGroup(Function):
    """``x`` summed over ``group``'s ranks where ``in_forward``, passed on otherwise; its
    gradient summed where ``in_backward``."""

    @staticmethod
    def forward(ctx, x, group, in_forward: bool, in_backward: bool):
        ctx.group, ctx.in_backward = group, in_backward
        out = x.clone()
        if in_forward:
            collectives.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.in_backward:
            grad = grad.clone()
            collectives.all_reduce(grad, group=ctx.group)
        return grad, None, None, None


def summed(x, group=None):
    """``x`` summed over the ranks; its gradient summed likewise."""
    return _SumOverGroup.apply(x, group, True, True)


def copy_to_group(x, group=None):
    """``x`` as it is; its gradient summed over the ranks."""
    return _SumOverGroup.apply(x, group, False, True)


def reduce_from_group(x, group=None):
    """``x`` summed over the ranks; its gradient as it is."""
    return _SumOverGroup.apply(x, group, True, False)
