"""Order statistics, running extremes, histograms and covariance.

``cummax``/``cummin``/``logcumsumexp`` (scans), ``quantile``/``nanquantile``, ``nanmedian``,
``mode``, ``msort`` (order statistics), ``histc``/``histogram`` (counts, not differentiable),
``cov``/``corrcoef``.

Everything here is composed from differentiable ops: the positions of selected values (the
running maximum's index, the quantile's neighbours in sorted order, the mode) are found outside
the graph with backend primitives, and the values are then *gathered* from the input, so the
gradient goes to the selected elements as in PyTorch and second derivatives come for free.

Deliberate differences from PyTorch: ``nanmedian()`` without ``dim`` splits the gradient evenly
among elements equal to the median (as gradient's ``median()`` does); ``histc``/``histogram``
also run on the GPU backends (PyTorch's ``histogram`` is CPU-only).

Example::

    >>> x = gradient.tensor([1.0, 3.0, 2.0, 5.0])
    >>> gradient.cummax(x, 0).indices            # tensor([0, 1, 1, 3])
    >>> gradient.quantile(x, 0.5)                 # tensor(2.5000)
"""

from __future__ import annotations

import math as _math
from collections import namedtuple as _namedtuple

from ..autograd.grad_mode import no_grad as _no_grad
from ..dtypes import bool_, float32, float64, int64
from ..errors import ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_int, as_number
from .creation import arange, full, linspace, tensor as _tensor
from .elementwise import (_floating, cast, ceil, clamp, floor, isnan, lerp, logical_and,
                          logical_not, logical_or, round as _round, sqrt, where)
from .index import bincount, gather, searchsorted, sort
from .linalg import matmul
from .reduce import amax, amin, sum as _sum
from .shape import cat, diagonal, movedim, narrow, reshape, squeeze, unsqueeze, wrap_dim
from .special import logaddexp

__all__ = ["cummax", "cummin", "logcumsumexp", "quantile", "nanquantile", "nanmedian", "mode",
           "msort", "histc", "histogram", "histogramdd", "cov", "corrcoef"]
TENSOR_METHODS = ("cummax", "cummin", "logcumsumexp", "quantile", "nanquantile", "nanmedian",
                  "mode", "msort", "histc", "histogram", "cov", "corrcoef")

# torch.return_types look-alikes: tuples with named fields
_cummax_result = _namedtuple("cummax", ("values", "indices"))
_cummin_result = _namedtuple("cummin", ("values", "indices"))
_nanmedian_result = _namedtuple("nanmedian", ("values", "indices"))
_mode_result = _namedtuple("mode", ("values", "indices"))
_histogram_result = _namedtuple("histogram", ("hist", "bin_edges"))
_histogramdd_result = _namedtuple("histogramdd", ("hist", "bin_edges"))


# ---------------------------------------------------------------------- scans
def _shift(x: Tensor, axis: int, step: int, fill) -> Tensor:
    """``x`` moved ``step`` places forward along ``axis``; the first ``step`` places hold ``fill``."""
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = min(step, n)
    head = full(tuple(shape), fill, dtype=x.dtype, device=x.device)
    return cat([head, narrow(x, axis, 0, n - shape[axis])], axis)


def _picked(x: Tensor, axis: int, idx: Tensor, scalar: bool, keepdim: bool, result):
    """``result(values, indices)`` for the elements of ``x`` at ``idx`` along ``axis``, shaped
    as the reduction returns them: 0-d for a 0-d input (``scalar``), ``axis`` squeezed unless
    ``keepdim``."""
    values = gather(x, axis, idx)
    if scalar:
        return result(reshape(values, ()), reshape(idx, ()))
    if not keepdim:
        values, idx = squeeze(values, axis), squeeze(idx, axis)
    return result(values, idx)


