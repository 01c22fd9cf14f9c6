"""Gradient clipping, as in ``torch.nn.utils``: rescale gradients whose norm is too large.

Example::

    loss.backward()
    total_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""

from __future__ import annotations

import warnings

import numpy as np

from ...autograd.grad_mode import no_grad
from ...dtypes import promote_types
from ...errors import AutogradError
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]


def _as_list(tensors) -> list:
    # a single tensor, or any iterable (model.parameters() is a generator: read it once)
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters) -> list:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


@no_grad()
def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector.

    ``norm_type`` may be ``inf``. ``foreach`` is accepted for PyTorch compatibility and ignored.

    >>> get_total_norm([gradient.tensor([3.0]), gradient.tensor([4.0])])   # tensor(5.)
    """
    from ... import ops
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return ops.tensor(0.0)
    total = _two_norm_of_arrays(tensors) if norm_type == 2.0 else None
    if total is None:
        # the norm of per-tensor norms is the norm of everything (for every p, inf included)
        norms = [ops.norm(t, norm_type) for t in tensors]
        dtype = norms[0].dtype
        for n in norms[1:]:
            dtype = promote_types(dtype, n.dtype)
        device = norms[0].device
        total = ops.norm(ops.stack([n.to(device=device, dtype=dtype) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(ops.isfinite(total)):
        raise AutogradError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
            "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`")
    return total


#: gradient dtypes clipped on the raw arrays (the half types round through float32: tensor ops)
_RAW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _two_norm_of_arrays(tensors) -> Tensor | None:
    """The 2-norm of all ``tensors`` together when they share one backend and one float32 or
    float64 dtype: :func:`ops.norm` of the stacked per-tensor norms, computed with the same
    primitives (the same bits) on the raw arrays, without a Tensor per step -- clipping a
    model's gradients every step costs a few primitives per parameter. None otherwise."""
    b, dtype = tensors[0]._backend, tensors[0]._data.dtype
    if dtype not in _RAW_DTYPES or any(
            t._backend is not b or t._data.dtype != dtype for t in tensors):
        return None
    norms = []
    for t in tensors:
        x = t._data
        axes = tuple(range(x.ndim))
        norms.append(b.reshape(b.unary("sqrt", b.reduce("sum", b.binary("mul", x, x), axes,
                                                         False)), (1,)))
    stacked = b.concatenate(norms, 0)
    total = b.unary("sqrt", b.reduce("sum", b.binary("mul", stacked, stacked), (0,), False))
    return Tensor._make(total, False, b)


@no_grad()
def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale the gradients in place by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    from ... import ops
    grads = _grads(parameters)
    if not grads:
        return
    coef = ops.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
    for g in grads:
        # multiplied even when coef is 1, as PyTorch does (no data-dependent branch on the device)
        if (g._backend is coef._backend and g._data.dtype == coef._data.dtype
                and g._data.dtype in _RAW_DTYPES and not g.requires_grad
                and getattr(g._data.flags, "writeable", True)):
            # the usual case, once per step: the product written into the gradient's storage
            g._backend.binary_("mul", g._data, coef._data)
            g._version.bump("mul_")
        else:
            g.mul_(coef.to(g.device))


@no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Rescale the gradients of ``parameters`` so their total norm is at most ``max_norm``.

    The norm is over all gradients together (``norm_type`` 2 by default, ``inf`` for the max
    absolute value). Gradients are modified in place; the total norm from before clipping is
    returned (a 0-d tensor), handy for logging. With ``error_if_nonfinite=True`` a NaN or inf
    norm raises :class:`~gradient.AutogradError` (PyTorch raises a plain RuntimeError).

    Example::

        >>> norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    """
    parameters = _as_list(parameters)
    grads = _grads(parameters)
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """PyTorch's deprecated name of :func:`clip_grad_norm_` (it warns, then clips)."""
    warnings.warn("nn.utils.clip_grad_norm is deprecated in favor of nn.utils.clip_grad_norm_",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


@no_grad()
def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element of ``parameters`` into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)
