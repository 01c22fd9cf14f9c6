"""The backward engine: walks the graph from the outputs to the leaves, without recursion.

1. Find the nodes that matter (everything reachable for ``backward``; only the paths that lead
   to the requested inputs for ``autograd.grad``) and count, for each, how many gradients
   will flow into it.
2. Run the nodes in dependency order, newest first among those ready (as PyTorch does):
   each sums its incoming gradients, runs its hooks, calls its Function's backward and sends
   one gradient along each edge. Broadcasting is undone here, once: a gradient whose shape
   is larger than its input's is summed down to it, and cast to the input's dtype.
3. Leaves accumulate into ``.grad``; non-leaves keep theirs only after ``retain_grad()``.
   Saved tensors are freed as each node finishes, unless ``retain_graph=True``.

Under anomaly detection (``gradient.autograd.detect_anomaly``) each node's backward goes through
:func:`_apply_checked`, which raises on NaN gradients and adds the node's forward traceback to
errors; otherwise the loop pays one boolean test per node.
"""

from __future__ import annotations

import functools
import heapq
import sys

from ..dtypes import from_numpy_dtype
from ..errors import ArgumentValueError, AutogradError, ShapeError
from . import anomaly_mode, grad_mode, profiler
from . import function
from .function import AccumulateGrad


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad``; see :meth:`Tensor.backward`.
    With ``inputs`` (tensors that require grad, leaves or not), only into theirs, as PyTorch's."""
    if inputs is not None:
        single = isinstance(inputs, function.Tensor)
        inputs = (inputs,) if single else tuple(inputs)
        if not inputs:
            raise AutogradError("backward: inputs, when given, must name at least one tensor")
        grads = grad(tensors, inputs, grad_tensors, retain_graph, create_graph,
                     allow_unused=True)
        for t, g in zip(inputs, grads):
            if g is not None:
                _accumulate(t, g, create_graph)
        return
    roots = _roots(tensors, grad_tensors, "backward")
    _execute(roots, targets=None, retain_graph=create_graph if retain_graph is None else retain_graph,
             create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of accumulated.

    As PyTorch's: ``allow_unused=True`` gives None for an input the outputs do not depend on,
    ``materialize_grads=True`` zeros instead (and implies allow_unused); ``only_inputs`` is
    accepted and ignored (deprecated in PyTorch too); ``is_grads_batched`` is not supported.

    Example::

        >>> x = gradient.tensor([1.0, 2.0], requires_grad=True)
        >>> (g,) = gradient.autograd.grad((x ** 3).sum(), x, create_graph=True)
        >>> g            # 3 x^2, itself differentiable
        tensor([ 3., 12.], grad_fn=<MulBackward>)
    """
    Tensor = function.Tensor
    if is_grads_batched:
        raise AutogradError("grad: is_grads_batched=True (vmap over grad_outputs) is not "
                            "supported; call grad once per batch of grad_outputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ArgumentValueError(
            "grad: materialize_grads=True requires allow_unused to be True or None")
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise AutogradError(f"grad: input {i} does not require grad; call .requires_grad_() on it "
                                "before building the graph")
    roots = _roots(outputs, grad_outputs, "grad")
    targets = {}
    for i, t in enumerate(inputs):
        targets.setdefault(t._edge(), []).append(i)
    captured = _execute(roots, targets, create_graph if retain_graph is None else retain_graph,
                        create_graph)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None and not allow_unused:
            raise AutogradError(f"grad: input {i} was not used to compute the outputs; pass "
                                "allow_unused=True to get None for it")
        if g is None and materialize_grads:
            from ..ops.creation import zeros_like
            g = zeros_like(t)
        result.append(g)
    return tuple(result)


def _roots(tensors, grad_tensors, what):
    """(edge, gradient) pairs to start from, with implicit ones for scalar outputs."""
    Tensor = function.Tensor

    tensors = (tensors,) if isinstance(tensors, Tensor) else tuple(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,) * len(tensors) if grad_tensors is None else (grad_tensors,)
    grad_tensors = tuple(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise AutogradError(f"{what}: got {len(tensors)} outputs but {len(grad_tensors)} gradients")
    roots = []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not t.requires_grad:
            raise AutogradError(
                f"{what}: output {i} does not require grad and has no grad_fn: nothing in its graph "
                "requires grad (make the inputs with requires_grad=True, and compute outside no_grad)")
        if g is None:
            if t.numel() != 1:
                raise AutogradError(
                    f"{what}: a gradient can be created implicitly only for scalar outputs, output {i} "
                    f"has shape {tuple(t.shape)}; pass gradient= with that shape")
            g = _ones_like(t)
        elif not isinstance(g, Tensor):
            g = Tensor._make(t._backend.full(t.shape, g, t.dtype), False, t._backend)
        elif tuple(g.shape) != tuple(t.shape):
            raise ShapeError(f"{what}: gradient of shape {tuple(g.shape)} given for output {i} of "
                             f"shape {tuple(t.shape)}; they must match")
        roots.append((t._edge(), g))
    return roots


def _ones_like(t):
    return function.Tensor._make(t._backend.full(t.shape, 1, t.dtype), False, t._backend)


def _zeros(node, output_nr):
    shape, dtype = node.output_meta[output_nr]
    backend = node.ctx.backend
    return function.Tensor._make(backend.full(shape, 0, from_numpy_dtype(dtype)), False, backend)


def _graph(roots, targets):
    """Dependency counts of the nodes to visit, and the set of nodes whose backward must run."""
    order = []          # nodes in DFS post-order: every node after all nodes it leads to
    seen = set()
    stack = [(edge[0], False) for edge, _ in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for edge in node.next_edges:
            if edge is not None and edge[0] not in seen:
                stack.append((edge[0], False))

    if targets is None:
        run = {n for n in order if not isinstance(n, AccumulateGrad)}
        keep = seen
    else:
        target_nodes = {node for node, _ in targets}
        run = set()
        for node in order:  # children first, so one pass decides every node
            if any(e is not None and (e[0] in run or e[0] in target_nodes) for e in node.next_edges):
                run.add(node)
        keep = run | target_nodes
    deps = dict.fromkeys(keep, 0)
    for node in run:
        for edge in node.next_edges:
            if edge is not None and edge[0] in keep:
                deps[edge[0]] += 1
    return deps, run


def _execute(roots, targets, retain_graph, create_graph):
    deps, run = _graph(roots, targets)
    buffers = {}
    for (node, nr), g in roots:
        if node in deps:
            _add_to_buffer(buffers, node, nr, g)
    ready = [(-node.seq, node) for node in {edge[0] for edge, _ in roots} if deps.get(node) == 0]
    heapq.heapify(ready)
    captured = {}
    anomaly = anomaly_mode._enabled   # read once: a backward runs in one mode throughout
    run_node = _apply_checked if anomaly else None     # None: node.apply(grads) itself
    if profiler.active is not None:   # each node an event (gradient.autograd.profiler)
        run_node = functools.partial(profiler.record_backward, apply=run_node or _apply)
    with grad_mode.set_grad_enabled(create_graph):
        while ready:
            _, node = heapq.heappop(ready)
            grads = buffers.pop(node, None)
            if grads is None:
                if isinstance(node, AccumulateGrad):
                    continue  # every path to this leaf gave None: its .grad stays as it is
                grads = [None] * len(node.output_meta)
            # hooks see the gradients as they came (None for an output that got none), as PyTorch's
            _run_tensor_hooks(node, grads, create_graph)
            if _materializes(node):
                grads = [g if g is not None else _zeros(node, i) for i, g in enumerate(grads)]
            if targets is not None:
                for nr, g in enumerate(grads):
                    for i in targets.get((node, nr), ()):
                        captured[i] = g if g is not None else _zeros(node, nr)
            if isinstance(node, AccumulateGrad):
                if targets is None:
                    owned = _unshared(grads)   # (before grads[0] is put on the call's stack)
                    _accumulate(node.tensor, grads[0], create_graph, owned)
                    hooks = node.tensor._post_accumulate_hooks
                    if hooks:   # register_post_accumulate_grad_hook's, now that .grad is final
                        for hook in list(hooks):
                            hook(node.tensor)
                continue
            if node not in run:
                continue
            input_grads = node.apply(grads) if run_node is None else run_node(node, grads)
            if not retain_graph:
                node.release()
            _send(node, input_grads, buffers, deps, ready)
            input_grads = None   # the buffers hold the gradients now (see _unshared)
    return captured


def _materializes(node) -> bool:
    """Whether the node's backward gets zeros for outputs without a gradient: yes, unless its
    forward turned it off (``ctx.set_materialize_grads(False)`` in a custom Function, or an op
    with several outputs whose backward skips the work for an unused one); then None."""
    # getattr, not ctx.__dict__: utils.checkpoint's stand-in contexts answer it from the
    # recomputed context (AccumulateGrad's ctx is None: materialized)
    return getattr(node.ctx, "_materialize_grads", True)


def _apply(node, grads):
    return node.apply(grads)


def _apply_checked(node, grads):
    """``node.apply(grads)`` under anomaly detection: an error raised by the backward gets the
    forward traceback of the node as a note, and a NaN in a returned gradient raises (unless
    ``check_nan=False``), naming the node and the input, as PyTorch does."""
    try:
        input_grads = node.apply(grads)
    except Exception as exc:
        if hasattr(exc, "add_note"):   # Python 3.11+; on 3.10 the error goes up as it is
            exc.add_note(f"(the error was raised by the backward of {node.name()})"
                         + anomaly_mode.format_forward_trace(node))
        raise
    if anomaly_mode._check_nan:
        for i, g in enumerate(input_grads):
            if g is not None and _has_nan(g):
                raise AutogradError(f"Function '{node.name()}' returned nan values in its "
                                    f"{i}th output." + anomaly_mode.format_forward_trace(node))
    return input_grads


def _has_nan(g) -> bool:
    if g.is_sparse:
        g = g._values()
    data = g._data
    if data.dtype not in function._FLOAT_DTYPES:
        return False
    backend = g._backend
    return bool(backend.to_numpy(backend.reduce("any", backend.unary("isnan", data), None, False)))


def _send(node, input_grads, buffers, deps, ready):
    """Pass each input gradient along its edge, matched to the input's shape and dtype."""
    edges = node.next_edges
    if len(input_grads) < len(edges):
        input_grads = tuple(input_grads) + (None,) * (len(edges) - len(input_grads))
    for edge, g, meta in zip(edges, input_grads, node.input_meta):
        if edge is None or edge[0] not in deps:
            continue
        if g is not None:
            shape, dtype = meta
            if g.is_sparse:
                g = _sparse_matched(g, shape, dtype, node)
            else:
                if g._data.shape != shape:
                    g = _sum_to_shape(g, shape, node)
                if g._data.dtype != dtype:
                    g = g.to(from_numpy_dtype(dtype))
            _add_to_buffer(buffers, edge[0], edge[1], g)
        deps[edge[0]] -= 1
        if deps[edge[0]] == 0:
            heapq.heappush(ready, (-edge[0].seq, edge[0]))


def _sum_to_shape(g, shape, node):
    from ..ops.reduce import sum_to_shape
    try:
        return sum_to_shape(g, shape)
    except ShapeError:
        raise ShapeError(f"{node.name()} returned a gradient of shape {tuple(g.shape)} for an input "
                         f"of shape {tuple(shape)}, which it does not broadcast to") from None


def _sparse_matched(g, shape, dtype, node):
    """A sparse gradient (``embedding(sparse=True)``'s for its table) for an input of ``shape``:
    never broadcast, so its shape must be the input's; cast to the input's dtype."""
    if tuple(g.shape) != tuple(shape):
        raise ShapeError(f"{node.name()} returned a sparse gradient of shape {tuple(g.shape)} for "
                         f"an input of shape {tuple(shape)}")
    dtype = from_numpy_dtype(dtype)
    return g if g.dtype is dtype else g.to(dtype)


def _add_to_buffer(buffers, node, nr, g):
    slots = buffers.get(node)
    if slots is None:
        slots = buffers[node] = [None] * len(node.output_meta)
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def _unshared(grads) -> bool:
    """Whether ``grads[0]``, a leaf's summed gradient, is referenced only by ``grads`` and owns
    memory nothing else points to: a result just computed for this leaf, which can become its
    ``.grad`` without a copy (PyTorch steals such gradients too). A gradient sent to several
    leaves, kept by a hook, or a view of another array (reshape's backward) is copied."""
    g = grads[0]
    if g is None or g.is_sparse or g._base is not None or g.grad_fn is not None:
        return False
    if getattr(g._data, "base", True) is not None:
        return False
    tensor_refs, array_refs = _reference_counts(grads)
    return tensor_refs <= _ALONE[0] and array_refs <= _ALONE[1]


def _reference_counts(grads) -> tuple:
    """``sys.getrefcount`` of ``grads[0]`` and of its ``_data``, as seen from here."""
    g = grads[0]
    data = g._data
    return sys.getrefcount(g), sys.getrefcount(data)


class _Alone:
    __slots__ = ("_data",)


def _counts_alone() -> tuple:
    """What :func:`_reference_counts` gives for an object held only by its list and an array
    held only by that object: measured, not assumed, since interpreters count the references
    of locals and arguments differently."""
    probe = _Alone()
    probe._data = object()
    return _reference_counts([probe])


_ALONE = _counts_alone()


def _run_tensor_hooks(node, grads, create_graph):
    """Hooks registered with Tensor.register_hook, then retain_grad, for each output."""
    hooks = node.pre_hooks if not isinstance(node, AccumulateGrad) else node.tensor._hooks
    if hooks:
        if isinstance(node, AccumulateGrad):
            hooks = {0: hooks}
        for nr, fns in hooks.items():
            for fn in fns:
                new = fn(grads[nr])
                if new is not None:
                    grads[nr] = new
    if node.retains:
        for nr, ref in node.retains.items():
            t = ref()
            if t is not None and grads[nr] is not None:   # no gradient: .grad stays None
                _accumulate(t, grads[nr], create_graph)


def _accumulate(tensor, g, create_graph, owned=False):
    if tensor.grad is None:
        # without create_graph: outside the graph, and never shared with another leaf's .grad
        # (an in-place zero_ on one would clear both): the gradient itself when nothing else
        # holds it (``owned``), else a copy
        if create_graph or owned:
            tensor.grad = g
        elif g.is_sparse:     # its values are not written in place: no copy is needed
            tensor.grad = g.detach()
        else:
            tensor.grad = function.Tensor._make(g._backend.copy(g._data), False, g._backend)
    elif create_graph:
        tensor.grad = tensor.grad + g
    else:
        tensor.grad = (tensor.grad + g).detach()