def _running_extreme(name: str, input: Tensor, dim: int, larger: bool, result):
    scalar = input.ndim == 0
    x = reshape(input, (1,)) if scalar else input
    axis = wrap_dim(dim, x.ndim)
    n = x.shape[axis]
    with _no_grad():
        # a Hillis-Steele scan over (value, index) pairs: log2(n) steps, each comparing every
        # element with the one `step` places before it. NaN beats every number and a later index
        # beats an earlier one on a tie, as in PyTorch: a total order, so the scan is exact.
        v = x.detach()
        view = [1] * x.ndim
        view[axis] = n
        idx = arange(n, dtype=int64, device=x.device).reshape(view).expand(tuple(x.shape))
        step = 1
        while step < n:
            pv, pi = _shift(v, axis, step, 0), _shift(idx, axis, step, -1)
            beats = (pv > v) if larger else (pv < v)
            if x.dtype.is_floating_point:
                beats = logical_or(beats, isnan(pv))
                beats = logical_and(beats, logical_not(isnan(v)))
            take = logical_and(beats, pi >= 0)
            v, idx = where(take, pv, v), where(take, pi, idx)
            step *= 2
    return _picked(x, axis, idx, scalar, True, result)


def cummax(input: Tensor, dim: int):
    """``(values, indices)``: the running maximum along ``dim`` and where it was found (the
    latest position on ties; NaN propagates). The gradient goes to those positions.

    Example: ``gradient.cummax(gradient.tensor([1, 3, 2]), 0)`` gives values ``[1, 3, 3]``,
    indices ``[0, 1, 1]``.
    """
    return _running_extreme("cummax", input, dim, True, _cummax_result)


def cummin(input: Tensor, dim: int):
    """``(values, indices)``: the running minimum along ``dim`` (see :func:`cummax`).

    Example: ``gradient.cummin(gradient.tensor([3, 1, 2]), 0).values`` is ``[3, 1, 1]``.
    """
    return _running_extreme("cummin", input, dim, False, _cummin_result)


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(input), dim))`` without overflow or underflow.

    A scan of :func:`logaddexp` (log2(n) steps), so every partial sum keeps full precision
    however far apart the values are. Example: ``gradient.logcumsumexp(x, dim=-1)``.
    """
    x = _floating(input)
    scalar = x.ndim == 0
    if scalar:
        x = reshape(x, (1,))
    axis = wrap_dim(dim, x.ndim)
    out, step, n = x, 1, x.shape[axis]
    while step < n:
        out = logaddexp(out, _shift(out, axis, step, -_math.inf))
        step *= 2
    if out is x:
        out = x * 1.0   # a new tensor, as every op returns
    return reshape(out, ()) if scalar else out


# ---------------------------------------------------------------------- quantiles
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name: str, input: Tensor, q, dim, keepdim: bool, interpolation: str,
              ignore_nan: bool) -> Tensor:
    if input.dtype not in (float32, float64):
        raise DTypeError(f"{name}() input tensor must be either float or double dtype, got "
                         f"{input.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise ArgumentValueError(
            f"{name}() interpolation must be one of linear, lower, higher, midpoint "
            f"or nearest. Got {interpolation}")
    if input.numel() == 0:
        raise ShapeError(f"{name}() input tensor must be non-empty")
    scalar_q = not isinstance(q, Tensor)
    if scalar_q:
        qs = _tensor([float(as_number(q, f"{name}(): q"))], dtype=float64, device=input.device)
    else:
        if q.ndim > 1:
            raise ShapeError(f"{name}() q must be a scalar or 1D tensor, got shape {tuple(q.shape)}")
        if q.dtype is not input.dtype:
            raise DTypeError(f"{name}() q tensor must be same dtype as the input tensor, got "
                             f"{q.dtype} and {input.dtype}")
        scalar_q = q.ndim == 0
        qs = cast(reshape(q.detach(), (-1,)), float64)
    if qs.numel() and not bool(((qs >= 0) & (qs <= 1)).all()):
        raise ArgumentValueError(f"{name}() q values must be in the range [0, 1]")

    if dim is None:
        x, axis = reshape(input, (-1,)), None
    else:
        axis = wrap_dim(dim, input.ndim)
        x = movedim(reshape(input, (1,)) if input.ndim == 0 else input, axis, -1)
    values = sort(x, dim=-1).values          # NaN sorts last
    n = x.shape[-1]
    with _no_grad():
        nan_last = isnan(narrow(values, -1, n - 1, 1))
        if ignore_nan:
            count = cast(_sum(logical_not(isnan(values)), -1, keepdim=True), float64)
        else:
            count = full((), float(n), dtype=float64, device=x.device)
        ranks = clamp(qs * (count - 1), min=0)                  # (..., Q)
        if not ignore_nan:   # a row holding NaN gives NaN: point every rank at its last element
            ranks = where(nan_last, float(n - 1), ranks)
        if interpolation == "lower":
            ranks = floor(ranks)
        elif interpolation == "higher":
            ranks = ceil(ranks)
        elif interpolation == "nearest":
            ranks = _round(ranks)   # half to even, as PyTorch
        below, above = cast(floor(ranks), int64), cast(ceil(ranks), int64)
        weight = ranks - floor(ranks) if interpolation != "midpoint" else ranks * 0 + 0.5
        weight = cast(weight, input.dtype)
    below = below.expand(tuple(values.shape[:-1]) + tuple(below.shape[-1:]))
    above = above.expand(tuple(below.shape))
    out = lerp(gather(values, -1, below), gather(values, -1, above), weight.expand(tuple(below.shape)))
    out = movedim(out, -1, 0)                               # (Q, ...)
    if keepdim:
        if axis is None:
            out = reshape(out, (out.shape[0],) + (1,) * input.ndim)
        elif input.ndim:
            out = unsqueeze(out, axis + 1)
    return squeeze(out, 0) if scalar_q else out


def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The ``q``-th quantiles of ``input`` (all elements, or along ``dim``), between sorted
    neighbours by ``interpolation``: ``'linear'``, ``'lower'``, ``'higher'``, ``'midpoint'``,
    ``'nearest'``. A 1-d tensor ``q`` puts its dimension first in the result. A row containing
    NaN gives NaN (see :func:`nanquantile`). Differentiable in ``input``.

    Example: ``gradient.quantile(gradient.tensor([1.0, 2.0, 4.0]), 0.25)`` is ``tensor(1.5000)``.
    """
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


def nanquantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """:func:`quantile` ignoring NaN (a row of only NaN gives NaN).

    Example: ``gradient.nanquantile(gradient.tensor([1.0, float('nan'), 3.0]), 0.5)`` is ``2.``
    """
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median of the non-NaN values: of every element (a 0-d tensor) or, with ``dim``,
    ``(values, indices)`` along it. NaN only where a row holds nothing else.

    Example: ``gradient.nanmedian(gradient.tensor([1.0, float('nan'), 3.0, 2.0]))`` is ``2.``
    """
    if dim is None:
        flat = reshape(input, (-1,))
        if flat.numel() == 0:
            return full((), _math.nan, dtype=input.dtype, device=input.device)
        with _no_grad():
            value = nanmedian(flat, 0).values
            ties = (flat == value) if not bool(isnan(value)) else isnan(flat)
        # the mean of the elements equal to the median: its value, with the gradient split
        # evenly among the ties (gradient's median() does the same)
        picked = where(ties, flat, 0)
        return _sum(picked) / _sum(ties)
    scalar = input.ndim == 0
    x = reshape(input, (1,)) if scalar else input
    axis = wrap_dim(dim, x.ndim)
    if x.shape[axis] == 0:
        raise IndexRangeError(f"nanmedian(): expected a non-empty dimension {axis}, got size 0")
    with _no_grad():
        order = sort(x.detach(), dim=axis).indices
        count = _sum(logical_not(isnan(x)), axis, keepdim=True)
        middle = clamp(floor((count - 1) / 2), min=0)
        idx = gather(order, axis, cast(middle, int64))
    return _picked(x, axis, idx, scalar, keepdim, _nanmedian_result)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest one if several
    are equally frequent) and the last position holding it. The gradient goes to that position.

    Example: ``gradient.mode(gradient.tensor([2, 1, 2, 1, 3])).values`` is ``tensor(1)``.
    """
    scalar = input.ndim == 0
    x = reshape(input, (1,)) if scalar else input
    axis = wrap_dim(dim, x.ndim)
    n = x.shape[axis]
    if n == 0:
        raise IndexRangeError(f"mode(): expected a non-empty dimension {axis}, got size 0")
    with _no_grad():
        s = sort(x.detach(), dim=axis).values
        # the length of the run of equal values ending at each sorted position: the position minus
        # the start of its run, found with a running maximum of the run starts
        pos = arange(n, dtype=int64, device=x.device).reshape(
            [n if d == axis else 1 for d in range(x.ndim)]).expand(tuple(x.shape))
        new_run = _shift(s, axis, 1, 0) != s
        first = full([1 if d == axis else k for d, k in enumerate(x.shape)], True, dtype=bool_,
                     device=x.device)
        new_run = cat([first, narrow(new_run, axis, 1, n - 1)], axis)
        start = cummax(where(new_run, pos, 0), axis).values
        length = pos - start
        best = amax(length, axis, keepdim=True)
        # the first position reaching the longest run holds the smallest most frequent value
        first_best = amin(where(length == best, pos, n), axis, keepdim=True)
        value = gather(s, axis, first_best)
        idx = amax(where(x == value, pos, -1), axis, keepdim=True)
    return _picked(x, axis, idx, scalar, keepdim, _mode_result)


