"""Resetting gradients: what ``Module.zero_grad`` and ``Optimizer.zero_grad`` share (defined
with :class:`~gradient.nn.Parameter`, below :class:`~gradient.nn.Module`)."""

from ..parameter import zero_grad_

__all__ = ["zero_grad_"]
