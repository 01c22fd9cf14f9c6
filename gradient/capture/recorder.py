"""Recording one run of a function: which calls it made on which arrays.

While a :class:`Recorder` is the capture state's recorder
(:mod:`gradient.autograd.capture_state`), every op applied outside autograd reports its
forward call, and the other computations on raw arrays (the KV cache's write, an op's no-grad
fast path) and the Python calls on tensors (module hooks) report themselves. Each becomes one
:class:`Call`: the function, its arguments as references (:data:`SLOT`: a value made during the
run or given as an input; :data:`CONST`: anything else, a weight's array or an ``eps``), and the
slots of what it returned. Replaying the calls in order on new inputs computes what the run
computed, as long as the run did nothing else: an in-place write or a read to the host
(``item()``: Python control flow on the data) makes the recording fail.

Example::

    >>> rec = Recorder([x, cache], model.named_tensors())
    >>> with rec:
    ...     y = fn(x, cache)
    >>> rec.failure or len(rec.calls)
"""

from __future__ import annotations

import numpy as np

from ..autograd import capture_state
from ..autograd.function import Context
from ..errors import UsageError
from ..tensor import Tensor

__all__ = ["Recorder", "Call", "ReplayMismatch", "TensorCall", "SLOT", "CONST", "SEQ", "flatten"]

SLOT, CONST, SEQ = "slot", "const", "seq"


class Call:
    """One recorded call: ``outs = fn(*args)``. ``args`` are references (``(SLOT, i)``,
    ``(CONST, value)`` or ``(SEQ, type, refs)``); ``outs`` the slots of the returned arrays,
    or None when a single array was returned into slot ``out``; ``label`` names it. ``run`` is
    what a replay calls: ``fn``, or ``fn`` specialized to these arguments (see
    :meth:`Recorder.run`)."""

    __slots__ = ("fn", "args", "out", "outs", "label", "run", "lower")

    def __init__(self, fn, args, out, outs, label, run=None, lower=None):
        self.fn, self.args, self.out, self.outs, self.label = fn, args, out, outs, label
        self.run = fn if run is None else run
        self.lower = lower   # its compiled form's maker (gradient.capture.lowering), or None

    def same_as(self, other: "Call") -> bool:
        """The same function on the same references: what a recording at another position
        must repeat for the step to be replayable."""
        return (_same_fn(self.fn, other.fn) and self.out == other.out and self.outs == other.outs
                and len(self.args) == len(other.args)
                and all(same_ref(a, b) for a, b in zip(self.args, other.args)))


class Recorder:
    """Records the calls of one run (see the module docstring). ``inputs`` are the values the
    run is given (arrays and objects, such as the KV cache), slots 0, 1, ...; ``tensors`` maps
    the ids of the arrays of parameters and buffers to their tensors, so that the plan can
    check later that each still holds the array it read (:attr:`tensors_read`)."""

    def __init__(self, inputs, tensors: dict):
        self.calls: list[Call] = []
        self.failure: str | None = None
        self.tensors_read: dict[int, tuple] = {}   # id(tensor) -> (tensor, array, version)
        self._tensors = tensors
        self._slots: dict[int, int] = {}    # id(value) -> slot
        self._alive: list = []              # what the slots hold: their ids stay unique
        self._paused = 0
        self.n_inputs = len(inputs)
        for value in inputs:
            self._new_slot(value)

    # -- the capture state's interface
    def __enter__(self) -> "Recorder":
        if capture_state.current.recorder is not None:
            raise UsageError("a capture is already in progress")
        capture_state.current.recorder = self
        return self

    def __exit__(self, *exc) -> None:
        capture_state.current.recorder = None

    def op(self, op, ctx, raw, out) -> None:
        """An op (an ``ArrayFunction`` class) was applied: ``out = op.forward(ctx, *raw)``."""
        if self._paused:
            return
        fresh = Context()
        fresh.backend = ctx.backend
        args = (fresh, *raw)
        self._record(op.forward, args, out, op.__name__, _specialized(op, args),
                     lower=getattr(op, "lower", None))

    def run(self, fn, args):
        """Run ``fn(*args)`` (raw arrays) and record it as one call.

        A replay calls ``fn`` again, or what ``fn.specialize(*args)`` returned for it, if ``fn``
        has that attribute (an op's ``specialize`` likewise): a function of the same arguments
        computing the same result, with the decisions that depend only on what the signature
        of a captured step fixes (shapes, dtypes, constants) taken once, here; it must compute
        the general result for arguments unlike these (``gradient.kernels.prepare``)."""
        if self._paused:
            return fn(*args)
        out = self._unrecorded(fn, args)
        if out is not None:
            self._record(fn, args, out, _label(fn), _specialized(fn, args),
                         lower=getattr(fn, "lower", None))
        return out

    def call(self, fn, args):
        """Run ``fn(*args)`` (Python on Tensors) and record it as one call of a
        :class:`TensorCall`, which wraps the arrays of a later step into Tensors again."""
        if self._paused:
            return fn(*args)
        result = self._unrecorded(fn, args)
        leaves, spec = flatten(args)
        refs = []
        kinds = []
        for leaf in leaves:
            if isinstance(leaf, Tensor) and id(leaf._data) in self._slots:
                refs.append((SLOT, self._slots[id(leaf._data)]))
                kinds.append(leaf._backend)     # wrapped again at replay
            else:
                refs.append(self._ref(leaf))
                kinds.append(None)
        out_leaves, _ = flatten(result)
        outs = tuple(t._data for t in out_leaves if isinstance(t, Tensor))
        wrapper = TensorCall(fn, spec, tuple(kinds), len(outs))
        self._record(wrapper, refs, outs, _label(fn), raw_refs=True)
        return result

    def _unrecorded(self, fn, args):
        """``fn(*args)`` with nothing it does recorded: the caller records it as one call."""
        self._paused += 1
        try:
            return fn(*args)
        finally:
            self._paused -= 1

    def wrote_in_place(self, op: str) -> None:
        if not self._paused and self.failure is None:
            self.failure = f"an in-place write ({op}) during the step"

    def read_to_host(self, what: str) -> None:
        if not self._paused and self.failure is None:
            self.failure = f"a read of tensor data to Python ({what}) during the step"

    # -- references
    def outputs(self, values) -> list:
        """The references of the run's results."""
        return [self._ref(v) for v in values]

    def _new_slot(self, value) -> int:
        slot = len(self._alive)
        self._alive.append(value)
        self._slots[id(value)] = slot
        return slot

    def _ref(self, value):
        slot = self._slots.get(id(value))
        if slot is not None:
            return (SLOT, slot)
        if type(value) in (tuple, list) and any(id(v) in self._slots for v in value):
            return (SEQ, type(value), tuple(self._ref(v) for v in value))
        tensor = self._tensors.get(id(value))
        if tensor is not None and tensor._data is value:
            self.tensors_read[id(tensor)] = (tensor, value, tensor._version.value)
        return (CONST, value)

    def _record(self, fn, args, out, label, run=None, raw_refs=False, lower=None) -> None:
        refs = list(args) if raw_refs else [self._ref(a) for a in args]
        if type(out) is tuple:
            outs = tuple(self._new_slot(o) if _is_array(o) else None for o in out)
            self.calls.append(Call(fn, refs, None, outs, label, run, lower))
        else:
            self.calls.append(Call(fn, refs, self._new_slot(out), None, label, run, lower))


