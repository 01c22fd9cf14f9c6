"""Resampling ops of ``gradient.nn.functional``: interpolate, pixel_shuffle, affine_grid, grid_sample.

Every output element is a fixed weighted sum of a few input elements, so each op is a
composition of gathers, products with constant weights, reshapes and permutes, and is twice
differentiable without a hand-written derivative:

- ``nearest`` / ``nearest-exact``: separable, one gather per spatial dimension;
- ``linear`` / ``bilinear`` / ``trilinear``: separable too, each pass the sum of two gathers
  times their weights; ``bicubic`` the same with four taps. These passes are one small op,
  :class:`_ApplyTaps`, whose backward is the transposed map, itself a gather: no scatter in
  either direction, and double backward comes from the pair;
- ``area``: a product with an averaging matrix per dimension (adaptive average pooling);
- ``pixel_shuffle`` / ``pixel_unshuffle``: a reshape, a permute and a reshape;
- ``grid_sample``: the weights come from ``grid`` itself (so it gets a gradient too), the
  corner indices from its floor.

The source positions follow PyTorch 2.13's CPU kernels, because ``nearest`` is discontinuous
in them (one rounding decides which pixel is copied): with ``scale_factor`` given (and
``recompute_scale_factor`` not True) the step between output samples is ``1 / scale_factor``,
not ``in_size / out_size``, and the nearest modes compute it in float32 (float64 for float64
inputs), as PyTorch does. One known difference: where the exact source coordinate falls on a
pixel boundary and the step is not a binary fraction (2 -> 41 pixels, 'nearest-exact'),
PyTorch's 2-D kernel rounds one way or the other depending on the output's size; gradient
always rounds as PyTorch's 1-D and 3-D kernels do.

Deliberate differences from PyTorch: ``nearest`` modes accept integer and bool inputs (a gather
needs no arithmetic; PyTorch refuses all but uint8), the interpolating modes refuse integer
inputs (PyTorch rounds uint8 results). ``antialias=True`` (bilinear and bicubic) filters as PIL
and PyTorch do when shrinking; ``lanczos`` is not built.

Example::

    >>> import gradient.nn.functional as F
    >>> x = gradient.randn(1, 3, 8, 8)
    >>> F.interpolate(x, scale_factor=2, mode="bilinear").shape
    gradient.Size([1, 3, 16, 16])
    >>> F.pixel_shuffle(gradient.randn(1, 12, 4, 4), 2).shape
    gradient.Size([1, 3, 8, 8])
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings

import numpy as np

from ..autograd.function import ArrayFunction
from ..dtypes import bfloat16, float16, float32, float64, from_numpy_dtype, int64
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError, UnsupportedError
from ..tensor import Tensor
from .argument_errors import as_ints
from .conv import _adaptive_ranges
from .creation import tensor
from .elementwise import cast, clamp, floor, where
from .index import gather, getitem
from .linalg import matmul
from .shape import clone, expand, permute, reshape, transpose

__all__ = [
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
    "pixel_shuffle", "pixel_unshuffle", "affine_grid", "grid_sample",
]
TENSOR_METHODS = ()

_LOW_PRECISION = (float16, bfloat16)

# mode -> the number of spatial dimensions it needs (None: 1, 2 or 3)
_MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2,
          "bicubic": 2, "trilinear": 3, "lanczos": 2}
_NO_ALIGN = ("nearest", "nearest-exact", "area")  # modes where align_corners means nothing
_AXES = ("D", "H", "W")


# ---------------------------------------------------------------------- argument handling
def _is_int(value) -> bool:
    if isinstance(value, (float, Tensor)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, Tensor)


def _output_geometry(input: Tensor, size, scale_factor, recompute_scale_factor, d: int):
    """(output sizes, the scale factors the kernels use, or None per dimension), as PyTorch's
    Python layer computes them."""
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ArgumentValueError(
            "interpolate: only one of size or scale_factor should be defined, got both "
            f"size={size!r} and scale_factor={scale_factor!r}")
    if size is not None:
        if recompute_scale_factor:
            raise ArgumentValueError(
                "interpolate: recompute_scale_factor is not meaningful with an explicit "
                "size; pass scale_factor instead, or leave recompute_scale_factor None")
        if isinstance(size, (list, tuple)):
            if len(size) != d:
                raise ArgumentValueError(
                    f"interpolate: input and output must have the same number of spatial dimensions,"
                    f" but got input with spatial dimensions of {spatial} and output size of {size}. "
                    f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and output size "
                    f"in (o1, o2, ...,oK) format.")
            if not all(_is_int(s) for s in size):
                raise ArgumentTypeError(
                    f"interpolate: expected size to be one of int or Tuple[int] or "
                    f"Tuple[int, int] or Tuple[int, int, int], but got size with types "
                    f"{[type(s) for s in size]}")
            return tuple(operator.index(s) for s in size), (None,) * d
        if not _is_int(size):
            raise ArgumentTypeError(
                f"interpolate: size must be an int or a tuple of {d} ints, got "
                f"{type(size).__name__} {size!r}")
        return (operator.index(size),) * d, (None,) * d
    if scale_factor is None:
        raise ArgumentValueError("interpolate: either size or scale_factor should be defined")
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != d:
            raise ArgumentValueError(
                f"interpolate: input and scale_factor must have the same number of spatial "
                f"dimensions, but got input with spatial dimensions of {spatial} and scale_factor "
                f"of shape {scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) "
                f"format and scale_factor in (s1, s2, ...,sK) format.")
        scales = tuple(scale_factor)
    else:
        scales = (scale_factor,) * d
    if not all(_is_real(s) for s in scales):
        raise ArgumentTypeError(
            f"interpolate: scale_factor must be a number or a tuple of {d} numbers, got "
            f"{scale_factor!r}")
    scales = tuple(float(s) for s in scales)
    # the output size is the product rounded toward zero (in double precision, as PyTorch)
    sizes = tuple(int(n * s) for n, s in zip(spatial, scales))
    if recompute_scale_factor:
        scales = (None,) * d  # the kernels then step by in_size / out_size
    return sizes, scales


def _check_sizes(input: Tensor, sizes: tuple, mode: str) -> None:
    spatial = tuple(input.shape[2:])
    # 'area' is adaptive average pooling, which makes empty outputs (PyTorch's too)
    smallest = 0 if mode == "area" else 1
    if all(n > 0 for n in spatial) and all(o >= smallest for o in sizes):
        return
    names = _AXES[3 - len(sizes):]
    given = ", ".join(f"{a}: {n}" for a, n in zip(names, spatial))
    wanted = ", ".join(f"{a}: {o}" for a, o in zip(names, sizes))
    rule = ("input sizes should be greater than 0 and output sizes at least 0" if mode == "area"
            else "input and output sizes should be greater than 0")
    raise ShapeError(f"interpolate: {rule}, but got input ({given}) output ({wanted}); pass a "
                     f"non-empty input and a larger size or scale_factor")


def _step(n_in: int, n_out: int, scale) -> float:
    """The distance in input coordinates between two output samples: ``1 / scale_factor`` when
    one is in force, else ``in / out`` (PyTorch's rule, so that a given scale_factor means the
    same geometry whatever the rounding of the output size)."""
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


# ---------------------------------------------------------------------- source positions
def _nearest_index(n_in: int, n_out: int, scale, exact: bool, special: bool,
                   double: bool) -> np.ndarray:
    """The input index each output position copies.

    ``nearest`` takes ``floor(i * step)`` (OpenCV's convention), ``nearest-exact`` rounds the
    pixel-centre coordinate ``(i + 0.5) * step - 0.5`` half up (PIL's and scikit-image's).
    Where the exact coordinate lies on a pixel boundary (``floor(41 * (2 / 82))``) the rounding
    decides which pixel is copied, so the arithmetic is PyTorch's: the step and the product in
    the input's precision (float32 but for float64 inputs), the coordinate then rounded to
    float32 before its floor. ``special``: PyTorch's 2-D kernel copies a dimension whose size
    does not change and halves the index of one whose size doubles, whatever the scale_factor.
    """
    i = np.arange(n_out)
    if special and not exact and n_out == n_in:
        return i
    if special and not exact and n_out == 2 * n_in:
        return i // 2
    real = np.float64 if double else np.float32
    if scale is not None and scale > 0:
        step = real(1.0 / scale)
    else:
        step = real(n_in) / real(n_out)
    step = np.float64(step)  # a float32 product is exact in float64: rounding it once is enough
    if exact:
        centre = ((i + 0.5) * step - 0.5).astype(np.float32)
        pos = centre + np.float32(0.5)
    else:
        pos = (i * step).astype(np.float32)
    return np.minimum(np.floor(pos).astype(np.int64), n_in - 1)


def _source_position(n_in: int, n_out: int, scale, align_corners: bool, cubic: bool) -> np.ndarray:
    """The (fractional) input coordinate of each output sample, in float64."""
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:  # the corner pixels' centres coincide; scale_factor plays no part
        return i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    pos = (i + 0.5) * _step(n_in, n_out, scale) - 0.5
    # The linear modes clamp positions left of the first pixel's centre to it (OpenCV's rule);
    # bicubic keeps them and repeats the border pixel instead (its indices are clamped below).
    return pos if cubic else np.maximum(pos, 0.0)


def _floor_and_fraction(pos: np.ndarray, n_in: int):
    """The integer part of each position (at most the last index) and the fraction left,
    clamped to [0, 1] as PyTorch's kernels do."""
    idx = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    return idx, np.clip(pos - idx, 0.0, 1.0)


def _linear_taps(n_in: int, n_out: int, scale, align_corners: bool) -> list:
    """[(indices, weights)] of the two neighbours of each output sample."""
    pos = _source_position(n_in, n_out, scale, align_corners, cubic=False)
    i0, t = _floor_and_fraction(pos, n_in)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return [(i0, 1.0 - t), (i1, t)]


# Keys' cubic convolution kernel with PyTorch's (and OpenCV's) A = -0.75 (Keys' paper uses -0.5).
_CUBIC_A = -0.75


def _cubic_near(x):
    """The kernel on |x| <= 1."""
    a = _CUBIC_A
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic_far(x):
    """The kernel on 1 < |x| < 2."""
    a = _CUBIC_A
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def _cubic_taps(n_in: int, n_out: int, scale, align_corners: bool) -> list:
    """[(indices, weights)] of the four neighbours of each output sample; neighbours past the
    border repeat the border pixel."""
    pos = _source_position(n_in, n_out, scale, align_corners, cubic=True)
    i0, t = _floor_and_fraction(pos, n_in)
    weights = (_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t))
    return [(np.clip(i0 - 1 + k, 0, n_in - 1), w) for k, w in enumerate(weights)]


