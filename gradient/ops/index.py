"""Indexing: ``x[...]`` reads and writes, and the gather/scatter, sort and sampling family.

``x[idx]`` follows PyTorch indexing: ints, slices (with steps and negative indices), ``None``,
``...``, integer tensors or lists (several of them broadcast together), and boolean masks.
Basic indexing (ints, slices, None, ...) gives a view; integer and mask indexing gives a copy.
In backward, repeated indices accumulate.

Where PyTorch and NumPy disagree, gradient follows PyTorch: in ``x[0, :, [1, 2]]`` the integer
selects first, so the result has shape ``(x.shape[1], 2)`` (NumPy gives ``(2, x.shape[1])``).
Deliberate differences: negative slice steps (``x[::-1]``) work here, as in NumPy, while
PyTorch raises (the result is a view and is differentiable); sorts are always stable;
``unique`` always sorts (also with ``sorted=False``); ``multinomial`` uses gradient's own
generator. The in-place forms (``scatter_``, ``index_add_``, ``index_put_``, ...) are here too.

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
from ..autograd.grad_mode import no_grad as _no_grad
from ..dtypes import bool_, float64, int32, int64, result_type, uint8
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, IndexRangeError, ShapeError
from ..tensor import Tensor
from .argument_errors import as_int
from .creation import default_generator, full as _full, tensor as _tensor
from .elementwise import _inplace_op, floor_divide as _floor_divide, where as _where
from .shape import (_as_view, _reshape_result, broadcast_shapes, cat as _cat, clone, expand,
                    reshape, wrap_dim)

__all__ = [
    "getitem", "setitem_", "index_put", "select", "gather", "scatter", "scatter_add",
    "take_along_dim", "take", "index_select", "index_add", "index_fill", "masked_select", "nonzero",
    "nonzero_static", "argwhere", "sort", "argsort", "topk", "kthvalue", "searchsorted", "bucketize", "multinomial",
    "scatter_reduce", "index_copy", "masked_scatter", "put", "unique", "unique_consecutive",
    "bincount", "isin", "index_put_",
]
# (the other in-place forms are Tensor methods only, as in PyTorch: see TENSOR_METHODS)

TENSOR_METHODS = (
    "select", "index_put", "gather", "scatter", "scatter_add", "index_select", "index_add",
    "index_fill", "take", "take_along_dim", "masked_select", "nonzero", "nonzero_static",
    "argwhere", "topk", "sort",
    "argsort", "kthvalue", "multinomial", "scatter_reduce", "index_copy", "masked_scatter", "put",
    "unique", "unique_consecutive", "bincount", "isin",
    "scatter_", "scatter_add_", "scatter_reduce_", "index_add_", "index_fill_", "index_copy_",
    "index_put_", "masked_scatter_", "put_", "fill_diagonal_",
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
    if isinstance(index, list) and any(isinstance(i, (Tensor, list, tuple, slice, range))
                                       or i is None or i is Ellipsis for i in index):
        # PyTorch (2.x) still reads a list holding tensors, sequences or slices as a tuple
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for item in index:
        if isinstance(item, Tensor):
            if item.dtype.is_floating_point:
                raise IndexRangeError(
                    f"tensors used as indices must be integer or bool, got {item.dtype}")
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
        elif isinstance(item, (list, tuple, np.ndarray, range)):   # a range: its ints
            arr = np.asarray(item)
            if arr.size == 0 and arr.dtype.kind == "f":
                arr = arr.astype(np.int64)  # [] is an empty integer index
            if arr.dtype.kind not in "biu":
                raise IndexRangeError(
                    f"lists used as indices must hold ints or bools, got {item!r}")
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
            raise IndexRangeError(
                f"unsupported index {item!r}: use ints, slices, None, ..., ranges, "
                "lists of ints or bools, or integer/bool tensors")
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
            start, stop, step = i.start, i.stop, i.step
            if not ((start is None or type(start) is int) and (stop is None or type(stop) is int)
                    and (step is None or type(step) is int)):
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
        raise IndexRangeError("an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(i) for i in items)
    if used > ndim:
        raise IndexRangeError(
            f"too many indices for a tensor of dimension {ndim}: the index uses {used}")
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
                raise IndexRangeError(
                    f"index {it} is out of bounds for dimension {dim} with size {n}")
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
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, grad):
        zeros = grad.new_zeros(ctx.shape)
        # without integer arrays no position is read twice, so backward can write, not add
        if not any(_is_array(i) and i.dtype.kind != "b" for i in ctx.index):
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
        raise IndexRangeError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
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
        raise IndexRangeError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
    except ValueError as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {indices!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def _shares_elements(data) -> bool:
    """Whether elements of ``data`` share memory, so that writing one writes others (what
    ``Tensor._check_writeable`` refuses to write into): NumPy marks such views (broadcasts,
    windows) read-only; CuPy has no such flag, so there a stride of 0 along a dimension longer
    than 1 (a broadcast) tells."""
    flags = getattr(data, "flags", None)
    if flags is None:
        return False
    writeable = getattr(flags, "writeable", None)
    if writeable is not None:
        return not writeable
    return _broadcast(data)


def _broadcast(data) -> bool:
    """Whether an array has a stride of 0 along a dimension longer than 1 (a broadcast)."""
    return any(stride == 0 and size > 1 for stride, size in zip(data.strides, data.shape))


def broadcast_alias(data):
    """A writable array over the memory of ``data`` where ``data`` is a broadcast view (a
    stride of 0 along a dimension longer than 1: what ``expand`` makes, read-only in NumPy) of
    writable memory; None otherwise (no broadcast, or read-only memory underneath: a file
    mapped read-only). For writes that cannot give two elements sharing a place different
    values: ``fill_``, or a region of the view in which no elements share memory (PyTorch's
    rule for expanded tensors)."""
    if not isinstance(data, np.ndarray) or not _broadcast(data):
        return None
    root = data
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not root.flags.writeable:
        return None
    interface = dict(data.__array_interface__, data=(data.__array_interface__["data"][0], False))
    return np.asarray(_Memory(interface, data))


class _Memory:
    """An array interface over the memory of ``owner`` (kept alive while an alias lives)."""

    def __init__(self, interface: dict, owner):
        self.__array_interface__, self.owner = interface, owner


def setitem_(input: Tensor, index, value) -> None:
    """In place ``input[index] = value`` without autograd (used by ``Tensor.__setitem__``).
    Into an expanded tensor as PyTorch writes: where the indexed region's own elements do not
    share memory (``x.expand(2, 3)[0, 1] = 5`` writes the one element under it)."""
    plan = _plan(index, input.shape, input._backend)
    values = _fit_values(_values_for(input, value), plan, index, input)
    try:
        target = input._data
        if _shares_elements(target):
            alias = broadcast_alias(target) if plan.basic else None
            if alias is None or _broadcast(alias[plan.index]):
                input._check_writeable("index assignment")    # (raises: elements share memory)
            target = alias
        input._backend.setitem(target, plan.index, values._data)
    except IndexError as e:
        raise IndexRangeError(f"{e} (indexing a tensor of shape {tuple(input.shape)})") from None
    except ValueError as e:
        raise ShapeError(f"index assignment: cannot assign values of shape {tuple(values.shape)} "
                         f"at {index!r} into a tensor of shape {tuple(input.shape)}: {e}") from None


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim`` (that dimension removed); a view:
    ``x.select(1, -1)`` is ``x[:, -1]``."""
    if input.ndim == 0:
        raise IndexRangeError("select: cannot select from a 0-d tensor")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexRangeError(
            f"select: index {index} is out of range for dimension {dim} of size {n}")
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
        raise IndexRangeError(
            f"{fn}: index {bad} is out of range for dimension {dim} with size {size} "
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
    ``reduce="add"`` or ``"multiply"`` accumulates instead (PyTorch's older form of
    :func:`scatter_reduce` with ``"sum"`` and ``"prod"``).
    Example: ``gradient.zeros(3, 2).scatter(0, gradient.tensor([[2, 0]]), gradient.ones(1, 2))``
    """
    if src is None and value is None:
        raise ArgumentTypeError("scatter: give src (a tensor) or value (a number)")
    if src is not None and value is not None:
        raise ArgumentTypeError("scatter: give either src or value, not both")
    index = _int_index("scatter", index, input)
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise ArgumentValueError(
                f"scatter: reduce must be 'add' or 'multiply', got {reduce!r} (use "
                "scatter_reduce for 'mean', 'amax' and 'amin')")
        if not isinstance(src, Tensor):  # a number: the same value at every index position
            src = _values_for(input, value if src is None else src)
            if src.ndim:
                raise ArgumentTypeError("scatter: value must be a number; pass a tensor as src")
            src = expand(src, tuple(index.shape))
        return scatter_reduce(input, dim, index, src, "sum" if reduce == "add" else "prod")
    dim = wrap_dim(dim, input.ndim)
    if isinstance(src, Tensor):
        _same_dtype("scatter", input, src, "src")
        _check_gather_shapes("scatter", input, dim, index, src)
        src = _leading(_as_1d(src), _as_1d(index).shape)
    else:
        _check_gather_shapes("scatter", input, dim, index)
        src = _values_for(input, value if src is None else src)
        if src.ndim:
            raise ArgumentTypeError("scatter: value must be a number; pass a tensor as src")
    x1, i1 = _as_1d(input), _as_1d(index)
    _check_bounds("scatter", i1, x1.shape[dim], dim)
    out = Scatter.apply(x1, dim, i1, src)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeats add up):
    ``out[index[i][j]][j] += src[i][j]`` (dim=0).

    Example: ``gradient.zeros(3).scatter_add(0, gradient.tensor([0, 0, 2]), gradient.ones(3))``
    """
    x1, dim, i1, s1 = _scatter_operands("scatter_add", input, dim, index, src)
    out = ScatterAdd.apply(x1, dim, i1, s1)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def _scatter_operands(name: str, input: Tensor, dim: int, index, src: Tensor) -> tuple:
    """``(input, dim, index, src)`` of a scatter that combines ``src`` into ``input``, checked
    (integer index in bounds, one dtype, gather-compatible shapes) and made at least 1-d, with
    ``dim`` wrapped and ``src`` cut to the index's shape."""
    index = _int_index(name, index, input)
    dim = wrap_dim(dim, input.ndim)
    _same_dtype(name, input, src, "src")
    _check_gather_shapes(name, input, dim, index, src)
    x1, i1 = _as_1d(input), _as_1d(index)
    _check_bounds(name, i1, x1.shape[dim], dim)
    return x1, dim, i1, _leading(_as_1d(src), i1.shape)


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
            raise IndexRangeError(
                f"index_select: a 0-d input takes an index with exactly one entry, "
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
def nonzero_static(input: Tensor, *, size: int, fill_value: int = -1) -> Tensor:
    """:func:`nonzero` padded or cut to exactly ``size`` rows (``fill_value`` in the padding),
    as ``torch.nonzero_static``: a shape known before the values are (for compiled code).

    Example: ``gradient.nonzero_static(gradient.tensor([0, 3, 5]), size=3)`` is
    ``[[1], [2], [-1]]``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ArgumentValueError(
            f"nonzero_static: size must be a nonnegative integer, got {size!r}")
    found = nonzero(input)
    count, width = found.shape
    if count >= size:
        return found[:size]
    padding = _full((size - count, width), fill_value, dtype=found.dtype, device=found.device)
    return _cat([found, padding], 0)


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
    k = as_int(k, "topk: k")
    dim = wrap_dim(dim, input.ndim)
    x = _as_1d(input)
    n = x.shape[dim]
    if not 0 <= k <= n:
        raise IndexRangeError(f"topk: k={k} is out of range for dimension {dim} of size {n} "
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
    k = as_int(k, "kthvalue: k")
    dim = wrap_dim(dim, input.ndim)
    x = _as_1d(input)
    n = x.shape[dim]
    if not 1 <= k <= n:
        raise IndexRangeError(f"kthvalue: k={k} is out of range for dimension {dim} of size {n} "
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
            raise ArgumentValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ArgumentValueError("searchsorted: side='left' contradicts right=True")
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
    num_samples = as_int(num_samples, "multinomial: num_samples")
    n = input.shape[-1]
    if num_samples <= 0:
        raise ArgumentValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and num_samples > n:
        raise ArgumentValueError(
            f"multinomial: cannot draw {num_samples} samples without replacement from "
            f"{n} categories")
    b = input._backend
    rows = b.reshape(b.cast(b.contiguous(input._data), float64), (-1, n))
    bad = b.reduce("any", b.binary("logical_or", b.unary("logical_not", b.unary("isfinite", rows)),
                                   b.binary("lt", rows, b.full((), 0.0, float64))), None, False)
    if bool(b.to_numpy(bad)):
        raise ArgumentValueError("multinomial: the weights contain inf, nan or a negative entry")
    sums = b.reduce("sum", rows, 1, False)
    if n == 0 or bool(b.to_numpy(b.reduce("any", b.binary("le", sums, b.full((), 0.0, float64)),
                                           None, False))):
        raise ArgumentValueError("multinomial: invalid distribution: a row of weights sums to 0")
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


# ====================================================================== scatter_reduce
_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _flat_targets(b, shape, dim: int, index):
    """Where each entry of ``index`` (an array of ``input``'s ndim) writes in the flattened
    ``input`` of ``shape``: ``index`` along ``dim``, its own position along the others."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n
    out = b.binary("mul", index, b.full((), strides[dim], int64))
    for d, n in enumerate(index.shape):
        if d != dim:
            coord = b.reshape(b.arange(0, n, 1, int64), tuple(n if k == d else 1
                                                               for k in range(index.ndim)))
            out = b.binary("add", out, b.binary("mul", coord, b.full((), strides[d], int64)))
    return b.reshape(b.contiguous(out), (index.size,))


def _rank_groups(b, targets) -> list:
    """The positions of 1-d ``targets`` split into rounds that each hit every target at most once.

    Round ``r`` holds, for each distinct target, its ``r``-th occurrence (in order). Round 0
    therefore holds every distinct target exactly once. A reduction with repeated indices
    becomes a few passes of plain (collision-free) gathers and writes, on backend primitives.
    """
    n = targets.shape[0]
    if n == 0:
        return []
    values, order = b.sort(targets, 0, False, True)
    start = b.concatenate([b.full((1,), True, bool_),
                           b.binary("ne", b.getitem(values, (slice(1, None),)),
                                    b.getitem(values, (slice(None, -1),)))], 0)
    segment = b.binary("sub", b.cumsum(b.cast(start, int64), 0), b.full((), 1, int64))
    first = b.reshape(b.nonzero(start), (-1,))
    rank = b.binary("sub", b.arange(0, n, 1, int64), b.take_along_axis(first, segment, 0))
    rounds = int(b.to_numpy(b.reduce("max", rank, None, False))) + 1
    return [b.getitem(order, (b.binary("eq", rank, b.full((), r, int64)),)) for r in range(rounds)]


class _ScatterExtreme(ArrayFunction):
    """scatter_reduce's amax/amin on flat arrays: one pass per round of :func:`_rank_groups`.

    The gradient is split evenly among the elements equal to the result, as PyTorch does; an
    element of ``x`` counts only where it took part (see scatter_reduce's docstring)."""

    @staticmethod
    def forward(ctx, x, targets, src, groups, include_self, op):
        b = ctx.backend
        out = b.copy(x)
        for r, g in enumerate(groups):
            at, values = b.getitem(targets, (g,)), b.getitem(src, (g,))
            if r or include_self:
                values = b.binary(op, b.getitem(out, (at,)), values)
            b.setitem(out, (at,), values)
        ctx.include_self = include_self
        ctx.save_for_backward(x, targets, src, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, targets, src, out = ctx.saved_tensors
        chosen_src = src == Gather.apply(out, 0, targets)
        chosen_x = x == out
        if not ctx.include_self:  # x took part only where nothing was scattered
            chosen_x = Scatter.apply(chosen_x, 0, targets, _tensor(False, device=x.device))
        dtype = grad.dtype
        count = ScatterAdd.apply(chosen_x.to(dtype), 0, targets, chosen_src.to(dtype))
        share = grad / count  # count >= 1 wherever a gradient goes
        zero = grad.new_zeros(())
        return (_where(chosen_x, share, zero), None,
                _where(chosen_src, Gather.apply(share, 0, targets), zero), None, None, None)


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """A copy of ``input`` where the values of ``src`` are reduced into the positions ``index``
    names along ``dim`` (``out[index[i][j]][j] = reduce(out[...], src[i][j])`` for dim 0).

    ``reduce`` is ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``; with
    ``include_self=False`` the original values at scattered positions are left out of the
    reduction. Integer ``"mean"`` rounds toward -inf, as PyTorch's. Differentiable in ``input``
    and ``src`` (``"prod"`` exactly, also with zeros; ``"amax"``/``"amin"`` split the gradient
    evenly among ties). Deliberate difference: with ``include_self=False`` an input value that
    equals the result is not one of the ties (PyTorch counts it, then gives it no gradient, so
    part of the gradient is lost).

    Example::

        >>> gradient.zeros(3).scatter_reduce(0, gradient.tensor([0, 0, 2]),
        ...                                  gradient.tensor([1.0, 2.0, 5.0]), "amax")
        tensor([2., 0., 5.])
    """
    if reduce not in _SCATTER_REDUCTIONS:
        raise ArgumentValueError(
            f"scatter_reduce: reduce must be one of {', '.join(_SCATTER_REDUCTIONS)}; "
            f"got {reduce!r}")
    if not isinstance(src, Tensor):
        raise ArgumentTypeError(
            f"scatter_reduce: expected src to be a tensor, got {type(src).__name__}")
    x1, dim, i1, s1 = _scatter_operands("scatter_reduce", input, dim, index, src)
    out = _scatter_reduce(x1, dim, i1, s1, reduce, include_self)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def _scatter_reduce(x: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str,
                    include_self: bool) -> Tensor:
    b = x._backend
    if reduce in ("sum", "mean"):
        base = x if include_self else Scatter.apply(x, dim, index, x.new_zeros(()))
        total = ScatterAdd.apply(base, dim, index, src)
        if reduce == "sum":
            return total
        with _no_grad():  # how many values each position averages
            hits = ScatterAdd.apply(x.new_zeros(tuple(x.shape), dtype=int64), dim, index,
                                    src.new_ones(tuple(src.shape), dtype=int64))
            count = hits + 1 if include_self else hits + (hits == 0).to(int64)
        if x.dtype.is_floating_point:
            return total / count.to(x.dtype)
        return _floor_divide(total, count.to(x.dtype))  # integers round down, as in PyTorch
    # prod, amax, amin: on the flattened tensors, one collision-free pass per round
    shape = tuple(x.shape)
    targets = Tensor._make(_flat_targets(b, shape, dim, index._data), False, b)
    flat_x, flat_src = reshape(x, (-1,)), reshape(src, (-1,))
    groups = _rank_groups(b, targets._data)
    if reduce == "prod":
        out = flat_x
        if not include_self:
            out = Scatter.apply(out, 0, targets, flat_x.new_ones(()))
        for g in groups:
            at = Tensor._make(b.getitem(targets._data, (g,)), False, b)
            picked = Gather.apply(flat_src, 0, Tensor._make(g, False, b))
            out = Scatter.apply(out, 0, at, Gather.apply(out, 0, at) * picked)
        return reshape(out, shape) if out is not flat_x else clone(x)
    op = "maximum" if reduce == "amax" else "minimum"
    out = _ScatterExtreme.apply(flat_x, targets, flat_src, groups, include_self, op)
    return reshape(out, shape)


# ====================================================================== more writes by index
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` with the slices of ``source`` written at ``index`` along ``dim``:
    ``out[:, index[i]] = source[:, i]`` (dim=1). With repeated indices one of the written slices
    wins (which one is unspecified, as in PyTorch).

    Example: ``gradient.zeros(3, 2).index_copy(0, gradient.tensor([2, 0]), gradient.ones(2, 2))``
    """
    dim, index, idx = _dim_index("index_copy", input, dim, index)
    if not isinstance(source, Tensor):
        raise ArgumentTypeError(
            f"index_copy: expected source to be a tensor, got {type(source).__name__}")
    _same_dtype("index_copy", input, source, "source")
    want = list(_as_1d(input).shape)
    want[dim] = index.shape[0]
    if tuple(_as_1d(source).shape) != tuple(want):
        raise ShapeError(f"index_copy: source must have shape {tuple(want)} (the input's shape with "
                         f"dimension {dim} the length of the index), got {tuple(source.shape)}")
    out = IndexPut.apply(_as_1d(input), _as_1d(source), idx)
    return _reshape_result(out, ()) if input.ndim == 0 else out


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` (broadcast with the bool ``mask``) whose positions where ``mask`` is
    True take the leading elements of ``source``, in row-major order.

    ``source`` needs at least as many elements as ``mask`` has True entries.
    Example: ``x.masked_scatter(x < 0, gradient.zeros(x.numel()))``
    """
    if not isinstance(mask, Tensor) or mask.dtype is not bool_:
        raise DTypeError(f"masked_scatter: expected a bool mask, got "
                         f"{mask.dtype if isinstance(mask, Tensor) else type(mask).__name__}")
    if not isinstance(source, Tensor):
        raise ArgumentTypeError(
            f"masked_scatter: expected source to be a tensor, got {type(source).__name__}")
    _same_dtype("masked_scatter", input, source, "source")
    shape = _broadcast_shapes("masked_scatter", input.shape, mask.shape)
    x, m = expand(input, shape), expand(mask, shape)
    b = mask._backend
    count = int(b.to_numpy(b.reduce("sum", b.cast(m._data, int64), None, False)))
    if count > source.numel():
        raise ShapeError(f"masked_scatter: the mask has {count} True entries but source has only "
                         f"{source.numel()} elements; give a source with at least {count}")
    values = getitem(reshape(source, (-1,)), slice(0, count))
    if not shape:  # 0-d: write through a 1-element view
        return reshape(index_put(reshape(x, (1,)), (reshape(m, (1,)),), values), ())
    return index_put(x, (m,), values)


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of ``input`` with ``source`` written at ``index`` of its flattened elements
    (negative indices count from the end; ``accumulate=True`` adds, repeats adding up).

    Example: ``gradient.zeros(2, 2).put(gradient.tensor([0, -1]), gradient.tensor([1.0, 2.0]))``
    """
    index = _int_index("put", index, input)
    if not isinstance(source, Tensor):
        raise ArgumentTypeError(
            f"put: expected source to be a tensor, got {type(source).__name__}")
    _same_dtype("put", input, source, "source")
    if source.numel() != index.numel():
        raise ShapeError(f"put: source must have as many elements as index ({index.numel()}), got "
                         f"{source.numel()}")
    flat = reshape(input, (-1,))
    n = flat.shape[0]
    _check_bounds("put", index, n, 0, negative=True)
    position = reshape(_wrap_negative(index, n), (-1,))
    out = index_put(flat, (position,), reshape(source, (-1,)), accumulate)
    return reshape(out, tuple(input.shape))


def _diagonal_positions(fn: str, shape, wrap: bool):
    """Flat positions of the main diagonal of ``shape`` (2-d, or n-d with equal sizes)."""
    if len(shape) < 2:
        raise ShapeError(f"{fn}: expected a tensor of at least 2 dimensions, got shape {tuple(shape)}")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise ShapeError(f"{fn}: a tensor of more than 2 dimensions must have all dimensions of "
                         f"equal length, got shape {tuple(shape)}")
    numel = _prod(shape)
    if len(shape) == 2:
        rows, cols = shape
        if wrap:  # tall matrices: the diagonal restarts one row after it left the last column
            return np.arange(0, numel, cols + 1, dtype=np.int64)
        return np.arange(min(rows, cols), dtype=np.int64) * (cols + 1)
    step = sum(shape[0] ** k for k in range(len(shape)))
    return np.arange(shape[0], dtype=np.int64) * step


def _fill_diagonal(input: Tensor, fill_value, wrap: bool) -> Tensor:
    positions = _diagonal_positions("fill_diagonal_", tuple(input.shape), wrap)
    b = input._backend
    index = Tensor._make(b.from_numpy(positions), False, b)
    out = index_put(reshape(input, (-1,)), (index,), fill_value)
    return reshape(out, tuple(input.shape))


# ====================================================================== in-place forms
def scatter_(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None) -> Tensor:
    """In-place :func:`scatter`: ``x.scatter_(1, idx, 1.0)`` writes 1 at ``idx`` along dim 1."""
    return _inplace_op(input, "scatter_",
                    lambda s, v: scatter(s, dim, index, v, value=value, reduce=reduce), src)


def scatter_add_(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """In-place :func:`scatter_add`."""
    return _inplace_op(input, "scatter_add_", lambda s, v: scatter_add(s, dim, index, v), src)


def scatter_reduce_(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                    include_self: bool = True) -> Tensor:
    """In-place :func:`scatter_reduce`."""
    return _inplace_op(input, "scatter_reduce_", lambda s, v: scatter_reduce(
        s, dim, index, v, reduce, include_self=include_self), src)


def index_add_(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """In-place :func:`index_add`: ``acc.index_add_(0, rows, updates)``."""
    return _inplace_op(input, "index_add_", lambda s, v: index_add(s, dim, index, v, alpha=alpha),
                    source)


def index_fill_(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """In-place :func:`index_fill`."""
    return _inplace_op(input, "index_fill_", lambda s, v: index_fill(s, dim, index, v), value)


def index_copy_(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """In-place :func:`index_copy`."""
    return _inplace_op(input, "index_copy_", lambda s, v: index_copy(s, dim, index, v), source)


def index_put_(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """In-place :func:`index_put`: ``x.index_put_((rows, cols), values, accumulate=True)``."""
    return _inplace_op(input, "index_put_", lambda s, v: index_put(s, indices, v, accumulate), values)


def masked_scatter_(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """In-place :func:`masked_scatter` (``mask`` must broadcast to ``input``'s shape)."""
    return _inplace_op(input, "masked_scatter_", lambda s, v: masked_scatter(s, mask, v), source)


def put_(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """In-place :func:`put`."""
    return _inplace_op(input, "put_", lambda s, v: put(s, index, v, accumulate), source)


def fill_diagonal_(input: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Write ``fill_value`` on the main diagonal, in place (a 2-d tensor, or n-d with all sizes
    equal). With ``wrap=True`` the diagonal of a tall matrix restarts after every
    ``cols + 1`` rows, as in PyTorch and NumPy.

    Example: ``gradient.zeros(3, 3).fill_diagonal_(1.0)`` is the identity.
    """
    return _inplace_op(input, "fill_diagonal_", lambda s, v: _fill_diagonal(s, v, wrap), fill_value)


# ====================================================================== unique, bincount, isin
# Integer-valued results: none of these is differentiable (their outputs carry no grad_fn).
def _runs(b, rows):
    """Where a new run of equal rows starts in the 2-d array ``rows`` (a bool array per row)."""
    n = rows.shape[0]
    if n == 0:
        return b.full((0,), False, bool_)
    differs = b.binary("ne", b.getitem(rows, (slice(1, None),)), b.getitem(rows, (slice(None, -1),)))
    return b.concatenate([b.full((1,), True, bool_), b.reduce("any", differs, 1, False)], 0)


def _lexsort_rows(b, rows):
    """The stable order that sorts the rows of 2-d ``rows`` lexicographically (first column first)."""
    order = b.arange(0, rows.shape[0], 1, int64)
    for col in reversed(range(rows.shape[1])):  # least significant column first, each sort stable
        key = b.take_along_axis(b.contiguous(b.getitem(rows, (slice(None), col))), order, 0)
        order = b.take_along_axis(order, b.sort(key, 0, False, True)[1], 0)
    return order


def _unique(fn: str, input: Tensor, sort: bool, return_inverse: bool, return_counts: bool, dim):
    b = input._backend
    data = input._data
    if dim is None:
        rows = b.reshape(b.contiguous(data), (data.size, 1))
        axis = None
    else:
        if input.ndim == 0:
            raise IndexRangeError(f"{fn}: dim={dim} given for a 0-d tensor; leave dim=None")
        axis = wrap_dim(dim, input.ndim)
        moved = b.permute(data, (axis,) + tuple(d for d in range(input.ndim) if d != axis))
        rows = b.reshape(b.contiguous(moved), (data.shape[axis], _prod(moved.shape[1:])))
    n = rows.shape[0]
    if sort and n:
        order = _lexsort_rows(b, rows)
        rows = b.getitem(rows, (order,))
    else:
        order = None
    start = _runs(b, rows)
    values = b.getitem(rows, (start,))
    if axis is None:
        out = b.reshape(values, (values.shape[0],))
    else:
        kept = tuple(moved.shape[1:])
        out = b.reshape(values, (values.shape[0],) + kept)
        back = list(range(1, out.ndim))
        back.insert(axis, 0)
        out = b.contiguous(b.permute(out, tuple(back)))
    results = [Tensor._make(out, False, b)]
    if return_inverse:
        run = b.binary("sub", b.cumsum(b.cast(start, int64), 0), b.full((), 1, int64))
        if order is not None:  # back from the sorted order to the input's
            inverse = b.full((n,), 0, int64)
            b.setitem(inverse, (order,), run)
            run = inverse
        shape = tuple(input.shape) if axis is None else (n,)
        results.append(Tensor._make(b.reshape(run, shape), False, b))
    if return_counts:
        first = b.reshape(b.nonzero(start), (-1,))
        ends = b.concatenate([b.getitem(first, (slice(1, None),)), b.full((1,), n, int64)], 0)
        results.append(Tensor._make(b.binary("sub", ends, first), False, b))
    return results[0] if len(results) == 1 else tuple(results)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None):
    """The distinct elements of ``input`` in ascending order (flattened), or with ``dim`` the
    distinct slices along ``dim`` (sorted lexicographically).

    ``return_inverse`` adds, for each element (or slice), the index of its value in the result;
    ``return_counts`` adds how often each value occurs. NaNs are all distinct, as in PyTorch.
    Not differentiable. gradient always sorts (PyTorch may not with ``sorted=False``).

    Example::

        >>> values, inverse, counts = gradient.tensor([3, 1, 3, 2]).unique(return_inverse=True,
        ...                                                                return_counts=True)
        >>> values, inverse, counts
        (tensor([1, 2, 3]), tensor([2, 0, 2, 1]), tensor([1, 1, 2]))
    """
    return _unique("unique", input, True, return_inverse, return_counts, dim)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """Each run of equal consecutive elements (or slices along ``dim``) collapsed to one, with
    optional inverse indices and run lengths, like :func:`unique` without sorting.

    Example: ``gradient.tensor([1, 1, 2, 1]).unique_consecutive()`` is ``tensor([1, 2, 1])``.
    """
    return _unique("unique_consecutive", input, False, return_inverse, return_counts, dim)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in the 1-d non-negative integer ``input`` (the sum
    of ``weights`` at those positions when given); length ``max(input) + 1``, at least
    ``minlength``.

    dtypes follow PyTorch: int64 without weights, float32 for float32 weights, float64 for any
    other weights. Not differentiable (nor is PyTorch's).
    Example: ``gradient.bincount(gradient.tensor([0, 2, 2]))`` is ``tensor([1, 0, 2])``.
    """
    if not isinstance(input, Tensor) or input.dtype.is_floating_point or input.dtype is bool_:
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise DTypeError(f"bincount: expected a 1-d tensor of non-negative integers, got {got}")
    if input.ndim != 1:
        raise ShapeError(f"bincount: expected a 1-d tensor of non-negative integers, got shape "
                         f"{tuple(input.shape)}")
    minlength = operator.index(minlength)
    if minlength < 0:
        raise ArgumentValueError(f"bincount: minlength must be non-negative, got {minlength}")
    b = input._backend
    lo, hi = _minmax(input) if input.numel() else (0, -1)
    if lo < 0:
        raise ArgumentValueError(f"bincount: expected non-negative values, got {lo}")
    if weights is None:
        dtype, src = int64, b.full(tuple(input.shape), 1, int64)
    else:
        if not isinstance(weights, Tensor):
            raise ArgumentTypeError(
                f"bincount: expected weights to be a tensor, got {type(weights).__name__}")
        if tuple(weights.shape) != tuple(input.shape):
            raise ShapeError(f"bincount: weights must have the input's shape {tuple(input.shape)}, "
                             f"got {tuple(weights.shape)}")
        dtype = weights.dtype if weights.dtype.name == "float32" else float64
        src = b.cast(weights._data, dtype)
    out = b.full((max(hi + 1, minlength),), 0, dtype)
    if input.numel():
        b.scatter_add(out, 0, b.cast(input._data, int64), src)
    return Tensor._make(out, False, b)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """A bool tensor of ``elements``' shape: whether each element occurs in ``test_elements``
    (or does not, with ``invert=True``). Either argument may be a number; nan is in nothing.

    Example: ``gradient.isin(gradient.tensor([1, 2, 3]), gradient.tensor([2, 5]))`` is
    ``tensor([False, True, False])``.
    """
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise ArgumentTypeError("isin: expected elements or test_elements to be a tensor, got "
                                f"{type(elements).__name__} and {type(test_elements).__name__}")
    like = elements if isinstance(elements, Tensor) else test_elements
    if not isinstance(elements, Tensor):
        elements = _tensor(elements, device=like.device)
    if not isinstance(test_elements, Tensor):
        test_elements = _tensor(test_elements, device=like.device)
    dtype = result_type(elements, test_elements)
    b = like._backend
    values = b.reshape(b.cast(b.contiguous(elements._data), dtype), (1, elements.numel()))
    tests = b.reshape(b.cast(b.contiguous(test_elements._data), dtype), (test_elements.numel(),))
    if tests.shape[0] == 0 or values.shape[1] == 0:
        found = b.full((1, values.shape[1]), False, bool_)
    else:
        tests = b.reshape(b.sort(tests, 0, False, True)[0], (1, tests.shape[0]))
        at = b.searchsorted(tests, values, False)  # the first test value >= each element
        at = b.binary("minimum", b.cast(at, int64), b.full((), tests.shape[1] - 1, int64))
        found = b.binary("eq", b.take_along_axis(tests, at, 1), values)
    if invert:
        found = b.unary("logical_not", found)
    return Tensor._make(b.reshape(found, tuple(elements.shape)), False, b)