def msort(input: Tensor) -> Tensor:
    """``input`` sorted along its first dimension: ``sort(input, dim=0).values``."""
    return sort(input, dim=0).values


# ---------------------------------------------------------------------- histograms
def _bin_counts(x: Tensor, edges: Tensor, weight: Tensor | None, dtype) -> Tensor:
    """How many elements of ``x`` (or how much ``weight``) fall in each bin ``[e_i, e_i+1)``;
    the last bin includes its right edge and elements outside the edges are left out."""
    bins = edges.numel() - 1
    pos, inside = _bin_positions(reshape(x, (-1,)), edges)
    return _weighted_counts(pos, inside, weight, bins, dtype)


def _bin_positions(flat: Tensor, edges: Tensor):
    """``(pos, inside)``: the bin of each element of ``flat`` between ``edges`` (the last bin
    includes its right edge), and whether it falls between the edges at all."""
    bins = edges.numel() - 1
    pos = searchsorted(edges, flat, right=True) - 1
    inside = logical_and(flat >= narrow(edges, 0, 0, 1), flat <= narrow(edges, 0, bins, 1))
    return where(flat == narrow(edges, 0, bins, 1), bins - 1, pos), inside   # the last edge belongs in


def _weighted_counts(pos: Tensor, inside: Tensor, weight: Tensor | None, bins: int, dtype):
    """Counts (or summed ``weight``) per bin ``pos`` of the elements ``inside``, in ``dtype``."""
    w = cast(inside, dtype) if weight is None else where(inside, cast(reshape(weight, (-1,)), dtype), 0)
    counts = bincount(where(inside, pos, 0), cast(w, float64), minlength=bins)
    return cast(counts, dtype)


def _range_of(x: Tensor, lo, hi, widen: float):
    """``(lo, hi)``, from the data when both are equal (zero), widened when they still are."""
    if lo == hi and x.numel():
        finite = x[logical_not(isnan(x))]
        if finite.numel():
            lo, hi = float(amin(finite)), float(amax(finite))
    if lo == hi:
        lo, hi = lo - widen, hi + widen
    if not (_math.isfinite(lo) and _math.isfinite(hi)):
        raise ArgumentValueError(f"range of [{lo}, {hi}] is not finite")
    if lo > hi:
        raise ArgumentValueError(f"max must be larger than min, got min={lo}, max={hi}")
    return lo, hi


