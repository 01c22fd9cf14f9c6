"""Tensor: a backend array plus the autograd metadata that links it into a graph.

The arithmetic lives in :mod:`gradient.ops`; this class holds data, answers questions about
it (shape, dtype, device), and wires operators and methods to the ops. Functions of
``gradient.ops`` whose first argument is a tensor are bound here as methods under the same
name, so ``x.exp()`` is ``gradient.exp(x)``.

Example::

    >>> x = gradient.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
"""

from __future__ import annotations

import weakref
from types import FunctionType as _FunctionType

import numpy as np

from .autograd import capture_state, grad_mode
from .backends import Backend, cpu_backend, get_backend
from .device import as_device, device
from .dtypes import DType, as_dtype, from_numpy_dtype
from .errors import (ArgumentValueError, AutogradError, DeviceError, DTypeError,
                     IndexRangeError, ShapeError)
from . import layouts as _layouts
from .errors import ArgumentTypeError

__all__ = ["Tensor", "Size"]


class Size(tuple):
    """The shape of a tensor: a tuple with PyTorch's ``Size`` repr and ``numel()``."""

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"gradient.Size({list(self)})"


class _VersionCounter:
    """Counts in-place writes to a storage; views share their base's counter."""

    __slots__ = ("value", "last_op")

    def __init__(self):
        self.value = 0
        self.last_op = None

    def bump(self, op: str) -> None:
        self.value += 1
        self.last_op = op
        recorder = capture_state.current.recorder
        if recorder is not None:   # a captured step cannot replay a hidden write
            recorder.wrote_in_place(op)


