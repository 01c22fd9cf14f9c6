"""Activation checkpointing, as ``torch.utils.checkpoint``: trade compute for memory.

``checkpoint(fn, *args)`` returns ``fn(*args)`` but does not keep the activations computed inside
``fn`` (only its inputs); backward runs ``fn`` again to get them back, with the random state the
forward had (so dropout draws the same mask), and the gradients are those of ``fn`` itself: for
its tensor arguments and for the tensors it closes over (a module's parameters).

Example::

    from gradient.utils.checkpoint import checkpoint, checkpoint_sequential

    class Block(nn.Module):
        def forward(self, x):
            return checkpoint(self.mlp, x, use_reentrant=False)   # self.mlp's activations
                                                                   # are recomputed in backward
    y = checkpoint_sequential(model, 4, x, use_reentrant=False)   # nn.Sequential in 4 segments

Two variants, PyTorch's, chosen by ``use_reentrant``:

- ``use_reentrant=False`` (recommended). The forward records ``fn``'s graph as usual; once ``fn``
  returns, each node recorded inside it hands its context (the tensors it saved, and anything
  else its backward reads) to a stand-in, so the activations are freed. When backward reaches
  one of these nodes, the stand-in runs ``fn`` again (once for all of them), takes the new
  graph's contexts, and the nodes' own backward formulas run on them. The graph outside stays
  as it is, so gradients reach the inputs, the parameters and any outer tensor ``fn`` uses, and
  ``autograd.grad``, keyword arguments, nested outputs, tensor hooks, ``retain_graph`` and
  ``create_graph`` (double backward) work as without checkpointing.
- ``use_reentrant=True`` (what a call without ``use_reentrant`` gets, with PyTorch's warning).
  :class:`CheckpointFunction` runs ``fn`` under no_grad; its backward runs ``fn`` again with
  grad on and calls ``backward`` on the result, which accumulates into the parameters' ``.grad``
  directly. Its limits are PyTorch's: no keyword arguments, no ``autograd.grad``, and no
  gradients at all (a warning says so) when no tensor argument requires grad.

Differences from PyTorch: the recomputation always runs all of ``fn`` (``early_stop=`` is
accepted and ignored; ``set_checkpoint_early_stop`` does not exist); after a
``backward(retain_graph=True)`` the recomputed activations stay until the next backward or until
the graph is freed (PyTorch drops them as it goes); the determinism check compares the
operations recorded and the shapes and dtypes they produce (PyTorch compares the saved tensors);
``debug=True`` adds the lists of operations of both runs to that check's error (PyTorch adds
operator traces); selective checkpointing (``create_selective_checkpoint_contexts``) is not
implemented.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

from ..autograd import engine as _engine
from ..autograd import function as _function
from ..autograd.engine import backward as _backward
from ..autograd.function import AccumulateGrad, Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..errors import ArgumentValueError, AutogradError, UsageError
from ..ops.creation import get_rng_state, set_rng_state
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "CheckpointFunction",
           "check_backward_validity", "detach_variable", "noop_context_fn",
           "set_checkpoint_debug_enabled"]


class CheckpointError(AutogradError):
    """The recomputation of a checkpointed function in backward did not record what its forward
    recorded (a RuntimeError, as PyTorch's ``CheckpointError``)."""


def noop_context_fn():
    """The default ``context_fn`` of :func:`checkpoint`: two contexts that do nothing.

    Example: ``checkpoint(fn, x, use_reentrant=False, context_fn=noop_context_fn)``
    """
    return contextlib.nullcontext(), contextlib.nullcontext()


_debug_enabled = None   # set_checkpoint_debug_enabled's override of every call's debug=


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled: bool | None):
    """Within the ``with`` block, ``debug`` is ``enabled`` for every non-reentrant checkpoint
    (None: each call's own ``debug=`` argument), as PyTorch's context manager of this name.

    Example::

        with set_checkpoint_debug_enabled(True):
            loss = checkpoint(fn, x, use_reentrant=False).sum()
            loss.backward()      # a mismatch error lists the operations of both runs
    """
    global _debug_enabled
    previous, _debug_enabled = _debug_enabled, enabled
    try:
        yield
    finally:
        _debug_enabled = previous


