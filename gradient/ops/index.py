"""Indexing: ``x[...]`` reads and writes, and the gather/scatter, sort and sampling family.

``x[idx]`` follows PyTorch indexing: ints, slices (with steps and negative indices), ``None``,
``...``, integer tensors or lists (several of them broadcast together), and boolean masks.
Basic indexing (ints, slices, None, ...) gives a view; integer and mask indexing gives a copy.
In backward, repeated indices accumulate.

Where PyTorch and NumPy disagree, gradient follows PyTorch: in ``x[0, :, [1, 2]]`` the integer
selects first, so the result has shape ``(x.shape[1], 2)`` (NumPy gives ``(2, x.shape[1])``).
Deliberate differences: negative slice steps (``x[::-1]``) work here, as in NumPy, while
PyTorch raises (the result is a view and is differentiable); sorts are always stable;
``scatter(reduce=...)`` is not supported; ``multinomial`` uses gradient's own generator.

Example::

    >>> x = gradient.arange(12.0).reshape(3, 4)
    >>> x[1:, ::2], x[gradient.tensor([0, 0, 2])], x[x > 5]
    >>> x.gather(1, gradient.tensor([[0], [3], [1]])), x.topk(2).indices
"""

from __future__ import annotations

import collections
import operator
import warnings
from math import prod as _prod

import numpy as np

from ..autograd.function import ArrayFunction
from ..dtypes import bool_, float64, int32, int64, result_type, uint8
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .creation import default_generator, tensor as _tensor
from .shape import _as_view, _reshape_result, broadcast_shapes, expand, reshape, wrap_dim

__all__ = [
    "getitem", "setitem_", "index_put", "select", "gather", "scatter", "scatter_add",
    "take_along_dim", "take", "index_select", "index_add", "index_fill", "masked_select", "nonzero",
    "argwhere", "sort", "argsort", "topk", "kthvalue", "searchsorted", "bucketize", "multinomial",
]

TENSOR_METHODS = (
    "select", "index_put", "gather", "scatter", "scatter_add", "index_select", "index_add",
    "index_fill", "take", "take_along_dim", "masked_select", "nonzero", "argwhere", "topk", "sort",
    "argsort", "kthvalue", "multinomial",
)

# What topk/sort/kthvalue return: a tuple with ``.values`` and ``.indices``, like torch.return_types.
_TopK = collections.namedtuple("topk", ["values", "indices"])
_Sort = collections.namedtuple("sort", ["values", "indices"])
_KthValue = collections.namedtuple("kthvalue", ["values", "indices"])


# ====================================================================== x[index]
def _is_array(item) -> bool:
    return hasattr(item, "dtype") and hasattr(item, "ndim")


def _convert_index(index, backend):
    """A user index as a tuple NumPy-style indexing understands, and whether it is basic.

    Basic means only ints, slices, None and ``...`` (the result is a view). Integer arrays,
    bool masks and Python bools make it advanced.
    """
    if isinstance(index, list) and any(isinstance(i, (Tensor, list, tuple, slice)) or i is None
                                       or i is Ellipsis for i in index):
        # PyTorch (2.x) still reads a list holding tensors, sequences or slices as a tuple
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for item in index:
        if isinstance(item, Tensor):
            if item.dtype.is_floating_point:
                raise IndexError(f"tensors used as indices must be integer or bool, got {item.dtype}")
            if item.dtype is uint8:
                # PyTorch still reads uint8 index tensors as masks (deprecated, from before bool)
                warnings.warn("indexing with a uint8 tensor reads it as a mask, as PyTorch does; "
                              "use a bool tensor instead", UserWarning, stacklevel=5)
                item = item.to(bool_)
            if item.ndim == 0 and item.dtype is not bool_:
                out.append(int(item.item()))  # a 0-d integer tensor indexes like an int
            else:
                out.append(item._data)
                basic = False
        elif isinstance(item, (bool, np.bool_)):
            out.append(bool(item))  # adds a dimension of size 1 (True) or 0 (False)
            basic = False
        elif isinstance(item, (list, tuple, np.ndarray)):
            arr = np.asarray(item)
            if arr.size == 0 and arr.dtype.kind == "f":
                arr = arr.astype(np.int64)  # [] is an empty integer index
            if arr.dtype.kind not in "biu":
                raise IndexError(f"lists used as indices must hold ints or bools, got {item!r}")
            out.append(backend.from_numpy(arr if arr.dtype.kind == "b" else arr.astype(np.int64)))
            basic = False
        elif item is None or item is Ellipsis:
            out.append(item)
        elif isinstance(item, slice):
            out.append(slice(*(None if v is None else operator.index(v)
                               for v in (item.start, item.stop, item.step))))
        elif isinstance(item, (int, np.integer)) or hasattr(item, "__index__"):
            out.append(operator.index(item))
        else:
            raise IndexError(f"unsupported index {item!r}: use ints, slices, None, ..., or integer/"
                             "bool tensors")
    return tuple(out), basic