def _antialiased_taps(n_in: int, n_out: int, scale, align_corners: bool, bicubic: bool) -> list:
    """[(indices, weights)] of ``antialias=True`` (PIL's resampling, as PyTorch's): output ``i``
    averages the input pixels within ``support`` of its centre ``(i + 0.5) * step``, weighted
    by the triangle (bilinear) or Keys' cubic with A = -0.5 (bicubic) filter stretched by the
    step when shrinking, the weights normalized to sum to 1. Rows with fewer taps are padded
    with the zero slot (index ``n_in``)."""
    step = ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0) if align_corners else \
        _step(n_in, n_out, scale)
    half = 2.0 if bicubic else 1.0                      # half the filter's width
    support = half * step if step >= 1.0 else half
    stretch = 1.0 / step if step >= 1.0 else 1.0
    centre = step * (np.arange(n_out) + 0.5)
    start = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    count = np.minimum((centre + support + 0.5).astype(np.int64), n_in) - start
    width = int(count.max())
    k = np.arange(width)[:, None]
    x = np.abs((k + start - centre + 0.5) * stretch)
    if bicubic:
        a = -0.5
        weights = np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                           np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))
    else:
        weights = np.maximum(1.0 - x, 0.0)
    inside = k < count
    weights = np.where(inside, weights, 0.0)
    total = weights.sum(0)
    weights = weights / np.where(total != 0, total, 1.0)
    index = np.where(inside, k + start, n_in)
    return [(index[j], weights[j]) for j in range(width)]


