"""Shape and movement: reshape, view, permute, transpose, expand, squeeze, cat, stack, split ...

View ops (reshape when the strides allow it, view, flatten, squeeze, unsqueeze, permute,
transpose, movedim, expand, narrow, split, chunk, unbind, slicing) share storage with their
input, as in PyTorch: writing to a view writes to its base, and both share one version counter.
Ops that PyTorch documents as copies (cat, stack, flip, roll, repeat, tile, tril, triu) return
storage of their own, even where NumPy could have given a view.

Deliberate differences from PyTorch: ops that change nothing (``reshape`` to the same shape,
``permute`` in order, ``squeeze`` without size-1 dimensions, ``expand`` to the same shape,
``contiguous`` of a contiguous tensor) return the input itself rather than a new alias;
``diagonal`` is a copy when the backend's strides cannot express it (see its docstring);
``view(dtype)`` is not supported.

Example::

    >>> x = gradient.arange(6).reshape(2, 3)
    >>> x.T.shape, x.unsqueeze(0).shape
    (gradient.Size([3, 2]), gradient.Size([1, 2, 3]))
"""

from __future__ import annotations

from math import prod as _prod

from .. import kernels
from ..autograd.function import ArrayFunction
from ..autograd.grad_mode import is_grad_enabled
from ..dtypes import DType, from_numpy_dtype, int64, promote_types
from ..errors import (ArgumentTypeError, ArgumentValueError, DeviceError, IndexRangeError,
                      ShapeError)
from ..layouts import (axis_order, channels_last_of, contiguous_format, preserve_format, relaid,
                       strides_of)
from ..tensor import Size, Tensor
from .argument_errors import as_int, as_ints, check_fits_in_memory

TENSOR_METHODS = (
    "reshape", "view", "view_as", "reshape_as", "flatten", "ravel", "unflatten", "squeeze",
    "unsqueeze", "permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "t",
    "expand", "expand_as", "broadcast_to", "repeat", "tile", "repeat_interleave",
    "narrow", "narrow_copy", "split", "chunk", "tensor_split", "hsplit", "vsplit", "dsplit", "unbind",
    "flip", "fliplr", "flipud", "roll", "tril", "triu", "diagonal", "diag_embed", "diag",
    "clone", "contiguous", "unfold", "is_complex",
)


# ---------------------------------------------------------------------- dimension helpers
def wrap_dim(dim: int, ndim: int) -> int:
    """A possibly negative dimension index as a non-negative one, with a clear IndexError if out
    of range: ``wrap_dim(-1, 3)`` is 2."""
    n = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, like PyTorch
    if type(dim) is not int:
        dim = as_int(dim, "dim")       # (a float, None or a string: PyTorch's TypeError)
    if not -n <= dim < n:
        raise IndexRangeError(
            f"dimension {dim} is out of range for a tensor with {ndim} dimensions "
            f"(expected {-n} to {n - 1})")
    return dim % n if ndim else 0


def wrap_dims(dim, ndim: int) -> tuple:
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int) or hasattr(dim, "__index__"):
        dim = (dim,)
    axes = tuple(sorted({wrap_dim(d, ndim) for d in as_ints(dim, "dim")}))
    if ndim == 0:
        return ()
    return axes


def _dim_list(dims, ndim: int, what: str) -> tuple:
    """``dims`` (an int or a sequence) wrapped, in the order given, refusing repeats."""
    if isinstance(dims, int) or hasattr(dims, "__index__"):
        dims = (dims,)
    out = tuple(wrap_dim(d, ndim) for d in as_ints(dims, f"{what}: dims"))
    if len(set(out)) != len(out):
        raise ShapeError(f"{what}: dimension {tuple(dims)} lists a dimension more than once")
    return out


def _as_view(out: Tensor, base: Tensor, shares: bool | None = None) -> Tensor:
    """Mark ``out`` as a view of ``base``'s storage (it then shares base's version counter).

    ``shares`` says whether it does; when None it is guessed from the array (NumPy views have a
    ``.base``), which is right for slicing, permute and broadcast_to.
    """
    if shares is None:
        shares = out._data.base is not None or out._data is base._data
    if shares:
        out._base = base if base._base is None else base._base
        out._base_grad_fn = out._base.grad_fn
        out._version = base._version
    return out


def _reshape_result(out: Tensor, shape) -> Tensor:
    """``out``, an op's own new result, in ``shape``.

    No tensor the caller holds shares ``out``'s storage, so the reshaped tensor is not marked as
    a view: in-place ops on it are ordinary in-place ops, as on any op's output. It keeps
    ``out``'s version counter, which still guards ``out`` where the graph saved it.
    """
    out = reshape(out, shape)
    out._base = None
    return out