def _dims_used(item) -> int:
    """How many dimensions of the indexed tensor one converted index item consumes."""
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if _is_array(item) and item.dtype.kind == "b":
        return item.ndim  # a mask covers as many dimensions as it has
    return 1


_Plan = collections.namedtuple("_Plan", ["index", "basic", "ndim", "drop"])
"""An index ready for the backend: the NumPy-style ``index``, whether it is ``basic``, the
``ndim`` of NumPy's result, and the dimensions of that result to ``drop`` for PyTorch's layout."""


def _plan_ints_and_slices(index, ndim: int) -> _Plan | None:
    """The plan of the commonest index, ints and slices of ints only (``x[0]``, ``x[:, 1:3]``),
    made without the general machinery below; None for anything else."""
    items = index if type(index) is tuple else (index,)
    kept = 0
    for i in items:
        if type(i) is slice:
            if not all(v is None or type(v) is int for v in (i.start, i.stop, i.step)):
                return None
            kept += 1
        elif type(i) is not int:
            return None
    if len(items) > ndim:
        return None  # the general path raises the error
    return _Plan(items + (Ellipsis,), True, kept + ndim - len(items), ())


def _plan(index, shape, backend) -> _Plan:
    """Translate a PyTorch index into one NumPy-style index (plus dimensions to squeeze).

    PyTorch applies ints before advanced indices, NumPy treats an int next to an integer array
    as one more advanced index; the two differ in where the broadcast "advanced" dimensions go
    when an int sits outside the run of array indices (``x[0, :, [1, 2]]``). Such ints become
    one-element slices here, and their size-1 dimensions are dropped afterwards.
    """
    fast = _plan_ints_and_slices(index, len(shape))
    if fast is not None:
        return fast
    items, basic = _convert_index(index, backend)
    ndim = len(shape)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(i) for i in items)
    if used > ndim:
        raise IndexError(f"too many indices for a tensor of dimension {ndim}: the index uses {used}")
    at = next((k for k, i in enumerate(items) if i is Ellipsis), None)
    if at is not None:
        items = items[:at] + (slice(None),) * (ndim - used) + items[at + 1:]
    if basic:
        kept = sum(1 for i in items if isinstance(i, slice) or i is None)
        used = sum(_dims_used(i) for i in items)
        # a trailing ``...`` makes NumPy return a 0-d view (not a scalar copy) for x[0] on 1-d
        return _Plan(items + (Ellipsis,), True, kept + ndim - used, ())

    def advanced(it):
        return _is_array(it) or isinstance(it, bool)

    adv = [k for k, it in enumerate(items) if advanced(it)]
    first, last = adv[0], adv[-1]
    new, drop_items, dim = [], [], 0
    for k, it in enumerate(items):
        if isinstance(it, int) and not isinstance(it, bool) and not first < k < last:
            n = shape[dim]
            if not -n <= it < n:
                raise IndexError(f"index {it} is out of bounds for dimension {dim} with size {n}")
            it = slice(it % n, it % n + 1)
            drop_items.append(k)
        new.append(it)
        dim += _dims_used(it)
    # NumPy's result layout: the broadcast advanced dimensions replace the run of advanced
    # indices when it is unbroken, else they go first; the other dimensions keep their order.
    adjacent = all(not (isinstance(new[k], slice) or new[k] is None) for k in range(first, last + 1))
    block = max((1 if it.dtype.kind == "b" else it.ndim) if _is_array(it) else 1
                for it in new if advanced(it))
    pos = 0 if adjacent else block
    drop = []
    for k, it in enumerate(new):
        if adjacent and k == first:
            pos += block
        if isinstance(it, slice) or it is None:
            if k in drop_items:
                drop.append(pos)
            pos += 1
    return _Plan(tuple(new), False, pos + ndim - dim, tuple(drop))


class Index(ArrayFunction):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        # without integer arrays no position is read twice, so backward can write, not add
        ctx.unique = not any(_is_array(i) and i.dtype.kind != "b" for i in index)
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, grad):
        zeros = grad.new_zeros(ctx.shape)
        if ctx.unique:
            return IndexPut.apply(zeros, grad, ctx.index), None
        return IndexAccumulate.apply(zeros, grad, ctx.index), None


class IndexAccumulate(ArrayFunction):
    """``base`` with ``values`` added at ``index`` (repeated indices add up); out of place."""

    @staticmethod
    def forward(ctx, base, values, index):
        ctx.index = index
        out = ctx.backend.copy(base)
        ctx.backend.index_add(out, index, values)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad, Index.apply(grad, ctx.index), None


