"""Resetting gradients: what ``Module.zero_grad`` and ``Optimizer.zero_grad`` share."""

from __future__ import annotations

from typing import Iterable

from ...tensor import Tensor


def zero_grad_(parameters: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Forget the gradients of ``parameters``: ``.grad = None`` (default), or zeros in place.

    ``nn.utils.grad.zero_grad_(model.parameters())``
    """
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            if p.grad.grad_fn is not None:
                p.grad.detach_()
            else:
                p.grad.requires_grad_(False)
            p.grad.zero_()
