"""Convolution, pooling, padding and unfold/fold: the windowed ops of ``gradient.nn.functional``.

Everything here stands on one backend primitive, the sliding-window view ``backend.windows``.
:class:`_Unfold` wraps it as a differentiable op; its backward is its adjoint :class:`_Fold`
(every window added back where it came from), and the backward of ``_Fold`` is ``_Unfold``
again. Each op below is a composition of those two with padding, reshapes and a matmul
(convolution) or a reduction over the window dimensions (pooling), so all of them are
twice differentiable without a backward of their own:

- ``conv`` = pad -> unfold -> one big matmul with the weight (im2col) -> add bias
- ``conv_transpose`` = matmul of the input with the weight -> fold (the adjoint of conv)
- ``max_pool`` = pad with -inf -> unfold -> max over the window (grad goes to the argmax)
- ``avg_pool`` = pad with 0 -> unfold -> sum over the window / PyTorch's divisor
- ``adaptive_avg_pool`` = one averaging-matrix product per spatial dimension
- ``adaptive_max_pool`` = gather each (variable-size) window, padded by repeating an element

All functions take PyTorch's arguments and accept batched ``(N, C, *spatial)`` and unbatched
``(C, *spatial)`` inputs. Deliberate differences from PyTorch's CPU kernels: adaptive_max_pool
accepts integer inputs (PyTorch refuses them), avg_pool refuses them (PyTorch truncates the mean).

Example::

    >>> import gradient.nn.functional as F
    >>> x, w = gradient.randn(8, 3, 32, 32), gradient.randn(16, 3, 3, 3)
    >>> F.max_pool2d(F.conv2d(x, w, padding="same").relu(), 2).shape
    gradient.Size([8, 16, 16, 16])
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from ..autograd import autocast_state as _autocast
from ..autograd.function import ArrayFunction
from ..dtypes import from_numpy_dtype, int64
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_int, as_ints, check_fits_in_memory, one_integer
from .creation import tensor
from .index import getitem
from .linalg import matmul
from .reduce import sum as _sum
from .shape import _as_view, clone, permute, reshape, transpose

__all__ = [
    "pad", "unfold", "fold",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
]
TENSOR_METHODS = ()


# ---------------------------------------------------------------------- argument handling
def _ntuple(value, n: int, what: str, fname: str) -> tuple:
    """An int or a length-``n`` sequence of ints as a tuple of ``n`` ints."""
    if isinstance(value, np.ndarray) and value.ndim == 1:   # a NumPy array of sizes
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ShapeError(f"{fname}: {what} must be an int or a tuple of {n} ints, got {value!r}")
        return as_ints(value, f"{fname}: {what}")
    if isinstance(value, Tensor) or not one_integer(value):
        raise ArgumentTypeError(
            f"{fname}: {what} must be an int or a tuple of {n} ints, got {value!r}")
    return (int(value),) * n


def _positive(values: tuple, what: str, fname: str) -> tuple:
    if any(v <= 0 for v in values):
        raise ArgumentValueError(f"{fname}: {what} must be positive, got {values}")
    return values


def _batched(input: Tensor, d: int, fname: str):
    """``input`` with a batch dimension, and whether one was added (unbatched input)."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"{fname}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim == d + 2:
        return input, False
    if input.ndim == d + 1:
        return reshape(input, (1,) + tuple(input.shape)), True
    raise ShapeError(f"{fname}: expected a {d + 1}-D (unbatched) or {d + 2}-D (batched) input, got "
                     f"a {input.ndim}-D input of shape {tuple(input.shape)}")


def _unbatched(out: Tensor, squeeze: bool) -> Tensor:
    return reshape(out, tuple(out.shape)[1:]) if squeeze else out


# ---------------------------------------------------------------------- the two primitives
def _kernel_positions(sizes):
    return itertools.product(*(range(k) for k in sizes))


class _Unfold(ArrayFunction):
    """Sliding windows over the last ``len(sizes)`` dimensions: ``(..., *spatial)`` ->
    ``(..., *counts, *sizes)``, a read-only strided view of the input (im2col without copying)."""

    @staticmethod
    def forward(ctx, x, sizes, steps, dilations):
        d = len(sizes)
        ctx.spatial, ctx.params = x.shape[x.ndim - d:], (sizes, steps, dilations)
        return ctx.backend.windows(x, tuple(range(x.ndim - d, x.ndim)), sizes, steps, dilations)

    @staticmethod
    def backward(ctx, grad):
        return _Fold.apply(grad, ctx.spatial, *ctx.params), None, None, None