def histc(input: Tensor, bins: int = 100, min=0, max=0) -> Tensor:  # noqa: A002
    """Counts of ``input`` in ``bins`` equal bins between ``min`` and ``max`` (the data's range
    when both are 0), of ``input``'s dtype; elements outside are ignored. Not differentiable.

    Example: ``gradient.histc(gradient.tensor([1.0, 2.0, 1.0]), bins=4, min=0, max=3)`` is
    ``tensor([0., 2., 1., 0.])``.
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"histc: expected a floating input, got {input.dtype}")
    if bins <= 0:
        raise ArgumentValueError(f"histc: bins must be > 0, got {bins}")
    with _no_grad():
        x = input.detach()
        lo, hi = _range_of(x, float(min), float(max), 1.0)
        edges = linspace(lo, hi, bins + 1, dtype=x.dtype, device=x.device)
        return _bin_counts(x, edges, None, x.dtype)


def histogram(input: Tensor, bins=100, *, range=None, weight: Tensor | None = None,  # noqa: A002
              density: bool = False):
    """``(hist, bin_edges)`` of ``input``: ``bins`` equal bins over ``range`` (the data's range by
    default), or the given 1-d tensor of increasing edges. ``weight`` weighs each element;
    ``density=True`` scales the counts to a probability density. Not differentiable.

    Example: ``gradient.histogram(x, bins=4, range=(0.0, 2.0)).hist``
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"histogram: expected a floating input, got {input.dtype}")
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ShapeError(f"histogram: weight must have the input's shape {tuple(input.shape)}, got "
                         f"{tuple(weight.shape)}")
    with _no_grad():
        x = input.detach()
        if isinstance(bins, Tensor):
            if bins.ndim != 1 or bins.numel() < 2:
                raise ShapeError("histogram: bins must be a 1-d tensor of at least two edges")
            edges = cast(bins.detach(), x.dtype)
        else:
            bins = as_int(bins, "histogram: bins")
            if bins <= 0:
                raise ArgumentValueError(f"histogram: bins must be > 0, got {bins}")
            lo, hi = (0.0, 0.0) if range is None else (float(range[0]), float(range[1]))
            lo, hi = _range_of(x, lo, hi, 0.5)
            edges = linspace(lo, hi, int(bins) + 1, dtype=x.dtype, device=x.device)
        hist = _bin_counts(x, edges, None if weight is None else weight.detach(), x.dtype)
        if density:
            widths = narrow(edges, 0, 1, edges.numel() - 1) - narrow(edges, 0, 0, edges.numel() - 1)
            hist = hist / (_sum(hist) * widths)
    return _histogram_result(hist, edges)


def histogramdd(input: Tensor, bins=10, *, range=None, weight: Tensor | None = None,  # noqa: A002
                density: bool = False):
    """``(hist, bin_edges)`` of the points in the rows of ``input`` (..., D): a D-dimensional
    histogram, as ``torch.histogramdd``. ``bins`` is one count for every dimension, a count per
    dimension, or a 1-d tensor of increasing edges per dimension; ``range`` is
    ``[lo_0, hi_0, lo_1, hi_1, ...]`` (the data's range by default). ``weight`` weighs each
    point; ``density=True`` scales to a probability density. Not differentiable.

    Example: ``gradient.histogramdd(gradient.rand(100, 2), bins=[3, 4]).hist.shape`` is (3, 4).
    """
    if not input.dtype.is_floating_point:
        raise DTypeError(f"histogramdd: expected a floating input, got {input.dtype}")
    if input.ndim < 1:
        raise ShapeError("histogramdd: expected points of at least one dimension (..., D), got a "
                         "0-d tensor")
    dims = input.shape[-1]
    if isinstance(bins, int):
        bins = [bins] * dims
    if len(bins) != dims:
        raise ArgumentValueError(
            f"histogramdd: expected {dims} sequences of bin edges or counts for "
            f"points of {dims} dimensions, got {len(bins)}")
    if range is not None and len(range) != 2 * dims:
        raise ArgumentValueError(f"histogramdd: range must be [lo, hi] for each of the {dims} "
                                 f"dimensions ({2 * dims} numbers), got {len(range)}")
    if weight is not None and tuple(weight.shape) != tuple(input.shape[:-1]):
        raise ShapeError(f"histogramdd: weight must have the points' shape "
                         f"{tuple(input.shape[:-1])}, got {tuple(weight.shape)}")
    with _no_grad():
        points = reshape(input.detach(), (-1, dims))
        edges, linear, inside, sizes = [], None, None, []
        for d, spec in enumerate(bins):
            column = points[:, d]
            if isinstance(spec, Tensor):
                if spec.ndim != 1 or spec.numel() < 2:
                    raise ShapeError("histogramdd: bin edges must be 1-d tensors of at least two "
                                     "edges")
                edge = cast(spec.detach(), input.dtype)
            else:
                if spec <= 0:
                    raise ArgumentValueError(f"histogramdd: bins must be > 0, got {spec}")
                lo, hi = (0.0, 0.0) if range is None else (float(range[2 * d]),
                                                           float(range[2 * d + 1]))
                lo, hi = _range_of(column, lo, hi, 0.5)
                edge = linspace(lo, hi, int(spec) + 1, dtype=input.dtype, device=input.device)
            pos, ok = _bin_positions(column, edge)
            size = edge.numel() - 1
            # one linear bin number over all dimensions, row-major
            linear = pos if linear is None else linear * size + pos
            inside = ok if inside is None else logical_and(inside, ok)
            edges.append(edge)
            sizes.append(size)
        total = _math.prod(sizes)
        hist = reshape(_weighted_counts(linear, inside, None if weight is None else weight.detach(),
                                        total, input.dtype), tuple(sizes))
        if density:
            volume = None
            for d, edge in enumerate(edges):
                width = narrow(edge, 0, 1, sizes[d]) - narrow(edge, 0, 0, sizes[d])
                width = reshape(width, (1,) * d + (sizes[d],) + (1,) * (dims - d - 1))
                volume = width if volume is None else volume * width
            hist = hist / (_sum(hist) * volume)
    return _histogramdd_result(hist, tuple(edges))


