"""Memory formats, as ``torch.memory_format``: the order in which a tensor's elements lie in its
storage, for scripts that ask for ``channels_last``; and layouts, as ``torch.layout``: a dense
tensor's ``strided``, a sparse one's ``sparse_coo`` (:class:`layout`).

``contiguous_format`` is row-major; ``channels_last`` lays a 4-d (N, C, H, W) tensor out as
(N, H, W, C) (strides ``(H*W*C, 1, W*C, C)``), and ``channels_last_3d`` a 5-d one as (N, D,
H, W, C); ``preserve_format`` keeps a tensor's layout where it is one of these. The shape and
the values never change, only the strides (``Tensor.stride()``), which are PyTorch's:
``x.to(memory_format=gradient.channels_last)`` gives a copy with that layout's strides unless
``x`` has them already, ``x.contiguous(memory_format=...)`` unless ``x`` is contiguous in it
(where a dimension of size 1 makes both true, ``x`` itself), ``x.is_contiguous(memory_format=
...)`` tells, ``clone`` and the ``*_like`` creators keep a channels-last layout, and
``module.to(memory_format=...)`` relays out its 4-d (5-d) parameters. gradient's kernels read
any layout, so a layout changes how fast an op runs, not what it computes.

Example::

    >>> x = gradient.randn(2, 3, 4, 5).to(memory_format=gradient.channels_last)
    >>> x.stride(), x.is_contiguous(memory_format=gradient.channels_last)
    ((60, 1, 15, 3), True)
"""

from __future__ import annotations

from .errors import ArgumentTypeError, ShapeError

__all__ = ["layout", "strided", "sparse_coo", "sparse_csr", "is_sparse", "memory_format", "contiguous_format", "channels_last", "channels_last_3d",
           "preserve_format", "axis_order", "dense_strides", "in_layout", "strides_of",
           "channels_last_of", "relaid"]


class _Named:
    """A constant known by its name: shown as ``gradient.<name>``, pickled as that name (the
    module's attribute, so that it unpickles as the same object)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"gradient.{self.name}"

    def __reduce__(self):
        return self.name


class memory_format(_Named):  # noqa: N801  (torch's name)
    """A layout of a tensor's elements in its storage (see the module docstring)."""

    __slots__ = ()


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")


class layout(_Named):  # noqa: N801  (torch's name)
    """How a tensor holds its elements, as ``torch.layout``: ``strided`` (every element in
    memory, a dense tensor) or ``sparse_coo`` (the coordinates and values of the elements
    present, :mod:`gradient.sparse`). ``sparse_csr`` exists to be compared with: gradient
    makes no such tensors.

    Example: ``gradient.randn(2, 2).layout is gradient.strided``
    """

    __slots__ = ()


strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")


def is_sparse(obj) -> bool:
    """Whether ``obj`` is a sparse COO tensor (read from its class's ``layout``: the class
    lives above this module, in :mod:`gradient.ops.sparse`)."""
    return getattr(type(obj), "layout", None) is sparse_coo

_CHANNELS_LAST_RANK = {channels_last: 4, channels_last_3d: 5}


def axis_order(fmt: memory_format | None, ndim: int, what: str = "memory_format"):
    """The axes of an ``ndim``-dimensional tensor from outermost to innermost in ``fmt``'s
    storage order: row-major for ``contiguous_format`` (and None), channels last for the
    others; a ShapeError where ``fmt`` needs another rank."""
    if fmt is None or fmt is contiguous_format:
        return tuple(range(ndim))
    if not isinstance(fmt, memory_format) or fmt is preserve_format:
        raise ArgumentTypeError(f"{what}: expected gradient.contiguous_format, channels_last or "
                                f"channels_last_3d, got {fmt!r}")
    rank = _CHANNELS_LAST_RANK[fmt]
    if ndim != rank:
        raise ShapeError(f"{what}: required rank {rank} tensor to use {fmt.name} format, got "
                         f"a tensor of {ndim} dimensions")
    return (0,) + tuple(range(2, ndim)) + (1,)


def dense_strides(shape, order) -> tuple:
    """Strides in elements of a tensor of ``shape`` laid out densely in ``order``
    (:func:`axis_order`)."""
    strides = [0] * len(shape)
    step = 1
    for axis in reversed(order):
        strides[axis] = step
        step *= max(int(shape[axis]), 1)
    return tuple(strides)


def in_layout(shape, strides, order) -> bool:
    """Whether ``strides`` are those of a dense layout in ``order``, as PyTorch judges it
    (the stride of a dimension of size 1 does not matter)."""
    return all(n == 1 or s == e for n, s, e in zip(shape, strides, dense_strides(shape, order)))


def strides_of(array):
    """A backend array's strides in elements, or None where its arrays have none (a plugin
    device's handles)."""
    strides = getattr(array, "strides", None)
    return None if strides is None else tuple(s // array.dtype.itemsize for s in strides)


def channels_last_of(shape, strides):
    """``channels_last`` (``channels_last_3d``) where a 4-d (5-d) tensor of ``shape`` has
    exactly the strides of that layout and not those of row-major order; None otherwise: the
    layout ``preserve_format`` keeps, and ``to(memory_format=...)`` finds already there."""
    fmt = {4: channels_last, 5: channels_last_3d}.get(len(shape))
    if fmt is None or strides is None:
        return None
    strides = tuple(strides)
    if strides == dense_strides(shape, tuple(range(len(shape)))):
        return None
    return fmt if strides == dense_strides(shape, axis_order(fmt, len(shape))) else None


def relaid(b, data, order):
    """A copy of the backend ``b``'s array ``data`` whose axes lie in storage in ``order``:
    the same shape and values."""
    back = tuple(sorted(range(len(order)), key=order.__getitem__))
    return b.permute(b.contiguous(b.copy(b.permute(data, order))), back)