def detach_variable(inputs: tuple) -> tuple:
    """``inputs`` with each tensor detached, keeping its ``requires_grad`` (PyTorch's helper).

    Example: ``x2, n = detach_variable((x, 3))`` gives a leaf ``x2`` over ``x``'s storage.
    """
    if not isinstance(inputs, tuple):
        raise UsageError("Only tuple of tensors is supported. Got Unsupported input type: "
                         f"{type(inputs).__name__}")
    out = []
    for inp in inputs:
        if isinstance(inp, Tensor):
            x = inp.detach()
            x.requires_grad_(inp.requires_grad)
            inp = x
        out.append(inp)
    return tuple(out)


def check_backward_validity(inputs) -> None:
    """Warn, as PyTorch does, when no tensor among ``inputs`` requires grad: the reentrant
    checkpoint then gives no gradients at all.

    Example: ``check_backward_validity((x,))`` warns unless ``x.requires_grad``.
    """
    if not any(inp.requires_grad for inp in inputs if isinstance(inp, Tensor)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)


# ---------------------------------------------------------------------- state to run again in
@contextlib.contextmanager
def _random_state(state):
    """Run the block with the default generator at ``state`` (the forward's), then put back the
    state it had; nothing when ``state`` is None (preserve_rng_state=False). One generator
    serves every device (gradient draws on the host), so one state is all there is to keep."""
    if state is None:
        yield
        return
    outside = get_rng_state()
    set_rng_state(state)
    try:
        yield
    finally:
        set_rng_state(outside)


_AUTOCAST_DEVICE_TYPES = ("cpu", "cuda")


def _autocast_state():
    """The autocast settings in force (None when autocast is off everywhere)."""
    from ..autograd import autocast_state as s
    if not s.any_enabled():
        return None
    return tuple((d, s.is_enabled(d), s.get_dtype(d)) for d in _AUTOCAST_DEVICE_TYPES), \
        s.is_cache_enabled()


def _autocast_as(state):
    """A context that puts autocast as ``state`` (from :func:`_autocast_state`) describes, as
    PyTorch's checkpoint runs the recomputation under the forward's autocast settings."""
    from ..autograd import autocast_state as s
    if state is None and not s.any_enabled():
        return contextlib.nullcontext()
    from ..amp import autocast   # amp sits above autograd; utils above both
    stack = contextlib.ExitStack()
    if state is None:   # backward runs inside autocast but the forward did not: switch it off
        for d in _AUTOCAST_DEVICE_TYPES:
            stack.enter_context(autocast(d, enabled=False))
    else:
        devices, cache = state
        for d, enabled, dtype in devices:
            stack.enter_context(autocast(d, dtype=dtype, enabled=enabled, cache_enabled=cache))
    return stack


