"""Differentiable operations, their forward and their backward on one screen.

:class:`ArrayFunction` is what gradient's own ops are made of: ``forward(ctx, *args)`` runs on
raw backend arrays (``ctx.backend`` has the primitives); ``backward(ctx, *grads)`` receives and
returns :class:`~gradient.Tensor` objects and is written with gradient's own differentiable
ops, so a graph recorded during backward (``create_graph=True``) gives second derivatives with
no extra code. :class:`Function` (``gradient.autograd.Function``) is PyTorch's
``torch.autograd.Function`` for users: its forward receives and returns Tensors.

Example::

    class Exp(ArrayFunction):
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

An op may also define ``specialize(ctx, *args)``: called when a decode step is captured
(:mod:`gradient.capture`), it returns a function of the same arguments that the replayed step
calls instead of ``forward`` (with the decisions that depend only on shapes, dtypes and
constants taken once, typically a kernel from ``gradient.kernels.prepare``), or None.
"""

from __future__ import annotations

import functools
import itertools
import weakref

from ..dtypes import ALL_DTYPES
from ..errors import ArgumentTypeError, AutogradError, DeviceError, LayoutError
from ..layouts import is_sparse
from . import anomaly_mode, capture_state, grad_mode, profiler, saved_hooks

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

    def set_materialize_grads(self, value: bool) -> None:
        """With ``False``, backward receives None (not zeros) for outputs that got no gradient,
        as in PyTorch; the default, True, gives zeros of the output's shape."""
        self._materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise AutogradError("a custom Function that modifies its inputs in place (ctx.mark_dirty) "
                            "is not supported: return new tensors from forward instead")

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

    # forward_trace: where the forward ran, set only under anomaly detection (an unset slot
    # costs nothing; readers use getattr(node, "forward_trace", None))
    __slots__ = ("fn", "ctx", "next_edges", "input_meta", "output_meta", "pre_hooks",
                 "retains", "seq", "forward_trace", "__weakref__")

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

    @property
    def next_functions(self) -> tuple:
        """``(node, output_nr)`` per forward input, ``(None, 0)`` for one without a gradient,
        as ``torch``'s ``grad_fn.next_functions`` (what graph drawers such as torchviz walk)."""
        return tuple(edge if edge is not None else (None, 0) for edge in self.next_edges)

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

    @property
    def variable(self):
        """The leaf tensor this node accumulates into, as torch's ``AccumulateGrad.variable``."""
        return self.tensor

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


def _unwrap_inputs(cls, args) -> tuple:
    """``(backend, any input requires grad, raw arrays)`` of an op's arguments: tensors must share
    one backend, and a stale view is refused while recording."""
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
    if backend is None:
        _refuse_sparse(cls, args)
        # no Tensor among them (None, a list or a string given for one): the forward would
        # fail on the backend's absence, an AttributeError that names neither op nor input
        raise ArgumentTypeError(f"{cls.__name__}: expected a Tensor input, got "
                                f"{', '.join(type(a).__name__ for a in args) or 'nothing'}")
    return backend, record, raw


def _refuse_sparse(cls, args) -> None:
    """A sparse tensor in place of an op's dense ones gets an error that says what to do
    (where a dense tensor is among the arguments too, its array refuses to be made)."""
    for a in args:
        if is_sparse(a):
            raise LayoutError(f"{cls.__name__}: takes dense tensors, got a sparse one; call "
                              f".to_dense() first")