# ---------------------------------------------------------------------- the passes
class _Taps:
    """A linear map along one axis, ``n_in`` -> ``n_out`` positions: output ``i`` is
    ``sum_k weights[k, i] * x[index[k, i]]``. An index equal to ``n_in`` reads a zero (padding
    for rows with fewer taps); ``weights`` None means all ones. Its transpose (the backward) is
    again a _Taps, read by gathering too: each input position lists the outputs it feeds."""

    def __init__(self, index: np.ndarray, weights, n_in: int):
        self.index, self.weights, self.n_in = index, weights, n_in
        self._adjoint = None

    def adjoint(self) -> "_Taps":
        if self._adjoint is None:
            k, n_out = self.index.shape
            src = self.index.ravel()
            dst = np.tile(np.arange(n_out), k)
            w = None if self.weights is None else self.weights.ravel()
            keep = src < self.n_in
            src, dst = src[keep], dst[keep]
            order = np.argsort(src, kind="stable")
            src, dst = src[order], dst[order]
            counts = np.bincount(src, minlength=self.n_in)
            width = int(counts.max()) if counts.size else 0
            # the position of each pair among its input position's list
            rank = np.arange(src.size) - np.repeat(np.cumsum(counts) - counts, counts)
            index = np.full((width, self.n_in), n_out, dtype=np.int64)   # n_out: the zero slot
            index[rank, src] = dst
            weights = None
            if w is not None:
                weights = np.zeros((width, self.n_in))
                weights[rank, src] = w[keep][order]
            self._adjoint = _Taps(index, weights, n_out)
            self._adjoint._adjoint = self
        return self._adjoint