def _tensors_in(value) -> list:
    """The tensors in ``value``, looking into tuples, lists and dict values (nested outputs)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


# ---------------------------------------------------------------------- use_reentrant=True
def _called_from_autograd_grad() -> bool:
    """Whether this backward runs inside ``gradient.autograd.grad``, where the reentrant variant
    cannot deliver its parameters' gradients (it accumulates them into ``.grad``). The engine
    keeps no record of which entry point started it, so the call stack is asked."""
    code = _engine.grad.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


class CheckpointFunction(Function):
    """The reentrant checkpoint (``use_reentrant=True``), PyTorch's class of this name: call
    ``CheckpointFunction.apply(fn, preserve_rng_state, *args)``, or rather :func:`checkpoint`.

    Forward runs ``fn`` under no_grad, keeping only the tensor arguments (and the random and
    autocast state); backward runs ``fn`` again on detached copies of them with grad on, then
    ``backward`` from its outputs, which fills the closed-over parameters' ``.grad`` and the
    copies' ``.grad``, returned as the arguments' gradients.

    Example::

        >>> y = CheckpointFunction.apply(layer, True, x)   # = checkpoint(layer, x, use_reentrant=True)
    """

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        check_backward_validity(args)
        ctx.run_function = run_function
        ctx.rng_state = get_rng_state() if preserve_rng_state else None
        ctx.autocast = _autocast_state()
        # non-tensors are kept as they are; tensors go through save_for_backward, which notices
        # an in-place change made to them before backward
        ctx.tensor_indices = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.inputs = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_indices])
        outputs = run_function(*args)   # (Function.apply runs forward under no_grad)
        if not isinstance(outputs, (Tensor, tuple)) and any(ctx.needs_input_grad):
            raise AutogradError(
                "checkpoint(use_reentrant=True): the function returned a "
                f"{type(outputs).__name__}; the reentrant variant tracks only a Tensor or a tuple "
                "(PyTorch's too, which silently gives no gradient for the rest): return a tuple, "
                "or pass use_reentrant=False, which handles nested outputs")
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        if _called_from_autograd_grad():
            raise AutogradError(
                "When use_reentrant=True, gradient.utils.checkpoint is incompatible with "
                "gradient.autograd.grad() (it accumulates the gradients of the parameters it "
                "closes over into their .grad). To resolve this error, you can either set "
                "use_reentrant=False, or call .backward() instead.")
        inputs = list(ctx.inputs)
        for i, t in zip(ctx.tensor_indices, ctx.saved_tensors):
            inputs[i] = t
        detached = detach_variable(tuple(inputs))
        with _random_state(ctx.rng_state), enable_grad(), _autocast_as(ctx.autocast):
            outputs = ctx.run_function(*detached)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if not pairs and not any(isinstance(o, Tensor) and o.requires_grad for o in outputs):
            raise AutogradError("none of output has requires_grad=True, this checkpoint() is not "
                                "necessary")
        if pairs:
            _backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None, *[t.grad if isinstance(t, Tensor) else None for t in detached])


# ---------------------------------------------------------------------- use_reentrant=False
def _region(outputs, start: int) -> list:
    """The nodes recorded after sequence number ``start`` that the tensors in ``outputs`` reach,
    oldest first (the order in which a deterministic function records them, run after run).
    Leaves' accumulators are left out: they belong to the parameters, not to the region."""
    stack = [t.grad_fn for t in _tensors_in(outputs)
             if t.grad_fn is not None and t.grad_fn.seq > start]
    seen = set()
    nodes = []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        for edge in node.next_edges:
            if edge is not None:
                nxt = edge[0]
                if nxt.seq > start and not isinstance(nxt, AccumulateGrad) and nxt not in seen:
                    stack.append(nxt)
    nodes.sort(key=lambda n: n.seq)
    return nodes


def _describe(node) -> tuple:
    """What must be the same in the forward and the recomputation: the operation, and (for
    determinism_check="default") the shapes and dtypes of what it produced."""
    return node.name(), tuple((tuple(shape), str(dtype)) for shape, dtype in node.output_meta)


def _mark() -> int:
    """A sequence number below every node recorded from now on."""
    return next(_function._sequence)


_RELEASED = object()   # a stand-in whose node the engine has released (backward without retain)


class _RecomputedContext:
    """Stands in for the context of a node recorded inside a checkpointed function.

    The engine reads ``backend`` from it (kept here); anything else (``saved_tensors``, the
    attributes a backward reads) comes from the matching node of a recomputation, which the
    first such read starts. ``ctx._saved = None`` is how the engine releases a node after its
    backward: the recomputed context is dropped then.
    """

    __slots__ = ("_frame", "_index", "_live", "backend")

    def __init__(self, frame, index: int, backend):
        object.__setattr__(self, "_frame", frame)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_live", None)        # (recomputed ctx, its node) once taken
        object.__setattr__(self, "backend", backend)

    def _context(self):
        live = self._live
        if live is _RELEASED:
            raise AutogradError(
                "Trying to backward through the graph a second time (or to read saved tensors "
                "after they were freed): this node, recorded inside a checkpointed function, was "
                "released by a previous .backward() or autograd.grad(). Pass retain_graph=True "
                "to the first call if you need to backward through the graph again.")
        if live is None:
            live = self._frame.take(self._index)
            object.__setattr__(self, "_live", live)
        return live[0]

    def __getattr__(self, name):
        # (called only for names that are not slots: those of the recorded context)
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._context(), name)

    def __setattr__(self, name, value) -> None:
        if name == "_saved" and value is None:    # Node.release()
            live = self._live
            if live is None:
                self._frame.discard(self._index)
            elif live is not _RELEASED:
                live[1].release()   # free the recomputed activations even if the node lives on
            object.__setattr__(self, "_live", _RELEASED)
            return
        setattr(self._context(), name, value)


