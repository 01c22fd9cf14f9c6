"""Moving tensors between devices; differentiable (the gradient moves back)."""

from __future__ import annotations

from ..autograd.function import ArrayFunction
from ..backends import get_backend
from ..tensor import Tensor

TENSOR_METHODS = ()


class ToDevice(ArrayFunction):
    @staticmethod
    def forward(ctx, x, target):
        ctx.source = ctx.backend.name
        target_backend = get_backend(target)
        return target_backend.from_numpy(ctx.backend.to_numpy(x))

    @staticmethod
    def backward(ctx, grad):
        return to_device(grad, ctx.source), None


def to_device(input: Tensor, device) -> Tensor:
    """``input`` copied to ``device`` (``input`` itself when it is already there)."""
    from ..device import as_device
    device = as_device(device)
    target = get_backend(device)  # the backend of that device (an index picks one GPU)
    if target is input._backend:
        return input
    out = ToDevice.apply(input, device)
    # the output lives on the target backend: rewrap it there
    out._backend = target
    return out