class _ApplyTaps(ArrayFunction):
    """``taps`` applied along ``axis``. Forward and backward are both gathers and weighted sums
    (the backward is the transposed map, :meth:`_Taps.adjoint`), so no scatter is needed either
    way, and a nan or inf stays where the taps carry it, as in PyTorch's kernels."""

    @staticmethod
    def forward(ctx, x, axis, taps):
        ctx.axis, ctx.taps = axis, taps
        b = ctx.backend
        if (taps.index == taps.n_in).any():
            widths = [(0, 0)] * x.ndim
            widths[axis] = (0, 1)
            x = b.pad(x, widths, "constant", 0)
        lead = (slice(None),) * axis
        shape = _axis_shape(x.ndim, axis, taps.index.shape[1])
        out = None
        for k in range(taps.index.shape[0]):
            piece = b.getitem(x, lead + (b.from_numpy(taps.index[k]),))
            if taps.weights is not None:
                w = b.from_numpy(taps.weights[k].reshape(shape).astype(x.dtype))
                piece = b.binary("mul", piece, w)
            out = piece if out is None else b.binary("add", out, piece)
        if out is None:  # no taps at all: nothing reads this input (an empty output)
            out_shape = list(x.shape)
            out_shape[axis] = taps.index.shape[1]
            out = b.full(tuple(out_shape), 0, from_numpy_dtype(x.dtype))
        return out

    @staticmethod
    def backward(ctx, grad):
        return _ApplyTaps.apply(grad, ctx.axis, ctx.taps.adjoint()), None, None


def _axis_shape(ndim: int, axis: int, n: int) -> tuple:
    shape = [1] * ndim
    shape[axis] = n
    return tuple(shape)


def _nearest(x: Tensor, sizes, scales, exact: bool) -> Tensor:
    d = len(sizes)
    double = x.dtype is float64
    index = [_nearest_index(n, o, s, exact, d == 2, double)
             for n, o, s in zip(x.shape[2:], sizes, scales)]
    return _separable(x, sizes, lambda n, o, j: [(index[j], None)])


def _separable(x: Tensor, sizes, taps_of) -> Tensor:
    """Resample each spatial dimension in turn: output ``i`` along it is ``sum_k x[idx_k[i]] *
    w_k[i]`` for the ``[(idx_k, w_k)]`` that ``taps_of(n_in, n_out, j)`` returns (None: that
    dimension keeps its size and is left as it is; a None weight is 1)."""
    out = x
    # shrinking dimensions first, so the later passes work on less data
    order = sorted(range(len(sizes)), key=lambda j: sizes[j] / x.shape[2 + j])
    for j in order:
        n_in, n_out = x.shape[2 + j], sizes[j]
        taps = taps_of(n_in, n_out, j)
        if taps is None:
            continue
        index = np.stack([np.asarray(i, dtype=np.int64) for i, _ in taps])
        weights = None if taps[0][1] is None else np.stack([w for _, w in taps])
        out = _ApplyTaps.apply(out, 2 + j, _Taps(index, weights, n_in))
    return clone(x) if out is x else out


def _area(x: Tensor, sizes) -> Tensor:
    """Adaptive average pooling to ``sizes``: per dimension, a product with an (in, out)
    matrix whose column i averages output i's window (PyTorch's window boundaries)."""
    out = x
    for j, o in enumerate(sizes):
        axis, n = 2 + j, x.shape[2 + j]
        if n == o:
            continue
        avg = np.zeros((n, o))
        for i, (a, b) in enumerate(_adaptive_ranges(n, o)):
            avg[a:b, i] = 1.0 / (b - a)
        moved = matmul(transpose(out, axis, -1), tensor(avg, dtype=x.dtype, device=x.device))
        out = transpose(moved, axis, -1)
    return clone(x) if out is x else out