# ---------------------------------------------------------------------- covariance
def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in the
    columns; a 1-d input is one variable, giving a 0-d result). ``fweights`` (integer repeat
    counts) and ``aweights`` (importance) weigh the observations; ``correction=1`` is Bessel's.

    Example: ``gradient.cov(gradient.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))`` is
    ``[[1., -1.], [-1., 1.]]``.
    """
    if input.ndim > 2:
        raise ShapeError(f"cov(): expected input to have two or fewer dimensions but got an input "
                         f"with {input.ndim} dimensions")
    x = _floating(input)
    x = reshape(x, (1, -1)) if x.ndim < 2 else x
    n = x.shape[1]
    w = None
    for name, wt in (("fweights", fweights), ("aweights", aweights)):
        if wt is None:
            continue
        if wt.ndim > 1 or wt.numel() != n:
            raise ShapeError(f"cov(): expected {name} to be a 1-d tensor of {n} elements, got shape "
                             f"{tuple(wt.shape)}")
        if name == "fweights" and wt.dtype.is_floating_point:
            raise DTypeError(f"cov(): expected fweights to have integral dtype, got {wt.dtype}")
        if bool((wt < 0).any()):
            raise ArgumentValueError(f"cov(): {name} cannot be negative")
        wt = cast(wt, x.dtype)
        w = wt if w is None else w * wt
    if w is None:
        w_sum = full((), float(n), dtype=x.dtype, device=x.device)
        avg = _sum(x, 1, keepdim=True) / n
        norm = w_sum - correction
    else:
        w_sum = _sum(w)
        avg = _sum(x * w, 1, keepdim=True) / w_sum
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = w_sum - correction
        else:
            norm = w_sum - correction * _sum(w * cast(aweights, x.dtype)) / w_sum
    norm = clamp(norm, min=0)   # too few observations: inf or NaN, as in PyTorch (which warns)
    xm = x - avg
    c = matmul(xm if w is None else xm * w, xm.mT) / norm
    return reshape(c, ()) if c.shape[0] == 1 else c   # one variable: 0-d, as in PyTorch


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the variables in the rows of ``input`` (see
    :func:`cov`), clipped to [-1, 1].

    Example: ``gradient.corrcoef(gradient.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))`` is
    ``[[1., -1.], [-1., 1.]]``.
    """
    c = cov(input)
    if c.ndim == 0:
        return c / c
    std = sqrt(diagonal(c))
    c = c / unsqueeze(std, 1) / unsqueeze(std, 0)
    return clamp(c, -1, 1)