class ArrayFunction:
    """Base class of gradient's differentiable operations, forward on raw arrays; see the module
    docstring."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        # an event around it while a profile records (gradient.autograd.profiler); the body
        # stays inline: eager code calls this for every op
        event = profiler.begin(cls.__name__, args) if profiler.active is not None else None
        try:
            backend, record, raw = _unwrap_inputs(cls, args)
            ctx = Context()
            ctx.backend = backend
            record = record and grad_mode.is_grad_enabled()
            if record:
                ctx.needs_input_grad = tuple([isinstance(a, Tensor) and a._requires_grad
                                              for a in args])
            out = cls.forward(ctx, *raw)
            if not record:
                recorder = capture_state.current.recorder
                if recorder is not None:   # a step being captured (gradient.capture)
                    recorder.op(cls, ctx, raw, out)
                if type(out) is tuple:
                    return tuple(Tensor._make(o, False, backend) for o in out)
                return Tensor._make(out, False, backend)
            return _record(cls, ctx, args, raw, out, backend)
        finally:
            if event is not None:
                profiler.end(event)


class Function:
    """A differentiable operation written by a user, as PyTorch's ``torch.autograd.Function``:
    ``forward(ctx, *args)`` receives the Tensors (and other arguments) it is applied to and
    returns a Tensor or a tuple; it runs without recording a graph. ``backward(ctx, *grads)``
    receives one gradient per output and returns one per forward argument (None for those that
    need none), written with gradient's differentiable ops, so ``create_graph=True`` and
    :func:`~gradient.autograd.gradgradcheck` work. ``ctx.save_for_backward(*tensors)``,
    ``ctx.saved_tensors``, ``ctx.needs_input_grad`` and ``ctx.mark_non_differentiable`` are
    PyTorch's; so is the ``setup_context`` form (``forward(*args)`` without ctx). Non-Tensor
    outputs pass through and get a None gradient.

    Example::

        >>> class Exp(gradient.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         y = x.exp()
        ...         ctx.save_for_backward(y)
        ...         return y
        ...
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         (y,) = ctx.saved_tensors
        ...         return grad * y
        >>> y = Exp.apply(gradient.tensor([0.5], requires_grad=True))

    Differences from PyTorch: a forward that writes into its inputs in place (``ctx.mark_dirty``)
    is not supported.
    (gradient's own ops are :class:`ArrayFunction` subclasses, whose forward runs on raw arrays.)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError(
            "a gradient.autograd.Function subclass must define forward(ctx, *args) as a "
            "@staticmethod (or forward(*args) together with setup_context(ctx, inputs, output))")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Override to save what backward needs when ``forward`` takes no ctx (PyTorch 2's form)."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(
            "a gradient.autograd.Function subclass must define backward(ctx, *grads) as a "
            "@staticmethod to be differentiated")

    @classmethod
    def apply(cls, *args, **kwargs):
        if profiler.active is not None:
            event = profiler.begin(cls.__name__, args)
            try:
                return cls._apply(*args, **kwargs)
            finally:
                profiler.end(event)
        return cls._apply(*args, **kwargs)

    @classmethod
    def _apply(cls, *args, **kwargs):
        if kwargs:   # as PyTorch: bound to forward's parameters, each an input with a gradient
            args = _bind_arguments(cls, args, kwargs)
        if any(isinstance(a, Tensor) for a in args):
            backend, record, raw = _unwrap_inputs(cls, args)
        else:   # no Tensor among them: a plain call, nothing to record (as PyTorch's)
            _refuse_sparse(cls, args)
            backend, record, raw = None, False, args
        ctx = Context()
        ctx.backend = backend
        ctx.needs_input_grad = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        record = record and grad_mode.is_grad_enabled()
        with grad_mode.no_grad():
            if cls.setup_context is Function.setup_context:
                out = cls.forward(ctx, *args)
            else:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
        if not record:
            return out
        multiple = type(out) is tuple
        outs = out if multiple else (out,)
        tensor_at = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        if not tensor_at:
            raise AutogradError(f"{cls.__name__}.forward returned no Tensor, so nothing can "
                                "carry a gradient; return the result as a Tensor")
        # (recording means an input requires grad, so backend is that input's)
        if any(outs[i]._backend is not backend for i in tensor_at):
            raise DeviceError(f"{cls.__name__}.forward returned a tensor on another device than "
                              "its inputs; return it on the inputs' device")
        # the Tensor-level requests of ctx, as the arrays ArrayFunction's recording matches
        attrs = ctx.__dict__
        for key in ("_to_save", "_non_differentiable"):
            if attrs.get(key):
                attrs[key] = tuple(_array_of(cls, t) for t in attrs[key])
        arrays = tuple(outs[i]._data for i in tensor_at)
        recorded = _record(cls, ctx, args, raw, arrays, backend, node_type=_FunctionNode)
        node = ctx._node()   # None when every output was marked non-differentiable: no graph
        if node is not None:
            node.tensor_at = (tensor_at, len(outs))
        if not multiple:
            return recorded[0]
        result = list(outs)
        for i, t in zip(tensor_at, recorded):
            result[i] = t
        return tuple(result)


class _FunctionNode(Node):
    """The node of a user's :class:`Function`: backward is called with one gradient per output
    (None for non-Tensor ones), and what it returns is checked."""

    __slots__ = ("tensor_at",)

    def apply(self, grads):
        tensor_at, n_outputs = self.tensor_at
        full = [None] * n_outputs
        for i, g in zip(tensor_at, grads):
            full[i] = g
        out = self.fn.backward(self.ctx, *full)
        out = out if isinstance(out, tuple) else (out,)
        n_inputs = len(self.next_edges)
        if len(out) < n_inputs or any(g is not None for g in out[n_inputs:]):
            raise AutogradError(f"{self.fn.__name__}.backward returned {len(out)} gradient(s) "
                                f"but forward took {n_inputs} argument(s): return one per "
                                "argument, None for those that need no gradient")
        for i, g in enumerate(out[:n_inputs]):
            if g is not None and not isinstance(g, Tensor):
                raise AutogradError(f"{self.fn.__name__}.backward returned a "
                                    f"{type(g).__name__} as gradient {i}; return Tensors "
                                    "(or None)")
        return out[:n_inputs]


def once_differentiable(backward):
    """Decorate a :class:`Function`'s backward, as ``torch.autograd.function.
    once_differentiable``: it runs without recording a graph (so it may compute with NumPy or
    in place), and where a second derivative is asked (``create_graph=True``) the gradients it
    returned raise :class:`~gradient.errors.AutogradError` when differentiated, rather than
    giving a wrong zero.

    Example::

        >>> class Exp(gradient.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x): ...
        ...     @staticmethod
        ...     @once_differentiable
        ...     def backward(ctx, grad): ...
    """
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with grad_mode.no_grad():
            out = backward(ctx, *grads)
        recorded = [g for g in grads if isinstance(g, Tensor) and g._requires_grad]
        if not recorded or not grad_mode.is_grad_enabled():
            return out
        outs = out if isinstance(out, tuple) else (out,)
        outs = tuple(_DifferentiatedOnce.apply(g, *recorded) if isinstance(g, Tensor) else g
                     for g in outs)
        return outs if isinstance(out, tuple) else outs[0]
    return wrapper


class _DifferentiatedOnce(Function):
    """A gradient from a backward marked :func:`once_differentiable`, tied to the gradients
    it was computed from: differentiating it raises."""

    @staticmethod
    def forward(ctx, gradient, *sources):
        return gradient.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise AutogradError("trying to differentiate twice a function whose backward is marked "
                            "@once_differentiable: its backward is not differentiable; write it "
                            "with gradient's ops and without the decorator to allow it")


def _bind_arguments(cls, args, kwargs) -> tuple:
    """``args`` and ``kwargs`` as the positional arguments of ``cls.forward`` (after ctx, unless
    the setup_context form), defaults filled in."""
    import inspect
    params = list(inspect.signature(cls.forward).parameters.values())
    if cls.setup_context is Function.setup_context:
        params = params[1:]   # ctx
    bound = inspect.Signature(params).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args


def _array_of(cls, value):
    """The array a saved (or non-differentiable) value stands for: Tensors by their data."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise AutogradError(f"{cls.__name__}: save_for_backward and mark_non_differentiable "
                            f"take Tensors (or None), got a {type(value).__name__}; keep "
                            "other values as attributes of ctx")
    return value._data


def check_same_device(name: str, *tensors) -> None:
    """Raise :class:`DeviceError`, as :meth:`ArrayFunction.apply` does, unless ``tensors`` (None
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


def _record(cls, ctx, args, raw, out, backend, node_type=Node):
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
    node = node_type(cls, ctx, tuple(edges), tuple(meta), tuple([(o.shape, o.dtype) for o in outs]))
    if anomaly_mode._enabled:   # the one check anomaly detection adds to every recorded op
        node.forward_trace = anomaly_mode.capture_forward_trace()
    for i, t in enumerate(tensors):
        if t._requires_grad:
            t.grad_fn, t._output_nr = node, i
    ctx._node = weakref.ref(node)  # weak: node -> ctx -> node would keep graphs alive until gc
    to_save = attrs.get("_to_save")
    ctx._saved = tuple([_resolve_saved(s, args, raw, outs, tensors, backend)
                        for s in to_save]) if to_save else ()
    if saved_hooks.stack and ctx._saved:   # autograd.graph.saved_tensors_hooks
        ctx._saved = tuple([_Packed(s, node) if isinstance(s, SavedTensor) else s
                            for s in ctx._saved])
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


class _Packed:
    """A saved tensor given to the innermost ``saved_tensors_hooks``' pack hook; its unpack
    hook gives it back to the backward."""

    __slots__ = ("packed", "unpack_hook")

    def __init__(self, saved: SavedTensor, node):
        stack = saved_hooks.stack
        pack_hook, self.unpack_hook = stack[-1]
        # the hook's own ops save nothing through it (no recursion), as in PyTorch
        saved_hooks.stack = []
        try:
            self.packed = pack_hook(saved.unpack(node))
        finally:
            saved_hooks.stack = stack

    def unpack(self, node):
        return self.unpack_hook(self.packed)


class _Constant:
    """A saved value that is no input or output: no version check, no graph."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def unpack(self, node):
        return self.value