# ---------------------------------------------------------------------- interpolate
def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resample the spatial dimensions of an ``(N, C, *spatial)`` input, as
    ``torch.nn.functional.interpolate``.

    ``size`` (an int or one per spatial dimension) or ``scale_factor`` (a number or one per
    dimension; the output size is ``floor(in * scale)``) says how big the result is. ``mode``:

    - ``'nearest'`` copies input pixel ``floor(i * step)`` (PyTorch's legacy convention, which
      shifts the image by half a pixel), ``'nearest-exact'`` pixel ``floor((i + 0.5) * step)``;
    - ``'linear'`` (3-D input), ``'bilinear'`` (4-D), ``'trilinear'`` (5-D) interpolate between
      the two nearest pixels along each dimension, ``'bicubic'`` (4-D) between four, with
      PyTorch's cubic coefficient -0.75 and the border pixels repeated (it may overshoot the
      input's range);
    - ``'area'`` averages (adaptive average pooling).

    ``align_corners=True`` makes the corner pixels' centres of input and output coincide (the
    step is ``(in - 1) / (out - 1)``); False (the default of the interpolating modes) aligns
    the outer edges of the corner pixels. When ``scale_factor`` is given the step is
    ``1 / scale_factor`` rather than ``in / out``, unless ``recompute_scale_factor=True``.
    ``antialias=True`` (bilinear, bicubic; 4-D input) averages every input pixel under the
    filter stretched to the output's pixel size, as PIL and torchvision resize, so shrinking
    does not alias.

    Example::

        >>> x = gradient.arange(4.0).reshape(1, 1, 4)
        >>> F.interpolate(x, size=8, mode="linear", align_corners=True).shape
        gradient.Size([1, 1, 8])
        >>> F.interpolate(gradient.randn(2, 3, 5, 5), scale_factor=(2, 1.5), mode="bicubic").shape
        gradient.Size([2, 3, 10, 7])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"interpolate: expected a Tensor input, got {type(input).__name__}")
    if mode not in _MODES:
        raise UnsupportedError(f"interpolate: unknown mode {mode!r}; expected one of "
                               f"{', '.join(map(repr, _MODES))}")
    if mode in _NO_ALIGN:
        if align_corners is not None:
            raise ArgumentValueError(
                f"interpolate: align_corners option can only be set with the "
                f"interpolating modes: linear | bilinear | bicubic | trilinear, got "
                f"mode={mode!r} and align_corners={align_corners!r}; leave it None")
    else:
        align_corners = bool(align_corners)
    d = input.ndim - 2
    sizes, scales = _output_geometry(input, size, scale_factor, recompute_scale_factor, d)
    if antialias:
        if mode not in ("bilinear", "bicubic", "lanczos") or input.ndim != 4:
            raise ArgumentValueError(
                f"interpolate: the anti-alias option is restricted to bilinear, bicubic "
                f"and lanczos modes and requires a 4-D tensor as input, got mode={mode!r}"
                f" and a {input.ndim}-D input")
    need = _MODES[mode]
    if d not in (1, 2, 3) or (need is not None and d != need):
        what = (f"{need + 2}-D (N, C, {', '.join(_AXES[3 - need:])}) input" if need
                else "a 3-D, 4-D or 5-D (N, C, *spatial) input")
        raise UnsupportedError(f"interpolate: mode={mode!r} needs {what}, got a {input.ndim}-D "
                               f"input of shape {tuple(input.shape)}")
    if mode == "lanczos":
        if align_corners:
            raise ArgumentValueError(
                "interpolate: lanczos mode does not support align_corners=True")
        if not antialias:
            raise ArgumentValueError("interpolate: lanczos mode requires antialias=True")
    if antialias and mode == "lanczos":
        raise UnsupportedError("interpolate: mode='lanczos' is not supported by gradient; use "
                               "'bilinear' or 'bicubic' with antialias=True")
    _check_sizes(input, sizes, mode)

    if mode in ("nearest", "nearest-exact"):
        return _nearest(input, sizes, scales, mode == "nearest-exact")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"interpolate: mode={mode!r} needs a floating-point input, got "
                         f"{input.dtype}; convert it first, e.g. x.float()")
    # float16/bfloat16 are interpolated in float32 and rounded once
    x = cast(input, float32) if input.dtype in _LOW_PRECISION else input
    if mode == "area":
        out = _area(x, sizes)
    elif antialias:
        out = _separable(x, sizes, lambda n, o, j: _antialiased_taps(
            n, o, scales[j], align_corners, bicubic=mode == "bicubic"))
    elif mode == "bicubic":
        out = _separable(x, sizes, lambda n, o, j: _cubic_taps(n, o, scales[j], align_corners))
    else:
        # PyTorch's linear kernels copy a dimension whose size does not change (whatever the
        # scale_factor); the bicubic one does not special-case it
        out = _separable(x, sizes, lambda n, o, j: None if n == o else
                         _linear_taps(n, o, scales[j], align_corners))
    return cast(out, input.dtype) if out.dtype is not input.dtype else out


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of :func:`interpolate` (as in PyTorch, it warns).

    Example::

        >>> F.upsample(gradient.randn(1, 1, 2, 2), scale_factor=2).shape  # doctest: +SKIP
        gradient.Size([1, 1, 4, 4])
    """
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')`` (it warns).

    Example::

        >>> F.upsample_nearest(gradient.randn(1, 1, 2, 2), scale_factor=2).shape  # doctest: +SKIP
        gradient.Size([1, 1, 4, 4])
    """
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)``
    (it warns).

    Example::

        >>> F.upsample_bilinear(gradient.randn(1, 1, 2, 2), size=3).shape  # doctest: +SKIP
        gradient.Size([1, 1, 3, 3])
    """
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------- pixel shuffle
def _shuffle_factor(value, fname: str, what: str) -> int:
    if isinstance(value, (float, Tensor)) or not hasattr(value, "__index__"):
        raise ArgumentTypeError(
            f"{fname}: {what} must be an int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value <= 0:
        raise ArgumentValueError(f"{fname}: expects a positive {what}, but got {value}")
    return value


def _shuffle_input(input: Tensor, fname: str) -> None:
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"{fname}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 3:
        raise ShapeError(f"{fname}: expects input to have at least 3 dimensions (*, C, H, W), but got "
                         f"input with {input.ndim} dimension(s) of shape {tuple(input.shape)}")


def _fresh(out: Tensor, input: Tensor) -> Tensor:
    """``out`` with storage of its own, as PyTorch's shuffles return (a factor of 1, or size-1
    dimensions, make the reshapes views or even the input itself)."""
    return clone(out) if out is input or out._base is not None else out


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C * r * r, H, W)`` into ``(*, C, H * r, W * r)``: each group of ``r * r``
    channels becomes an ``r x r`` block of pixels (sub-pixel convolution upsampling).

    Example::

        >>> F.pixel_shuffle(gradient.randn(1, 8, 3, 3), 2).shape
        gradient.Size([1, 2, 6, 6])
    """
    fname = "pixel_shuffle"
    _shuffle_input(input, fname)
    r = _shuffle_factor(upscale_factor, fname, "upscale_factor")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"{fname}: expects its input's 'channel' dimension to be divisible by the "
                         f"square of upscale_factor, but input.size(-3)={c} is not divisible by "
                         f"{r * r} (input shape {tuple(input.shape)})")
    lead, k = tuple(lead), len(lead)
    x = reshape(input, lead + (c // (r * r), r, r, h, w))
    # (oc, r_h, r_w, h, w) -> (oc, h, r_h, w, r_w): row h * r + r_h, column w * r + r_w
    x = permute(x, tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return _fresh(reshape(x, lead + (c // (r * r), h * r, w * r)), input)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of :func:`pixel_shuffle`: ``(*, C, H * r, W * r)`` -> ``(*, C * r * r, H, W)``.

    Example::

        >>> F.pixel_unshuffle(gradient.randn(1, 2, 6, 6), 2).shape
        gradient.Size([1, 8, 3, 3])
    """
    fname = "pixel_unshuffle"
    _shuffle_input(input, fname)
    r = _shuffle_factor(downscale_factor, fname, "downscale_factor")
    *lead, c, h, w = input.shape
    for what, n, dim in (("height", h, -2), ("width", w, -1)):
        if n % r:
            raise ShapeError(f"{fname}: expects {what} to be divisible by downscale_factor, but "
                             f"input.size({dim})={n} is not divisible by {r} (input shape "
                             f"{tuple(input.shape)})")
    lead, k = tuple(lead), len(lead)
    x = reshape(input, lead + (c, h // r, r, w // r, r))
    x = permute(x, tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return _fresh(reshape(x, lead + (c * r * r, h // r, w // r)), input)


# ---------------------------------------------------------------------- affine_grid
def _base_coordinates(n: int, align_corners: bool) -> np.ndarray:
    """The normalised [-1, 1] coordinates of ``n`` pixel centres (0 for a single pixel)."""
    if n <= 1:
        return np.zeros(max(n, 0))
    coords = np.linspace(-1.0, 1.0, n)
    # without align_corners -1 and 1 are the outer edges of the corner pixels, not their centres
    return coords if align_corners else coords * (n - 1) / n


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps, for :func:`grid_sample`, as
    ``torch.nn.functional.affine_grid``.

    ``theta`` is (N, 2, 3) for a 4-D ``size`` (N, C, H, W), giving a grid (N, H, W, 2) of
    normalised (x, y) input coordinates; or (N, 3, 4) for a 5-D size (N, C, D, H, W), giving
    (N, D, H, W, 3) of (x, y, z). Output pixel centres in [-1, 1] (see ``align_corners``) are
    mapped by ``theta``; the grid is differentiable in ``theta`` (spatial transformer networks).

    Example::

        >>> theta = gradient.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])   # the identity
        >>> grid = F.affine_grid(theta, (1, 3, 4, 4), align_corners=False)
        >>> F.grid_sample(gradient.randn(1, 3, 4, 4), grid, align_corners=False).shape
        gradient.Size([1, 3, 4, 4])
    """
    fname = "affine_grid"
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners="
                      "False since 1.3.0. Please specify align_corners=True if the old behavior is "
                      "desired. See the documentation of grid_sample for details.", stacklevel=2)
        align_corners = False
    if not isinstance(theta, Tensor):
        raise ArgumentTypeError(f"{fname}: expected a Tensor theta, got {type(theta).__name__}")
    if not theta.dtype.is_floating_point:
        raise ArgumentValueError(
            f"{fname}: expected theta to have floating point type, but got {theta.dtype}")
    size = as_ints(size, f"{fname}: the size")
    if len(size) not in (4, 5):
        raise UnsupportedError(f"{fname} only supports 4D and 5D sizes, for 2D and 3D affine "
                               f"transforms, respectively. Got size {list(size)}.")
    d = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (d, d + 1):
        raise ArgumentValueError(
            f"{fname}: expected a batch of {d}D affine matrices of shape Nx{d}x{d + 1} "
            f"for size {list(size)}. Got {tuple(theta.shape)}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids "
                      "when align_corners=True. This is not an intended use case of affine_grid. "
                      "See the documentation of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ArgumentValueError(
            f"{fname}: expected non-zero, positive output size. Got {list(size)}")
    if theta.shape[0] != size[0]:
        raise ShapeError(f"{fname}: theta holds {theta.shape[0]} matrices but size asks for a batch "
                         f"of {size[0]}; they must match")
    # Homogeneous coordinates (x, y[, z], 1) of every output position, x varying fastest (the
    # last spatial dimension is W); one batched product with theta maps them all.
    axes = np.meshgrid(*(_base_coordinates(n, align_corners) for n in spatial), indexing="ij")
    base = np.stack([a.reshape(-1) for a in reversed(axes)] + [np.ones(math.prod(spatial))], -1)
    base = tensor(base, dtype=theta.dtype, device=theta.device)
    grid = matmul(base, transpose(theta, 1, 2))                     # (N, prod(spatial), d)
    return reshape(grid, (size[0],) + tuple(spatial) + (d,))


# ---------------------------------------------------------------------- grid_sample
def _unnormalize(coord: Tensor, n: int, align_corners: bool) -> Tensor:
    """[-1, 1] grid coordinates to input pixel coordinates (pixel centres at 0 .. n - 1)."""
    if align_corners:
        return (coord + 1) * ((n - 1) / 2)
    return ((coord + 1) * n - 1) / 2


def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """``coord`` folded back and forth into [low, high] (given doubled, to stay integral), as a
    ray between two mirrors; differentiable (the slope is +-1)."""
    if twice_low == twice_high:
        return coord * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    dist = (coord - low).abs()
    extra = dist.fmod(span)
    flips = floor(dist.detach() / span)
    even = flips.fmod(2) == 0
    return where(even, extra + low, (span - extra) + low)


def _pad_coordinate(coord: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    """Apply ``padding_mode`` to a pixel coordinate: 'border' clamps it into the image,
    'reflection' mirrors it at the image edges (the pixel centres with align_corners, the pixel
    edges without), 'zeros' leaves it (the samples outside read 0)."""
    if padding_mode == "border":
        return clamp(coord, 0, n - 1)
    if padding_mode == "reflection":
        coord = _reflect(coord, 0, 2 * (n - 1)) if align_corners else _reflect(coord, -1, 2 * n - 1)
        return clamp(coord, 0, n - 1)
    return coord


def _read(flat: Tensor, index: list, sizes: tuple, out_shape: tuple) -> Tensor:
    """``input[n, :, index[0], index[1], ...]`` for every output position, 0 where an index is
    outside the input. ``flat`` is the input as (N, C, prod(sizes)); ``index`` holds one int64
    tensor (N, *out_shape) per spatial dimension."""
    inside = position = None
    stride = 1
    for idx, n in reversed(list(zip(index, sizes))):
        ok = (idx >= 0) & (idx < n)
        inside = ok if inside is None else inside & ok
        term = clamp(idx, 0, n - 1) * stride
        position = term if position is None else position + term
        stride *= n
    batch, channels, count = flat.shape[0], flat.shape[1], math.prod(out_shape)
    position = expand(reshape(position, (batch, 1, count)), (batch, channels, count))
    values = reshape(gather(flat, 2, position), (batch, channels) + out_shape)
    # where, not a product with the mask: an inf or nan outside must not leak in
    return where(reshape(inside, (batch, 1) + out_shape), values, 0.0)


def _as_index(coord: Tensor) -> Tensor:
    """Whole-number coordinates as int64; nan and huge values become -100 (outside the input),
    as in PyTorch, instead of undefined integer casts."""
    coord = coord.detach()
    sane = (coord.abs() < 2.0 ** 30)
    return cast(where(sane, coord, -100.0), int64)


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample ``input`` at the normalised coordinates of ``grid``, as
    ``torch.nn.functional.grid_sample``.

    ``input`` (N, C, H, W) with ``grid`` (N, Ho, Wo, 2) holding (x, y) in [-1, 1] gives
    (N, C, Ho, Wo); ``input`` (N, C, D, H, W) with ``grid`` (N, Do, Ho, Wo, 3) gives
    (N, C, Do, Ho, Wo). ``mode``: 'bilinear' (trilinear for 5-D), 'nearest' (rounding half to
    even) or 'bicubic' (4-D only). ``padding_mode`` says what is read outside the input:
    'zeros', 'border' (the nearest edge pixel) or 'reflection' (the image mirrored at its
    edges). ``align_corners=True`` puts -1 and 1 at the centres of the corner pixels, False
    (the default) at their outer edges. Differentiable in ``input`` and ``grid``.

    Example::

        >>> grid = gradient.zeros(2, 5, 5, 2)           # every sample at the image centre
        >>> F.grid_sample(gradient.randn(2, 3, 8, 8), grid, align_corners=False).shape
        gradient.Size([2, 3, 5, 5])
    """
    fname = "grid_sample"
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ArgumentValueError(
            f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ArgumentValueError(
            f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border',"
            f" or 'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners="
                      "False since 1.3.0. Please specify align_corners=True if the old behavior is "
                      "desired. See the documentation of grid_sample for details.", stacklevel=2)
        align_corners = False
    for what, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{fname}: expected a Tensor {what}, got {type(t).__name__}")
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise ShapeError(f"{fname}: expected a 4-D or 5-D input and a grid with the same number of "
                         f"dimensions, but got input of shape {tuple(input.shape)} and grid of shape "
                         f"{tuple(grid.shape)}")
    d = input.ndim - 2
    if grid.shape[-1] != d:
        raise ShapeError(f"{fname}: expected grid to have size {d} in last dimension (one coordinate "
                         f"per spatial dimension of the input), but got grid of shape "
                         f"{tuple(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ShapeError(f"{fname}: expected grid and input to have same batch size, but got input "
                         f"of shape {tuple(input.shape)} and grid of shape {tuple(grid.shape)}")
    if input.dtype is not grid.dtype:
        raise DTypeError(f"{fname}: expected input and grid to have the same dtype, but input has "
                         f"{input.dtype} and grid has {grid.dtype}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{fname}: expected a floating-point input, got {input.dtype}")
    if any(n == 0 for n in input.shape[2:]):
        raise ShapeError(f"{fname}: expected input to have non-empty spatial dimensions, but input "
                         f"has shape {tuple(input.shape)}")
    if mode == "bicubic" and d != 2:
        raise UnsupportedError(f"{fname}: bicubic interpolation only supports 4D input, got a "
                               f"{input.ndim}-D input")

    sizes = tuple(input.shape[2:])
    out_shape = tuple(grid.shape[1:-1])
    dtype = float32 if input.dtype in _LOW_PRECISION else input.dtype
    flat = reshape(cast(input, dtype), tuple(input.shape[:2]) + (math.prod(sizes),))
    g = cast(grid, dtype)
    # grid[..., 0] is x (the last input dimension), grid[..., 1] is y, grid[..., 2] is z
    coords = [_unnormalize(getitem(g, (Ellipsis, d - 1 - k)), n, align_corners)
              for k, n in enumerate(sizes)]

    if mode == "bicubic":
        # PyTorch applies the padding to each of the 4 x 4 taps, not to the sampling point
        starts = [floor(c.detach()) for c in coords]
        fractions = [c - s for c, s in zip(coords, starts)]
        weights = [(_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t))
                   for t in fractions]
        out = None
        for taps in np.ndindex(4, 4):
            index = [_as_index(_pad_coordinate(s + (k - 1), n, padding_mode, align_corners))
                     for s, k, n in zip(starts, taps, sizes)]
            w = weights[0][taps[0]] * weights[1][taps[1]]
            term = _read(flat, index, sizes, out_shape) * reshape(w, w.shape[:1] + (1,) + out_shape)
            out = term if out is None else out + term
        return cast(out, input.dtype)

    coords = [_pad_coordinate(c, n, padding_mode, align_corners) for c, n in zip(coords, sizes)]
    if mode == "nearest":
        index = [_as_index(c.round()) for c in coords]  # half to even, as C's nearbyint
        return cast(_read(flat, index, sizes, out_shape), input.dtype)
    starts = [floor(c.detach()) for c in coords]
    fractions = [c - s for c, s in zip(coords, starts)]
    lows = [_as_index(s) for s in starts]
    out = None
    for corner in np.ndindex(*(2,) * d):   # 4 corners in 2-D, 8 in 3-D
        index = [lo + k for lo, k in zip(lows, corner)]
        w = None
        for t, k in zip(fractions, corner):
            factor = t if k else 1 - t
            w = factor if w is None else w * factor
        term = _read(flat, index, sizes, out_shape) * reshape(w, w.shape[:1] + (1,) + out_shape)
        out = term if out is None else out + term
    return cast(out, input.dtype)