class IndexPut(ArrayFunction):
    """``base`` with ``values`` written at ``index``; out of place."""

    @staticmethod
    def forward(ctx, base, values, index):
        ctx.index = index
        out = ctx.backend.copy(base)
        ctx.backend.setitem(out, index, values)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_base = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_base = IndexPut.apply(grad, grad.new_zeros(()), ctx.index)
        if ctx.needs_input_grad[1]:
            grad_values = Index.apply(grad, ctx.index)
        return grad_base, grad_values, None


def getitem(input: Tensor, index) -> Tensor:
    """``input[index]``; a view for basic indexing (``x[1:, 0]``), a copy for integer-array and
    mask indexing (``x[gradient.tensor([2, 0])]``, ``x[x > 0]``)."""
    plan = _plan(index, input.shape, input._backend)
    try:
        out = Index.apply(input, plan.index)
    except IndexError as e:
        raise IndexError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
    if plan.basic:
        return _as_view(out, input)
    if plan.drop:
        out = _reshape_result(out, tuple(n for i, n in enumerate(out.shape) if i not in plan.drop))
    return out


def _values_for(input: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(input.dtype) if value.dtype is not input.dtype else value
    return Tensor._make(input._backend.full((), value, input.dtype), False, input._backend) \
        if np.isscalar(value) else Tensor(value, dtype=input.dtype, device=input.device)


def _fit_values(values: Tensor, plan: _Plan, index, input: Tensor) -> Tensor:
    """``values`` reshaped to broadcast against the NumPy-layout result of ``plan``."""
    target = plan.ndim - len(plan.drop)  # dimensions of the PyTorch-layout result
    shape = tuple(values.shape)
    if len(shape) > target:  # extra leading dimensions are allowed when they are all 1
        if any(n != 1 for n in shape[:len(shape) - target]):
            raise ShapeError(f"index assignment: cannot assign values of shape {shape} at {index!r} "
                             f"into a tensor of shape {tuple(input.shape)}: the indexed part has "
                             f"{target} dimensions")
        shape = shape[len(shape) - target:]
    if plan.drop:
        shape = (1,) * (target - len(shape)) + shape
        for p in sorted(plan.drop):
            shape = shape[:p] + (1,) + shape[p:]
    return reshape(values, shape) if shape != tuple(values.shape) else values


def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """A copy of ``input`` with ``input[indices] = values`` (``+=`` with ``accumulate=True``,
    where repeated indices add up); differentiable in ``input`` and ``values``.

    Example: ``x.index_put((gradient.tensor([0, 2]),), gradient.tensor(1.0))``
    """
    plan = _plan(indices, input.shape, input._backend)
    values = _fit_values(_values_for(input, values), plan, indices, input)
    try:
        if accumulate:
            return IndexAccumulate.apply(input, values, plan.index)
        return IndexPut.apply(input, values, plan.index)
    except IndexError as e:
        raise IndexError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
    except ValueError as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {indices!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def setitem_(input: Tensor, index, value) -> None:
    """In place ``input[index] = value`` without autograd (used by ``Tensor.__setitem__``)."""
    plan = _plan(index, input.shape, input._backend)
    values = _fit_values(_values_for(input, value), plan, index, input)
    if hasattr(input._data, "flags") and not input._data.flags.writeable:
        raise ShapeError(f"index assignment: this tensor of shape {tuple(input.shape)} is a broadcast "
                         "(expanded) view whose elements share memory and cannot be written; "
                         "call .clone() first")
    try:
        input._backend.setitem(input._data, plan.index, values._data)
    except IndexError as e:
        raise IndexError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
    except ValueError as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {index!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim`` (that dimension removed); a view:
    ``x.select(1, -1)`` is ``x[:, -1]``."""
    if input.ndim == 0:
        raise IndexError("select: cannot select from a 0-d tensor")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} is out of range for dimension {dim} of size {n}")
    return getitem(input, (slice(None),) * dim + (index,))


# ====================================================================== helpers
def _int_index(fn: str, index, input: Tensor) -> Tensor:
    """``index`` as an integer tensor on ``input``'s device, with a clear error otherwise."""
    if not isinstance(index, Tensor):
        index = _tensor(index, device=input.device)  # ints stay int64 (Tensor() makes floats)
    if index.dtype.is_floating_point or index.dtype is bool_:
        raise DTypeError(f"{fn}: expected an integer (int64) index tensor, got {index.dtype}")
    return index


def _minmax(t: Tensor) -> tuple[int, int]:
    b = t._backend
    lo = b.to_numpy(b.reduce("min", t._data, None, False))
    hi = b.to_numpy(b.reduce("max", t._data, None, False))
    return int(lo), int(hi)


def _check_bounds(fn: str, index: Tensor, size: int, dim: int, negative: bool = False) -> None:
    """Raise IndexError unless every entry of ``index`` lies in [0, size) (or [-size, size))."""
    if index.numel() == 0:
        return
    lo, hi = _minmax(index)
    low = -size if negative else 0
    if lo < low or hi >= size:
        bad = lo if lo < low else hi
        allowed = f"{low} to {size - 1}" if size else "none: the dimension is empty"
        raise IndexError(f"{fn}: index {bad} is out of range for dimension {dim} with size {size} "
                         f"(allowed: {allowed})")


def _wrap_negative(index: Tensor, size: int) -> Tensor:
    """Negative indices counted from the end (index + size where index < 0)."""
    b = index._backend
    data = index._data
    zero = b.full((), 0, index.dtype)
    wrapped = b.where(b.binary("lt", data, zero), b.binary("add", data, b.full((), size, index.dtype)),
                      data)
    return Tensor._make(wrapped, False, b)


def _broadcast_shapes(fn: str, *shapes) -> tuple:
    try:
        return tuple(broadcast_shapes(*shapes))
    except ShapeError as e:
        raise ShapeError(f"{fn}: {e}") from None


def _same_dtype(fn: str, input: Tensor, other: Tensor, what: str) -> None:
    if other.dtype is not input.dtype:
        raise DTypeError(f"{fn}: expected {what} to have the dtype of the input ({input.dtype}), got "
                         f"{other.dtype}; convert it with .to({input.dtype})")


def _leading(t: Tensor, shape) -> Tensor:
    """The leading ``shape`` block of ``t`` (a view), or ``t`` when it already has that shape."""
    if tuple(t.shape) == tuple(shape):
        return t
    return getitem(t, tuple(slice(0, n) for n in shape))


def _as_1d(t: Tensor) -> Tensor:
    return reshape(t, (1,)) if t.ndim == 0 else t


# ====================================================================== gather / scatter
class Gather(ArrayFunction):
    """``out[i][j] = x[index[i][j]][j]`` (for dim 0): PyTorch's gather."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim = x.shape, dim
        ctx.save_for_backward(index)
        if any(n != m for d, (n, m) in enumerate(zip(x.shape, index.shape)) if d != dim):
            # only the leading index.shape[d] entries along the other dimensions are read
            x = ctx.backend.getitem(x, tuple(slice(None) if d == dim else slice(0, m)
                                             for d, m in enumerate(index.shape)))
        return ctx.backend.take_along_axis(x, index, dim)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return ScatterAdd.apply(grad.new_zeros(ctx.shape), ctx.dim, index, grad), None, None


class ScatterAdd(ArrayFunction):
    """``base`` plus ``src`` added at ``index`` along ``dim`` (src has index's shape); out of place."""

    @staticmethod
    def forward(ctx, base, dim, index, src):
        ctx.dim = dim
        ctx.save_for_backward(index)
        out = ctx.backend.copy(base)
        ctx.backend.scatter_add(out, dim, index, src)
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        grad_src = Gather.apply(grad, ctx.dim, index) if ctx.needs_input_grad[3] else None
        return grad, None, None, grad_src


class Scatter(ArrayFunction):
    """``base`` with ``src`` written at ``index`` along ``dim``; out of place.

    ``src`` has index's shape, or is 0-d (a fill value).
    """

    @staticmethod
    def forward(ctx, base, dim, index, src):
        ctx.dim = dim
        ctx.save_for_backward(index)
        out = ctx.backend.copy(base)
        ctx.backend.put_along_axis(out, index, src, dim)
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        grad_base = grad_src = None
        if ctx.needs_input_grad[0]:  # overwritten positions get no gradient
            grad_base = Scatter.apply(grad, ctx.dim, index, grad.new_zeros(()))
        if ctx.needs_input_grad[3]:
            grad_src = Gather.apply(grad, ctx.dim, index)
        return grad_base, None, None, grad_src


def _check_gather_shapes(fn: str, input: Tensor, dim: int, index: Tensor, src: Tensor | None = None):
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise ShapeError(f"{fn}: the index must have as many dimensions as the input, got index of "
                         f"shape {tuple(index.shape)} for input of shape {tuple(input.shape)}")
    ishape, xshape = tuple(_as_1d(index).shape), tuple(_as_1d(input).shape)
    for d, (m, n) in enumerate(zip(ishape, xshape)):
        if d != dim and m > n:
            raise ShapeError(f"{fn}: index of shape {tuple(index.shape)} is larger than the input of "
                             f"shape {tuple(input.shape)} in dimension {d} ({m} > {n})")
    if src is not None:
        if src.ndim != index.ndim and not (src.ndim <= 1 and index.ndim <= 1):
            raise ShapeError(f"{fn}: src must have as many dimensions as the index, got src of shape "
                             f"{tuple(src.shape)} and index of shape {tuple(index.shape)}")
        for d, (m, n) in enumerate(zip(ishape, _as_1d(src).shape)):
            if m > n:
                raise ShapeError(f"{fn}: index of shape {tuple(index.shape)} is larger than src of "
                                 f"shape {tuple(src.shape)} in dimension {d} ({m} > {n})")


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """Values of ``input`` along ``dim`` at ``index``: ``out[i][j] = input[i][index[i][j]]`` (dim=1).

    ``index`` has as many dimensions as ``input``, and the result has its shape.
    Example: ``gradient.gather(x, 1, gradient.tensor([[0, 0], [1, 0]]))``
    """
    index = _int_index("gather", index, input)
    dim = wrap_dim(dim, input.ndim)
    _check_gather_shapes("gather", input, dim, index)
    x1, i1 = _as_1d(input), _as_1d(index)
    _check_bounds("gather", i1, x1.shape[dim], dim)
    out = Gather.apply(x1, dim, i1)
    return _reshape_result(out, ()) if index.ndim == 0 else out


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of ``input`` with ``src`` (or the scalar ``value``) written at ``index`` along ``dim``:
    ``out[index[i][j]][j] = src[i][j]`` (dim=0). Out of place (this is not ``scatter_``).

    With repeated indices one of the written values wins (which one is unspecified in PyTorch).
    Example: ``gradient.zeros(3, 2).scatter(0, gradient.tensor([[2, 0]]), gradient.ones(1, 2))``
    """
    if reduce is not None:
        raise NotImplementedError("scatter: reduce= is not supported; use scatter_add for 'add'")
    if src is None and value is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    if src is not None and value is not None:
        raise TypeError("scatter: give either src or value, not both")
    index = _int_index("scatter", index, input)
    dim = wrap_dim(dim, input.ndim)
    if isinstance(src, Tensor):
        _same_dtype("scatter", input, src, "src")
        _check_gather_shapes("scatter", input, dim, index, src)
        src = _leading(_as_1d(src), _as_1d(index).shape)
    else:
        _check_gather_shapes("scatter", input, dim, index)
        src = _values_for(input, value if src is None else src)
        if src.ndim:
            raise TypeError("scatter: value must be a number; pass a tensor as src")
    x1, i1 = _as_1d(input), _as_1d(index)
    _check_bounds("scatter", i1, x1.shape[dim], dim)
    out = Scatter.apply(x1, dim, i1, src)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeats add up):
    ``out[index[i][j]][j] += src[i][j]`` (dim=0).

    Example: ``gradient.zeros(3).scatter_add(0, gradient.tensor([0, 0, 2]), gradient.ones(3))``
    """
    index = _int_index("scatter_add", index, input)
    dim = wrap_dim(dim, input.ndim)
    _same_dtype("scatter_add", input, src, "src")
    _check_gather_shapes("scatter_add", input, dim, index, src)
    x1, i1 = _as_1d(input), _as_1d(index)
    _check_bounds("scatter_add", i1, x1.shape[dim], dim)
    out = ScatterAdd.apply(x1, dim, i1, _leading(_as_1d(src), i1.shape))
    return _reshape_result(out, ()) if input.ndim == 0 else out


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Values of ``input`` at ``indices`` along ``dim``, broadcasting the other dimensions
    (NumPy's take_along_axis). Negative indices count from the end; with ``dim=None`` both are
    flattened and, as in PyTorch, indices must then be non-negative.

    Example: ``x.take_along_dim(x.argsort(dim=1), dim=1)`` sorts each row.
    """
    indices = _int_index("take_along_dim", indices, input)
    if dim is None:
        flat = reshape(input, (-1,))
        _check_bounds("take_along_dim", indices, flat.shape[0], 0)
        return Gather.apply(flat, 0, reshape(indices, (-1,)))
    dim = wrap_dim(dim, input.ndim)
    if input.ndim != indices.ndim:
        raise ShapeError(f"take_along_dim: input and indices must have the same number of "
                         f"dimensions, got shapes {tuple(input.shape)} and {tuple(indices.shape)}")
    x1, i1 = _as_1d(input), _as_1d(indices)
    other = [1 if d == dim else n for d, n in enumerate(x1.shape)]
    other_i = [1 if d == dim else n for d, n in enumerate(i1.shape)]
    common = list(_broadcast_shapes("take_along_dim", other, other_i))
    x1 = expand(x1, tuple(common[:dim] + [x1.shape[dim]] + common[dim + 1:]))
    i1 = expand(i1, tuple(common[:dim] + [i1.shape[dim]] + common[dim + 1:]))
    n = x1.shape[dim]
    _check_bounds("take_along_dim", i1, n, dim, negative=True)
    out = Gather.apply(x1, dim, _wrap_negative(i1, n))
    return _reshape_result(out, ()) if indices.ndim == 0 else out


def take(input: Tensor, index: Tensor) -> Tensor:
    """``input`` read as 1-d at ``index`` (negative indices count from the end); index's shape.

    Example: ``gradient.take(x, gradient.tensor([[0, -1]]))``
    """
    index = _int_index("take", index, input)
    flat = reshape(input, (-1,))
    n = flat.shape[0]
    _check_bounds("take", index, n, 0, negative=True)
    out = Gather.apply(flat, 0, reshape(_wrap_negative(index, n), (-1,)))
    return _reshape_result(out, tuple(index.shape))


def _dim_index(fn: str, input: Tensor, dim: int, index, negative: bool = False):
    """(dim, the 1-d index tensor, the index tuple addressing input[..., index, ...])."""
    index = _int_index(fn, index, input)
    if index.ndim > 1:
        raise ShapeError(f"{fn}: the index must be 0-d or 1-d, got shape {tuple(index.shape)}")
    dim = wrap_dim(dim, input.ndim)
    index = _as_1d(index)
    size = input.shape[dim] if input.ndim else 1
    _check_bounds(fn, index, size, dim, negative=negative)
    if negative:
        index = _wrap_negative(index, size)
    return dim, index, (slice(None),) * dim + (index._data,)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries at ``index`` (1-d) along ``dim``; repeated indices repeat rows.

    Example: ``x.index_select(0, gradient.tensor([2, 0, 2]))``
    """
    dim, index, idx = _dim_index("index_select", input, dim, index)
    if input.ndim == 0:
        if index.shape[0] != 1:
            raise IndexError(f"index_select: a 0-d input takes an index with exactly one entry, "
                             f"got {index.shape[0]}")
        return _reshape_result(Index.apply(reshape(input, (1,)), idx), ())
    return Index.apply(input, idx)


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added at ``index`` along ``dim`` (repeats add up).

    Example: ``gradient.zeros(3, 2).index_add(0, gradient.tensor([0, 0]), gradient.ones(2, 2))``
    """
    dim, index, idx = _dim_index("index_add", input, dim, index)
    _same_dtype("index_add", input, source, "source")
    want = list(_as_1d(input).shape)
    want[dim] = index.shape[0]
    if tuple(_as_1d(source).shape) != tuple(want):
        raise ShapeError(f"index_add: source must have shape {tuple(want)} (the input's shape with "
                         f"dimension {dim} the length of the index), got {tuple(source.shape)}")
    if alpha != 1:
        source = source * alpha
    out = IndexAccumulate.apply(_as_1d(input), _as_1d(source), idx)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """A copy of ``input`` with the entries at ``index`` along ``dim`` set to ``value``
    (a number or a 0-d tensor, which then gets a gradient). Negative indices count from the end.

    Example: ``x.index_fill(1, gradient.tensor([0, 2]), -1.0)``
    """
    dim, _, idx = _dim_index("index_fill", input, dim, index, negative=True)
    value = _values_for(input, value)
    if value.ndim:
        raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                         f"{tuple(value.shape)}")
    out = IndexPut.apply(_as_1d(input), value, idx)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The entries of ``input`` where the bool ``mask`` is True, as a 1-d tensor (broadcasting).

    Example: ``x.masked_select(x > 0)``
    """
    if not isinstance(mask, Tensor) or mask.dtype is not bool_:
        raise DTypeError(f"masked_select: expected a bool mask, got "
                         f"{mask.dtype if isinstance(mask, Tensor) else type(mask).__name__}")
    shape = _broadcast_shapes("masked_select", input.shape, mask.shape)
    x, m = expand(input, shape), expand(mask, shape)
    if not shape:  # 0-d: index a 1-element view, the result is 1-d
        x, m = reshape(x, (1,)), reshape(m, (1,))
    return Index.apply(x, (m._data,))


# ====================================================================== nonzero
def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the non-zero entries: an int64 tensor of shape (count, ndim), or with
    ``as_tuple=True`` one 1-d tensor per dimension (for use as an index).

    Example: ``gradient.nonzero(gradient.tensor([0, 3, 0, 5]))`` gives ``[[1], [3]]``.
    """
    b = input._backend
    data = input._data if input.ndim else b.reshape(input._data, (1,))
    nz = b.nonzero(data)  # (count, max(ndim, 1)) int64
    if as_tuple:
        return tuple(Tensor._make(b.contiguous(b.getitem(nz, (slice(None), d))), False, b)
                     for d in range(nz.shape[1]))
    if input.ndim == 0:
        nz = b.getitem(nz, (slice(None), slice(0, 0)))
    return Tensor._make(nz, False, b)


def argwhere(input: Tensor) -> Tensor:
    """Indices of the non-zero entries, shape (count, ndim): ``nonzero(input)``."""
    return nonzero(input)


# ====================================================================== sorting
def _sort_indices(input: Tensor, dim: int, descending: bool) -> Tensor:
    """int64 indices that sort ``input`` (at least 1-d) along ``dim``; ties keep their order.

    NaN ranks above every number, as in PyTorch: last ascending, first descending.
    """
    b = input._backend
    data = input._data
    if descending and input.dtype.is_floating_point:
        nan = b.unary("isnan", data)
        if bool(b.to_numpy(b.reduce("any", nan, None, False))):
            # the backend's descending sort keeps NaN last; sort by -x, then (stably) NaN first
            by_value = b.sort(b.where(nan, b.full((), 0, input.dtype), b.unary("neg", data)),
                              dim, False, True)[1]
            not_nan = b.take_along_axis(b.unary("logical_not", nan), by_value, dim)
            nan_first = b.sort(not_nan, dim, False, True)[1]
            return Tensor._make(b.take_along_axis(by_value, nan_first, dim), False, b)
    return Tensor._make(b.sort(data, dim, descending, True)[1], False, b)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` sorted along ``dim``; values are differentiable (the gradient goes
    back to where each value came from). The sort is always stable here.

    Example: ``values, indices = x.sort(dim=1, descending=True)``
    """
    dim = wrap_dim(dim, input.ndim)
    x = _as_1d(input)
    idx = _sort_indices(x, dim, descending)
    values = Gather.apply(x, dim, idx)
    if input.ndim == 0:
        return _Sort(_reshape_result(values, ()), _reshape_result(idx, ()))
    return _Sort(values, idx)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (``sort(...).indices``)."""
    dim = wrap_dim(dim, input.ndim)
    idx = _sort_indices(_as_1d(input), dim, descending)
    return _reshape_result(idx, ()) if input.ndim == 0 else idx


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """``(values, indices)`` of the ``k`` largest (or smallest) entries along ``dim``, in sorted
    order (also when ``sorted=False``); values are differentiable.

    Example: ``x.topk(2).values``
    """
    dim = wrap_dim(dim, input.ndim)
    x = _as_1d(input)
    n = x.shape[dim]
    if not 0 <= k <= n:
        raise IndexError(f"topk: k={k} is out of range for dimension {dim} of size {n} "
                         f"(expected 0 <= k <= {n})")
    idx = _sort_indices(x, dim, largest)
    idx = getitem(idx, (slice(None),) * dim + (slice(0, k),))
    values = Gather.apply(x, dim, idx)
    if input.ndim == 0:
        return _TopK(_reshape_result(values, ()), _reshape_result(idx, ()))
    return _TopK(values, idx)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """``(values, indices)`` of the ``k``-th smallest entry (k counts from 1) along ``dim``.

    Example: ``x.kthvalue(2, dim=0).values``
    """
    dim = wrap_dim(dim, input.ndim)
    x = _as_1d(input)
    n = x.shape[dim]
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue: k={k} is out of range for dimension {dim} of size {n} "
                         f"(expected 1 <= k <= {n})")
    idx = _sort_indices(x, dim, False)
    idx = getitem(idx, (slice(None),) * dim + (slice(k - 1, k),))
    values = Gather.apply(x, dim, idx)
    if input.ndim == 0:
        shape = ()
    elif keepdim:
        return _KthValue(values, idx)
    else:
        shape = tuple(s for d, s in enumerate(values.shape) if d != dim)
    return _KthValue(_reshape_result(values, shape), _reshape_result(idx, shape))


def searchsorted(sorted_sequence: Tensor, values, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter: Tensor | None = None) -> Tensor:
    """For each value, the index where it would be inserted into the sorted last dimension of
    ``sorted_sequence`` to keep it sorted (before equal entries, or after them with
    ``right=True`` / ``side='right'``).

    ``sorted_sequence`` is 1-d, or has the leading dimensions of ``values``.
    Example: ``gradient.searchsorted(gradient.tensor([1, 3, 5]), gradient.tensor([3, 6]))`` gives
    ``[1, 3]``.
    """
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side='left' contradicts right=True")
        right = side == "right"
    seq = sorted_sequence
    scalar = not isinstance(values, Tensor)
    if scalar:
        if seq.ndim != 1:
            raise ShapeError("searchsorted: a scalar value needs a 1-d sorted_sequence")
        values = _tensor([values], device=seq.device)
    if sorter is not None:
        seq = take_along_dim(seq, _int_index("searchsorted", sorter, seq), -1)
    if seq.ndim == 0:
        raise ShapeError("searchsorted: sorted_sequence must have at least one dimension")
    if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(values.shape[:-1]):
        raise ShapeError(f"searchsorted: the leading dimensions of sorted_sequence "
                         f"{tuple(seq.shape)} and values {tuple(values.shape)} must match")
    dtype = result_type(seq, values)
    b = seq._backend
    n = seq.shape[-1]
    rows = _prod(seq.shape[:-1])  # explicit sizes: a -1 cannot be inferred for empty shapes
    per_row = values.numel() if seq.ndim == 1 else values.shape[-1]
    if rows * per_row == 0:
        out = b.full(tuple(values.shape), 0, int64)
    else:
        out = b.searchsorted(b.reshape(b.cast(b.contiguous(seq._data), dtype), (rows, n)),
                             b.reshape(b.cast(b.contiguous(values._data), dtype), (rows, per_row)),
                             right)
    out = b.cast(b.reshape(out, tuple(values.shape)), int32 if out_int32 else int64)
    if scalar:
        out = b.reshape(out, ())
    return Tensor._make(out, False, b)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The index of the bucket of each entry of ``input`` given 1-d sorted ``boundaries``
    (``searchsorted(boundaries, input)``)."""
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-d, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ====================================================================== sampling
def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Draw ``num_samples`` category indices per row from the (unnormalised) weights ``input``
    (1-d or 2-d), with or without replacement; int64 of shape (num_samples,) or (rows, num_samples).

    Without replacement the draws are sequential (each one excludes the categories drawn
    before); categories of weight zero come last, only once the others are used up.
    Uses gradient's own generator: the same seed gives the same draws in gradient, not PyTorch's.
    Example: ``gradient.multinomial(gradient.tensor([0.1, 0.9]), 4, replacement=True)``
    """
    if input.ndim not in (1, 2):
        raise ShapeError(f"multinomial: the weights must be 1-d or 2-d, got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"multinomial: expected floating-point weights, got {input.dtype}")
    num_samples = operator.index(num_samples)
    n = input.shape[-1]
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and num_samples > n:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                         f"{n} categories")
    b = input._backend
    rows = b.reshape(b.cast(b.contiguous(input._data), float64), (-1, n))
    bad = b.reduce("any", b.binary("logical_or", b.unary("logical_not", b.unary("isfinite", rows)),
                                   b.binary("lt", rows, b.full((), 0.0, float64))), None, False)
    if bool(b.to_numpy(bad)):
        raise ValueError("multinomial: the weights contain inf, nan or a negative entry")
    sums = b.reduce("sum", rows, 1, False)
    if n == 0 or bool(b.to_numpy(b.reduce("any", b.binary("le", sums, b.full((), 0.0, float64)),
                                           None, False))):
        raise ValueError("multinomial: invalid distribution: a row of weights sums to 0")
    gen = (generator if generator is not None else default_generator)._state
    zero = b.full((), 0.0, float64)
    if replacement:
        # inverse CDF: the first category whose cumulative weight exceeds u * total
        u = b.uniform(gen, (rows.shape[0], num_samples), 0.0, 1.0, float64)
        cdf = b.cumsum(rows, 1)
        total = b.getitem(cdf, (slice(None), slice(n - 1, n)))
        idx = b.cast(b.searchsorted(cdf, b.binary("mul", u, total)), int64)
        # rounding can push u * total onto the total: keep to the last category of positive weight
        positive = b.getitem(b.binary("gt", rows, zero), (slice(None), slice(None, None, -1)))
        last = b.binary("sub", b.full((), n - 1, int64), b.reduce("argmax", positive, 1, True))
        idx = b.binary("minimum", idx, last)
    else:
        # exponential races: category i finishes at E_i / w_i with E_i ~ Exp(1); the order of
        # finishing is a sequential draw without replacement (the Gumbel-top-k trick)
        u = b.uniform(gen, (rows.shape[0], n), 0.0, 1.0, float64)
        e = b.unary("neg", b.unary("log1p", b.unary("neg", u)))  # -log(1 - u), u in [0, 1)
        keys = b.where(b.binary("gt", rows, zero), b.binary("div", e, rows),
                       b.full((), float("inf"), float64))
        order = b.sort(keys, 1, False, True)[1]
        idx = b.cast(b.getitem(order, (slice(None), slice(0, num_samples))), int64)
    if input.ndim == 1:
        idx = b.reshape(idx, (num_samples,))
    return Tensor._make(b.contiguous(idx), False, b)