class TensorCall:
    """A recorded Python call on Tensors (:meth:`Recorder.call`): called with the references'
    values, it wraps the arrays of slots in Tensors again (on the backend they were on), puts
    everything back into the structure of the recorded arguments, calls ``fn`` and returns
    the arrays of the Tensors in its result."""

    def __init__(self, fn, spec, backends, n_out):
        self.fn, self.spec, self.backends, self.n_out = fn, spec, backends, n_out

    def __call__(self, *values):
        leaves = [v if b is None else Tensor._make(v, False, b)
                  for v, b in zip(values, self.backends)]
        result = self.fn(*unflatten(self.spec, iter(leaves)))
        outs = tuple(t._data for t in flatten(result)[0] if isinstance(t, Tensor))
        if len(outs) != self.n_out:
            raise ReplayMismatch(f"{getattr(self.fn, '__qualname__', self.fn)} returned "
                                 f"{len(outs)} tensors where the captured step had {self.n_out}")
        return outs

    def same_as(self, other) -> bool:
        return (type(other) is TensorCall and self.fn is other.fn and self.spec == other.spec
                and self.n_out == other.n_out
                and all(a is b for a, b in zip(self.backends, other.backends)))


class ReplayMismatch(RuntimeError):
    """A replayed step did not go as the captured one (a hook returned another structure)."""


def flatten(value):
    """``(leaves, spec)`` of a nest of tuples, lists and dicts: the leaves in order, and the
    structure with each leaf replaced by None (rebuilt by :func:`unflatten`)."""
    leaves = []

    def walk(v):
        if type(v) in (tuple, list):
            return (type(v), tuple(walk(x) for x in v))
        if type(v) is dict:
            return (dict, tuple((k, walk(x)) for k, x in v.items()))
        leaves.append(v)
        return None

    return leaves, walk(value)


def unflatten(spec, leaves):
    """The structure ``spec`` (from :func:`flatten`) with its leaves taken from the iterator."""
    if spec is None:
        return next(leaves)
    kind, items = spec
    if kind is dict:
        return {k: unflatten(s, leaves) for k, s in items}
    return kind(unflatten(s, leaves) for s in items)


def _specialized(owner, args):
    """``owner.specialize(*args)`` where ``owner`` (a raw-array function or an op's class) has
    one (see :meth:`Recorder.run`), else None."""
    specialize = getattr(owner, "specialize", None)
    return None if specialize is None else specialize(*args)


def _label(fn) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, Tensor)


def _same_fn(a, b) -> bool:
    if isinstance(a, TensorCall):
        return a.same_as(b)
    return a == b


def same_ref(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == SLOT:
        return a[1] == b[1]
    if a[0] == SEQ:
        return a[1] is b[1] and len(a[2]) == len(b[2]) and all(map(same_ref, a[2], b[2]))
    return _same_value(a[1], b[1])


def _same_value(a, b) -> bool:
    """Two constants of two recordings: the same object, or equal values (a scalar made
    afresh by each run); an array computed from the data would differ between positions."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, Context):
        return a.backend is b.backend
    if _is_array(a):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if type(a) is np.ndarray:
            return bool((a == b).all()) if a.size else True
        # a device's array: reading its values would stall the device; a scalar is one made
        # from a Python number (the ops' constants), anything larger must be the same array
        return a.size <= 1
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(map(_same_value, a, b))
    try:
        return bool(a == b)
    except Exception:   # noqa: BLE001  (an object without a plain equality: not the same)
        return False