class _Frame:
    """One non-reentrant checkpoint call: what it takes to run the function again, the
    description of the forward's nodes, and the contexts of the latest recomputation not yet
    taken by their stand-ins."""

    __slots__ = ("function", "args", "kwargs", "rng_state", "autocast", "recompute_context",
                 "check_metadata", "debug", "versions", "described", "storage", "released")

    def __init__(self, function, args, kwargs, preserve_rng_state, recompute_context,
                 check_metadata, debug):
        self.function, self.args, self.kwargs = function, args, kwargs
        self.rng_state = get_rng_state() if preserve_rng_state else None
        self.autocast = _autocast_state()
        self.recompute_context = recompute_context
        self.check_metadata, self.debug = check_metadata, debug
        # the inputs' versions: an input written in place before backward would be recomputed
        # from its new values, so that is refused, as a saved tensor's change is
        self.versions = [(t, t._version.value) for t in _tensors_in((args, kwargs))]
        self.described = None
        self.storage = {}
        self.released = set()

    def take_over(self, nodes: list) -> None:
        """Give each node a stand-in context: the recorded contexts, and the activations they
        hold, are freed."""
        self.described = [_describe(n) for n in nodes]
        for i, node in enumerate(nodes):
            node.ctx = _RecomputedContext(self, i, node.ctx.backend)

    def take(self, index: int) -> tuple:
        entry = self.storage.pop(index, None)
        if entry is None:
            self.recompute()
            entry = self.storage.pop(index)
        return entry

    def discard(self, index: int) -> None:
        self.released.add(index)
        entry = self.storage.pop(index, None)
        if entry is not None:
            entry[1].release()

    def recompute(self) -> None:
        for t, version in self.versions:
            if t._version.value != version:
                raise AutogradError(
                    "checkpoint: an input of the checkpointed function was modified by an "
                    f"in-place operation ({t._version.last_op}) after the forward: it is at version "
                    f"{t._version.value}, expected version {version}, and the recomputation in "
                    "backward would use the new values. Clone the input before modifying it, or "
                    "modify it after backward.")
        with _random_state(self.rng_state), enable_grad(), _autocast_as(self.autocast), \
                self.recompute_context:
            start = _mark()
            outputs = self.function(*self.args, **self.kwargs)
        nodes = _region(outputs, start)
        self._check(nodes)
        self.storage = {i: (n.ctx, n) for i, n in enumerate(nodes) if i not in self.released}

    def _check(self, nodes: list) -> None:
        described = self.described
        again = [_describe(n) for n in nodes]
        problem = None
        if len(again) != len(described):
            problem = (f"its forward recorded {len(described)} operations, the recomputation in "
                       f"backward recorded {len(again)}")
        else:
            for i, (was, now) in enumerate(zip(described, again)):
                if was[0] != now[0] or (self.check_metadata and was[1] != now[1]):
                    problem = (f"operation {i} was {was[0]} with outputs {list(was[1])} in the "
                               f"forward, and {now[0]} with outputs {list(now[1])} in the "
                               "recomputation")
                    break
        if problem is None:
            return
        message = (f"gradient.utils.checkpoint: the checkpointed function did not do the same "
                   f"thing twice: {problem}. It must record the same operations on tensors of the "
                   "same shapes and dtypes when it runs again in backward: keep "
                   "preserve_rng_state=True if it draws random numbers, and do not checkpoint a "
                   "function that depends on state that changes between forward and backward")
        if self.check_metadata:
            message += " (determinism_check='none' skips the shape and dtype comparison)"
        if self.debug:
            message += ("\nOperations of the forward: " + ", ".join(d[0] for d in described)
                        + "\nOperations of the recomputation: " + ", ".join(d[0] for d in again))
        else:
            message += "; pass debug=True to see the operations of both runs"
        raise CheckpointError(message)


def _checkpoint_without_reentrant(function, preserve_rng_state, context_fn, determinism_check,
                                  debug, args, kwargs):
    if determinism_check not in ("default", "none"):
        raise ArgumentValueError("determinism_check should be one of ['default', 'none'], but got "
                                 f"{determinism_check}")
    debug = _debug_enabled if _debug_enabled is not None else debug
    if debug and context_fn is not noop_context_fn:
        raise ArgumentValueError("debug=True is incompatible with non-default context_fn")
    forward_context, recompute_context = context_fn()
    if not is_grad_enabled():   # nothing is recorded, so there is nothing to recompute
        with forward_context:
            return function(*args, **kwargs)
    frame = _Frame(function, args, kwargs, preserve_rng_state, recompute_context,
                   determinism_check == "default", debug)
    with forward_context:
        start = _mark()
        outputs = function(*args, **kwargs)
    nodes = _region(outputs, start)
    if nodes:
        frame.take_over(nodes)
    return outputs


