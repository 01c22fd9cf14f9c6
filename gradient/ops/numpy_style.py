"""Functions PyTorch took from NumPy and SciPy: ``unravel_index`` (flat indices to coordinates),
``vander`` (the Vandermonde matrix), ``cumulative_trapezoid`` (running trapezoidal integrals)
and ``gradient`` (derivatives of sampled values by finite differences).

Example::

    >>> gradient.unravel_index(gradient.tensor([5, 7]), (2, 4))
    (tensor([1, 1]), tensor([1, 3]))
    >>> gradient.vander(gradient.tensor([1, 2, 3]), N=3)     # columns x**2, x, 1
"""

from __future__ import annotations

import operator

from ..autograd.grad_mode import no_grad
from ..dtypes import bool_, get_default_dtype, int64
from ..errors import (ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError,
                      ShapeError)
from ..tensor import Tensor
from .argument_errors import check_fits_in_memory
from .creation import ones_like, tensor
from .elementwise import cast, floor_divide, remainder
from .reduce import cumsum, diff
from .shape import cat as _cat
from .shape import narrow, reshape, stack, wrap_dim

__all__ = ["unravel_index", "vander", "cumulative_trapezoid", "gradient"]
TENSOR_METHODS = ()


def unravel_index(indices, shape) -> tuple:
    """The coordinates in a tensor of ``shape`` of the row-major flat ``indices`` (taken modulo
    the number of elements, as PyTorch: -1 is the last one): one int64 tensor per dimension,
    each of ``indices``' shape.

    Example: ``gradient.unravel_index(gradient.tensor(5), (2, 4))`` is
    ``(tensor(1), tensor(1))``.
    """
    if not isinstance(indices, Tensor):
        indices = tensor(indices)
    if indices.dtype.is_floating_point or indices.dtype is bool_:
        raise DTypeError(f"unravel_index: expected 'indices' to be an integer tensor, got "
                         f"{indices.dtype}")
    shape = (operator.index(shape),) if not isinstance(shape, (tuple, list)) else tuple(
        operator.index(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ArgumentValueError(
            f"unravel_index: 'shape' cannot have negative values, got {shape}")
    numel = 1
    for s in shape:
        numel *= s
    with no_grad():
        # like PyTorch, indices out of range are not refused: they wrap around modulo the
        # number of elements (so -1 is the last element)
        flat = remainder(cast(indices, int64), max(numel, 1))
        coords = []
        for s in reversed(shape):                  # peel off the fastest-moving dimension first
            coords.append(remainder(flat, s))
            flat = floor_divide(flat, s)
    return tuple(reversed(coords))


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of the 1-d ``x``: column ``j`` is ``x ** (N - 1 - j)`` (``x ** j``
    when ``increasing``); ``N`` defaults to ``len(x)``. Integer and bool inputs give int64.

    Built by repeated multiplication (not ``pow``), so its gradient is finite at ``x = 0``.
    Example: ``gradient.vander(gradient.tensor([2.0, 3.0]), N=3)`` is ``[[4, 2, 1], [9, 3, 1]]``.
    """
    if x.ndim != 1:
        raise ShapeError(f"vander: x must be a one-dimensional tensor, got shape {tuple(x.shape)}")
    N = x.shape[0] if N is None else operator.index(N)
    if N < 0:
        raise ArgumentValueError(f"vander: N must be non-negative, got {N}")
    check_fits_in_memory(f"vander of N={N}", N * x.shape[0], x.dtype.itemsize)
    if not x.dtype.is_floating_point:
        x = cast(x, int64)
    if N == 0:
        return reshape(x, (-1, 1))[:, :0]
    columns = [ones_like(x)]
    for _ in range(N - 1):
        columns.append(columns[-1] * x)
    if not increasing:
        columns.reverse()
    return stack(columns, 1)


def cumulative_trapezoid(y: Tensor, x: Tensor | None = None, *, dx: float | None = None,
                         dim: int = -1) -> Tensor:
    """The running trapezoidal integral of ``y`` along ``dim`` (one value fewer than ``y`` has):
    samples ``dx`` apart (1 by default) or at the points ``x`` (1-d, or of ``y``'s shape).

    Example: ``gradient.cumulative_trapezoid(gradient.tensor([1.0, 2.0, 3.0]))`` is
    ``tensor([1.5, 4.0])``.
    """
    if x is not None and dx is not None:
        raise ArgumentTypeError(
            "cumulative_trapezoid: give either the sample points x or the spacing dx, "
            "not both")
    if y.ndim == 0:
        raise IndexRangeError(f"cumulative_trapezoid: dimension {dim} is out of range: y has no "
                              f"dimensions")
    dim = wrap_dim(dim, y.ndim)
    n = y.shape[dim]
    if n == 0:
        return narrow(y, dim, 0, 0) * 1.0
    pairs = narrow(y, dim, 0, n - 1) + narrow(y, dim, 1, n - 1)
    if x is None:
        return cumsum(pairs * ((1.0 if dx is None else dx) / 2), dim)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"cumulative_trapezoid: x has {x.shape[0]} points, y has {n} along "
                             f"dim {dim}")
        steps = reshape(diff(x), (n - 1,) + (1,) * (y.ndim - dim - 1))
    else:
        steps = diff(x, dim=dim)
    return cumsum(pairs * steps / 2, dim)


def gradient(input: Tensor, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:
    """The derivative of ``input``'s values along each dimension in ``dim`` (all by default),
    estimated by second-order central differences inside and one-sided differences of order
    ``edge_order`` (1 or 2) at the ends, as ``torch.gradient`` (NumPy's formulas): a tuple of
    tensors of ``input``'s shape. ``spacing`` is one step for every dimension, one per
    dimension, or per dimension a 1-d tensor of the sample coordinates (unevenly spaced);
    differentiable in ``input``.

    Example: ``gradient.gradient(gradient.tensor([1.0, 4.0, 9.0]))`` is ``(tensor([3., 4., 5.]),)``
    """
    dims = list(range(input.ndim)) if dim is None else \
        [dim] if isinstance(dim, int) else list(dim)
    dims = [wrap_dim(d, input.ndim) for d in dims]
    if edge_order not in (1, 2):
        raise ArgumentValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if isinstance(spacing, (int, float)) or isinstance(spacing, Tensor) and spacing.ndim == 0:
        spacing = [spacing] * len(dims)
    spacing = list(spacing)
    if len(spacing) != len(dims):
        raise ArgumentValueError(
            f"gradient: expected spacing to be a number or one entry per dimension "
            f"({len(dims)}), got {len(spacing)}")
    values = input if input.dtype.is_floating_point else cast(input, get_default_dtype())
    return tuple(_along(values, d, h, edge_order) for d, h in zip(dims, spacing))


def _along(f: Tensor, d: int, h, edge_order: int) -> Tensor:
    """One dimension's derivative (see :func:`gradient`)."""
    n = f.shape[d]
    if n < edge_order + 1:
        raise ArgumentValueError(f"gradient: each dimension needs at least edge_order + 1 = "
                                 f"{edge_order + 1} samples, dimension {d} has {n}")
    def part(start, length):
        return narrow(f, d, start, length)
    if isinstance(h, Tensor) and h.ndim == 1:
        if h.shape[0] != n:
            raise ArgumentValueError(
                f"gradient: the coordinates of dimension {d} must be {n}, got "
                f"{h.shape[0]}")
        steps = reshape(diff(cast(h, f.dtype)), (-1,) + (1,) * (f.ndim - d - 1))
        return _uneven(part, steps, n, edge_order, d)
    h = float(h)
    inner = (part(2, n - 2) - part(0, n - 2)) / (2 * h)
    if edge_order == 1:
        first, last = (part(1, 1) - part(0, 1)) / h, (part(n - 1, 1) - part(n - 2, 1)) / h
    else:
        first = (-1.5 * part(0, 1) + 2 * part(1, 1) - 0.5 * part(2, 1)) / h
        last = (0.5 * part(n - 3, 1) - 2 * part(n - 2, 1) + 1.5 * part(n - 1, 1)) / h
    return _cat([first, inner, last], d)


def _uneven(part, steps: Tensor, n: int, edge_order: int, d: int) -> Tensor:
    """Differences along dimension ``d`` of unevenly spaced samples (``steps[i] = x[i + 1] -
    x[i]``, shaped to broadcast along that dimension)."""
    def step(start, length):
        return narrow(steps, 0, start, length)
    left, right = step(0, n - 2), step(1, n - 2)
    inner = (left ** 2 * part(2, n - 2) - right ** 2 * part(0, n - 2)
             + (right ** 2 - left ** 2) * part(1, n - 2)) / (left * right * (left + right))
    if edge_order == 1:
        first = (part(1, 1) - part(0, 1)) / step(0, 1)
        last = (part(n - 1, 1) - part(n - 2, 1)) / step(n - 2, 1)
    else:
        a, b = step(0, 1), step(1, 1)
        first = (-(2 * a + b) / (a * (a + b)) * part(0, 1) + (a + b) / (a * b) * part(1, 1)
                 - a / (b * (a + b)) * part(2, 1))
        a, b = step(n - 3, 1), step(n - 2, 1)
        last = (b / (a * (a + b)) * part(n - 3, 1) - (a + b) / (a * b) * part(n - 2, 1)
                + (a + 2 * b) / (b * (a + b)) * part(n - 1, 1))
    return _cat([first, inner, last], d)
