"""Function: one differentiable operation, its forward and its backward on one screen.

``forward(ctx, *args)`` runs on raw backend arrays (``ctx.backend`` has the primitives);
``backward(ctx, *grads)`` receives and returns :class:`~gradient.Tensor` objects and is written
with gradient's own differentiable ops, so a graph recorded during backward
(``create_graph=True``) gives second derivatives with no extra code.

Example::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = ctx.backend.unary("exp", x)
            ctx.save_for_backward(y)          # an output: saved as the output tensor
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)

Arrays passed to ``save_for_backward`` are matched by identity with the inputs and outputs
of the call and saved as those tensors (with their version, to catch in-place changes);
any other array is saved as a constant.
"""

from __future__ import annotations

import itertools
import weakref

from ..dtypes import ALL_DTYPES
from ..errors import AutogradError, DeviceError
from . import grad_mode

_sequence = itertools.count()

# NumPy dtypes of differentiable outputs (bfloat16 is ml_dtypes' kind "V", so kind "f" is not enough)
_FLOAT_DTYPES = frozenset(d.numpy for d in ALL_DTYPES if d.is_floating_point)

# gradient.tensor imports this module, so the Tensor class is handed in once it exists
# (see the end of tensor.py) instead of being imported here.
Tensor = None


def bind_tensor_class(cls) -> None:
    global Tensor
    Tensor = cls


class Context:
    """What forward leaves for backward: saved tensors and any attributes it sets."""

    def save_for_backward(self, *arrays) -> None:
        self._to_save = arrays

    def mark_non_differentiable(self, *arrays) -> None:
        """Outputs that get no grad_fn (indices, masks)."""
        self._non_differentiable = arrays

    @property
    def saved_tensors(self) -> tuple:
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise AutogradError(
                "Trying to backward through the graph a second time (or to read saved tensors after "
                "they were freed). Saved values are freed by .backward() and autograd.grad(): pass "
                "retain_graph=True to the first call if you need to backward through the graph again.")
        node = self._node()
        return tuple(s.unpack(node) for s in saved)


class SavedTensor:
    """A tensor saved for backward, with the version it had, to detect in-place changes."""

    __slots__ = ("tensor", "data", "backend", "version", "counter", "requires_grad", "output_nr")

    def __init__(self, tensor, output_nr=None):
        self.counter = tensor._version
        self.version = tensor._version.value
        self.output_nr = output_nr
        if output_nr is None:
            self.tensor = tensor
        else:
            # An output of the node that saves it: keep its data, not the tensor, so the graph
            # has no cycle (tensor -> node -> tensor); the tensor is rebuilt on unpack.
            self.tensor = None
            self.data = tensor._data
            self.backend = tensor._backend
            self.requires_grad = tensor.requires_grad

    def unpack(self, node):
        if self.counter.value != self.version:
            name = node.name() if node is not None else "an operation"
            raise AutogradError(
                f"{name}: one of the tensors it saved for backward was modified by an in-place "
                f"operation ({self.counter.last_op}) after it was saved: it is at version "
                f"{self.counter.value}, expected version {self.version}. Use the out-of-place op, or "
                f"clone the tensor before modifying it in place.")
        if self.tensor is not None:
            return self.tensor
        t = Tensor._make(self.data, self.requires_grad, self.backend)
        if self.requires_grad:
            t.grad_fn, t._output_nr = node, self.output_nr
        t._version = self.counter
        return t


class Node:
    """A recorded application of a Function: the unit the backward engine runs."""

    __slots__ = ("fn", "ctx", "next_edges", "input_meta", "output_meta", "pre_hooks",
                 "retains", "seq", "__weakref__")

    def __init__(self, fn, ctx, next_edges, input_meta, output_meta):
        self.fn = fn
        self.ctx = ctx
        self.next_edges = next_edges      # per forward argument: (Node, output_nr) or None
        self.input_meta = input_meta      # per forward argument: (shape, NumPy dtype) of tensor inputs
        self.output_meta = output_meta    # per output: (shape, NumPy dtype), to fill in missing grads
        self.pre_hooks = None             # {output_nr: [hook, ...]} from Tensor.register_hook
        self.retains = None               # {output_nr: weakref(tensor)} from Tensor.retain_grad
        self.seq = next(_sequence)

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def apply(self, grads):
        out = self.fn.backward(self.ctx, *grads)
        return out if isinstance(out, tuple) else (out,)

    def release(self) -> None:
        self.ctx._saved = None