class _Fold(ArrayFunction):
    """The adjoint of :class:`_Unfold`: ``(..., *counts, *sizes)`` windows summed back into
    ``(..., *spatial)``; where windows overlap, their values add up."""

    @staticmethod
    def forward(ctx, cols, spatial, sizes, steps, dilations):
        b, d = ctx.backend, len(sizes)
        ctx.params = (sizes, steps, dilations)
        lead, counts = cols.shape[:cols.ndim - 2 * d], cols.shape[cols.ndim - 2 * d:cols.ndim - d]
        out = b.full(tuple(lead) + tuple(spatial), 0, from_numpy_dtype(cols.dtype))
        if 0 in counts:
            return out
        # One strided slice per kernel position: the windows' elements at that position never
        # overlap each other, so a plain read-add-write is exact (no scatter needed).
        for pos in _kernel_positions(sizes):
            region = (Ellipsis,) + tuple(slice(p * dl, p * dl + st * (n - 1) + 1, st)
                                         for p, dl, st, n in zip(pos, dilations, steps, counts))
            piece = b.getitem(cols, (Ellipsis,) + (slice(None),) * d + pos)
            b.setitem(out, region, b.binary("add", b.getitem(out, region), piece))
        return out

    @staticmethod
    def backward(ctx, grad):
        return _Unfold.apply(grad, *ctx.params), None, None, None, None


class _ConstantPad(ArrayFunction):
    """Pad every dimension by non-negative ``widths`` ((before, after) pairs) with ``value``."""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return ctx.backend.pad(x, widths, "constant", value)

    @staticmethod
    def backward(ctx, grad):
        return getitem(grad, ctx.inner), None, None


class _WindowMax(ArrayFunction):
    """Max over the last dimension, and its int64 argmax (the first one among ties, as PyTorch;
    a NaN counts as the maximum). The gradient goes to the argmax only."""

    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        idx = b.reduce("argmax", x, -1, True)
        values = b.reshape(b.take_along_axis(x, idx, -1), x.shape[:-1])
        ctx.idx, ctx.size = idx, x.shape[-1]
        ctx.mark_non_differentiable(idx)
        return values, b.reshape(idx, x.shape[:-1])

    @staticmethod
    def backward(ctx, grad, _grad_idx):
        return _ScatterLast.apply(grad, ctx.idx, ctx.size)


class _ScatterLast(ArrayFunction):
    """``(...)`` values placed at ``idx`` along a new last dimension of ``size`` zeros."""

    @staticmethod
    def forward(ctx, values, idx, size):
        b = ctx.backend
        ctx.idx = idx
        out = b.full(tuple(values.shape) + (size,), 0, from_numpy_dtype(values.dtype))
        b.put_along_axis(out, idx, b.reshape(values, idx.shape), -1)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _GatherLast.apply(grad, ctx.idx), None, None


class _GatherLast(ArrayFunction):
    """The element at ``idx`` of each row of the last dimension (the adjoint of _ScatterLast)."""

    @staticmethod
    def forward(ctx, x, idx):
        b = ctx.backend
        ctx.idx, ctx.size = idx, x.shape[-1]
        return b.reshape(b.take_along_axis(x, idx, -1), x.shape[:-1])

    @staticmethod
    def backward(ctx, grad):
        return _ScatterLast.apply(grad, ctx.idx, ctx.size), None


def _windows(x: Tensor, sizes, steps, dilations) -> Tensor:
    # A view of x: it shares x's version counter, so an op that saved it (a 1x1 conv's matmul
    # saves it uncopied) notices when x is later modified in place.
    return _as_view(_Unfold.apply(x, tuple(sizes), tuple(steps), tuple(dilations)), x)


# ---------------------------------------------------------------------- pad
def _pad_widths(input: Tensor, pad, fname="pad") -> list:
    """PyTorch's flat ``pad`` (last dimension first) as one (before, after) pair per dimension."""
    try:
        pad = tuple(operator.index(p) for p in pad)
    except TypeError:  # a float width (or a non-sequence) is refused, as PyTorch does
        raise ArgumentTypeError(f"{fname}: pad must be a sequence of ints, got {pad!r}") from None
    if len(pad) % 2:
        raise ShapeError(f"{fname}: the padding length must be even (pairs of before/after), got "
                         f"{len(pad)} values: {pad}")
    if len(pad) // 2 > input.ndim:
        raise ShapeError(f"{fname}: {len(pad)} padding values pad {len(pad) // 2} dimensions, but the "
                         f"input has only {input.ndim} (shape {tuple(input.shape)})")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return widths


