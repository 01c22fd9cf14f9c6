"""A recorded run compiled into one Python function that makes the same calls on new arrays.

The :class:`Plan` of a decode step of GPT-2 small is some two hundred lines like::

    s7 = f6(k4, s3, k5, k6, 1e-05)         # LayerNorm
    s8 = f7(k7, s7, k8, k9)                # Linear
    s12, s13 = f11(s1, 0, s10, s11)        # KVCache.update_arrays

one per recorded call, where ``s`` are the arrays made during the step (and its inputs), ``f``
the forwards and kernels that were called, and ``k`` the constants (weights, contexts). Python
runs it without any of the Tensor, autograd or Module machinery around each call: no checks,
no dispatch, no hooks lookup. :attr:`Plan.source` shows it. Where the calls repeat in identical
blocks (a decoder's layers), the blocks become one call of a numba loop over them
(:mod:`.compiled`): one call per step instead of hundreds.

Example::

    >>> plan = Plan(recorder, out_refs, watch)
    >>> plan.valid() and plan.replay(x_array, cache)
"""

from __future__ import annotations

import math

from ..threads import ThreadGovernor
from .compiled import LoopFailed, compile_loop
from .recorder import SEQ, SLOT, Call

__all__ = ["Plan"]


class Plan:
    """The calls a :class:`~gradient.capture.recorder.Recorder` recorded, compiled
    (:attr:`source`; the longest run of identical blocks of them as one numba loop where every
    call has a compiled form: :attr:`loop`, a :class:`~gradient.capture.compiled.LoopInfo`, or
    None and :attr:`why_python`), with what keeps them valid: the module tree unchanged
    (``watch``, a :class:`~gradient.nn.module.ModuleWatch`) and every parameter or buffer the
    run read still holding the same array at the same version."""

    def __init__(self, recorder, out_refs, watch, loop: bool = True):
        calls = _merged(recorder.calls)
        self.source, self._python = _compile(calls, recorder.n_inputs, out_refs)
        with_loop, found = (compile_loop(calls, recorder, out_refs) if loop else
                            (None, "the step's owner asked for no compiled loop"))
        if with_loop is None:
            self.loop, self.why_python = None, found
            self._replay = self._python
        else:
            self.loop, self.why_python = found, None
            self.source, self._replay = _compile(with_loop, recorder.n_inputs, out_refs)
        self.n_calls = len(recorder.calls)
        self._tensors = tuple(recorder.tensors_read.values())
        self._watch = watch
        # all threads or one for the replays, by their own times (a core another process
        # takes would stall every parallel kernel of a step: see ThreadGovernor)
        self.threads = ThreadGovernor()

    def valid(self) -> bool:
        """No module of the tree changed and no tensor read was replaced or written in place."""
        if self._watch.changed:
            return False
        for tensor, array, version in self._tensors:
            if tensor._data is not array or tensor._version.value != version:
                return False
        return True

    def replay(self, *inputs) -> tuple:
        """The recorded calls on ``inputs`` (the arrays and objects of the input slots, in
        order); the arrays of the results. Where the compiled loop (:attr:`loop`, see
        :mod:`.compiled`) fails, the calls replay in Python, which raises gradient's own error
        if there is one (a full KV cache); given arguments of other types than it was compiled
        for, it is not used again."""
        try:
            return self._replay(*inputs)
        except LoopFailed as failure:
            if isinstance(failure.__cause__, TypeError):
                self._replay = self._python
            return self._python(*inputs)


def _merged(calls) -> list:
    """The calls, with those that can run as one merged into the first of them.

    A replayed function (a call's ``run``) that can be merged has a ``merge_key`` and a
    ``merge_with(others)`` giving one function of its arguments that returns the results of
    it and the ``others`` (themselves functions of the same key) as a tuple; at most
    ``merge_limit`` (an attribute too) run as one. Calls merge when their keys are equal and
    they read the same slots (a product of the same activations by several weights, whose
    other arguments, constants, each captured for itself): the merged call runs where the
    first one ran, when every argument of the others exists already, and defines their
    results before anything reads them."""
    groups: dict = {}
    for index, call in enumerate(calls):
        key = getattr(call.run, "merge_key", None)
        if key is not None and call.outs is None:
            group = groups.setdefault((key, _slots_read(call.args)), [[]])
            if len(group[-1]) == call.run.merge_limit:
                group.append([])
            group[-1].append(index)
    replaced, dropped = {}, set()
    for chunks in groups.values():
        for chunk in chunks:
            if len(chunk) < 2:
                continue
            first = calls[chunk[0]]
            runs = [calls[i].run for i in chunk]
            replaced[chunk[0]] = Call(first.fn, first.args, None,
                                      tuple(calls[i].out for i in chunk),
                                      " + ".join(calls[i].label for i in chunk),
                                      runs[0].merge_with(runs[1:]))
            dropped.update(chunk[1:])
    return [replaced.get(i, call) for i, call in enumerate(calls) if i not in dropped]


def _slots_read(refs) -> tuple:
    """The slots among references, those inside lists and tuples included, with where they
    sit (what two calls must share to be merged)."""
    found = []
    for position, ref in enumerate(refs):
        if ref[0] == SLOT:
            found.append((position, ref[1]))
        elif ref[0] == SEQ:
            found.append((position, _slots_read(ref[2])))
    return tuple(found)


def _compile(calls, n_inputs: int, out_refs) -> tuple:
    """``(source, function)`` of the (merged) calls (see the module docstring)."""
    names: dict = {}        # what the source calls by name
    by_id: dict = {}        # id(constant) -> its name

    def named(value, prefix):
        name = by_id.get(id(value))
        if name is None:
            name = f"{prefix}{len(by_id)}"
            by_id[id(value)] = name
            names[name] = value
        return name

    def expr(ref):
        kind = ref[0]
        if kind == SLOT:
            return f"s{ref[1]}"
        if kind == SEQ:
            items = "".join(f"{expr(r)}, " for r in ref[2])
            return f"[{items}]" if ref[1] is list else f"({items})"
        value = ref[1]
        if value is None or type(value) in (bool, int, str) or (
                type(value) is float and math.isfinite(value)):
            return repr(value)
        return named(value, "k")

    params = ", ".join(f"s{i}" for i in range(n_inputs))
    lines = [f"def step({params}):"]
    for call in calls:
        fn = named(call.run, "f")
        args = ", ".join(expr(r) for r in call.args)
        if call.outs is None:
            target = f"s{call.out} = "
        elif not call.outs:
            target = ""
        else:
            target = ", ".join("_" if o is None else f"s{o}" for o in call.outs) + ", = "
        lines.append(f"    {target}{fn}({args})   # {call.label}")
    lines.append(f"    return ({''.join(f'{expr(r)}, ' for r in out_refs)})")
    source = "\n".join(lines) + "\n"
    scope = dict(names)
    exec(compile(source, "<captured step>", "exec"), scope)   # noqa: S102  (our own source)
    return source, scope["step"]