_DEVICES: dict[str, device] = {}


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Make tensors with :func:`gradient.tensor`, :func:`gradient.zeros`, :func:`gradient.randn`, ...
    """

    __slots__ = ("_data", "_backend", "_requires_grad", "grad", "grad_fn", "_output_nr", "_version",
                 "_base", "_base_grad_fn", "_accumulator", "_hooks", "_retains_grad", "__weakref__",
                 "_post_accumulate_hooks", "_write_refusal")
    __array_priority__ = 1000  # NumPy scalars and arrays defer to Tensor's reflected operators

    def __init__(self, *data, dtype=None, device=None, requires_grad: bool = False):
        """``Tensor(data)`` is ``gradient.tensor(data, dtype=float32)``: like ``torch.Tensor``,
        the class constructor makes a tensor of the default float dtype unless told otherwise.
        ``Tensor(2, 3)`` (sizes) is a (2, 3) tensor of zeros (PyTorch leaves it uninitialised),
        and ``Tensor()`` an empty one; a :class:`Size` is sizes too."""
        from .dtypes import get_default_dtype
        from .ops.creation import _as_array
        backend = get_backend(as_device(device))
        dtype = dtype if dtype is not None else get_default_dtype()
        if len(data) == 1 and isinstance(data[0], Size):
            data = tuple(data[0])
        if all(type(n) is int for n in data):
            data = np.zeros(data if data else (0,), dtype.numpy)   # sizes, not values
        elif len(data) == 1:
            data = data[0]
        else:
            raise ArgumentTypeError(
                f"Tensor(): expected one sequence of values or integer sizes, got "
                f"{len(data)} arguments ({', '.join(type(d).__name__ for d in data)})")
        data = _as_array(data, dtype, backend)
        self._init(data, False, backend)
        self.requires_grad_(requires_grad)

    def new(self, *data) -> "Tensor":
        """PyTorch's legacy ``x.new(...)``: a tensor of ``x``'s dtype and device made as the
        constructor makes one: from sizes (zeros), a :class:`Size`, or values; ``x.new()`` is
        empty. Newer code says ``x.new_zeros(2, 3)`` or ``x.new_tensor(values)``."""
        return Tensor(*data, dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ construction
    @classmethod
    def _make(cls, data, requires_grad: bool = False, backend: Backend | None = None) -> "Tensor":
        """Wrap a backend array without copying (the internal constructor)."""
        t = object.__new__(cls)
        t._init(data, requires_grad, backend or cpu_backend)
        return t

    def _init(self, data, requires_grad, backend):
        self._data = data
        self._backend = backend
        self.grad = None
        self.grad_fn = None
        self._output_nr = 0
        self._version = _VersionCounter()
        self._base = None  # the tensor whose storage this view shares (set by view ops)
        self._base_grad_fn = None  # the base's grad_fn when the view was taken
        self._write_refusal = None  # why a recorded in-place write into this view is refused
        self._accumulator = None
        self._hooks = None
        self._retains_grad = False
        self._post_accumulate_hooks = None   # register_post_accumulate_grad_hook's, leaves only
        self._requires_grad = requires_grad  # callers pass True only for floating data

    # ------------------------------------------------------------------ what it is
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """The shape, or its length along ``dim``."""
        if dim is None:
            return Size(self._data.shape)
        if self._data.ndim == 0:
            raise IndexRangeError(f"size: dimension {dim} is out of range: the tensor has no "
                                  f"dimensions")
        return self._data.shape[self._wrap_dim(dim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return int(self._data.size)

    @property
    def dtype(self) -> DType:
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> device:
        """Where the data lives: ``device(type='cpu')``, ``device(type='cuda', index=1)``..."""
        name = self._backend.name  # the device string: one backend per device
        dev = _DEVICES.get(name)
        if dev is None:
            dev = _DEVICES[name] = device(name)
        return dev

    @property
    def is_cuda(self) -> bool:
        return self._backend.name.startswith("cuda")

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or self.dtype.is_floating_point

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    def stride(self, dim: int | None = None):
        """Strides in elements, like PyTorch's."""
        strides = tuple(s // self._data.dtype.itemsize for s in self._data.strides)
        if dim is not None and not strides:
            raise IndexRangeError(f"stride: dimension {dim} is out of range: the tensor has no "
                                  f"dimensions")
        return strides if dim is None else strides[self._wrap_dim(dim)]

    def is_contiguous(self, memory_format=None) -> bool:
        """Whether the elements lie in storage in ``memory_format``'s order without gaps
        (row-major by default; see :mod:`gradient.layouts`)."""
        if memory_format is None or memory_format is _layouts.contiguous_format:
            return bool(self._data.flags.c_contiguous) if hasattr(self._data, "flags") else True
        order = _layouts.axis_order(memory_format, self.ndim, "is_contiguous")
        strides = _layouts.strides_of(self._data)
        return strides is not None and _layouts.in_layout(self.shape, strides, order)

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0] if hasattr(self._data, "__array_interface__") \
            else int(self._data.data.ptr)

    const_data_ptr = data_ptr

    def dim_order(self) -> tuple:
        """The dimensions from outermost to innermost in memory (by decreasing stride), as
        PyTorch's: ``(0, 1, 2, 3)`` for a contiguous 4-d tensor, ``(0, 2, 3, 1)`` channels last."""
        strides = self.stride()
        return tuple(sorted(range(self.ndim), key=lambda d: -strides[d]))

    @property
    def real(self) -> "Tensor":
        """The real part: the tensor itself (gradient's tensors are real), as PyTorch's."""
        return self

    @property
    def imag(self) -> "Tensor":
        """The imaginary part, which a real tensor has not: an error, as in PyTorch."""
        return _ops.imag(self)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op (the ones whose ``.grad`` gets filled)."""
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        """All dimensions reversed (the transpose for 2-d tensors)."""
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> "Tensor":
        """The last two dimensions swapped (batched matrix transpose)."""
        return _ops.transpose(self, -2, -1)

    @property
    def mH(self) -> "Tensor":
        """The conjugate transpose of the last two dimensions: ``mT`` (no complex dtypes here)."""
        if self.ndim < 2:
            raise ShapeError(f"tensor.mH is only supported on matrices or batches of matrices. Got "
                             f"{self.ndim}-D tensor.")
        return _ops.transpose(self, -2, -1)

    @property
    def H(self) -> "Tensor":
        """The conjugate transpose of a matrix (a 0-d tensor is its own): ``x.H``."""
        if self.ndim not in (0, 2):
            raise ShapeError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                             f"{self.ndim}-D tensor.")
        return _ops.transpose(self, 0, 1) if self.ndim == 2 else _ops.clone(self)

    @property
    def is_cpu(self) -> bool:
        return self._backend.name == "cpu"

    # PyTorch's other device and layout flags: gradient's tensors are dense and strided, on
    # the CPU, a CUDA GPU or a plugin device, never quantized tensors or nested ones (its
    # quantized layers keep their weights outside tensors), so these are False; ported code
    # that tests them (``if x.is_mps: ...``) takes its usual path
    is_xpu = is_mps = is_meta = is_quantized = is_sparse = is_sparse_csr = is_mkldnn = \
        is_nested = is_vulkan = is_ipu = is_xla = is_mtia = is_maia = property(
            lambda self: False, doc="False: gradient has no such devices or layouts.")

    @property
    def layout(self):
        """``gradient.strided``: a dense tensor (a sparse one, :mod:`gradient.sparse`, is
        ``gradient.sparse_coo``)."""
        return _layouts.strided

    @property
    def itemsize(self) -> int:
        """Bytes per element: ``element_size()``."""
        return self._data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes the elements take: ``numel() * itemsize``."""
        return int(self._data.size) * self._data.dtype.itemsize

    @property
    def output_nr(self) -> int:
        """Which output of its ``grad_fn`` this tensor is (0 for leaves)."""
        return self._output_nr

    def storage_offset(self) -> int:
        """Elements between the start of the storage and this tensor's first element (0 unless
        this is a view into a larger tensor, e.g. ``x[1:]``)."""
        base = self._base
        if base is None or self._data.size == 0:
            return 0
        return (self.data_ptr() - base.data_ptr()) // self._data.dtype.itemsize

    @property
    def data(self) -> "Tensor":
        """The same storage, detached from the graph (prefer :meth:`detach`)."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data
        self._backend = value._backend

    def __deepcopy__(self, memo) -> "Tensor":
        """A copy with storage of its own (leaf tensors only, as in PyTorch); ``.grad`` is copied too."""
        if not self.is_leaf:
            raise AutogradError("only leaf tensors (made by the user, not by an op) can be "
                                "deep-copied; detach() it first")
        from copy import deepcopy
        t = Tensor._make(self._backend.copy(self._data), self._requires_grad, self._backend)
        if self.grad is not None:
            t.grad = deepcopy(self.grad, memo)
        memo[id(self)] = t
        return t

    def __reduce_ex__(self, protocol):
        """Pickling (for another process: a ``multiprocessing`` queue, ``spawn``'s arguments),
        as PyTorch's: the values, dtype, device and ``requires_grad``, and the class (a
        Parameter stays one, its extra attributes with it); a tensor made by an op comes back
        as a leaf, without ``.grad``. (gradient never loads model files by unpickling.)"""
        values = self._backend.to_numpy(self._data).copy()
        return (_unpickled, (type(self), values, str(self.device), self._requires_grad,
                             getattr(self, "__dict__", None) or None))

    def _wrap_dim(self, dim: int) -> int:
        from .ops.shape import wrap_dim
        return wrap_dim(dim, self.ndim)

    # ------------------------------------------------------------------ leaving gradient
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array (sharing memory on the CPU).

        Raises for tensors that require grad, like PyTorch: call ``.detach().numpy()``.
        """
        if self.requires_grad and not force:
            raise AutogradError("numpy(): the tensor requires grad; call tensor.detach().numpy()")
        if capture_state.current.recorder is not None:
            capture_state.current.recorder.read_to_host("numpy()")
        return self._backend.to_numpy(self._data)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The DLPack capsule of the data, shared, not copied, for another library's
        ``from_dlpack`` (``numpy.from_dlpack(t)``); refused for a tensor that requires grad,
        as in PyTorch."""
        if self.requires_grad:
            raise AutogradError("__dlpack__: can't export a tensor that requires grad; use "
                                "tensor.detach()")
        export = getattr(self._data, "__dlpack__", None)
        if export is None:
            raise DeviceError(f"__dlpack__: tensors on {self.device} are not exported by DLPack; "
                              f"use .cpu() first")
        options = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                   "copy": copy}
        return export(**{k: v for k, v in options.items() if v is not None})

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        out = self.detach().numpy()
        return out.astype(dtype) if dtype is not None else out

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ArgumentValueError(
                f"item(): only one-element tensors convert to a Python number, this one "
                f"has {self._data.size} elements (shape {tuple(self.shape)})")
        if capture_state.current.recorder is not None:
            capture_state.current.recorder.read_to_host("item()")
        return self._python_values(self._backend.to_numpy(self._data).reshape(()))

    def tolist(self):
        """The data as (nested) Python lists of numbers."""
        if capture_state.current.recorder is not None:
            capture_state.current.recorder.read_to_host("tolist()")
        return self._python_values(self._backend.to_numpy(self._data))

    def _python_values(self, arr: np.ndarray):
        if arr.dtype.kind == "V" or arr.dtype.itemsize == 2 and arr.dtype.kind == "f" \
                or self.dtype.name == "bfloat16":
            arr = arr.astype(np.float32)
        return arr.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self._data.size != 1:
            raise ArgumentTypeError("only one-element integer tensors can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:   # a ValueError and, as in PyTorch, a RuntimeError
            raise ShapeError(f"the truth value of a tensor with {self._data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise ArgumentTypeError("iteration over a 0-d tensor")
        return iter(_ops.unbind(self, 0))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        from .dtypes import bool_, get_default_dtype, int64
        from .printing import tensor_repr
        # the dtype goes unsaid where it is the one such values would get: the default float
        # dtype, int64 and bool (and the default where there are no values to tell)
        return tensor_repr(self, self.dtype not in (get_default_dtype(), int64, bool_),
                           self.dtype is not get_default_dtype())

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number, as in PyTorch: ``f"{loss:.4f}"``."""
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)   # "" gives str(); other specs raise TypeError

    # ------------------------------------------------------------------ autograd
    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for backward."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Start (or stop) recording operations on this leaf tensor; returns the tensor."""
        if requires_grad and not self.dtype.is_floating_point:
            raise AutogradError(f"only tensors of floating dtype can require gradients, this one is "
                                f"{self.dtype}; convert it with .float() first")
        if not requires_grad and not self.is_leaf:
            raise AutogradError("requires_grad_(False) is only allowed on leaf tensors; use .detach()")
        self._requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """A new tensor sharing this one's storage, outside the graph."""
        t = Tensor._make(self._data, False, self._backend)
        t._version = self._version  # shared, so in-place writes through t are still detected
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise AutogradError("retain_grad() on a tensor that does not require grad")
        if self.is_leaf or self._retains_grad:
            return
        node = self.grad_fn
        if node.retains is None:
            node.retains = {}
        node.retains[self._output_nr] = weakref.ref(self)
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return replaces it.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that does not require grad")
        if self.is_leaf:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self.grad_fn
            if node.pre_hooks is None:
                node.pre_hooks = {}
            hooks = node.pre_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after backward has accumulated into this leaf's ``.grad`` (where
        an "optimizer step in backward" updates the parameter and frees its gradient).

        Leaves only, as in PyTorch; not called by ``autograd.grad``. Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that doesn't require gradient")
        if not self.is_leaf:
            raise AutogradError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        return _HookHandle(self._post_accumulate_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on
        (only into those of ``inputs``, leaves or not, where given)."""
        from .autograd.engine import backward
        backward(self, gradient, retain_graph, create_graph, inputs)

    def _edge(self):
        """Where a gradient for this tensor goes: its grad_fn's output, or its leaf accumulator."""
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        return (_function.grad_accumulator(self), 0)   # (imported at the end of this file)

    # ------------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> "Tensor":
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``; differentiable."""
        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        layout = kwargs.pop("memory_format", None)
        if kwargs:
            raise ArgumentTypeError(f"to(): unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, (DType, type)) or (isinstance(a, str) and _looks_like_dtype(a)):
                dtype = as_dtype(a)
            elif a is not None:
                dev = a
        out = self
        if dev is not None and get_backend(as_device(dev)) is not self._backend:
            out = _ops.to_device(out, as_device(dev))  # another device, or another index
        if dtype is not None and as_dtype(dtype) is not out.dtype:
            out = _ops.cast(out, as_dtype(dtype))
        if layout is not None and layout is not _layouts.preserve_format:
            out = _ops.shape.to_memory_format(out, layout)
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """The tensor's type name as PyTorch's legacy types are named, under gradient's name
        (``'gradient.FloatTensor'``, ``'gradient.cuda.LongTensor'``); or, given a dtype, a
        legacy type (``gradient.LongTensor``) or such a name (``'torch.DoubleTensor'``), the
        tensor converted to it (itself where it is of that type already)."""
        from .dtypes import from_legacy_type_name, legacy_type_name
        if dtype is None:
            return legacy_type_name(self.dtype, self.device.type)
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            dtype, device_type = from_legacy_type_name(dtype)
        elif hasattr(dtype, "legacy_device_type"):     # gradient.FloatTensor and the like
            dtype, device_type = dtype.dtype, dtype.legacy_device_type
        else:
            return self.to(dtype)
        if device_type == self.device.type:
            return self.to(dtype)
        return self.to(device_type, dtype)

    def type_as(self, other: "Tensor") -> "Tensor":
        if not isinstance(other, Tensor):
            raise ArgumentTypeError(f"type_as(): argument 'other' (position 1) must be a "
                                    f"Tensor, not {type(other).__name__}")
        return self.to(other.dtype)

    def float(self) -> "Tensor":
        return self.to(as_dtype("float32"))

    def double(self) -> "Tensor":
        return self.to(as_dtype("float64"))

    def half(self) -> "Tensor":
        return self.to(as_dtype("float16"))

    def bfloat16(self) -> "Tensor":
        return self.to(as_dtype("bfloat16"))

    def long(self) -> "Tensor":
        return self.to(as_dtype("int64"))

    def int(self) -> "Tensor":
        return self.to(as_dtype("int32"))

    def short(self) -> "Tensor":
        return self.to(as_dtype("int16"))

    def char(self) -> "Tensor":
        return self.to(as_dtype("int8"))

    def byte(self) -> "Tensor":
        return self.to(as_dtype("uint8"))

    def bool(self) -> "Tensor":
        return self.to(as_dtype("bool"))

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        """A copy on the GPU ``device`` (an index, ``"cuda:1"``; the current GPU when None)."""
        return self.to("cuda" if device is None else device)

    # ------------------------------------------------------------------ in-place operations
    def _check_inplace(self, op: str, *others, writes: bool = True) -> bool:
        """Refuse in-place writes autograd cannot follow, or the memory cannot take (where the
        op ``writes`` values: an in-place view such as ``unsqueeze_`` does not); True when the
        write must be recorded."""
        recording = self._check_recorded_write(op, *others)
        if writes:
            self._check_writeable(op)
        return recording

    def _check_recorded_write(self, op: str, *others) -> bool:
        """:meth:`_check_inplace`'s refusals of what autograd cannot follow."""
        if not grad_mode.is_grad_enabled():
            return False
        if self.requires_grad and self.is_leaf:
            raise AutogradError(
                f"{op}: a leaf tensor that requires grad cannot be modified in place (its .grad "
                "would be wrong); do it inside `with gradient.no_grad():`, or on a clone")
        recording = self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
        if recording and self._write_refusal is not None:
            raise AutogradError(f"{op}: {self._write_refusal}")
        if recording and self._writes_through_view():
            # (refuses, before anything is written, what the base's graph could not follow)
            _ops.view_write.check_view_write(op, self, self._base)
        return recording

    def _check_writeable(self, op: str) -> None:
        """Refuse an in-place write into memory whose elements are shared (an ``expand()``ed
        tensor, as PyTorch refuses it; NumPy's "assignment destination is read-only"
        otherwise) or that is read-only."""
        if _ops.index._shares_elements(self._data):
            raise ShapeError(f"{op}: this tensor of shape {tuple(self.shape)} is a broadcast "
                             f"(expanded) view whose elements share memory, or read-only "
                             f"memory, and cannot be written in place; call .clone() first")

    def _writes_through_view(self) -> bool:
        """Whether this tensor is a view of another's storage (a detached alias, the same array
        as its base, is not a differentiable view)."""
        return self._base is not None and self._base._data is not self._data

    def _write(self, op: str, result: "Tensor") -> "Tensor":
        """Store ``result`` into this tensor's storage and take over its place in the graph."""
        if result.dtype is not self.dtype:
            # PyTorch's rule: a result of another size of the same kind, or of a lower kind, is
            # cast (float64 into float32, int64 into int32, int into float), a higher kind is
            # refused (float into an integer tensor, anything but bool into a bool one)
            if not _ops.can_cast(result.dtype, self.dtype):
                raise DTypeError(f"{op}: the result has dtype {result.dtype}, which cannot be stored "
                                 f"in place in a tensor of dtype {self.dtype}")
            result = result.to(self.dtype)
        if result._data.shape != self._data.shape and not _fits_in(result.shape, self.shape):
            raise ShapeError(f"{op}: the result has shape {tuple(result.shape)}, which does not fit "
                             f"in place into a tensor of shape {tuple(self.shape)} (an in-place "
                             "op cannot grow its tensor by broadcasting); use the out-of-place op")
        base = self._base
        follow = (grad_mode.is_grad_enabled() and self._writes_through_view()
                  and (result.requires_grad or base.requires_grad))
        if follow:
            _ops.view_write.check_view_write(op, self, base)    # (a view taken under no_grad)
            positions = _ops.view_write.positions_in_base(self, base)
        if result._data is not self._data:
            self._backend.setitem(self._data, Ellipsis, result._data)
        self._version.bump(op)
        if follow:     # the base moves on to a graph of its new contents (PyTorch's CopySlices)
            _ops.view_write.write_through_view(base, result, positions)
            self._base_grad_fn = base.grad_fn
        if result.requires_grad:
            if result.grad_fn is None:
                # a leaf (copy_ of a leaf of this shape and dtype): this tensor must not become
                # the leaf's twin, its gradient has to flow into the leaf
                result = _ops.clone(result)
            self._requires_grad = True
            self.grad_fn, self._output_nr = result.grad_fn, result._output_nr
        return self

    def _snapshot(self) -> "Tensor":
        """This tensor's current value and graph position, in storage of its own.

        In-place ops compute from the snapshot, so the graph keeps the old value
        even after the storage is overwritten.
        """
        b = self._backend
        t = Tensor._make(b.contiguous(b.copy(self._data)), self.requires_grad, b)
        t.grad_fn, t._output_nr = self.grad_fn, self._output_nr
        return t

    def _inplace(self, op: str, fn, *others) -> "Tensor":
        src = self._snapshot() if self._check_inplace(op, *others) else self
        return self._write(op, fn(src, *others))

    def add_(self, other, alpha=1) -> "Tensor":
        if _ops.elementwise.arithmetic_in_place(self, "add_", other, alpha):
            return self
        return self._inplace("add_", lambda s, o: _ops.add(s, o, alpha=alpha), other)

    def sub_(self, other, alpha=1) -> "Tensor":
        if _ops.elementwise.arithmetic_in_place(self, "sub_", other, alpha):
            return self
        return self._inplace("sub_", lambda s, o: _ops.sub(s, o, alpha=alpha), other)

    def mul_(self, other) -> "Tensor":
        if _ops.elementwise.arithmetic_in_place(self, "mul_", other):
            return self
        return self._inplace("mul_", _ops.mul, other)

    def div_(self, other, rounding_mode=None) -> "Tensor":
        if rounding_mode is None and _ops.elementwise.arithmetic_in_place(self, "div_", other):
            return self
        return self._inplace("div_", lambda s, o: _ops.div(s, o, rounding_mode=rounding_mode), other)

    def pow_(self, exponent) -> "Tensor":
        return self._inplace("pow_", _ops.pow, exponent)

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._inplace("clamp_", lambda s, lo, hi: _ops.clamp(s, lo, hi), min, max)

    clip_ = clamp_

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._inplace("masked_fill_", lambda s, m, v: _ops.masked_fill(s, m, v), mask, value)

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (broadcast, and cast to this tensor's dtype) into this tensor."""
        if not isinstance(src, Tensor):
            src = _ops.tensor(src, dtype=self.dtype, device=self.device)
        elif src._backend is not self._backend:  # from another device, as in PyTorch
            src = src.to(self.device)
        return self._inplace("copy_", _copy_into, src)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        """Every element set to ``value``; an expanded tensor too, with a number (its elements
        sharing a place all take the one value), as PyTorch's."""
        if isinstance(value, Tensor) and value.ndim != 0:    # (recorded or not, as PyTorch)
            raise ArgumentValueError(f"fill_ only supports 0-dimension value tensor but got "
                                     f"tensor with {value.ndim} dimensions")
        if self._check_inplace("fill_", value, writes=False):
            self._check_writeable("fill_")
            return self.copy_(value)
        target = self._data
        if _ops.index._shares_elements(target):
            target = None if isinstance(value, Tensor) else _ops.index.broadcast_alias(target)
            if target is None:
                self._check_writeable("fill_")     # (raises: a tensor value, read-only memory)
        # a number must fit the dtype, as PyTorch checks (int64's fill_(1e300) raises)
        v = (value._data if isinstance(value, Tensor) else _ops.elementwise._constant(
            _as_number(value, "fill_: value"), self.dtype, self, checked=True)._data)
        self._backend.setitem(target, Ellipsis, v)
        self._version.bump("fill_")
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> "Tensor":
        """Fill with uniform random numbers in [a, b) (outside autograd, like ``nn.init``)."""
        from .ops.creation import default_generator
        a, b = _as_number(a, "uniform_: from"), _as_number(b, "uniform_: to")
        gen = (generator or default_generator)._state
        return self._fill_random("uniform_", self._backend.uniform(gen, tuple(self.shape), a, b,
                                                                   self.dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> "Tensor":
        """Fill with normal random numbers (outside autograd, like ``nn.init``)."""
        from .ops.creation import default_generator
        mean, std = _as_number(mean, "normal_: mean"), _as_number(std, "normal_: std")
        gen = (generator or default_generator)._state
        return self._fill_random("normal_", self._backend.normal(gen, tuple(self.shape), mean, std,
                                                                 self.dtype))

    def _fill_random(self, op: str, values) -> "Tensor":
        self._check_writeable(op)
        if not self.dtype.is_floating_point:
            raise DTypeError(f"{op}: expected a floating tensor, got {self.dtype}")
        if grad_mode.is_grad_enabled() and self.requires_grad and not self.is_leaf:
            raise AutogradError(f"{op}: cannot refill a tensor that is part of a graph; use a new tensor")
        self._backend.setitem(self._data, Ellipsis, values)
        self._version.bump(op)
        return self

    def __setitem__(self, index, value) -> None:
        """``self[index] = value``; recorded by autograd when ``self`` or ``value`` requires grad
        (the overwritten entries then get no gradient from ``self``'s old value)."""
        if self._check_inplace("__setitem__", value, writes=False):
            self._check_writeable("__setitem__")
            self._write("__setitem__", _ops.index_put(self._snapshot(), index, value))
        else:
            _ops.setitem_(self, index, value)    # (checks what an expanded tensor takes)
            self._version.bump("__setitem__")

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __invert__(self):
        return _ops.bitwise_not(self)

    def __and__(self, other):
        return _ops.bitwise_and(self, other)

    __rand__ = __and__

    def __or__(self, other):
        return _ops.bitwise_or(self, other)

    __ror__ = __or__

    def __xor__(self, other):
        return _ops.bitwise_xor(self, other)

    __rxor__ = __xor__

    def __lshift__(self, other):
        return _ops.bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return _ops.bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return _ops.bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return _ops.bitwise_right_shift(other, self)

    def __ilshift__(self, other):
        return self.bitwise_left_shift_(other)

    def __irshift__(self, other):
        return self.bitwise_right_shift_(other)

    def __eq__(self, other):
        if not isinstance(other, _OPERANDS):
            # as PyTorch: Python then compares identities (``x == None`` is False) or asks
            # ``other``; a list or a string is no operand of the comparison
            return NotImplemented
        return _ops.eq(self, other)

    def __ne__(self, other):
        if not isinstance(other, _OPERANDS):
            return NotImplemented
        return _ops.ne(self, other)

    def __lt__(self, other):
        return _ops.lt(self, other)

    def __le__(self, other):
        return _ops.le(self, other)

    def __gt__(self, other):
        return _ops.gt(self, other)

    def __ge__(self, other):
        return _ops.ge(self, other)

    def __getitem__(self, index):
        return _ops.getitem(self, index)


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


#: What ``==`` and ``!=`` compare a Tensor with: tensors, numbers, NumPy arrays and scalars.
_OPERANDS = (Tensor, bool, int, float, complex, np.ndarray, np.generic)


def _copy_into(dst: Tensor, src: Tensor) -> Tensor:
    """The value ``dst.copy_(src)`` stores.

    While recording, a ``where`` that always picks ``src`` keeps dst's old graph connected, so
    it gets a zero gradient as in PyTorch (``src + dst * 0`` would turn inf or nan in dst into nan).
    """
    out = _ops.expand(src.to(dst.dtype), dst.shape)
    if dst.requires_grad and grad_mode.is_grad_enabled():
        everywhere = Tensor._make(dst._backend.full((), True, as_dtype("bool")), False, dst._backend)
        return _ops.where(everywhere, out, dst)
    return out


def _fits_in(shape, target) -> bool:
    """Whether values of ``shape`` broadcast to exactly ``target`` (stored in place there)."""
    try:
        return tuple(np.broadcast_shapes(tuple(shape), tuple(target))) == tuple(target)
    except ValueError:
        return False


def _looks_like_dtype(name: str) -> bool:
    try:
        as_dtype(name)
        return True
    except DTypeError:
        return False


from .autograd import function as _function  # noqa: E402
_function.bind_tensor_class(Tensor)

from . import ops as _ops  # noqa: E402  (ops import Tensor from this module)

from .ops.argument_errors import as_number as _as_number  # noqa: E402
from .ops.argument_errors import tensor_arguments as _tensor_arguments  # noqa: E402

# each method as the namespace's function is: given None or a number where a Tensor goes
# (``x.type_as(None)``), PyTorch's TypeError naming the argument, not an AttributeError
for _module, _name in _ops.TENSOR_METHODS:
    _method = getattr(_module, _name)
    setattr(Tensor, _name, _tensor_arguments(_method) if isinstance(_method, _FunctionType)
            else _method)


def _unpickled(cls, values, device_name, requires_grad, attributes):
    """A tensor of class ``cls`` rebuilt from :meth:`Tensor.__reduce_ex__`'s parts."""
    backend = get_backend(as_device(device_name))
    t = object.__new__(cls)
    t._init(backend.from_numpy(values), requires_grad, backend)
    if attributes:
        t.__dict__.update(attributes)
    return t