class AccumulateGrad(Node):
    """The node at a leaf tensor: adds the incoming gradient into ``tensor.grad``."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        super().__init__(AccumulateGrad, None, (), (), ((tensor.shape, tensor._data.dtype),))
        self.tensor = tensor

    def name(self) -> str:
        return "AccumulateGrad"

    def release(self) -> None:
        pass


def grad_accumulator(tensor) -> AccumulateGrad:
    """The one AccumulateGrad node of a leaf (held weakly by the tensor, strongly by the graph)."""
    ref = tensor._accumulator
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(tensor)
        tensor._accumulator = weakref.ref(node)
    return node


class Function:
    """Base class of differentiable operations; see the module docstring."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        backend = None
        record = False
        raw = []
        for a in args:
            if isinstance(a, Tensor):
                if backend is not a._backend:
                    if backend is not None:
                        raise DeviceError(
                            f"{cls.__name__}: expected all tensors on the same device, got "
                            f"{backend.name} and {a._backend.name}; move them with .to(device)")
                    backend = a._backend
                record = record or a._requires_grad
                if a._base is not None and a._base.grad_fn is not a._base_grad_fn:
                    _refuse_stale_view(cls, a)
                raw.append(a._data)
            else:
                raw.append(a)
        ctx = Context()
        ctx.backend = backend
        record = record and grad_mode.is_grad_enabled()
        if record:
            ctx.needs_input_grad = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        out = cls.forward(ctx, *raw)
        if not record:
            if type(out) is tuple:
                return tuple(Tensor._make(o, False, backend) for o in out)
            return Tensor._make(out, False, backend)
        return _record(cls, ctx, args, raw, out, backend)

    @classmethod
    def forward_arrays(cls, backend, *args):
        """``forward`` on raw arrays of ``backend``, with nothing recorded and no Tensor made:
        what :meth:`apply` computes under no_grad, for inference paths that chain many ops on
        raw arrays (a model's decode step). ``Linear.forward_arrays(b, x, w, bias)``."""
        ctx = Context()
        ctx.backend = backend
        return cls.forward(ctx, *args)


def check_same_device(name: str, *tensors) -> None:
    """Raise :class:`DeviceError`, as :meth:`Function.apply` does, unless ``tensors`` (None
    entries skipped) are on one device: for fast paths that run on raw arrays without apply."""
    first = None
    for t in tensors:
        if t is None:
            continue
        if first is None:
            first = t._backend
        elif t._backend is not first:
            raise DeviceError(f"{name}: expected all tensors on the same device, got "
                              f"{first.name} and {t._backend.name}; move them with .to(device)")


def _refuse_stale_view(cls, view) -> None:
    """A view whose base was rewritten by a recorded in-place op has an outdated graph.

    PyTorch regenerates such a view's grad_fn; gradient does not, so it refuses the use
    (while recording) instead of sending the gradient to the base's old value.
    """
    if grad_mode.is_grad_enabled():
        raise AutogradError(
            f"{cls.__name__}: this view was taken before its base was modified in place by a "
            f"recorded operation ({view._version.last_op}), so its graph is stale; take the view "
            "again after the in-place write (or compute under no_grad if no gradient is needed)")


def _record(cls, ctx, args, raw, out, backend):
    """Wrap the outputs of a recorded call and link them into the graph through a new Node."""
    # (runs once per recorded op: list comprehensions and plain attribute reads, not
    # generators and properties, keep it a few microseconds)
    multiple = type(out) is tuple
    outs = out if multiple else (out,)
    attrs = ctx.__dict__
    non_diff = attrs.get("_non_differentiable")
    tensors = [Tensor._make(o, o.dtype in _FLOAT_DTYPES
                            and not (non_diff and any(o is n for n in non_diff)), backend)
               for o in outs]
    edges = []
    meta = []
    for a in args:
        if isinstance(a, Tensor) and a._requires_grad:
            edges.append(a._edge())
            data = a._data
            meta.append((data.shape, data.dtype))
        else:
            edges.append(None)
            meta.append(None)
    node = Node(cls, ctx, tuple(edges), tuple(meta), tuple([(o.shape, o.dtype) for o in outs]))
    for i, t in enumerate(tensors):
        if t._requires_grad:
            t.grad_fn, t._output_nr = node, i
    ctx._node = weakref.ref(node)  # weak: node -> ctx -> node would keep graphs alive until gc
    to_save = attrs.get("_to_save")
    ctx._saved = tuple([_resolve_saved(s, args, raw, outs, tensors, backend)
                        for s in to_save]) if to_save else ()
    ctx._to_save = None
    return tuple(tensors) if multiple else tensors[0]


def _resolve_saved(array, args, raw, outs, tensors, backend):
    """Match a saved array with an input or output of the call by identity."""
    if array is None:
        return _Constant(None)
    for a, r in zip(args, raw):
        if r is array and isinstance(a, Tensor):
            return SavedTensor(a)
    for i, o in enumerate(outs):
        if o is array:
            return SavedTensor(tensors[i], output_nr=i)
    return _Constant(Tensor._make(array, False, backend) if hasattr(array, "dtype") else array)


class _Constant:
    """A saved value that is no input or output: no version check, no graph."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def unpack(self, node):
        return self.value