def _source_index(mode: str, n: int, lo: int, hi: int) -> list:
    """For reflect/replicate/circular padding of a dimension of size ``n``: the input index each
    output position copies (so the pad is a gather, and its backward accumulates)."""
    out = []
    for i in range(-lo, n + hi):
        if mode == "reflect":
            i = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
        elif mode == "replicate":
            i = min(max(i, 0), n - 1)
        else:  # circular
            i %= n
        out.append(i)
    return out


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions, last dimension first, as ``torch.nn.functional.pad``.

    ``pad = (left, right, top, bottom, ...)``; negative values crop. ``mode`` is ``'constant'``
    (with ``value``, default 0), ``'reflect'``, ``'replicate'`` or ``'circular'``; the last three
    pad 1 to 3 trailing dimensions of a batched or unbatched input, as in PyTorch.

    Example::

        >>> F.pad(gradient.ones(2, 3), (1, 1), value=-1.0).shape
        gradient.Size([2, 5])
    """
    modes = ("constant", "reflect", "replicate", "circular")
    if mode not in modes:
        raise ArgumentValueError(f"pad: mode must be one of {modes}, got {mode!r}")
    widths = _pad_widths(input, pad)
    if mode != "constant":
        if value not in (None, 0, 0.0):
            raise ArgumentValueError(
                f"pad: value={value!r} is only used with mode='constant', got mode={mode!r}")
        npad = len(pad) // 2
        if npad not in (1, 2, 3) or input.ndim not in (npad + 1, npad + 2):
            raise ShapeError(f"pad: mode={mode!r} pads 1, 2 or 3 trailing dimensions of a batched or "
                             f"unbatched input (2-D/3-D input for 2 values, 3-D/4-D for 4, 4-D/5-D for "
                             f"6); got {len(pad)} values for a {input.ndim}-D input")
    shape = tuple(input.shape)

    # Negative widths crop first (a slice); what is left is padded with non-negative widths.
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        crop = []
        for dim, ((lo, hi), n) in enumerate(zip(widths, shape)):
            start, stop = max(-lo, 0), n - max(-hi, 0)
            if stop - start + max(lo, 0) + max(hi, 0) < 0 or stop < start:
                raise ShapeError(f"pad: dimension {dim} of size {n} padded by ({lo}, {hi}) would have a "
                                 f"negative size")
            crop.append(slice(start, stop))
        input = getitem(input, tuple(crop))
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if not any(lo or hi for lo, hi in widths):
        return clone(input)  # PyTorch's pad returns new storage even when it only crops

    if mode == "constant":
        return _ConstantPad.apply(input, tuple(widths), 0 if value is None else value)

    out = input
    for dim, ((lo, hi), n) in enumerate(zip(widths, tuple(input.shape))):
        if not (lo or hi):
            continue
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ShapeError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the size {n} of "
                             f"dimension {dim} (input shape {shape})")
        if mode == "circular" and (lo > n or hi > n):
            raise ShapeError(f"pad: circular padding ({lo}, {hi}) must be at most the size {n} of "
                             f"dimension {dim} (input shape {shape})")
        if n == 0:
            raise ShapeError(f"pad: mode={mode!r} cannot pad the empty dimension {dim} (input shape "
                             f"{shape})")
        out = getitem(out, (slice(None),) * dim + (_source_index(mode, n, lo, hi),))
    return out


# ---------------------------------------------------------------------- unfold and fold
def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding blocks (im2col): ``(N, C, H, W)`` -> ``(N, C * kh * kw, L)`` with ``L``
    blocks, each column one flattened ``C x kh x kw`` patch, as ``torch.nn.functional.unfold``.

    Example::

        >>> F.unfold(gradient.randn(1, 2, 4, 4), 3).shape
        gradient.Size([1, 18, 4])
    """
    fname = "unfold"
    x, squeeze = _batched(input, 2, fname)
    k = _positive(_ntuple(kernel_size, 2, "kernel_size", fname), "kernel_size", fname)
    dl = _positive(_ntuple(dilation, 2, "dilation", fname), "dilation", fname)
    st = _positive(_ntuple(stride, 2, "stride", fname), "stride", fname)
    p = _ntuple(padding, 2, "padding", fname)
    if any(v < 0 for v in p):
        raise ArgumentValueError(f"{fname}: padding must be non-negative, got {p}")
    counts = _window_counts(tuple(x.shape[2:]), k, st, p, dl, fname)
    x = pad(x, (p[1], p[1], p[0], p[0]))
    cols = _windows(x, k, st, dl)                                   # (N, C, oh, ow, kh, kw)
    n, c = x.shape[0], x.shape[1]
    out = reshape(permute(cols, (0, 1, 4, 5, 2, 3)), (n, c * k[0] * k[1], counts[0] * counts[1]))
    if out._base is not None:  # a 1x1 kernel's columns are a view of the input; PyTorch copies
        out = clone(out)
    return _unbatched(out, squeeze)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum sliding blocks back into an image (col2im), the adjoint of :func:`unfold`:
    ``(N, C * kh * kw, L)`` -> ``(N, C, *output_size)``; overlapping blocks add up.

    Example::

        >>> F.fold(gradient.ones(1, 9, 4), (4, 4), 3)[0, 0, 1, 1].item()
        4.0
    """
    fname = "fold"
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise ShapeError(f"{fname}: expected a 2-D (unbatched) or 3-D (batched) input of shape "
                         f"(N, C * prod(kernel_size), L), got shape {tuple(getattr(input, 'shape', ()))}")
    squeeze = input.ndim == 2
    x = reshape(input, (1,) + tuple(input.shape)) if squeeze else input
    size = _positive(_ntuple(output_size, 2, "output_size", fname), "output_size", fname)
    k = _positive(_ntuple(kernel_size, 2, "kernel_size", fname), "kernel_size", fname)
    dl = _positive(_ntuple(dilation, 2, "dilation", fname), "dilation", fname)
    st = _positive(_ntuple(stride, 2, "stride", fname), "stride", fname)
    p = _ntuple(padding, 2, "padding", fname)
    if any(v < 0 for v in p):
        raise ArgumentValueError(f"{fname}: padding must be non-negative, got {p}")
    n, ck, length = x.shape
    if ck % (k[0] * k[1]):
        raise ShapeError(f"{fname}: the input's dimension 1 ({ck}) must be divisible by the product of "
                         f"kernel_size {k} ({k[0] * k[1]})")
    counts = _window_counts(size, k, st, p, dl, fname)
    if counts[0] * counts[1] != length:
        raise ShapeError(f"{fname}: output_size {size} with kernel_size {k}, dilation {dl}, padding "
                         f"{p} and stride {st} gives {counts[0]} x {counts[1]} = "
                         f"{counts[0] * counts[1]} blocks, but the input has {length}")
    c = ck // (k[0] * k[1])
    cols = permute(reshape(x, (n, c, k[0], k[1], counts[0], counts[1])), (0, 1, 4, 5, 2, 3))
    padded = tuple(s + 2 * q for s, q in zip(size, p))
    out = _Fold.apply(cols, padded, k, st, dl)
    out = pad(out, (-p[1], -p[1], -p[0], -p[0]))
    return _unbatched(out, squeeze)


def _window_counts(spatial, k, st, p, dl, fname) -> tuple:
    """Number of windows along each dimension; a clear error when the kernel does not fit."""
    counts = []
    for n, kk, s, q, d in zip(spatial, k, st, p, dl):
        span = d * (kk - 1) + 1
        if n + 2 * q < span:
            raise ShapeError(f"{fname}: the kernel (size {tuple(k)}, dilation {tuple(dl)}: spans "
                             f"{span}) is larger than the padded input (spatial size {tuple(spatial)} "
                             f"+ padding {tuple(p)} on each side)")
        counts.append((n + 2 * q - span) // s + 1)
    return tuple(counts)


# ---------------------------------------------------------------------- convolution
def _check_conv_dtypes(x: Tensor, weight: Tensor, bias, fname: str):
    if not isinstance(weight, Tensor):
        raise ArgumentTypeError(f"{fname}: expected a Tensor weight, got {type(weight).__name__}")
    if x.dtype is not weight.dtype:
        raise DTypeError(f"{fname}: input ({x.dtype}) and weight ({weight.dtype}) must have the same "
                         "dtype; convert one with .to()")
    if bias is not None and not isinstance(bias, Tensor):
        raise ArgumentTypeError(
            f"{fname}: expected a Tensor bias (or None), got {type(bias).__name__}")
    if bias is not None and bias.dtype is not x.dtype:
        raise DTypeError(f"{fname}: bias ({bias.dtype}) must have the dtype of the input ({x.dtype})")


def _conv_padding(padding, d, k, dl, st, fname) -> list:
    """(before, after) per spatial dimension, from an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * d
        if padding == "same":
            if any(s != 1 for s in st):
                raise ArgumentValueError(
                    f"{fname}: padding='same' is not supported for strided convolutions "
                    f"(stride={st})")
            # PyTorch puts the odd extra element of an even kernel after (right/bottom)
            return [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, dl)]
        raise ArgumentValueError(
            f"{fname}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    p = _ntuple(padding, d, "padding", fname)
    if any(v < 0 for v in p):
        raise ArgumentValueError(f"{fname}: padding must be non-negative, got {p}")
    return [(v, v) for v in p]


def _convnd(d, input, weight, bias, stride, padding, dilation, groups, fname) -> Tensor:
    input, weight, bias = _autocast.to_lower_precision(input, weight, bias)  # autocast: bf16/fp16
    x, squeeze = _batched(input, d, fname)
    _check_conv_dtypes(x, weight, bias, fname)
    if weight.ndim != d + 2:
        raise ShapeError(f"{fname}: expected a {d + 2}-D weight (out_channels, in_channels / groups, "
                         f"*kernel), got shape {tuple(weight.shape)}")
    st = _positive(_ntuple(stride, d, "stride", fname), "stride", fname)
    dl = _positive(_ntuple(dilation, d, "dilation", fname), "dilation", fname)
    groups = int(groups)
    if groups <= 0:
        raise ArgumentValueError(f"{fname}: groups must be positive, got {groups}")
    n, c = x.shape[0], x.shape[1]
    out_c, cg = weight.shape[0], weight.shape[1]
    k = tuple(weight.shape[2:])
    if out_c % groups:
        raise ShapeError(f"{fname}: out_channels ({out_c}, weight shape {tuple(weight.shape)}) must be "
                         f"divisible by groups ({groups})")
    if cg * groups != c:
        raise ShapeError(f"{fname}: the weight of shape {tuple(weight.shape)} with groups={groups} "
                         f"expects {cg * groups} input channels, but the input of shape "
                         f"{tuple(input.shape)} has {c}")
    if bias is not None and tuple(bias.shape) != (out_c,):
        raise ShapeError(f"{fname}: bias must have shape ({out_c},), got {tuple(bias.shape)}")
    widths = _conv_padding(padding, d, k, dl, st, fname)
    spatial = tuple(x.shape[2:])
    for i in range(d):
        span = dl[i] * (k[i] - 1) + 1
        if spatial[i] + sum(widths[i]) < span:
            raise ShapeError(f"{fname}: the kernel (size {k}, dilation {dl}) is larger than the padded "
                             f"input (input size {spatial}, padding {tuple(widths)})")

    if any(lo or hi for lo, hi in widths):
        x = pad(x, _flat(widths))
    cols = _windows(x, k, st, dl)                        # (N, C, *out, *k), a view of x
    counts = tuple(cols.shape[2:2 + d])
    length, ksize = math.prod(counts), math.prod(k)
    # im2col: (N, groups, C/groups * K, L) -- the one copy -- times (groups, O/groups, C/groups * K)
    cols = reshape(cols, (n, groups, c // groups) + counts + k)
    cols = permute(cols, (0, 1, 2) + tuple(range(3 + d, 3 + 2 * d)) + tuple(range(3, 3 + d)))
    cols = reshape(cols, (n, groups, cg * ksize, length))
    w = reshape(weight, (groups, out_c // groups, cg * ksize))
    out = reshape(matmul(w, cols), (n, out_c) + counts)
    if bias is not None:
        out = out + reshape(bias, (out_c,) + (1,) * d)
    return _unbatched(out, squeeze)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution (cross-correlation) of ``(N, C, L)`` with ``(O, C / groups, k)``.

    ``padding`` is an int, a tuple, ``'valid'`` or ``'same'``.

    Example::

        >>> F.conv1d(gradient.randn(2, 4, 10), gradient.randn(6, 4, 3), padding="same").shape
        gradient.Size([2, 6, 10])
    """
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation) of ``(N, C, H, W)`` with ``(O, C / groups, kh, kw)``.

    Computed as im2col (a strided window view, copied once) and one batched matmul.
    ``padding`` is an int, a tuple, ``'valid'`` or ``'same'`` (the odd extra element of an even
    kernel goes after, as in PyTorch).

    Example::

        >>> F.conv2d(gradient.randn(1, 3, 8, 8), gradient.randn(4, 3, 3, 3), stride=2, padding=1).shape
        gradient.Size([1, 4, 4, 4])
    """
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D convolution of ``(N, C, D, H, W)`` with ``(O, C / groups, kd, kh, kw)``.

    Example::

        >>> F.conv3d(gradient.randn(1, 2, 4, 4, 4), gradient.randn(3, 2, 3, 3, 3)).shape
        gradient.Size([1, 3, 2, 2, 2])
    """
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups, "conv3d")


def _conv_transposend(d, input, weight, bias, stride, padding, output_padding, groups, dilation,
                      fname) -> Tensor:
    input, weight, bias = _autocast.to_lower_precision(input, weight, bias)  # autocast: bf16/fp16
    x, squeeze = _batched(input, d, fname)
    _check_conv_dtypes(x, weight, bias, fname)
    if weight.ndim != d + 2:
        raise ShapeError(f"{fname}: expected a {d + 2}-D weight (in_channels, out_channels / groups, "
                         f"*kernel), got shape {tuple(weight.shape)}")
    st = _positive(_ntuple(stride, d, "stride", fname), "stride", fname)
    dl = _positive(_ntuple(dilation, d, "dilation", fname), "dilation", fname)
    if isinstance(padding, str):
        raise ArgumentValueError(
            f"{fname}: padding must be an int or a tuple of ints, got {padding!r}")
    p = _ntuple(padding, d, "padding", fname)
    op = _ntuple(output_padding, d, "output_padding", fname)
    if any(v < 0 for v in p + op):
        raise ArgumentValueError(
            f"{fname}: padding and output_padding must be non-negative, got {p} and {op}")
    for o, s, dd in zip(op, st, dl):
        if o >= max(s, dd):
            raise ArgumentValueError(
                f"{fname}: output_padding {op} must be smaller than either stride {st} or "
                f"dilation {dl} in each dimension")
    groups = int(groups)
    if groups <= 0:
        raise ArgumentValueError(f"{fname}: groups must be positive, got {groups}")
    n, c = x.shape[0], x.shape[1]
    in_c, og = weight.shape[0], weight.shape[1]
    k = tuple(weight.shape[2:])
    if in_c != c:
        raise ShapeError(f"{fname}: the weight of shape {tuple(weight.shape)} expects {in_c} input "
                         f"channels, but the input of shape {tuple(input.shape)} has {c}")
    if c % groups:
        raise ShapeError(f"{fname}: in_channels ({c}) must be divisible by groups ({groups})")
    out_c = og * groups
    if bias is not None and tuple(bias.shape) != (out_c,):
        raise ShapeError(f"{fname}: bias must have shape ({out_c},), got {tuple(bias.shape)}")
    spatial = tuple(x.shape[2:])
    full = tuple((i - 1) * s + dd * (kk - 1) + 1 for i, s, dd, kk in zip(spatial, st, dl, k))
    out_size = tuple(f - 2 * q + o for f, q, o in zip(full, p, op))
    if any(s <= 0 for s in out_size):
        raise ShapeError(f"{fname}: the output size {out_size} (input size {spatial}, padding {p}, "
                         f"output_padding {op}) is not positive")

    # The adjoint of conv: every input pixel spreads weight * value over its kernel window.
    cg, ksize, length = c // groups, math.prod(k), math.prod(spatial)
    w = transpose(reshape(weight, (groups, cg, og * ksize)), -1, -2)       # (g, O/g * K, C/g)
    cols = matmul(w, reshape(x, (n, groups, cg, length)))          # (N, g, O/g * K, L)
    cols = reshape(cols, (n, out_c) + k + spatial)
    cols = permute(cols, (0, 1) + tuple(range(2 + d, 2 + 2 * d)) + tuple(range(2, 2 + d)))
    out = _Fold.apply(cols, full, k, st, dl)
    # crop the padding off both sides and add output_padding zeros after
    out = pad(out, tuple(v for q, o in zip(reversed(p), reversed(op)) for v in (-q, o - q)))
    if bias is not None:
        out = out + reshape(bias, (out_c,) + (1,) * d)
    return _unbatched(out, squeeze)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """1-D transposed convolution ("deconvolution"), the gradient of :func:`conv1d` w.r.t. its input.

    ``weight`` is ``(in_channels, out_channels / groups, k)``.

    Example::

        >>> F.conv_transpose1d(gradient.randn(1, 4, 5), gradient.randn(4, 2, 3), stride=2).shape
        gradient.Size([1, 2, 11])
    """
    return _conv_transposend(1, input, weight, bias, stride, padding, output_padding, groups,
                             dilation, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """2-D transposed convolution, the gradient of :func:`conv2d` w.r.t. its input.

    ``weight`` is ``(in_channels, out_channels / groups, kh, kw)``; the output size is
    ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    Example::

        >>> F.conv_transpose2d(gradient.randn(1, 4, 5, 5), gradient.randn(4, 2, 3, 3), stride=2,
        ...                    padding=1, output_padding=1).shape
        gradient.Size([1, 2, 10, 10])
    """
    return _conv_transposend(2, input, weight, bias, stride, padding, output_padding, groups,
                             dilation, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """3-D transposed convolution; ``weight`` is ``(in_channels, out_channels / groups, kd, kh, kw)``.

    Example::

        >>> F.conv_transpose3d(gradient.randn(1, 2, 3, 3, 3), gradient.randn(2, 1, 2, 2, 2)).shape
        gradient.Size([1, 1, 4, 4, 4])
    """
    return _conv_transposend(3, input, weight, bias, stride, padding, output_padding, groups,
                             dilation, "conv_transpose3d")


# ---------------------------------------------------------------------- pooling
def _pool_geometry(spatial, k, st, p, dl, ceil_mode, fname) -> tuple:
    """Output sizes and the (before, after) padding that makes the windows fit exactly.

    PyTorch's rule: ``out = floor_or_ceil((n + 2p - dilation * (k - 1) - 1) / stride) + 1``, and
    in ceil mode the last window must start inside the input or the left padding.
    """
    for kk, q, dd in zip(k, p, dl):
        if q < 0 or q > kk // 2:
            raise ArgumentValueError(
                f"{fname}: padding {tuple(p)} must be non-negative and at most half the "
                f"kernel size {tuple(k)}")
    counts, widths = [], []
    for n, kk, s, q, dd in zip(spatial, k, st, p, dl):
        span = dd * (kk - 1) + 1
        num = n + 2 * q - span
        out = (num + (s - 1 if ceil_mode else 0)) // s + 1 if num >= 0 else 0
        if ceil_mode and out > 0 and (out - 1) * s >= n + q:
            out -= 1
        if out <= 0:
            raise ShapeError(f"{fname}: the input of spatial size {tuple(spatial)} is too small for "
                             f"kernel_size {tuple(k)}, dilation {tuple(dl)} and padding {tuple(p)} "
                             "(the output would be empty)")
        counts.append(out)
        # the ceil-mode window may reach past the right padding, the floor-mode one stop short of it
        widths.append((q, (out - 1) * s + span - n - q))
    return tuple(counts), widths


def _pool_args(d, input, kernel_size, stride, padding, dilation, fname):
    x, squeeze = _batched(input, d, fname)
    k = _positive(_ntuple(kernel_size, d, "kernel_size", fname), "kernel_size", fname)
    st = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else \
        _positive(_ntuple(stride, d, "stride", fname), "stride", fname)
    p = _ntuple(padding, d, "padding", fname)
    dl = _positive(_ntuple(dilation, d, "dilation", fname), "dilation", fname)
    return x, squeeze, k, st, p, dl


def _flat(widths) -> tuple:
    """(before, after) pairs, first dimension first, as F.pad's flat tuple (last dimension first)."""
    return tuple(v for lo_hi in reversed(widths) for v in lo_hi)


def _max_poolnd(d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, fname):
    x, squeeze, k, st, p, dl = _pool_args(d, input, kernel_size, stride, padding, dilation, fname)
    if x.dtype.name == "bool":
        raise DTypeError(f"{fname}: bool input is not supported")
    spatial = tuple(x.shape[2:])
    counts, widths = _pool_geometry(spatial, k, st, p, dl, ceil_mode, fname)
    # pad with a value that never wins the max: -inf, or the integer dtype's minimum
    if x.dtype.is_floating_point:
        lowest = float("-inf")
    else:
        lowest = -(2 ** (8 * x.dtype.itemsize - 1)) if x.dtype.is_signed else 0
    x = pad(x, _flat(widths), value=lowest)
    cols = reshape(_windows(x, k, st, dl), tuple(x.shape[:2]) + counts + (math.prod(k),))
    values, idx = _WindowMax.apply(cols)
    values = _unbatched(values, squeeze)
    if not return_indices:
        return values
    starts = [[i * s - q for i in range(n)] for n, s, q in zip(counts, st, p)]
    return values, _unbatched(_plane_indices(idx, k, dl, starts, spatial, x), squeeze)


def _plane_indices(idx: Tensor, k, dl, starts, spatial, like: Tensor) -> Tensor:
    """PyTorch's pooling indices: the flat position (``h * W + w`` in 2-D) in the unpadded input
    plane of the element that ``idx``, a flat position inside each window of size ``k`` with
    dilation ``dl``, picks. ``starts[j]`` lists where the windows start along dimension j."""
    d, flat = len(k), None
    for j in reversed(range(d)):
        kj, idx = idx % k[j], idx // k[j]
        shape = [1] * d
        shape[j] = len(starts[j])
        start = reshape(tensor(starts[j], dtype=int64, device=like.device), tuple(shape))
        pos = (start + kj * dl[j]) * math.prod(spatial[j + 1:])
        flat = pos if flat is None else flat + pos
    return flat


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over ``(N, C, L)``; with ``return_indices`` also the argmax positions.

    Example::

        >>> F.max_pool1d(gradient.randn(1, 2, 8), 2).shape
        gradient.Size([1, 2, 4])
    """
    return _max_poolnd(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` (``stride`` defaults to ``kernel_size``).

    The gradient goes to the position of each window's maximum (the first one among ties,
    as in PyTorch). With ``return_indices=True`` returns ``(output, indices)``, the indices
    being flat positions ``h * W + w`` in each input plane.

    Example::

        >>> F.max_pool2d(gradient.randn(1, 3, 8, 8), 3, stride=2, padding=1).shape
        gradient.Size([1, 3, 4, 4])
    """
    return _max_poolnd(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling over ``(N, C, D, H, W)``.

    Example::

        >>> F.max_pool3d(gradient.randn(1, 1, 4, 4, 4), 2).shape
        gradient.Size([1, 1, 2, 2, 2])
    """
    return _max_poolnd(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       "max_pool3d")


def _avg_poolnd(d, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, fname):
    x, squeeze, k, st, p, dl = _pool_args(d, input, kernel_size, stride, padding, 1, fname)
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{fname}: expected a floating-point input, got {x.dtype}")
    if divisor_override is not None and int(divisor_override) == 0:
        raise ArgumentValueError(f"{fname}: divisor_override must be non-zero")
    spatial = tuple(x.shape[2:])
    counts, widths = _pool_geometry(spatial, k, st, p, dl, ceil_mode, fname)
    x = pad(x, _flat(widths))
    sums = _sum(_windows(x, k, st, dl), dim=tuple(range(2 + d, 2 + 2 * d)))
    if divisor_override is not None:
        out = sums / divisor_override
    else:
        out = sums / _avg_divisor(spatial, counts, k, st, p, count_include_pad, x)
    return _unbatched(out, squeeze)


def _avg_divisor(spatial, counts, k, st, p, count_include_pad, like) -> Tensor:
    """PyTorch's divisor per output position: the window clipped to the padded input (padding
    counted), or clipped to the input itself (``count_include_pad=False``). It is a product of
    one factor per dimension."""
    divisor = None
    for j, (n, kk, s, q, o) in enumerate(zip(spatial, k, st, p, counts)):
        sizes = []
        for i in range(o):
            start = i * s - q
            end = min(start + kk, n + q)
            if not count_include_pad:
                start, end = max(start, 0), min(end, n)
            sizes.append(end - start)
        shape = [1] * len(spatial)
        shape[j] = o
        factor = reshape(tensor(sizes, dtype=like.dtype, device=like.device), tuple(shape))
        divisor = factor if divisor is None else divisor * factor
    return divisor


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """1-D average pooling over ``(N, C, L)``.

    Example::

        >>> F.avg_pool1d(gradient.ones(1, 1, 6), 3, padding=1).shape
        gradient.Size([1, 1, 2])
    """
    return _avg_poolnd(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                       "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """2-D average pooling over ``(N, C, H, W)`` with PyTorch's divisor rules.

    ``count_include_pad=False`` divides by the number of input (non-padding) elements of each
    window; ``divisor_override`` divides every window sum by that number instead.

    Example::

        >>> F.avg_pool2d(gradient.ones(1, 1, 4, 4), 2).shape
        gradient.Size([1, 1, 2, 2])
    """
    return _avg_poolnd(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """3-D average pooling over ``(N, C, D, H, W)``.

    Example::

        >>> F.avg_pool3d(gradient.ones(1, 1, 4, 4, 4), 2).shape
        gradient.Size([1, 1, 2, 2, 2])
    """
    return _avg_poolnd(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, "avg_pool3d")


# ---------------------------------------------------------------------- adaptive pooling
def _adaptive_sizes(input: Tensor, output_size, d: int, fname: str) -> tuple:
    if output_size is None or one_integer(output_size):
        output_size = (output_size,) * d
    if not isinstance(output_size, (tuple, list)):
        raise ArgumentTypeError(f"{fname}: output_size must be an int or a tuple of {d} ints, "
                                f"got {output_size!r}")
    output_size = tuple(None if o is None else as_int(o, f"{fname}: output_size")
                        for o in output_size)
    if len(output_size) != d:
        raise ShapeError(f"{fname}: output_size must be an int or a tuple of {d}, got {output_size!r}")
    spatial = tuple(input.shape[-d:])
    sizes = tuple(n if o is None else int(o) for o, n in zip(output_size, spatial))
    if any(s < 0 for s in sizes):
        raise ArgumentValueError(f"{fname}: output_size must be non-negative, got {output_size}")
    for n in spatial:
        if n == 0:
            raise ShapeError(f"{fname}: expected non-empty spatial dimensions, got input shape "
                             f"{tuple(input.shape)}")
    # (the windows are Python lists as long as the output's sides: checked before they grow)
    check_fits_in_memory(f"{fname}: output_size {sizes}", max(math.prod(input.shape[:-d]), 1)
                         * max(math.prod(sizes), max(sizes) * max(spatial)),
                         input._data.dtype.itemsize)
    return sizes


def _adaptive_ranges(n: int, out: int) -> list:
    """PyTorch's windows: output i pools input[floor(i * n / out) : ceil((i + 1) * n / out)]."""
    return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]


def _adaptive_avg_poolnd(d, input, output_size, fname):
    x, squeeze = _batched(input, d, fname)
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{fname}: expected a floating-point input, got {x.dtype}")
    sizes = _adaptive_sizes(x, output_size, d, fname)
    # Separable: average along each spatial dimension in turn, as a product with an (n, out)
    # matrix whose column i holds 1 / len on output i's window.
    out = x
    for j, o in enumerate(sizes):
        n = x.shape[2 + j]
        rows = [[0.0] * o for _ in range(n)]
        for i, (a, b) in enumerate(_adaptive_ranges(n, o)):
            for r in range(a, b):
                rows[r][i] = 1.0 / (b - a)
        avg = tensor(rows, dtype=x.dtype, device=x.device)
        axis = 2 + j
        moved = transpose(out, axis, -1) if axis != out.ndim - 1 else out
        moved = matmul(moved, avg)
        out = transpose(moved, axis, -1) if axis != out.ndim - 1 else moved
    return _unbatched(out, squeeze)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average pooling of ``(N, C, L)`` to ``output_size`` with PyTorch's window boundaries.

    Example::

        >>> F.adaptive_avg_pool1d(gradient.randn(1, 2, 7), 3).shape
        gradient.Size([1, 2, 3])
    """
    return _adaptive_avg_poolnd(1, input, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling of ``(N, C, H, W)`` to ``output_size`` (an int, or a pair where None
    keeps that input size); windows ``[floor(i*H/oH), ceil((i+1)*H/oH))`` as in PyTorch.

    Example::

        >>> F.adaptive_avg_pool2d(gradient.randn(1, 2, 7, 5), (3, None)).shape
        gradient.Size([1, 2, 3, 5])
    """
    return _adaptive_avg_poolnd(2, input, output_size, "adaptive_avg_pool2d")


def _adaptive_max_poolnd(d, input, output_size, return_indices, fname):
    x, squeeze = _batched(input, d, fname)
    if x.dtype.name == "bool":
        raise DTypeError(f"{fname}: bool input is not supported")
    sizes = _adaptive_sizes(x, output_size, d, fname)
    spatial = tuple(x.shape[2:])
    if 0 in sizes:
        raise ShapeError(f"{fname}: output_size must be positive, got {sizes}")
    # Gather each window as a fixed-size block, padded by repeating the window's last element:
    # a repeat comes after the original in scan order, so it never changes which one is the
    # (first) maximum.
    index, starts, ks = [], [], []
    for j, (n, o) in enumerate(zip(spatial, sizes)):
        ranges = _adaptive_ranges(n, o)
        kmax = max(b - a for a, b in ranges)
        table = [[min(a + t, b - 1) for t in range(kmax)] for a, b in ranges]
        shape = [1] * (2 * d)
        shape[2 * j], shape[2 * j + 1] = o, kmax
        index.append(reshape(tensor(table, dtype=int64, device=x.device), tuple(shape)))
        starts.append([a for a, _ in ranges])
        ks.append(kmax)
    blocks = getitem(x, (slice(None), slice(None)) + tuple(index))      # (N, C, o1, k1, o2, k2 ...)
    blocks = permute(blocks, (0, 1) + tuple(range(2, 2 + 2 * d, 2)) + tuple(range(3, 3 + 2 * d, 2)))
    values, idx = _WindowMax.apply(reshape(blocks, tuple(x.shape[:2]) + sizes + (math.prod(ks),)))
    values = _unbatched(values, squeeze)
    if not return_indices:
        return values
    return values, _unbatched(_plane_indices(idx, ks, (1,) * d, starts, spatial, x), squeeze)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, L)`` to ``output_size`` with PyTorch's window boundaries.

    Example::

        >>> F.adaptive_max_pool1d(gradient.randn(1, 2, 7), 3).shape
        gradient.Size([1, 2, 3])
    """
    return _adaptive_max_poolnd(1, input, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, H, W)`` to ``output_size`` (None keeps that input size).

    Example::

        >>> F.adaptive_max_pool2d(gradient.randn(1, 2, 7, 5), 3).shape
        gradient.Size([1, 2, 3, 3])
    """
    return _adaptive_max_poolnd(2, input, output_size, return_indices, "adaptive_max_pool2d")