def _size_args(size) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` alike, as a tuple of sizes."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _infer_shape(shape, numel: int, what: str, src_shape=None) -> tuple:
    """``shape`` with its -1 (if any) filled in so that it holds ``numel`` elements."""
    if all(type(s) is int and s >= 0 for s in shape) and _prod(shape) == numel:
        return tuple(shape)  # the common case: every size given, and they fit
    shape = as_ints(shape, f"{what}: the shape")
    src = f"a tensor of shape {tuple(src_shape)} ({numel} elements)" if src_shape is not None \
        else f"a tensor of {numel} elements"
    if shape.count(-1) > 1:
        raise ShapeError(f"{what}: only one dimension can be -1, got {shape}")
    if any(s < -1 for s in shape):
        raise ShapeError(f"{what}: invalid negative size in shape {shape}")
    known = _prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise ShapeError(f"{what}: shape {shape} is invalid for {src}: the other sizes "
                             f"multiply to {known}, which does not divide {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise ShapeError(f"{what}: shape {shape} ({known} elements) is invalid for {src}")
    return shape


def _view_strides(shape, strides, new_shape):
    """Strides for ``new_shape`` over the same memory, or None when no view exists.

    PyTorch's rule (``computeStride``): dimensions can be merged or split only inside a
    "chunk" of dimensions that are contiguous with one another.
    """
    numel = _prod(shape)
    if numel <= 1 or not shape:
        return tuple(new_shape)  # any layout of 0 or 1 elements is a view
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        # a chunk ends where the next dimension to the left is not laid out right after this one
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new_strides) if view_d == -1 else None


# ---------------------------------------------------------------------- reshape and friends
class Reshape(ArrayFunction):
    # the compiled form in a captured step compiled into a loop (gradient.kernels.lowering)
    lower = staticmethod(lambda ctx, x, shape: kernels.lower("reshape", ctx.backend, x, shape))

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.reshape(x, shape)

    @staticmethod
    def backward(ctx, grad):
        if not is_grad_enabled():  # no graph to build: reshape the raw array
            return Tensor._make(ctx.backend.reshape(grad._data, ctx.shape), False, ctx.backend), None
        return reshape(grad, ctx.shape), None


def _can_view(input: Tensor, shape) -> bool:
    flags = getattr(input._data, "flags", None)  # NumPy and CuPy arrays have them
    if flags is not None and flags.c_contiguous:
        return True  # any shape of the same size is a view of contiguous memory
    return _view_strides(tuple(input._data.shape), tuple(input._data.strides), shape) is not None


def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one size may be -1); a view when the strides allow it,
    a copy otherwise: ``x.reshape(2, -1)``."""
    shape = _infer_shape(_size_args(shape), input.numel(), "reshape", input.shape)
    if shape == tuple(input.shape):
        return input
    return _as_view(Reshape.apply(input, shape), input, shares=_can_view(input, shape))


def view(input: Tensor, *shape) -> Tensor:
    """Like :func:`reshape` but never copies: raises ShapeError when the strides of a
    non-contiguous tensor do not allow the new shape, as PyTorch does: ``x.view(-1)``.

    ``view(dtype)`` reads the same bits as another dtype (see :func:`_view_as_dtype`).
    """
    if len(shape) == 1 and isinstance(shape[0], DType):
        return _view_as_dtype(input, shape[0])
    shape = _infer_shape(_size_args(shape), input.numel(), "view", input.shape)
    if not _can_view(input, shape):
        raise ShapeError(f"view: shape {shape} is not compatible with the strides "
                         f"{tuple(input.stride())} of this non-contiguous tensor of shape "
                         f"{tuple(input.shape)} (a new dimension would span memory that is not "
                         "contiguous); use .reshape(), which copies when it must")
    return _as_view(Reshape.apply(input, shape), input, shares=True)


def _view_as_dtype(input: Tensor, dtype: DType) -> Tensor:
    """The same memory read as ``dtype``, as PyTorch's ``x.view(dtype)``: for a dtype of
    another element size the last dimension (contiguous, of a size the sizes divide) shrinks or
    grows, so ``float32 (2, 4) -> float16 (2, 8)``. Writes through either are seen by the
    other; the result never requires grad (PyTorch's neither). CPU tensors only: elsewhere the
    backend's memory is not reachable this way."""
    if dtype is input.dtype:
        return view(input, tuple(input.shape))
    if input._backend.name != "cpu":
        raise DeviceError(f"view(dtype): reading the bits as {dtype} works on CPU tensors; this "
                          f"one is on {input.device}: use .cpu() first, or .to({dtype}) to "
                          f"convert the values")
    old, new = input._data.dtype.itemsize, dtype.numpy.itemsize
    if old != new:
        what = f"to view {input.dtype} as {dtype} (different element sizes)"
        if input.ndim == 0:
            raise ShapeError(f"view(dtype): a 0-d tensor has no last dimension to resize {what}")
        if input.stride(-1) != 1:
            raise ShapeError(f"view(dtype): the last dimension must be contiguous (stride 1) "
                             f"{what}, but its stride is {input.stride(-1)}")
        if (input.shape[-1] * old) % new:
            raise ShapeError(f"view(dtype): the last dimension's size ({input.shape[-1]}) must "
                             f"hold a whole number of {dtype} elements {what}")
    data = input.detach()._data.view(dtype.numpy)
    return _as_view(Tensor._make(data, False, input._backend), input, shares=True)


def view_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.view(other.shape)``."""
    return view(input, tuple(other.shape))


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.reshape(other.shape)``."""
    return reshape(input, tuple(other.shape))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim`` to ``end_dim`` into one: ``x.flatten(1)`` for (N, C, H, W)
    gives (N, C*H*W). A 0-d tensor becomes 1-d. A view when possible, like reshape."""
    if input.ndim == 0:
        return reshape(input, (1,))
    start, end = wrap_dim(start_dim, input.ndim), wrap_dim(end_dim, input.ndim)
    if start > end:
        raise ShapeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    shape = tuple(input.shape)
    return reshape(input, shape[:start] + (_prod(shape[start:end + 1]),) + shape[end + 1:])


def ravel(input: Tensor) -> Tensor:
    """All elements as a 1-d tensor (a view when possible): ``x.ravel()``."""
    return reshape(input, (-1,))


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (one may be -1): ``x.unflatten(1, (2, -1))``."""
    dim = wrap_dim(dim, input.ndim)
    if input.ndim == 0:
        raise ShapeError("unflatten: cannot unflatten a 0-d tensor")
    sizes = as_ints(sizes, "unflatten: sizes")
    if len(sizes) == 0:
        raise ShapeError("unflatten: sizes must be non-empty")
    shape = tuple(input.shape)
    sizes = _infer_shape(sizes, shape[dim], "unflatten", (shape[dim],))
    return reshape(input, shape[:dim] + sizes + shape[dim + 1:])


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove dimensions of size 1: all of them, or those in ``dim`` (an int or a tuple).

    As in PyTorch, naming a dimension whose size is not 1 is not an error: it is kept.
    """
    dims = wrap_dims(dim, input.ndim)
    shape = tuple(n for i, n in enumerate(input.shape) if not (i in dims and n == 1))
    return reshape(input, shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (from ``-ndim-1`` to ``ndim``): ``x.unsqueeze(-1)``."""
    dim = wrap_dim(dim, input.ndim + 1)
    shape = tuple(input.shape)
    return reshape(input, shape[:dim] + (1,) + shape[dim:])


def _atleast(n: int, tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if t.ndim >= n:
            out.append(t)
        elif n == 3 and t.ndim == 1:
            out.append(reshape(t, (1, t.shape[0], 1)))  # PyTorch's (and NumPy's) (1, N, 1)
        elif n == 3 and t.ndim == 2:
            out.append(unsqueeze(t, -1))
        else:
            out.append(reshape(t, (1,) * (n - t.ndim) + tuple(t.shape)))
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dimension (0-d becomes (1,)); one tensor in, one out:
    ``a, b = atleast_1d(a, b)``."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dimensions: (N,) becomes (1, N): ``atleast_2d(x)``."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dimensions: (N,) becomes (1, N, 1), (M, N) becomes (M, N, 1):
    ``atleast_3d(x)``."""
    return _atleast(3, tensors)


# ---------------------------------------------------------------------- permutations
class Permute(ArrayFunction):
    lower = staticmethod(lambda ctx, x, axes: kernels.lower("permute", ctx.backend, x, axes))

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return ctx.backend.permute(x, axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        if not is_grad_enabled():  # no graph to build: permute the raw array
            return Tensor._make(ctx.backend.permute(grad._data, tuple(inverse)), False,
                                ctx.backend), None
        return permute(grad, tuple(inverse)), None


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the dimensions: ``x.permute(2, 0, 1)``."""
    dims = tuple(wrap_dim(d, input.ndim) for d in _size_args(dims))
    if sorted(dims) != list(range(input.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {input.ndim} dimensions")
    if dims == tuple(range(input.ndim)):
        return input
    return _as_view(Permute.apply(input, dims), input, shares=True)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions: ``x.transpose(0, 1)``; a view."""
    axes = list(range(input.ndim))
    if input.ndim == 0:  # dims 0 and -1 are accepted and change nothing
        wrap_dim(dim0, 0)
        wrap_dim(dim1, 0)
        return input
    d0, d1 = wrap_dim(dim0, input.ndim), wrap_dim(dim1, input.ndim)
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(input, tuple(axes))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """The transpose of a tensor with at most 2 dimensions (0-d and 1-d come back as they are):
    ``w.t()``."""
    if input.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dimensions, got {input.ndim}; use "
                         ".transpose(dim0, dim1) or .mT")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dimensions ``source`` (an int or a tuple) to the positions ``destination``, keeping
    the order of the others: ``x.movedim(0, -1)`` turns (C, H, W) into (H, W, C)."""
    src = _dim_list(source, input.ndim, "movedim")
    dst = _dim_list(destination, input.ndim, "movedim")
    if len(src) != len(dst):
        raise ShapeError(f"movedim: source {source} and destination {destination} must have the "
                         "same number of dimensions")
    order = [None] * input.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(input.ndim) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(input, tuple(order))


moveaxis = movedim


# ---------------------------------------------------------------------- broadcasting and repetition
class Expand(ArrayFunction):
    @staticmethod
    def forward(ctx, x, shape):
        return ctx.backend.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine sums the broadcast dimensions away


def expand(input: Tensor, *sizes) -> Tensor:
    """A broadcast view with ``sizes`` (-1 keeps a dimension): ``x.expand(4, -1)``."""
    sizes = as_ints(_size_args(sizes), "expand: the sizes")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes ({len(sizes)}) must be at least the number of "
                         f"dimensions ({input.ndim})")
    shape = []
    for i, s in enumerate(sizes):
        cur = input.shape[i - lead] if i >= lead else 1
        if s == -1:
            if i < lead:
                raise ShapeError("expand: -1 is not allowed for new leading dimensions")
            s = cur
        if cur != 1 and cur != s or s < 0:
            raise ShapeError(f"expand: the size of dimension {i} ({cur}) must match {s} or be 1; "
                             f"cannot expand shape {tuple(input.shape)} to {tuple(sizes)}")
        shape.append(int(s))
    shape = tuple(shape)
    if shape == tuple(input.shape):
        return input
    return _as_view(Expand.apply(input, shape), input, shares=True)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.expand(other.shape)``."""
    return expand(input, tuple(other.shape))


def broadcast_to(input: Tensor, size) -> Tensor:
    """``input`` broadcast to ``size`` (a view), like ``expand``."""
    return expand(input, as_ints(size, "broadcast_to: the size"))


def broadcast_shapes(*shapes) -> tuple:
    """The shape that tensors of ``shapes`` broadcast to: ``broadcast_shapes((2, 1), (3,))``."""
    shapes = [as_ints(s, "broadcast_shapes: a shape") if isinstance(s, (tuple, list))
              else (as_int(s, "broadcast_shapes: a size"),) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate(s, start=ndim - len(s)):
            if n != 1 and out[i] != 1 and n != out[i]:
                raise ShapeError(f"shapes {' and '.join(str(tuple(x)) for x in shapes)} cannot be "
                                 f"broadcast together: {out[i]} != {n} in dimension {i - ndim}")
            if n != 1:
                out[i] = n
    return Size(out)


def broadcast_tensors(*tensors) -> tuple:
    """The tensors broadcast to their common shape, as views: ``a, b = broadcast_tensors(a, b)``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile ``input`` ``sizes[i]`` times along each dimension (PyTorch's ``repeat``, which is
    NumPy's ``tile``, not ``numpy.repeat``): ``x.repeat(2, 1)``. Always a copy."""
    sizes = as_ints(_size_args(sizes), "repeat: sizes")
    if len(sizes) < input.ndim:
        raise ShapeError(f"repeat: the number of repeats ({len(sizes)}) must be at least the "
                         f"number of dimensions of the tensor ({input.ndim})")
    if any(s < 0 for s in sizes):
        raise ShapeError(f"repeat: repeats must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    check_fits_in_memory(f"repeat{sizes}", _prod(r * s for r, s in zip(sizes, shape)),
                         input.dtype.itemsize)
    # (s0, s1) -> (1, s0, 1, s1) -> broadcast (r0, s0, r1, s1) -> (r0*s0, r1*s1)
    x = reshape(input, tuple(v for s in shape for v in (1, s)))
    x = expand(x, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    out = reshape(x, tuple(r * s for r, s in zip(sizes, shape)))
    # repeat always copies; the reshapes above give a view when nothing was really repeated
    return clone(out) if out is input or out._base is not None else out


def tile(input: Tensor, dims) -> Tensor:
    """Like :func:`repeat`, but ``dims`` shorter than the tensor is padded with leading 1s:
    ``x.tile((2,))`` repeats only the last dimension."""
    dims = as_ints(dims if isinstance(dims, (tuple, list)) else (dims,), "tile: dims")
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def repeat_interleave(input: Tensor, repeats=None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times (an int, or a tensor with one count per element)
    along ``dim`` (over the flattened tensor when None): ``x.repeat_interleave(2, dim=0)``.

    ``repeat_interleave(counts)`` alone gives ``arange(len(counts))`` repeated by ``counts``.
    """
    if repeats is None:  # repeat_interleave(repeats): indices repeated
        if input.ndim != 1:
            raise ShapeError(f"repeat_interleave: repeats alone must be a 1-d tensor of counts, got "
                             f"shape {tuple(input.shape)}")
        return _repeated_positions(input)
    if dim is None:
        input, dim = flatten(input), 0
    dim = wrap_dim(dim, input.ndim)
    if input.ndim == 0:
        input = reshape(input, (1,))
    n = input.shape[dim]
    if isinstance(repeats, Tensor):
        if repeats.dtype.is_floating_point or repeats.ndim > 1:
            raise ShapeError(f"repeat_interleave: repeats must be an int or a 0-d/1-d integer "
                             f"tensor, got {repeats.dtype} of shape {tuple(repeats.shape)}")
        if repeats.numel() == 1:
            repeats = repeats.item()
        elif repeats.numel() != n:
            raise ShapeError(f"repeat_interleave: repeats has {repeats.numel()} counts, but "
                             f"dimension {dim} has size {n}")
        else:
            from .index import getitem
            return getitem(input, (slice(None),) * dim + (_repeated_positions(repeats),))
    repeats = as_int(repeats, "repeat_interleave: repeats")
    if repeats < 0:
        raise ShapeError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
    shape = tuple(input.shape)
    check_fits_in_memory(f"repeat_interleave of {repeats} repeats",
                         _prod(shape) * repeats, input.dtype.itemsize)
    x = expand(unsqueeze(input, dim + 1), shape[:dim + 1] + (repeats,) + shape[dim + 1:])
    out = reshape(x, shape[:dim] + (n * repeats,) + shape[dim + 1:])
    return clone(out) if out is input or out._base is not None else out


def _repeated_positions(counts: Tensor) -> Tensor:
    """``i`` repeated ``counts[i]`` times, for each ``i`` in order (int64, 1-d).

    Position ``j`` of the result belongs to the ``i`` whose running total of counts first
    exceeds ``j``: the number of running totals ``<= j``, one searchsorted over all positions.
    """
    b = counts._backend
    c = b.cast(counts._data, int64)
    if c.size and int(b.to_numpy(b.reduce("min", c, None, False))) < 0:
        raise ShapeError("repeat_interleave: repeats must be non-negative")
    ends = b.reshape(b.cumsum(c, 0), (1, c.size))
    total = int(b.to_numpy(b.getitem(ends, (0, -1)))) if c.size else 0
    if total == 0:
        return Tensor._make(b.full((0,), 0, int64), False, b)
    positions = b.reshape(b.arange(0, total, 1, int64), (1, total))
    return Tensor._make(b.cast(b.reshape(b.searchsorted(ends, positions, True), (total,)), int64),
                        False, b)


# ---------------------------------------------------------------------- slicing: narrow, split, unbind
def _slice_along(dim: int, index) -> tuple:
    """An index that applies ``index`` to dimension ``dim`` and keeps the others whole."""
    return (slice(None),) * dim + (index,)


class Narrow(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dim, start, length):
        ctx.dim, ctx.start, ctx.after = dim, start, x.shape[dim] - start - length
        return ctx.backend.getitem(x, _slice_along(dim, slice(start, start + length)))

    @staticmethod
    def backward(ctx, grad):
        return PadDim.apply(grad, ctx.dim, ctx.start, ctx.after), None, None, None


class PadDim(ArrayFunction):
    """Zeros added before and after along one dimension: the adjoint of :class:`Narrow`."""

    @staticmethod
    def forward(ctx, x, dim, before, after):
        ctx.dim, ctx.before, ctx.length = dim, before, x.shape[dim]
        widths = [(0, 0)] * x.ndim
        widths[dim] = (before, after)
        return ctx.backend.pad(x, widths, "constant", 0)

    @staticmethod
    def backward(ctx, grad):
        return Narrow.apply(grad, ctx.dim, ctx.before, ctx.length), None, None, None


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The ``length`` elements from ``start`` along ``dim`` (start may be negative); a view:
    ``x.narrow(1, 2, 3)`` is ``x[:, 2:5]``."""
    if input.ndim == 0:
        raise ShapeError("narrow: cannot narrow a 0-d tensor")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    start, length = as_int(start, "narrow: start"), as_int(length, "narrow: length")
    if not -n <= start <= n:
        raise IndexRangeError(
            f"narrow: start {start} is out of range for dimension {dim} of size {n} "
            f"(expected {-n} to {n})")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise ShapeError(f"narrow: start ({start}) + length ({length}) exceeds the size of "
                         f"dimension {dim} ({n}), or length is negative")
    return _as_view(Narrow.apply(input, dim, start, length), input, shares=True)


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """:func:`narrow`, as a tensor of its own (not a view): ``x.narrow_copy(0, 1, 2)``."""
    return clone(narrow(input, dim, start, length))


class Split(ArrayFunction):
    """Pieces ``x[start:start + length]`` along ``dim``, one output per ``(start, length)`` range."""

    @staticmethod
    def forward(ctx, x, dim, ranges):
        ctx.dim, ctx.ranges, ctx.size = dim, ranges, x.shape[dim]
        return tuple(ctx.backend.getitem(x, _slice_along(dim, slice(s, s + n))) for s, n in ranges)

    @staticmethod
    def backward(ctx, *grads):
        # The engine passes zeros for the pieces that were not used, so every grad is a tensor.
        if _tiles(ctx.ranges, ctx.size):
            if not is_grad_enabled():  # pieces already side by side in one buffer: no copy
                shape = grads[0].shape[:ctx.dim] + (ctx.size,) + grads[0].shape[ctx.dim + 1:]
                whole = kernels.call("joined_pieces", ctx.backend, [g._data for g in grads],
                                     shape, ctx.dim, ctx.ranges)
                if whole is not None:
                    return Tensor._make(whole, False, ctx.backend), None, None
            return cat(grads, ctx.dim), None, None
        # tensor_split with indices out of order: pieces may overlap or leave gaps
        total = None
        for g, (s, n) in zip(grads, ctx.ranges):
            padded = PadDim.apply(g, ctx.dim, s, ctx.size - s - n)
            total = padded if total is None else total + padded
        return total, None, None


def _tiles(ranges, size: int) -> bool:
    """Whether the ranges cover ``[0, size)`` exactly, in order and without overlap."""
    at = 0
    for s, n in ranges:
        if s != at:
            return False
        at += n
    return at == size


def _split_ranges(input: Tensor, dim: int, ranges) -> tuple:
    outs = Split.apply(input, dim, tuple(ranges))
    return tuple(_as_view(o, input, shares=True) for o in outs)


def _ranges(sizes) -> list:
    out, at = [], 0
    for n in sizes:
        out.append((at, n))
        at += n
    return out


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Views of ``split_size``-long pieces along ``dim`` (the last may be shorter), or of the
    given list of sizes: ``x.split(2)``, ``x.split([1, 3], dim=1)``."""
    if tensor.ndim == 0:
        raise ShapeError("split: expected a tensor with at least 1 dimension, got a 0-d tensor")
    dim = wrap_dim(dim, tensor.ndim)
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = list(as_ints(split_size_or_sections, "split: the sizes"))
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} must be non-negative and sum exactly to {n}, "
                             f"the size of dimension {dim}")
    else:
        size = as_int(split_size_or_sections, "split: split_size")
        if size < 0 or size == 0 and n != 0:
            raise ShapeError(f"split: split_size must be positive (0 only for an empty dimension), "
                             f"got {size} for dimension {dim} of size {n}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    return _split_ranges(tensor, dim, _ranges(sizes))


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """At most ``chunks`` views of equal size (``ceil(n / chunks)``; the last may be smaller)."""
    chunks = as_int(chunks, "chunk: chunks")
    if chunks < 1:
        raise ShapeError(f"chunk: chunks must be at least 1, got {chunks}")
    if input.ndim == 0:
        raise ShapeError("chunk: expected a tensor with at least 1 dimension, got a 0-d tensor")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    if n == 0:  # PyTorch gives ``chunks`` empty pieces here
        return _split_ranges(input, dim, _ranges([0] * chunks))
    return split(input, -(-n // chunks), dim)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """``sections`` views whose sizes differ by at most one (the first ones are larger), or the
    views between the given indices: ``x.tensor_split([1, 4])`` is ``x[:1], x[1:4], x[4:]``."""
    if input.ndim == 0:
        raise ShapeError("tensor_split: expected a tensor with at least 1 dimension, got 0-d")
    dim = wrap_dim(dim, input.ndim)
    n = input.shape[dim]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype.is_floating_point or ios.ndim > 1:
            raise ShapeError(f"tensor_split: indices_or_sections must be an int, a list, or a 0-d/"
                             f"1-d integer tensor, got {ios.dtype} of shape {tuple(ios.shape)}")
        ios = ios.item() if ios.ndim == 0 else ios.tolist()
    if isinstance(ios, (list, tuple)):
        bounds = [0] + list(as_ints(ios, "tensor_split: the indices")) + [n]
        ranges = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            start, stop, _ = slice(a, b).indices(n)  # Python slicing: negatives wrap, clipped
            ranges.append((start, max(stop - start, 0)))
        return _split_ranges(input, dim, ranges)
    sections = as_int(ios, "tensor_split: indices_or_sections")
    if sections < 1:
        raise ShapeError(f"tensor_split: number of sections must be at least 1, got {sections}")
    # (as many views as sections, each some hundred bytes)
    check_fits_in_memory(f"tensor_split into {ios!r} sections", sections, 256)
    q, r = divmod(n, sections)
    return _split_ranges(input, dim, _ranges([q + 1] * r + [q] * (sections - r)))


def _split_dim(name: str, input: Tensor, ios, dim: int, min_ndim: int) -> tuple:
    if input.ndim < min_ndim:
        raise ShapeError(f"{name}: expected a tensor with at least {min_ndim} dimensions, got "
                         f"{input.ndim}")
    if isinstance(ios, int) and (ios == 0 or input.shape[dim] % ios):
        raise ShapeError(f"{name}: cannot split dimension {dim} of size {input.shape[dim]} into "
                         f"{ios} equal parts")
    return tensor_split(input, ios, dim)


def hsplit(input: Tensor, indices_or_sections) -> tuple:
    """:func:`tensor_split` along dimension 1 (0 for 1-d tensors); ints must divide evenly:
    ``left, right = x.hsplit(2)``."""
    return _split_dim("hsplit", input, indices_or_sections, 1 if input.ndim >= 2 else 0, 1)


def vsplit(input: Tensor, indices_or_sections) -> tuple:
    """:func:`tensor_split` along dimension 0 of a tensor with at least 2 dimensions:
    ``top, bottom = x.vsplit(2)``."""
    return _split_dim("vsplit", input, indices_or_sections, 0, 2)


def dsplit(input: Tensor, indices_or_sections) -> tuple:
    """:func:`tensor_split` along dimension 2 of a tensor with at least 3 dimensions:
    ``x.dsplit([1, 3])``."""
    return _split_dim("dsplit", input, indices_or_sections, 2, 3)


class Unbind(ArrayFunction):
    lower = staticmethod(lambda ctx, x, dim: kernels.lower("unbind", ctx.backend, x, dim))

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        # the trailing ... keeps 0-d results arrays (views), not NumPy scalars
        return tuple(ctx.backend.getitem(x, _slice_along(dim, i) + (Ellipsis,))
                     for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        return stack(grads, ctx.dim), None


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, as a tuple of views: ``rows = x.unbind(0)``."""
    if input.ndim == 0:
        raise ShapeError("unbind: expected a tensor with at least 1 dimension, got a 0-d tensor")
    dim = wrap_dim(dim, input.ndim)
    if input.shape[dim] == 0:
        return ()
    return tuple(_as_view(o, input, shares=True) for o in Unbind.apply(input, dim))


# ---------------------------------------------------------------------- joining
def _legacy_empty(shape) -> bool:
    """PyTorch's cat skips 1-d empty tensors (``tensor([])``), whatever the other shapes."""
    return len(shape) == 1 and shape[0] == 0


class Cat(ArrayFunction):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = tuple(None if _legacy_empty(x.shape) else x.shape[dim] for x in xs)
        kept = [x for x in xs if not _legacy_empty(x.shape)] or list(xs)
        return ctx.backend.concatenate(kept, dim)

    @staticmethod
    def backward(ctx, grad):
        grads, offset = [None], 0
        for i, n in enumerate(ctx.sizes):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
            elif n is None:
                grads.append(grad.new_zeros((0,)))
            else:
                grads.append(Narrow.apply(grad, ctx.dim, offset, n))
            offset += n or 0
        return tuple(grads)


def _tensor_list(tensors, name: str) -> list:
    """``tensors`` (a tuple, list or other iterable) as a list; PyTorch's TypeError, in
    gradient's class, for a Tensor or anything else in its place (``cat(3)``)."""
    if isinstance(tensors, (Tensor, str, bytes, dict)) or not hasattr(tensors, "__iter__"):
        raise ArgumentTypeError(f"{name}(): argument 'tensors' (position 1) must be a tuple or "
                                f"list of Tensors, not {type(tensors).__name__}")
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{name}(): argument 'tensors' must hold Tensors, not "
                                    f"{type(t).__name__} (at index {i})")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension (a copy): ``cat([a, b], dim=1)``.

    Dtypes are promoted like PyTorch's (int32 and float16 give float16), and 1-d empty tensors
    are skipped, as PyTorch does for compatibility with old code.
    """
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                             "concatenated; use stack, or unsqueeze it first")
    full = [(i, t) for i, t in enumerate(tensors) if not _legacy_empty(t.shape)]
    ref_i, ref = full[0] if full else (0, tensors[0])
    dim = wrap_dim(dim, ref.ndim)
    for i, t in full:
        if t.ndim != ref.ndim:
            raise ShapeError(f"cat: tensors must have the same number of dimensions: tensor "
                             f"{ref_i} has shape {tuple(ref.shape)}, tensor {i} has shape "
                             f"{tuple(t.shape)}")
        if any(a != b for d, (a, b) in enumerate(zip(ref.shape, t.shape)) if d != dim):
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {dim}: tensor "
                             f"{ref_i} has shape {tuple(ref.shape)}, tensor {i} has shape "
                             f"{tuple(t.shape)}")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = promote_types(dtype, t.dtype)
    from .elementwise import cast
    return Cat.apply(dim, *(cast(t, dtype) for t in tensors))


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension ``dim``: ``stack([a, b], dim=-1)``."""
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    first = tensors[0]
    shape = tuple(first.shape)
    for i, t in enumerate(tensors):
        if t._data.shape != first._data.shape:
            raise ShapeError(f"stack: expects each tensor to be equal size, but got {shape} at "
                             f"entry 0 and {tuple(t.shape)} at entry {i}")
    dim = wrap_dim(dim, len(shape) + 1)
    dtype = first._data.dtype
    if not (is_grad_enabled() and any(t._requires_grad for t in tensors)) and all(
            t._backend is first._backend and t._data.dtype == dtype for t in tensors):
        # nothing to record: one concatenation of the raw arrays. (An unsqueeze and a cast per
        # tensor cost microseconds each, which adds up when a DataLoader collates a batch of
        # many small samples: ~10x slower.)
        b, new_shape = first._backend, shape[:dim] + (1,) + shape[dim:]
        return Tensor._make(b.concatenate([b.reshape(t._data, new_shape) for t in tensors], dim),
                            False, b)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def hstack(tensors) -> Tensor:
    """Concatenate along dimension 1 (0 for 1-d tensors); 0-d tensors count as 1-d:
    ``hstack([a, b])``."""
    tensors = _tensor_list(tensors, "hstack")
    if not tensors:
        raise ArgumentValueError("hstack: expected a non-empty sequence of Tensors")
    tensors = atleast_1d(*tensors)
    tensors = (tensors,) if isinstance(tensors, Tensor) else tensors
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Concatenate along dimension 0 after making each tensor at least 2-d ((N,) is a row):
    ``vstack([row, matrix])``."""
    tensors = atleast_2d(*_tensor_list(tensors, "vstack"))
    return cat((tensors,) if isinstance(tensors, Tensor) else tensors, 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Concatenate along dimension 2 after making each tensor at least 3-d: ``dstack([a, b])``."""
    tensors = atleast_3d(*_tensor_list(tensors, "dstack"))
    return cat((tensors,) if isinstance(tensors, Tensor) else tensors, 2)


def column_stack(tensors) -> Tensor:
    """0-d and 1-d tensors as columns, then concatenated along dimension 1:
    ``column_stack([x, y])`` is (N, 2) for two (N,) tensors."""
    return cat([reshape(t, (t.numel(), 1)) if t.ndim <= 1 else t
                for t in _tensor_list(tensors, "column_stack")], 1)


# ---------------------------------------------------------------------- reordering: flip, roll
class Flip(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        index = tuple(slice(None, None, -1) if d in dims else slice(None) for d in range(x.ndim))
        # NumPy would give a view with negative strides; PyTorch's flip returns a copy
        return ctx.backend.copy(ctx.backend.getitem(x, index))

    @staticmethod
    def backward(ctx, grad):
        return flip(grad, ctx.dims), None


def flip(input: Tensor, dims) -> Tensor:
    """Reverse the order of elements along ``dims`` (a copy): ``x.flip(0)``, ``x.flip((0, 1))``."""
    return Flip.apply(input, _dim_list(dims, input.ndim, "flip"))


def fliplr(input: Tensor) -> Tensor:
    """Flip dimension 1 (left/right) of a tensor with at least 2 dimensions: ``x.fliplr()``."""
    if input.ndim < 2:
        raise ShapeError(f"fliplr: expected a tensor with at least 2 dimensions, got {input.ndim}")
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    """Flip dimension 0 (up/down) of a tensor with at least 1 dimension: ``x.flipud()``."""
    if input.ndim < 1:
        raise ShapeError("flipud: expected a tensor with at least 1 dimension, got a 0-d tensor")
    return flip(input, (0,))


class Roll(ArrayFunction):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        b = ctx.backend
        out = x
        for shift, d in zip(shifts, dims):
            n = x.shape[d]
            s = shift % n if n else 0
            if s:  # the last s elements move to the front
                out = b.concatenate([b.getitem(out, _slice_along(d, slice(n - s, None))),
                                     b.getitem(out, _slice_along(d, slice(0, n - s)))], d)
        return out if out is not x else b.copy(x)  # a copy even when nothing moved, as in PyTorch

    @staticmethod
    def backward(ctx, grad):
        return roll(grad, tuple(-s for s in ctx.shifts), ctx.dims), None, None


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Rotate elements by ``shifts`` along ``dims`` (ints or tuples), or over the flattened
    tensor when ``dims`` is None: ``x.roll(1, 0)``, ``x.roll((1, -2), (0, 1))``. A copy."""
    shifts = (as_int(shifts, "roll: shifts"),) if not isinstance(shifts, (tuple, list)) else \
        as_ints(shifts, "roll: shifts")
    if dims is None:
        if len(shifts) != 1:
            raise ShapeError(f"roll: with dims=None, shifts must be a single int, got {shifts}")
        return _reshape_result(Roll.apply(flatten(input), shifts, (0,)), tuple(input.shape))
    dims = as_ints(dims if isinstance(dims, (tuple, list)) else (dims,), "roll: dims")
    if input.ndim == 0:
        raise IndexRangeError(
            f"roll: a 0-d tensor has no dimensions to roll along (dims={dims}); call "
            "roll without dims")
    if len(shifts) != len(dims):
        raise ShapeError(f"roll: shifts and dims must have the same length, got {len(shifts)} "
                         f"shifts and {len(dims)} dims")
    return Roll.apply(input, shifts, tuple(wrap_dim(d, input.ndim) for d in dims))


# ---------------------------------------------------------------------- triangles and diagonals
def _triangle_mask(backend, rows: int, cols: int, diagonal: int, upper: bool):
    """True on and below (tril) or on and above (triu) the ``diagonal``-th diagonal."""
    r = backend.reshape(backend.arange(0, rows, 1, int64), (rows, 1))
    c = backend.reshape(backend.arange(0, cols, 1, int64), (1, cols))
    offset = backend.binary("sub", c, r)  # which diagonal each element is on
    k = backend.full((), diagonal, int64)
    return backend.binary("ge" if upper else "le", offset, k)


class Triangle(ArrayFunction):
    @staticmethod
    def forward(ctx, x, diagonal, upper):
        ctx.diagonal, ctx.upper = diagonal, upper
        mask = _triangle_mask(ctx.backend, x.shape[-2], x.shape[-1], diagonal, upper)
        zero = ctx.backend.full((), 0, from_numpy_dtype(x.dtype))
        return ctx.backend.where(mask, x, zero)

    @staticmethod
    def backward(ctx, grad):
        return Triangle.apply(grad, ctx.diagonal, ctx.upper), None, None


def _triangle(name: str, input: Tensor, diagonal: int, upper: bool) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"{name}: expected a tensor with at least 2 dimensions, got "
                         f"{input.ndim}")
    diagonal = as_int(diagonal, f"{name}: diagonal")
    # a diagonal past the matrix keeps or clears all of it, as any one past it does (an
    # int64 constant cannot hold 10**20)
    edge = input.shape[-2] + input.shape[-1]
    return Triangle.apply(input, max(-edge, min(edge, diagonal)), upper)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (elements with ``col - row <= diagonal``),
    zeros elsewhere: ``x.tril()``, ``x.tril(-1)``."""
    return _triangle("tril", input, diagonal, upper=False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (elements with ``col - row >= diagonal``),
    zeros elsewhere: ``x.triu(1)`` masks the diagonal too, as in a causal attention mask."""
    return _triangle("triu", input, diagonal, upper=True)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset``-th diagonal of the (dim1, dim2) planes, as a new last dimension:
    ``x.diagonal()``.

    Differs from PyTorch in one way: this is a view only when the two dimensions can be
    flattened together without a copy (for example the last two of a contiguous tensor, or of
    its transpose); otherwise it is a copy, and writing to it does not change ``input``.
    """
    if input.ndim < 2:
        raise ShapeError(f"diagonal: expected a tensor with at least 2 dimensions, got {input.ndim}")
    offset = as_int(offset, "diagonal: offset")
    d1, d2 = wrap_dim(dim1, input.ndim), wrap_dim(dim2, input.ndim)
    if d1 == d2:
        raise ShapeError(f"diagonal: dim1 and dim2 cannot be the same dimension (both {d1})")
    x = movedim(input, (d1, d2), (-2, -1))
    batch = tuple(x.shape[:-2])
    n, m = x.shape[-2:]
    if not _can_view(x, batch + (n * m,)) and _can_view(x.mT, batch + (n * m,)):
        # the diagonal of the transpose, with the offset mirrored, is the same elements
        x, n, m, offset = x.mT, m, n, -offset
    # In the flattened (n, m) plane, consecutive diagonal elements are m + 1 apart.
    length = max(min(n, m - offset) if offset >= 0 else min(n + offset, m), 0)
    start = (offset if offset >= 0 else -offset * m) if length else 0
    stop = start + (length - 1) * (m + 1) + 1 if length else 0
    from .index import getitem
    flat = reshape(x, batch + (n * m,))
    out = getitem(flat, (Ellipsis, slice(start, stop, m + 1)))
    if flat._base is None:  # reshape had to copy: the result is a copy, not a view of a temporary
        out._base = None
    return out


_diagonal = diagonal  # for diag(), whose argument is also named diagonal


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (in dimensions ``dim1``, ``dim2`` of the result) whose ``offset``-th diagonal
    holds the last dimension of ``input``, zeros elsewhere: ``diag_embed(x)`` for x of shape
    (B, N) is (B, N, N)."""
    if input.ndim < 1:
        raise ShapeError("diag_embed: expected a tensor with at least 1 dimension, got 0-d")
    ndim = input.ndim + 1
    d1, d2 = wrap_dim(dim1, ndim), wrap_dim(dim2, ndim)
    if d1 == d2:
        raise ShapeError(f"diag_embed: dim1 and dim2 cannot be the same dimension (both {d1})")
    length = input.shape[-1]
    size = length + abs(as_int(offset, "diag_embed: offset"))
    check_fits_in_memory(f"diag_embed of offset {offset}", _prod(input.shape[:-1]) * size * size,
                         input.dtype.itemsize)
    backend = input._backend
    rows = Tensor._make(backend.arange(max(-offset, 0), max(-offset, 0) + length, 1, int64),
                        False, backend)
    cols = Tensor._make(backend.arange(max(offset, 0), max(offset, 0) + length, 1, int64),
                        False, backend)
    from .index import index_put
    out = index_put(input.new_zeros(tuple(input.shape[:-1]) + (size, size)),
                    (Ellipsis, rows, cols), input)
    return movedim(out, (-2, -1), (d1, d2))


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-d tensor as the ``diagonal``-th diagonal of a square matrix, or the ``diagonal``-th
    diagonal of a 2-d tensor: ``gradient.diag(gradient.ones(3))`` is the 3x3 identity."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return _diagonal(input, diagonal)
    raise ShapeError(f"diag: expected a 1-d or 2-d tensor, got {input.ndim} dimensions")


# ---------------------------------------------------------------------- copies
class Clone(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.copy(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(input: Tensor, *, memory_format=preserve_format) -> Tensor:
    """A copy with storage of its own; differentiable: ``y = x.clone()``. Laid out row-major,
    or channels last where ``memory_format`` says so or (``preserve_format``, the default)
    where ``input`` is (see :mod:`gradient.layouts`)."""
    if memory_format is preserve_format or memory_format is None:
        memory_format = channels_last_of(input.shape, strides_of(input._data))
    if memory_format is None:
        return Clone.apply(input)
    return InLayout.apply(input, axis_order(memory_format, input.ndim, "clone"))


class Contiguous(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.contiguous(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class InLayout(ArrayFunction):
    """A copy of x whose axes lie in storage in ``order`` (outermost first): the same shape
    and values, other strides."""

    @staticmethod
    def forward(ctx, x, order):
        return relaid(ctx.backend, x, order)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def to_memory_format(input: Tensor, memory_format) -> Tensor:
    """``input`` if it has exactly ``memory_format``'s strides, else a copy that has them:
    ``x.to(memory_format=...)`` (see :mod:`gradient.layouts`)."""
    if memory_format is contiguous_format:
        return contiguous(input)
    order = axis_order(memory_format, input.ndim, "to")
    if channels_last_of(input.shape, strides_of(input._data)) is memory_format:
        return input
    return InLayout.apply(input, order)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    """``input`` itself if it is laid out in ``memory_format`` (row-major by default), else a
    copy that is: ``x.T.contiguous()``, ``x.contiguous(memory_format=gradient.channels_last)``
    (see :mod:`gradient.layouts`)."""
    if memory_format is None or memory_format is preserve_format:
        return input if input.is_contiguous() else Contiguous.apply(input)
    order = axis_order(memory_format, input.ndim, "contiguous")
    if input.is_contiguous(memory_format=memory_format):
        return input
    return InLayout.apply(input, order)


# ---------------------------------------------------------------------- grids and windows
def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-d tensors: with ``indexing="ij"`` output ``k`` has shape
    ``(len(t0), len(t1), ...)`` and varies along dimension ``k``; ``"xy"`` swaps the first two
    dimensions (NumPy's and MATLAB's convention). The outputs are broadcast views.

    PyTorch warns when ``indexing`` is not given; gradient takes ``"ij"`` silently.
    Example: ``ys, xs = gradient.meshgrid(gradient.arange(2), gradient.arange(3), indexing="ij")``
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ShapeError("meshgrid: expected at least one tensor")
    if indexing not in ("ij", "xy"):
        raise ArgumentValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(
                f"meshgrid: expected tensors, got {type(t).__name__} at position {i}")
        if t.ndim > 1:
            raise ShapeError(f"meshgrid: expected 0-d or 1-d tensors, got shape {tuple(t.shape)} "
                             f"at position {i}")
        if t.dtype is not tensors[0].dtype:
            raise ShapeError(f"meshgrid: expected all tensors to have the same dtype, got "
                             f"{tensors[0].dtype} and {t.dtype}")
    sizes = [t.numel() for t in tensors]
    dims = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        dims[0], dims[1] = 1, 0
    shape = [0] * len(tensors)
    for k, d in enumerate(dims):
        shape[d] = sizes[k]
    out = []
    for k, t in enumerate(tensors):
        along = [1] * len(tensors)
        along[dims[k]] = sizes[k]
        out.append(expand(reshape(t, tuple(along)), tuple(shape)))
    return tuple(out)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-d tensor, as the rows of an
    (n0 * n1 * ..., len(tensors)) tensor (``itertools.product`` order); one tensor is returned
    as it is. Example: ``gradient.cartesian_prod(gradient.tensor([1, 2]), gradient.tensor([3, 4]))``.
    """
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor) or t.ndim != 1:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ShapeError(f"cartesian_prod: expected 1-d tensors, got {got} at position {i}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], dim=1)


class _UnfoldDim(ArrayFunction):
    """Windows of ``size`` every ``step`` along ``dim``: that dimension becomes the window count
    and a last dimension of ``size`` is added (a read-only strided view of the input)."""

    @staticmethod
    def forward(ctx, x, dim, size, step):
        ctx.shape, ctx.params = x.shape, (dim, size, step)
        return ctx.backend.windows(x, (dim,), (size,), (step,), (1,))

    @staticmethod
    def backward(ctx, grad):
        return _FoldDim.apply(grad, ctx.shape, *ctx.params), None, None, None


class _FoldDim(ArrayFunction):
    """The adjoint of :class:`_UnfoldDim`: windows summed back where they came from."""

    @staticmethod
    def forward(ctx, windows, shape, dim, size, step):
        b = ctx.backend
        ctx.params = (dim, size, step)
        out = b.full(tuple(shape), 0, from_numpy_dtype(windows.dtype))
        count = windows.shape[dim]
        if count == 0:
            return out
        # element k of every window: one strided slice of the output, no two windows colliding
        for k in range(size):
            region = _slice_along(dim, slice(k, k + step * (count - 1) + 1, step))
            piece = b.getitem(windows, (Ellipsis, k))
            b.setitem(out, region, b.binary("add", b.getitem(out, region), piece))
        return out

    @staticmethod
    def backward(ctx, grad):
        return _UnfoldDim.apply(grad, *ctx.params), None, None, None, None


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: every slice of length ``size`` along ``dimension``, starting every
    ``step``; that dimension becomes the number of slices and a new last dimension of ``size``
    holds each one. A read-only view; where slices overlap, their gradients add up.

    Example: ``gradient.arange(7.0).unfold(0, 3, 2)`` has rows ``[0, 1, 2]``, ``[2, 3, 4]``,
    ``[4, 5, 6]``. (``gradient.nn.functional.unfold`` is the im2col of images.)
    """
    dim = wrap_dim(dimension, input.ndim)
    size, step = as_int(size, "unfold: size"), as_int(step, "unfold: step")
    n = input.shape[dim] if input.ndim else 1
    if step <= 0:
        raise ArgumentValueError(f"unfold: step must be positive, got {step}")
    if not 0 <= size <= n:
        raise ShapeError(f"unfold: size {size} does not fit dimension {dim} of size {n} "
                         f"(expected 0 <= size <= {n})")
    if input.ndim == 0:  # one element: one window of it (size 1), or none (size 0)
        return narrow(reshape(clone(input), (1,)), 0, 0, size)
    return _as_view(_UnfoldDim.apply(input, dim, size, step), input, shares=True)


# ---------------------------------------------------------------------- queries as functions
def numel(input: Tensor) -> int:
    """The number of elements: ``gradient.numel(x)`` is ``x.numel()``."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"numel: expected a Tensor, got {type(input).__name__}")
    return input.numel()


def is_floating_point(input: Tensor) -> bool:
    """Whether the dtype is a floating one (float16, bfloat16, float32, float64)."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"is_floating_point: expected a Tensor, got {type(input).__name__}")
    return input.is_floating_point()


def is_complex(input: Tensor) -> bool:
    """Always False: gradient has no complex dtypes (PyTorch's ``is_complex``, for ported code)."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"is_complex: expected a Tensor, got {type(input).__name__}")
    return False
