"""In-place forms PyTorch has beyond the elementwise ones (``tril_``, ``cumsum_``, ``greater_``,
``squeeze_``, ``transpose_`` ...), and the small top-level helpers ``fill``, ``fill_``,
``zero_``, ``adjoint``, ``get_device``, ``is_inference``.

Value-changing ones go through the same machinery as ``x.exp_()`` (see
``elementwise._make_inplace``): the out-of-place op's result is written into the storage, the
version counter is bumped, and a recorded graph moves on to the new node. The shape-changing
ones (``squeeze_``, ``unsqueeze_``, ``transpose_``, ``t_``, ``swapaxes_``/``swapdims_``) change
only how the same storage is read: the tensor takes the view's array (and, when recording, its
place in the graph); the version counter is not bumped, since no element changes.

Example::

    >>> x = gradient.ones(1, 3)
    >>> x.squeeze_().shape          # gradient.Size([3]), x itself changed
    >>> x.cumsum_(0)                # tensor([1., 2., 3.])
"""

from __future__ import annotations

from ..tensor import Tensor
from .bits import bitwise_left_shift, bitwise_right_shift, gcd, lcm, ldexp, nextafter
from .elementwise import _make_inplace, ge, gt, le, lt, ne
from .linalg import addmm, addmv, baddbmm
from .matrices import addbmm, addr, renorm
from .reduce import cumprod, cumsum
from .shape import squeeze, t, transpose, tril, triu, unsqueeze
from ..errors import ArgumentValueError

__all__ = ["fill", "fill_", "zero_", "adjoint", "get_device", "is_inference", "gcd_", "lcm_",
           "ldexp_"]

_VALUE_INPLACE = {
    "tril_": tril, "triu_": triu, "cumsum_": cumsum, "cumprod_": cumprod,
    "greater_": gt, "greater_equal_": ge, "less_": lt, "less_equal_": le, "not_equal_": ne,
    "gcd_": gcd, "lcm_": lcm, "ldexp_": ldexp, "nextafter_": nextafter,
    "renorm_": renorm, "addr_": addr, "addbmm_": addbmm,
    "addmm_": addmm, "addmv_": addmv, "baddbmm_": baddbmm,
    "bitwise_left_shift_": bitwise_left_shift, "bitwise_right_shift_": bitwise_right_shift,
}
globals().update({_name: _make_inplace(_fn, _name) for _name, _fn in _VALUE_INPLACE.items()})


def _make_view_inplace(fn, name: str):
    def method(input: Tensor, *args, **kwargs) -> Tensor:
        # (refuses a leaf that requires grad; writes no values, so an expanded tensor may)
        recording = input._check_inplace(name, writes=False)
        out = fn(input if recording else input.detach(), *args, **kwargs)
        input._data = out._data
        if recording:
            input.grad_fn, input._output_nr = out.grad_fn, out._output_nr
        return input

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"In-place :func:`{fn.__name__}`: ``x.{name}(...)`` makes ``x`` itself "
                      f"``x.{fn.__name__}(...)`` (the same storage, read with the new shape) and "
                      "returns ``x``.")
    return method


_VIEW_INPLACE = {"squeeze_": squeeze, "unsqueeze_": unsqueeze, "transpose_": transpose, "t_": t,
                 "swapaxes_": transpose, "swapdims_": transpose}
globals().update({_name: _make_view_inplace(_fn, _name) for _name, _fn in _VIEW_INPLACE.items()})


def fill(input: Tensor, value) -> Tensor:
    """A new tensor shaped like ``input`` holding ``value`` (differentiable in a tensor
    ``value``): ``gradient.fill(x, 2.0)``."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ArgumentValueError(
                f"fill only supports 0-dimension value tensor but got tensor with "
                f"{value.ndim} dimensions")
        return value.to(input.dtype).expand(tuple(input.shape)) * 1
    return input.detach().clone().fill_(value)


def fill_(input: Tensor, value) -> Tensor:
    """``input.fill_(value)``: every element set to ``value``; returns ``input``."""
    return input.fill_(value)


def zero_(input: Tensor) -> Tensor:
    """``input.zero_()``: every element set to 0; returns ``input``."""
    return input.zero_()


def adjoint(input: Tensor) -> Tensor:
    """The conjugate transpose of the last two dimensions; gradient has no complex dtypes, so
    this is ``input.mT``: ``gradient.adjoint(x)``."""
    if input.ndim < 2:
        raise ArgumentValueError(
            f"tensor.adjoint() is only supported on matrices or batches of matrices. "
            f"Got {input.ndim}-D tensor.")
    return transpose(input, -2, -1)


def get_device(input: Tensor) -> int:
    """The GPU index of a CUDA tensor, -1 for a CPU tensor (as PyTorch)."""
    dev = input.device
    return -1 if dev.type == "cpu" else (dev.index or 0)


def is_inference(input: Tensor) -> bool:
    """Whether ``input`` is an inference tensor: always False, since gradient's
    ``inference_mode`` makes ordinary tensors (see :class:`gradient.inference_mode`)."""
    return False


TENSOR_METHODS = tuple(_VALUE_INPLACE) + tuple(_VIEW_INPLACE) + ("adjoint", "get_device",
                                                                 "is_inference")
