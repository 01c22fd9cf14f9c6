"""``gradient.autograd.forward_ad``: forward-mode derivatives with dual tensors, as
``torch.autograd.forward_ad``.

Inside a ``dual_level``, ``make_dual(x, t)`` pairs a tensor with a tangent; computing with it
and calling ``unpack_dual(y)`` gives ``y`` and its tangent, the Jacobian-vector product
``J_x(y) t`` (summed over every dual ``y`` depends on).

gradient has no forward-mode engine: a dual is recorded by the reverse-mode graph, and the
tangent is the derivative of a vector-Jacobian product in its cotangent ("double vjp": ``J t =
d/du <J^T u, t>``), exact, at the cost of two backward passes per ``unpack_dual``. So the ops
between ``make_dual`` and ``unpack_dual`` must be twice differentiable (gradient's are), and,
unlike PyTorch, they must run with gradients enabled (not under ``no_grad``).

Example::

    >>> import gradient.autograd.forward_ad as fwAD
    >>> x = gradient.tensor([1.0, 2.0])
    >>> with fwAD.dual_level():
    ...     y = fwAD.make_dual(x, gradient.tensor([1.0, 0.0])).exp()
    ...     fwAD.unpack_dual(y).tangent
    tensor([2.7183, 0.0000])
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import AutogradError, ShapeError
from . import grad_mode
from .engine import grad as _grad

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]

# one list per open level: (dual tensor, its tangent, whether its primal required grad)
_levels: list = []


class UnpackedDualTensor(NamedTuple):
    primal: object
    tangent: object


def enter_dual_level() -> int:
    """Open a level for dual tensors; its number (PyTorch allows one at a time)."""
    if _levels:
        raise AutogradError("forward_ad: nested dual levels are not supported (as in PyTorch); "
                            "exit the current one first")
    _levels.append([])
    return len(_levels) - 1


def exit_dual_level(*, level=None) -> None:
    """Close the current level: its duals become plain tensors (their tangents are dropped)."""
    if not _levels:
        raise AutogradError("forward_ad: no dual level to exit")
    _levels.pop()


class dual_level:
    """A block in which dual tensors live: ``with fwAD.dual_level(): ...``."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()


def make_dual(tensor, tangent, *, level=None):
    """``tensor`` paired with ``tangent`` (its shape and dtype): a tensor with ``tensor``'s
    values whose dependents carry forward derivatives in direction ``tangent``."""
    if not _levels:
        raise AutogradError("Trying to create a dual Tensor for forward AD but no level exists, "
                            "make sure to enter_dual_level() first.")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ShapeError(f"make_dual: the tangent's shape {tuple(tangent.shape)} differs from "
                         f"the primal's {tuple(tensor.shape)}")
    if not tensor.dtype.is_floating_point:
        raise AutogradError(f"make_dual: expected a floating-point primal, got {tensor.dtype}")
    if not grad_mode.is_grad_enabled():
        raise AutogradError("make_dual: gradient computes forward derivatives through its "
                            "reverse-mode graph, so gradients must be enabled (not no_grad)")
    tracked = tensor.requires_grad
    dual = tensor.view_as(tensor) if tracked else tensor.detach().requires_grad_()
    _levels[-1].append((dual, tangent.to(tensor.dtype), tracked))
    return dual


def unpack_dual(tensor, *, level=None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``: its values and its forward derivative (None when it
    depends on no dual of the current level)."""
    if not _levels:
        return UnpackedDualTensor(tensor, None)
    duals = _levels[-1]
    user_graph = any(tracked for _, _, tracked in duals)
    primal = tensor if user_graph else tensor.detach()
    for dual, tangent, _ in duals:
        if tensor is dual:
            return UnpackedDualTensor(primal, tangent)
    if not tensor.requires_grad or not tensor.dtype.is_floating_point:
        return UnpackedDualTensor(primal, None)
    from ..ops.creation import zeros_like
    cotangent = zeros_like(tensor).requires_grad_()
    with grad_mode.enable_grad():
        vjps = _grad(tensor, [d for d, _, _ in duals], cotangent, retain_graph=True,
                     create_graph=True, allow_unused=True)
        pairing = None
        for vjp, (_, tangent, _) in zip(vjps, duals):
            if vjp is not None:
                term = (vjp * tangent).sum()
                pairing = term if pairing is None else pairing + term
        if pairing is None or not pairing.requires_grad:
            return UnpackedDualTensor(primal, None if pairing is None else zeros_like(tensor))
        (jvp,) = _grad(pairing, cotangent, retain_graph=True, create_graph=user_graph,
                       allow_unused=True)
    if jvp is None:
        jvp = zeros_like(tensor)
    return UnpackedDualTensor(primal, jvp if user_graph else jvp.detach())
