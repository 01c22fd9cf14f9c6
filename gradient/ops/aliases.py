"""Other names PyTorch has for what gradient already computes, so ported scripts find them:
``rsub``, ``positive``, ``split_with_sizes``, ``unsafe_split``/``unsafe_chunk``, the deprecated
``range``, ``trapz``, ``frobenius_norm`` and ``nuclear_norm``, ``detach(x)``, the ``*_copy``
forms of the views (``permute_copy``, ``view_copy`` ...), the top-level in-place forms
(``gradient.clamp_(x, 0)`` is ``x.clamp_(0)``), and the type queries ``typename``,
``is_storage`` and ``can_cast``.

Example::

    >>> gradient.rsub(gradient.tensor([1, 2]), 5)        # 5 - x: tensor([4, 3])
    >>> gradient.can_cast(gradient.float32, gradient.int32)
    False
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from ..dtypes import as_dtype, bool_, get_default_dtype
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError
from ..tensor import Tensor
from .argument_errors import as_ints, as_number
from .creation import tensor
from .elementwise import sub
from .linalg_decompositions import svdvals
from .special import trapezoid
from .shape import chunk, split, wrap_dim

__all__ = ["rsub", "positive", "split_with_sizes", "unsafe_split", "unsafe_chunk",
           "unsafe_split_with_sizes", "range", "typename", "is_storage", "can_cast"]
TENSOR_METHODS = ("positive", "split_with_sizes", "unsafe_split", "unsafe_chunk",
                  "unsafe_split_with_sizes")


def rsub(input, other, *, alpha=1) -> Tensor:
    """``other - alpha * input`` (``sub`` with its operands swapped).

    Example: ``gradient.rsub(gradient.tensor([1.0, 2.0]), 5.0, alpha=2)`` is ``tensor([3., 1.])``.
    """
    return sub(other, input, alpha=alpha)


def positive(input: Tensor) -> Tensor:
    """``+input``: the tensor itself (bool tensors are refused, as in PyTorch).

    Example: ``gradient.positive(x) is x``.
    """
    if input.dtype is bool_:
        raise DTypeError("The `+` operator, on a bool tensor is not supported.")
    return input


def split_with_sizes(input: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple:
    """Views of ``input`` of the given sizes along ``dim`` (they must add up to its size).

    Example: ``gradient.arange(5).split_with_sizes([2, 3])`` is
    ``(tensor([0, 1]), tensor([2, 3, 4]))``.
    """
    if not isinstance(split_sizes, (list, tuple)):
        raise ArgumentTypeError(f"split_with_sizes(): split_sizes must be a tuple of ints, not "
                                f"{type(split_sizes).__name__}")
    return split(input, list(split_sizes), dim)


def unsafe_split(tensor: Tensor, split_size: int, dim: int = 0) -> tuple:
    """:func:`split` under its other name (PyTorch's skips view tracking; gradient's pieces are
    the same views as ``split``'s). Example: ``gradient.unsafe_split(x, 2)``."""
    return split(tensor, split_size, dim)


def unsafe_split_with_sizes(input: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple:
    """:func:`split_with_sizes` under its other name (see :func:`unsafe_split`)."""
    return split_with_sizes(input, split_sizes, dim)


def unsafe_chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """:func:`chunk` under its other name (see :func:`unsafe_split`).
    Example: ``gradient.unsafe_chunk(x, 3)``."""
    return chunk(input, chunks, dim)


def range(start, end, step=1, *, dtype=None, device=None,  # noqa: A001  (torch.range)
          requires_grad: bool = False) -> Tensor:
    """Deprecated, as in PyTorch (use :func:`arange`): the values ``start, start + step, ...``
    up to and *including* ``end``, in the default floating dtype unless ``dtype`` is given.

    Example: ``gradient.range(1, 4)`` is ``tensor([1., 2., 3., 4.])`` (with a UserWarning).
    """
    warnings.warn("torch.range is deprecated and will be removed in a future release because its "
                  "behavior is inconsistent with Python's range builtin. Instead, use "
                  "torch.arange, which produces values in [start, end).", UserWarning, stacklevel=2)
    start, end, step = (as_number(v, f"range: {name}")
                        for v, name in ((start, "start"), (end, "end"), (step, "step")))
    if step == 0:
        raise ArgumentValueError("range: step must be nonzero")
    if (end - start) * step < 0:
        raise ArgumentValueError("range: upper bound and lower bound inconsistent with step sign")
    n = int(math.floor((end - start) / step)) + 1
    values = start + np.arange(n, dtype=np.float64) * step     # in float64, then one rounding
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    return tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


def typename(obj) -> str:
    """A readable name for ``obj``'s type: ``x.type()`` for a tensor, else the dotted name of
    the class or function (``typename(nn.Linear)`` is ``'gradient.nn.modules.linear.Linear'``,
    ``typename(3)`` is ``'int'``)."""
    if isinstance(obj, Tensor):
        return obj.type()
    # a class or a function names itself; any other object is named by its class
    named = obj if hasattr(obj, "__qualname__") or hasattr(obj, "__name__") else type(obj)
    module = getattr(named, "__module__", "") or ""
    name = getattr(named, "__qualname__", None) or named.__name__
    return name if module in ("", "builtins") else f"{module}.{name}"


def is_storage(obj) -> bool:
    """Whether ``obj`` is a storage object: always False, since gradient has no storages (a
    tensor owns its backend array). Example: ``gradient.is_storage(x)`` is False."""
    return False


def _category(dtype) -> int:
    """0 bool, 1 integer, 2 floating: casting may go up this order, never down."""
    if dtype is bool_:
        return 0
    return 2 if dtype.is_floating_point else 1


def can_cast(from_, to) -> bool:
    """Whether PyTorch's type promotion allows casting ``from_`` to ``to``: within a kind any
    size goes (int64 to int8 too), and a kind may rise (bool to integer to floating), not fall.

    Example: ``gradient.can_cast(gradient.int64, gradient.float16)`` is True,
    ``gradient.can_cast(gradient.float32, gradient.int32)`` is False.
    """
    return _category(as_dtype(from_)) <= _category(as_dtype(to))


# ---------------------------------------------------------------------- top-level in-place forms
def _top_level_inplace(name: str):
    def fn(input: Tensor, *args, **kwargs) -> Tensor:
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``gradient.{name}(x, ...)`` is ``x.{name}(...)``: in place, returns ``x``.")
    return fn


_TOP_LEVEL_INPLACE = ("clamp_", "clip_", "acosh_", "arccosh_", "asinh_", "arcsinh_", "atanh_",
                      "arctanh_", "cosh_", "sinh_", "erfc_", "i0_", "logit_", "sinc_", "xlogy_",
                      "deg2rad_", "rad2deg_", "addmv_", "detach_", "resize_as_")
globals().update({_n: _top_level_inplace(_n) for _n in _TOP_LEVEL_INPLACE})
__all__ += list(_TOP_LEVEL_INPLACE)


# ---------------------------------------------------------------------- deprecated names, copies
def detach(input: Tensor) -> Tensor:
    """``torch.detach(x)``: ``x.detach()``."""
    return input.detach()


def trapz(y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """``torch.trapz``, the older name of :func:`trapezoid`."""
    return trapezoid(y, x, dx=dx, dim=dim)


def frobenius_norm(input: Tensor, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """``torch.frobenius_norm`` (deprecated there): ``sqrt(sum(x**2))`` over ``dim``."""
    return (input * input).sum(dim, keepdim=keepdim).sqrt()


def nuclear_norm(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """``torch.nuclear_norm`` (deprecated there): the sum of the singular values of the
    matrices over ``dim`` (the last two by default); ``nuclear_norm(x, keepdim)`` also works."""
    if isinstance(dim, bool):            # torch.nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    dim = (-2, -1) if dim is None else as_ints(dim, "nuclear_norm: dim")
    if len(dim) != 2:
        raise ArgumentValueError(f"nuclear_norm: dim must name two dimensions (the matrices' "
                                 f"rows and columns), got {dim}")
    rows, cols = dim
    matrices = input.movedim((rows, cols), (-2, -1))
    out = svdvals(matrices).sum(-1)
    if keepdim:
        for d in sorted(x % input.ndim for x in (rows, cols)):
            out = out.unsqueeze(d)
    return out


def _copy_of(view: str):
    """``torch.<view>_copy``: the view ``x.<view>(...)`` as a tensor of its own (a copy), as
    the functional forms exported graphs use."""
    def fn(input: Tensor, *args, **kwargs):
        out = getattr(input, view)(*args, **kwargs)
        return tuple(t.clone() for t in out) if isinstance(out, (tuple, list)) else out.clone()

    fn.__name__ = fn.__qualname__ = f"{view}_copy"
    fn.__doc__ = f"``x.{view}(...)``, copied into memory of its own (``torch.{view}_copy``)."
    return fn


def slice_copy(input: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """``torch.slice_copy``: ``x[..., start:end:step, ...]`` along ``dim``, copied."""
    if input.ndim == 0:
        raise IndexRangeError("slice_copy: a slice cannot be taken of a 0-d tensor")
    index = (slice(None),) * wrap_dim(dim, input.ndim) + (slice(start, end, step),)
    return input[index].clone()


def alias_copy(input: Tensor) -> Tensor:
    """``torch.alias_copy``: a copy of ``x`` (the alias ``x`` is, in memory of its own)."""
    return input.clone()


_VIEW_COPIES = ("as_strided", "detach", "diagonal", "expand", "permute", "select", "split",
                "split_with_sizes", "squeeze", "t", "transpose", "unbind", "unfold", "unsqueeze",
                "view")
globals().update({f"{_v}_copy": _copy_of(_v) for _v in _VIEW_COPIES})
__all__ += ["detach", "trapz", "frobenius_norm", "nuclear_norm", "slice_copy", "alias_copy"] + \
    [f"{_v}_copy" for _v in _VIEW_COPIES]
