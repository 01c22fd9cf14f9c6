"""Shape and movement: reshape, view, permute, transpose, expand, squeeze, cat, stack, split ...

View ops (reshape of contiguous data, permute, transpose, expand, narrow, slicing) share
storage with their input, as in PyTorch: writing to a view writes to its base, and both
share one version counter.

Example::

    >>> x = gradient.arange(6).reshape(2, 3)
    >>> x.T.shape, x.unsqueeze(0).shape
    (gradient.Size([3, 2]), gradient.Size([1, 2, 3]))
"""

from __future__ import annotations

from ..autograd.function import Function
from ..errors import ShapeError
from ..tensor import Tensor

TENSOR_METHODS = ("reshape", "view", "permute", "transpose", "expand", "unbind", "clone", "contiguous")


def wrap_dim(dim: int, ndim: int) -> int:
    """A possibly negative dimension index as a non-negative one, with a clear error if out of range."""
    n = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, like PyTorch
    if not -n <= dim < n:
        raise IndexError(f"dimension {dim} is out of range for a tensor with {ndim} dimensions "
                         f"(expected {-n} to {n - 1})")
    return dim % n if ndim else 0


def wrap_dims(dim, ndim: int) -> tuple:
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int) or hasattr(dim, "__index__"):
        dim = (int(dim),)
    axes = tuple(sorted({wrap_dim(int(d), ndim) for d in dim}))
    if ndim == 0:
        return ()
    return axes


def _as_view(out: Tensor, base: Tensor) -> Tensor:
    """Mark ``out`` as a view of ``base``'s storage when it really shares it."""
    if out._data.base is not None or out._data is base._data:
        out._base = base if base._base is None else base._base
        out._version = base._version
    return out


def _infer_shape(shape, numel: int, what: str) -> tuple:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"{what}: only one dimension can be -1, got {shape}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise ShapeError(f"{what}: shape {shape} is invalid for a tensor of {numel} elements")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise ShapeError(f"{what}: shape {shape} is invalid for a tensor of {numel} elements")
    return shape


def _size_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.reshape(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return reshape(grad, ctx.shape), None


def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1); a view when possible."""
    shape = _infer_shape(_size_args(shape), input.numel(), "reshape")
    if shape == tuple(input.shape):
        return input
    return _as_view(Reshape.apply(input, shape), input)


def view(input: Tensor, *shape) -> Tensor:
    """Like :func:`reshape`, but never copies: raises for non-contiguous layouts, as PyTorch does."""
    shape = _infer_shape(_size_args(shape), input.numel(), "view")
    out = Reshape.apply(input, shape)
    if input.numel() and out._data.base is None and out._data is not input._data:
        raise ShapeError(f"view: shape {shape} is not compatible with the strides of this "
                         f"non-contiguous tensor of shape {tuple(input.shape)}; use .reshape()")
    return _as_view(out, input)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return ctx.backend.permute(x, axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return permute(grad, tuple(inverse)), None


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the dimensions: ``x.permute(2, 0, 1)``."""
    dims = tuple(wrap_dim(d, input.ndim) for d in _size_args(dims))
    if sorted(dims) != list(range(input.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {input.ndim} dimensions")
    if dims == tuple(range(input.ndim)):
        return input
    return _as_view(Permute.apply(input, dims), input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    axes = list(range(input.ndim))
    if input.ndim == 0:
        return input
    d0, d1 = wrap_dim(dim0, input.ndim), wrap_dim(dim1, input.ndim)
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(input, tuple(axes))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return ctx.backend.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine sums the broadcast dimensions away


def expand(input: Tensor, *sizes) -> Tensor:
    """A broadcast view with ``sizes`` (-1 keeps a dimension): ``x.expand(4, -1)``."""
    sizes = _size_args(sizes)
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
        if cur != 1 and cur != s:
            raise ShapeError(f"expand: the size of dimension {i} ({cur}) must match {s} or be 1; "
                             f"cannot expand shape {tuple(input.shape)} to {tuple(sizes)}")
        shape.append(int(s))
    shape = tuple(shape)
    if shape == tuple(input.shape):
        return input
    return _as_view(Expand.apply(input, shape), input)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, as a tuple of views."""
    from .index import select
    dim = wrap_dim(dim, input.ndim)
    return tuple(select(input, dim, i) for i in range(input.shape[dim]))


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(input: Tensor) -> Tensor:
    """A copy with storage of its own; differentiable."""
    return Clone.apply(input)


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.contiguous(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def contiguous(input: Tensor) -> Tensor:
    """``input`` itself if its layout is C-contiguous, else a contiguous copy."""
    return input if input.is_contiguous() else Contiguous.apply(input)
