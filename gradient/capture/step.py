"""A function over a module tree, run through the module graph until it is captured, then
replayed: how the models' decode steps are made.

:class:`CapturedStep` wraps a function (a decoder stack's forward over one token) of the
modules under ``root``. For each signature of its inputs (shapes, dtypes, devices, the Python
values among them):

1. the first call runs the function as written, under a
   :class:`~gradient.capture.recorder.Recorder`: the result is the module graph's;
2. the second call does the same, and the two recordings are compared. They were made at two
   positions of the KV cache, so a call whose arguments depend on the position (Python code
   that reads the cache's length), or a constant computed from the data, shows up as a
   difference; so do the failures the recorder sees (an in-place write, a read of data into
   Python). Equal recordings become a :class:`~gradient.capture.plan.Plan`;
3. later calls replay the plan, while it is valid: no module under ``root`` changed (a hook
   registered, a layer replaced, ``train()``) and every parameter it read still holds the same
   array at the same version. Otherwise the step is captured again.

A step that cannot be captured runs through the module graph, and is tried again once the
module tree changes. A recording made while a kernel it calls was still being compiled in a
child process (:mod:`gradient.capture.background`) holds that kernel's stand-in, whose calls
may differ from one position to the next (a paged cache's rows gathered at each length): it
is neither kept nor refused for good, and the step is captured again a little later, until
the kernels are there. ``gradient.kernels.trace()`` counts each call under ``("captured_step",
"replay")``, ``("captured_step", "capture")`` or ``("captured_step", "module graph")``;
:meth:`CapturedStep.status` says why a step is not replayed.

Example::

    >>> step = CapturedStep(model.transformer._blocks, model.transformer)
    >>> hidden = step(x, cache)     # the module graph twice, then the replayed plan
"""

from __future__ import annotations

import itertools
import time

from .. import kernels
from ..nn.module import ModuleWatch
from ..tensor import Tensor
from . import background
from .plan import Plan
from .recorder import Recorder, ReplayMismatch, flatten, same_ref, unflatten

__all__ = ["CapturedStep"]

_OP = "captured_step"
_SCALARS = (bool, int, float, str, type(None))


class CapturedStep:
    """``fn(*inputs)`` over the modules under ``root``, replayed once captured (see the module
    docstring). ``inputs`` are Tensors, Python scalars and objects passed through to the calls
    that take them (a KV cache); ``fn`` returns a Tensor or a tuple of Tensors.
    ``compile_loop(*inputs)``, if given, says whether the plan of these inputs' signature may
    compile its blocks into a numba loop (:class:`~gradient.capture.plan.Plan`)."""

    def __init__(self, fn, root, compile_loop=None):
        self._fn = fn
        self._root = root
        self._compile_loop = compile_loop
        self._entries: dict = {}   # input signature -> Plan | _Recording | _Refused

    def __call__(self, *inputs):
        leaves, spec = flatten(inputs)
        values = [leaf._data if isinstance(leaf, Tensor) else leaf for leaf in leaves
                  if not isinstance(leaf, _SCALARS)]
        key = (spec, tuple(_signature(leaf) for leaf in leaves))
        entry = self._entries.get(key)
        if type(entry) is Plan:
            if entry.valid():
                try:
                    arrays = entry.threads.run(entry.replay, *values)
                except ReplayMismatch:
                    # captured again below; pop, not del: another thread running this step
                    # may have dropped the plan already
                    self._entries.pop(key, None)
                else:
                    kernels.record(_OP, "replay")
                    spec, backends = entry.outputs
                    return unflatten(spec, iter([Tensor._make(a, False, b)
                                                 for a, b in zip(arrays, backends)]))
            else:
                entry = None
        elif type(entry) is _Refused and not entry.watch.changed and not entry.retry_due():
            kernels.record(_OP, "module graph")
            return self._fn(*inputs)
        return self._capture(key, entry, values, inputs)

    def status(self) -> list[str]:
        """Per input signature seen: "replaying", "captured once" or why the module graph runs."""
        return ["replaying" if type(e) is Plan else
                "captured once" if type(e) is _Recording else e.reason
                for e in self._entries.values()]

    # -- capturing
    def _capture(self, key, previous, values, inputs):
        kernels.record(_OP, "capture")
        watch = ModuleWatch(self._root.modules())
        tensors = {id(t._data): t for t in itertools.chain(self._root.parameters(),
                                                            self._root.buffers())}
        recorder = Recorder(values, tensors)
        declined = background.declined()
        # replays call kernels prepared for the recorded shapes, which give each row the bits
        # it gets alone; the recorded run does too, so that replays repeat its bits
        with recorder, kernels.rows_alone():
            out = self._fn(*inputs)
        out_leaves, out_spec = flatten(out)
        failure = recorder.failure
        if failure is None and not all(isinstance(t, Tensor) for t in out_leaves):
            failure = "the step returns something other than Tensors"
        if failure is None and background.declined() != declined:
            self._entries[key] = _Refused("a kernel it calls is still being compiled in a child "
                                          "process", watch, background.RECHECK_SECONDS)
            return out
        if failure is not None:
            self._entries[key] = _Refused(failure, watch)
            return out
        recording = _Recording(recorder, recorder.outputs([t._data for t in out_leaves]),
                               watch, out_spec, tuple(t._backend for t in out_leaves))
        if type(previous) is not _Recording or previous.watch.changed:
            self._entries[key] = recording     # compared with the next one
        elif previous.same_as(recording):
            loop = self._compile_loop is None or self._compile_loop(*inputs)
            plan = Plan(recorder, recording.out_refs, watch, loop=loop)
            plan.outputs = (out_spec, recording.backends)   # how its arrays are returned
            self._entries[key] = plan
        else:
            self._entries[key] = _Refused("the step's calls differ from one position to the "
                                          "next (Python code that depends on the position "
                                          "or on the data)", watch)
        return out


class _Recording:
    """A first capture, waiting for the second (see the module docstring)."""

    def __init__(self, recorder, out_refs, watch, out_spec, backends):
        self.calls, self.out_refs, self.watch = recorder.calls, out_refs, watch
        self.out_spec, self.backends = out_spec, backends

    def same_as(self, other: "_Recording") -> bool:
        return (len(self.calls) == len(other.calls) and self.out_spec == other.out_spec
                and len(self.out_refs) == len(other.out_refs)
                and all(map(same_ref, self.out_refs, other.out_refs))
                and all(a.same_as(b) for a, b in zip(self.calls, other.calls)))


class _Refused:
    """Why a step runs through the module graph, until the module tree changes or, for a
    passing reason, ``retry_after`` seconds have gone by."""

    def __init__(self, reason: str, watch, retry_after: float | None = None):
        self.reason, self.watch = reason, watch
        self._retry_at = None if retry_after is None else time.monotonic() + retry_after

    def retry_due(self) -> bool:
        return self._retry_at is not None and time.monotonic() >= self._retry_at


def _signature(leaf):
    if isinstance(leaf, Tensor):
        return (tuple(leaf._data.shape), leaf._data.dtype, id(leaf._backend))
    if isinstance(leaf, _SCALARS):
        return (type(leaf), leaf)
    return type(leaf)
