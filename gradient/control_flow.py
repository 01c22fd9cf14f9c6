"""``gradient.cond`` and ``gradient.while_loop``: PyTorch's control-flow operators, which
export-friendly models write instead of Python's ``if`` and ``while``. gradient runs them
eagerly: the branch taken or the loop is ordinary Python over tensors, so autograd records
what ran.

Example::

    >>> gradient.cond(x.sum() > 0, lambda t: t.sin(), lambda t: t.cos(), (x,))
    >>> i, y = gradient.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2),
    ...                            (gradient.tensor(0), gradient.ones(2)))
"""

from __future__ import annotations

from .tensor import Tensor
from .errors import ArgumentTypeError, ArgumentValueError

__all__ = ["cond", "while_loop"]


def _truth(pred, fn: str) -> bool:
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise ArgumentValueError(
                f"{fn}: expected pred to be a bool or a single-element tensor, got "
                f"a tensor of shape {tuple(pred.shape)}")
        return bool(pred.item())
    if not isinstance(pred, bool):
        raise ArgumentTypeError(
            f"{fn}: expected pred to be a bool or a single-element tensor, got "
            f"{type(pred).__name__}")
    return pred


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` (a bool or a one-element tensor), else
    ``false_fn(*operands)``, as ``torch.cond``."""
    return (true_fn if _truth(pred, "cond") else false_fn)(*operands)


def while_loop(cond_fn, body_fn, carried_inputs):
    """``carried = body_fn(*carried)`` while ``cond_fn(*carried)``; the final ``carried`` (a
    tuple), as ``torch.while_loop``."""
    carried = tuple(carried_inputs)
    while _truth(cond_fn(*carried), "while_loop"):
        out = body_fn(*carried)
        carried = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    return carried
