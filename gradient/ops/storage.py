"""Tensor methods about memory rather than values: ``resize_``/``resize_as_``, ``apply_``,
``new_empty_strided``, ``untyped_storage``/``storage`` (the memory a tensor and its views share,
for code that compares ``data_ptr()``s or reads sizes), ``share_memory_``/``is_shared``, and the
no-ops ``pin_memory``/``is_pinned``.

``share_memory_()`` moves a CPU tensor's values into memory that other processes map too
(:mod:`gradient.backends.shared_memory`): children made by fork inherit it, and
``multiprocessing``'s pickler (spawn's arguments, queues) sends such a tensor as a handle to
that memory, so that in-place writes (an optimizer's step) are seen by every process, as
PyTorch's Hogwild training needs. Other devices' tensors are left as they are. gradient copies
to a GPU from ordinary memory, so ``pin_memory()`` returns the tensor unchanged and
``is_pinned()`` says False (where PyTorch would say True after the call).
A tensor owns a backend array rather than a storage with strides, so ``new_empty_strided``
makes a contiguous tensor (PyTorch's ``empty_strided`` strides only change the memory layout),
and ``resize_`` gives the tensor a new array: views taken before it no longer share its memory.

Example::

    >>> x = gradient.arange(6.0)
    >>> x.resize_(2, 2)                  # the first 4 elements, in row-major order
    tensor([[0., 1.],
            [2., 3.]])
    >>> x.apply_(lambda v: v * 10)       # a Python function on every element (CPU only)
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..backends import cpu_backend, shared_memory
from ..errors import AutogradError, DeviceError, ShapeError
from ..tensor import Tensor
from .creation import _refill, new_empty

__all__ = ["UntypedStorage", "TypedStorage"]
TENSOR_METHODS = ("resize_", "resize_as_", "apply_", "map_", "new_empty_strided", "pin_memory",
                  "is_pinned", "share_memory_", "is_shared", "untyped_storage", "storage")


def _sizes(size) -> tuple:
    if len(size) == 1 and not isinstance(size[0], int):     # resize_((2, 3)) or resize_(x.shape)
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    if any(s < 0 for s in size):
        raise ShapeError(f"resize_: sizes must be non-negative, got {size}")
    return size


def resize_(input: Tensor, *size) -> Tensor:
    """Give ``input`` the shape ``size`` in place: it keeps its first elements (row-major) when it
    shrinks or keeps its size; when it grows, the new elements are zeros (PyTorch leaves them
    uninitialised). Refused for a tensor that requires grad, as in PyTorch.

    Example: ``gradient.arange(6.0).resize_(2, 2)`` holds ``[[0, 1], [2, 3]]``.
    """
    shape = _sizes(size)
    if input.requires_grad and grad_mode.is_grad_enabled():
        raise AutogradError("cannot resize variables that require grad")
    b = input._backend
    flat = b.reshape(b.contiguous(input._data), (input.numel(),))
    n = int(np.prod(shape, dtype=np.int64))
    if n <= input.numel():
        flat = b.contiguous(b.getitem(flat, slice(0, n)))
    else:
        flat = b.concatenate([flat, b.full((n - input.numel(),), 0, input.dtype)], 0)
    input._data = b.reshape(flat, shape)
    input._version.bump("resize_")
    return input


def resize_as_(input: Tensor, the_template: Tensor) -> Tensor:
    """``input.resize_(the_template.shape)``. Example: ``x.resize_as_(y)``."""
    return resize_(input, tuple(the_template.shape))


def apply_(input: Tensor, callable) -> Tensor:  # noqa: A002  (PyTorch's argument name)
    """Replace every element ``v`` of a CPU tensor with ``callable(v)`` (a Python number), in place.
    Slow (one Python call per element) and not differentiable, as in PyTorch.

    Example: ``gradient.tensor([1, 2, 3]).apply_(lambda v: v * v)`` holds ``[1, 4, 9]``.
    """
    if input.device.type != "cpu":
        raise DeviceError("apply_ is only implemented on CPU tensors")
    if input.requires_grad and grad_mode.is_grad_enabled():
        raise AutogradError("apply_: cannot apply a Python function to a tensor that requires "
                            "grad; do it inside `with gradient.no_grad():` or on a detached copy")
    values = np.asarray(input.numpy(force=True)).reshape(-1)
    out = np.array([callable(v) for v in values.tolist()], dtype=values.dtype).reshape(
        tuple(input.shape))
    return _refill(input, "apply_", input._backend.from_numpy(out))


def map_(input: Tensor, tensor: Tensor, callable) -> Tensor:  # noqa: A002  (PyTorch's names)
    """Replace every element ``a`` of a CPU tensor with ``callable(a, b)``, ``b`` the element
    of ``tensor`` (broadcast to ``input``'s shape) at the same place, in place; slow and not
    differentiable, as in PyTorch.

    Example: ``gradient.tensor([1, 2]).map_(gradient.tensor([10, 20]), max)`` holds ``[10, 20]``.
    """
    if input.device.type != "cpu" or tensor.device.type != "cpu":
        raise DeviceError("map_ is only implemented on CPU tensors")
    if input.requires_grad and grad_mode.is_grad_enabled():
        raise AutogradError("map_: cannot apply a Python function to a tensor that requires "
                            "grad; do it inside `with gradient.no_grad():` or on a detached copy")
    values = np.asarray(input.numpy(force=True))
    others = np.broadcast_to(np.asarray(tensor.numpy(force=True)), values.shape)
    out = np.array([callable(a, b) for a, b in zip(values.reshape(-1).tolist(),
                                                     others.reshape(-1).tolist())],
                   dtype=values.dtype).reshape(values.shape)
    return _refill(input, "map_", input._backend.from_numpy(out))


def new_empty_strided(input: Tensor, size, stride, *, dtype=None, device=None,
                      requires_grad: bool = False, **kwargs) -> Tensor:
    """An uninitialised tensor of ``size`` like ``input`` (its dtype and device unless given);
    ``stride`` is checked for length and otherwise ignored (gradient's tensors are contiguous).

    Example: ``x.new_empty_strided((2, 3), (3, 1))``
    """
    if len(tuple(stride)) != len(tuple(size)):
        raise ShapeError(f"new_empty_strided: mismatch in length of strides ({len(stride)}) and "
                         f"shape ({len(size)})")
    return new_empty(input, tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def pin_memory(input: Tensor, device=None) -> Tensor:
    """The tensor itself: gradient has no page-locked memory (see the module docstring)."""
    return input


def is_pinned(input: Tensor, device=None) -> bool:
    """Always False: gradient has no page-locked memory."""
    return False


def share_memory_(input: Tensor) -> Tensor:
    """Move a CPU tensor's values into shared memory, in place (see the module docstring), and
    return it; a tensor on another device is returned unchanged. Views taken before no longer
    share its memory (as after ``resize_``).

    Example::

        >>> model.share_memory()      # each parameter's share_memory_(): Hogwild training
        >>> p = mp.Process(target=train, args=(model,)); p.start()
    """
    if _on_host(input):
        if not shared_memory.is_shared(input._data):
            base = input._base
            if base is not None and _on_host(base) and base._data.flags.c_contiguous:
                # a view: its base's memory, as PyTorch shares the storage, the view in it
                offset = _offset_in(input._data, base._data)
                if offset is not None:
                    base._data = shared_memory.share(base._data)
                    input._data = np.ndarray(input._data.shape, input._data.dtype,
                                             buffer=base._data, offset=offset,
                                             strides=input._data.strides)
                    _sent_by_handle(type(base))
            if not shared_memory.is_shared(input._data):
                input._data = shared_memory.share(input._data)
        _sent_by_handle(type(input))
    return input


def _offset_in(view: np.ndarray, base: np.ndarray) -> int | None:
    """Where ``view``'s first element lies in C-contiguous ``base``'s bytes, when all of its
    elements lie there; else None."""
    if view.size == 0:
        return None
    start = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    low = start + sum(s * (n - 1) for s, n in zip(view.strides, view.shape) if s < 0)
    high = start + sum(s * (n - 1) for s, n in zip(view.strides, view.shape) if s > 0)
    if low < 0 or high + view.itemsize > base.nbytes:
        return None
    return start


def is_shared(input: Tensor) -> bool:
    """Whether the tensor's values are in shared memory (``share_memory_``)."""
    return _on_host(input) and shared_memory.is_shared(input._data)


def _on_host(t: Tensor) -> bool:
    return t._backend.name == "cpu" and isinstance(t._data, np.ndarray)


_by_handle: set = set()     # the tensor classes multiprocessing's pickler sends by handle


def _sent_by_handle(cls) -> None:
    """Have ``multiprocessing``'s pickler send tensors of class ``cls`` (exactly: its table is
    by type) in shared memory as a handle to it (others as ever: their values)."""
    if cls not in _by_handle:
        from multiprocessing.reduction import ForkingPickler
        ForkingPickler.register(cls, _reduce_for_a_process)
        _by_handle.add(cls)


def _reduce_for_a_process(t: Tensor):
    found = shared_memory.handle(t._data) if _on_host(t) else None
    if found is None:
        return t.__reduce_ex__(2)
    return (_attached, (type(t), found, t._requires_grad, getattr(t, "__dict__", None) or None))


def _attached(cls, found: tuple, requires_grad: bool, attributes):
    """A tensor of class ``cls`` over the shared memory of a handle (in another process)."""
    t = object.__new__(cls)
    t._init(shared_memory.attach(found), requires_grad, cpu_backend)
    if attributes:
        t.__dict__.update(attributes)
    _sent_by_handle(cls)                 # and sent on from here by handle too
    return t


class UntypedStorage:
    """The bytes under a tensor: its base's memory (a view's storage is the tensor it views),
    as ``torch.UntypedStorage``: ``data_ptr()``, ``nbytes()``, ``size()`` (bytes),
    ``device``. Two tensors share memory when their storages' ``data_ptr()`` are equal.

    Example: ``x[1:].untyped_storage().data_ptr() == x.untyped_storage().data_ptr()``
    """

    def __init__(self, owner: Tensor):
        self._owner = owner            # the tensor that owns the memory (a view's base)

    def data_ptr(self) -> int:
        return self._owner.data_ptr()

    def nbytes(self) -> int:
        return self._owner._data.nbytes

    def size(self) -> int:
        return self.nbytes()

    __len__ = size

    def element_size(self) -> int:
        return 1

    @property
    def device(self):
        return self._owner.device

    @property
    def is_cuda(self) -> bool:
        return self._owner.is_cuda

    def is_shared(self) -> bool:
        return is_shared(self._owner)

    def is_pinned(self, device=None) -> bool:
        return False

    def tolist(self) -> list:
        """The bytes, in memory order."""
        return _in_memory_order(self._owner).view(np.uint8).tolist()

    def __repr__(self) -> str:
        return f"<UntypedStorage of {self.nbytes()} bytes on {self.device}>"


class TypedStorage(UntypedStorage):
    """The same memory as elements of the tensor's dtype (``torch.TypedStorage``, what
    ``Tensor.storage()`` gives): ``size()`` counts elements, ``x.storage()[i]`` reads one,
    ``tolist()`` all, in memory order."""

    @property
    def dtype(self):
        return self._owner.dtype

    def size(self) -> int:
        return self._owner._data.size

    __len__ = size

    def element_size(self) -> int:
        return self._owner._data.dtype.itemsize

    def untyped(self) -> UntypedStorage:
        return UntypedStorage(self._owner)

    def __getitem__(self, index):
        return _in_memory_order(self._owner)[index].tolist()

    def tolist(self) -> list:
        return _in_memory_order(self._owner).tolist()

    def __repr__(self) -> str:
        return f"<TypedStorage of {self.size()} {self.dtype} elements on {self.device}>"


def _owner(input: Tensor) -> Tensor:
    while input._base is not None:
        input = input._base
    return input


def _in_memory_order(owner: Tensor) -> np.ndarray:
    return np.ravel(owner._backend.to_numpy(owner._data), order="K")


def untyped_storage(input: Tensor) -> UntypedStorage:
    """The memory the tensor's elements live in, shared with its views (see
    :class:`UntypedStorage`)."""
    return UntypedStorage(_owner(input))


def storage(input: Tensor) -> TypedStorage:
    """:func:`untyped_storage` as elements of the tensor's dtype (:class:`TypedStorage`)."""
    return TypedStorage(_owner(input))