# ---------------------------------------------------------------------- the public functions
def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=noop_context_fn,
               determinism_check: str = "default", debug: bool = False, early_stop: bool = True,
               preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, without keeping the activations computed inside it: backward
    computes them again by running ``function`` once more. See the module docstring.

    Args:
        function: what to run (a module, a bound method, any callable).
        args, kwargs: its arguments; keyword arguments need ``use_reentrant=False``.
        use_reentrant: which variant (see the module docstring). Pass it: without it, as in
            PyTorch, a warning is given and the reentrant variant (True) is used, although
            False is recommended.
        preserve_rng_state: run the recomputation with the random state the forward started
            with, so that random ops (dropout) draw the same numbers. True by default.
        context_fn: (use_reentrant=False only) a callable returning two context managers, the
            first entered around the forward, the second around the recomputation.
        determinism_check: (use_reentrant=False only) "default" compares the shapes and dtypes
            the recomputation produces with the forward's, "none" does not. Both runs must
            record the same operations in any case.
        debug: (use_reentrant=False only) a mismatch error lists both runs' operations.
        early_stop: accepted for PyTorch's signature; the recomputation always runs all of
            ``function``.

    Example::

        >>> layer = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Dropout(0.1), nn.Linear(32, 8))
        >>> x = gradient.randn(4, 8, requires_grad=True)
        >>> y = checkpoint(layer, x, use_reentrant=False)     # layer's activations are not kept
        >>> y.sum().backward()                                # the same gradients as layer(x)
    """
    if use_reentrant is None:
        warnings.warn(
            "gradient.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
            "As in PyTorch, calling checkpoint without use_reentrant uses use_reentrant=True, and "
            "PyTorch says it will raise an exception in a later version. use_reentrant=False is "
            "recommended, but if you need to preserve the current default behavior, you can pass "
            "use_reentrant=True. Refer to the docstring of gradient.utils.checkpoint for the "
            "differences between the two variants.", stacklevel=2)
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ArgumentValueError(
                "Unexpected keyword arguments: " + ",".join(kwargs) + " (keyword "
                "arguments of the function need use_reentrant=False)")
        if context_fn is not noop_context_fn or debug is not False:
            raise ArgumentValueError("Passing `context_fn` or `debug` is only supported when "
                                     "use_reentrant=False.")
        if not (is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad
                                          for a in args)):
            # nothing will be recorded (what CheckpointFunction.apply would find too): just run
            check_backward_validity(args)
            with no_grad():
                return function(*args)
        return CheckpointFunction.apply(function, preserve_rng_state, *args)
    return _checkpoint_without_reentrant(function, preserve_rng_state, context_fn,
                                         determinism_check, debug, args, kwargs)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):
    """Run ``functions`` one after the other on ``input``, in ``segments`` chunks of which all
    but the last are checkpointed: only each chunk's input is kept for backward.

    ``functions`` is an :class:`~gradient.nn.Sequential` (its children, as PyTorch takes them)
    or a list of modules or callables, each taking and returning one tensor. The chunks hold
    ``len(functions) // segments`` functions each, the last one the rest. ``use_reentrant`` is
    as for :func:`checkpoint` (a warning when it is not given); ``preserve_rng_state=`` is the
    only keyword accepted.

    Example::

        >>> model = nn.Sequential(*[nn.Linear(16, 16) for _ in range(8)])
        >>> y = checkpoint_sequential(model, 4, x, use_reentrant=False)   # 4 chunks of 2
    """
    if use_reentrant is None:
        warnings.warn(
            "gradient.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should "
            "be passed explicitly. As in PyTorch, calling it without use_reentrant uses "
            "use_reentrant=True, and PyTorch says it will raise an exception in a later version. "
            "use_reentrant=False is recommended, but if you need to preserve the current default "
            "behavior, you can pass use_reentrant=True. Refer to the docstring of "
            "gradient.utils.checkpoint for the differences between the two variants.",
            stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ArgumentValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from ..nn import Sequential   # nn sits below utils; imported here to keep the import light
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    n = len(functions)
    if not isinstance(segments, int) or not 1 <= segments <= max(n, 1):
        raise ArgumentValueError(
            f"checkpoint_sequential: segments must be an integer from 1 to the number "
            f"of functions ({n}), got {segments!r}")

    def run(start: int, end: int):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = n // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run(end + 1, n - 1)(input)
