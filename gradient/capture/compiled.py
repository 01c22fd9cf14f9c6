"""A captured step's repeated calls compiled into one numba loop.

A decoder's step is the same block of calls once per layer (SmolLM2: 30 blocks of 21 calls).
Replayed in Python that is some 700 calls per token at a few microseconds each: for a small
quantized model as much time as the arithmetic. Here the longest run of identical blocks is
found among the recorded calls (identical: the same compiled functions, see
:mod:`gradient.kernels.lowering`, on arguments of the same kinds and types) and written as one
numba function that loops over the layers::

    def loop(n_layers, i0, g1, g2, d3, d4, d5, k6, A, S, like_float32, like_uint8):
        c20_0 = i0
        for l in range(n_layers):
            t0_0 = call(F0, c20_0, F9(A[0], S[0], like_float32, l), 1e-05)[0]   # rms_norm
            t1_0, t1_1, t1_2 = call(F1, t0_0, unliteral((1, 576)), unliteral(6),
                                    F10(A[1], S[1], like_uint8, l), ...)
            ...
            c20_0 = t20_0       # the residual stream, to the next layer
        return (t20_0,)

What differs from layer to layer reaches the loop by the layer's index: numbers from an array;
weights made in place from their addresses and shapes (``A``, ``S``: see
:func:`gradient.backends.cpu_lowered.layer_arrays`). Python numbers and tuples of them are
written into the source (integers as ``unliteral(...)``: see :func:`_literal`). The loop calls
the kernels through their compiled code's address (:func:`gradient.backends.kernel_calls.call`),
so compiling it does not optimize their code again (a test model's loop: 9 s became 2 s);
the small helpers that make a layer's weights stay linked in. Where a
block holds calls that have no compiled form (a user's forward hook on every layer: Python
that must run at its point), the loop runs in Python and each run of compiled calls between
them is one numba function.

The loop replaces its calls in the :class:`~gradient.capture.plan.Plan`; what comes before and
after it (the final norm) stays a Python call. Its source goes to a file under gradient's cache
directory, named by a hash of the source, of the types it is compiled for, of the modules it
calls and of the kernel tree's content (:mod:`gradient.backends.kernel_cache`), so numba's disk
cache keeps the machine code between processes, and not past an edit of a kernel it links in;
it is compiled for exactly the types seen at capture (one specialization). A step whose calls
do not repeat with compiled forms replays in Python (``Plan.why_python`` says why).

Example::

    >>> calls, info = compile_loop(calls, recorder, out_refs)   # or (None, why not)
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import GradientError
from ..kernels.lowering import Derived
from ..kernels.trace import active as _traces_open
from ..kernels.trace import record as _record
from . import background
from .recorder import SEQ, SLOT, Call

__all__ = ["compile_loop", "steps_directory", "LoopInfo", "LoopFailed", "SWITCH"]

#: Environment variable: "0" replays captured steps in Python only.
SWITCH = "GRADIENT_COMPILE_STEPS"
_MAX_PROLOGUE = 64     # calls before the repeated blocks that the search looks past


@dataclass
class LoopInfo:
    """What :func:`compile_loop` made: its ``source`` (the numba functions and, for a loop
    run from Python, its driver), the number of ``blocks`` (layers), ``calls`` per block, and
    ``segments``: the numba functions a block runs (1: the whole loop is one); ``pending``:
    the child process compiling it (a :class:`~gradient.capture.background.Pending`), if
    any."""
    source: str
    blocks: int
    calls: int
    segments: int
    pending: object = None


class LoopFailed(GradientError):
    """The compiled loop raised (its cause): arguments of other types than it was compiled for,
    or a KV cache without room; the plan replays the calls in Python instead."""


class _Refusal(GradientError):
    """Why the calls do not make a compiled loop (the plan stays Python)."""


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


def steps_directory() -> str:
    """Where compiled steps' sources are written: ``$GRADIENT_CACHE_DIR/compiled_steps``, else
    ``$XDG_CACHE_HOME/gradient/compiled_steps`` (``~/.cache`` by default)."""
    root = os.environ.get("GRADIENT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "gradient")
    return os.path.join(root, "compiled_steps")


# ----------------------------------------------------------------------------- the calls
class _Item:
    """One recorded call of a block: compiled (``fn`` set; ``refs``: ``("s", slot)``,
    ``("d", input slot, name, reader)``, ``("c", value)``) or Python (``fn`` None; ``refs``
    the recorder's references, the call made with ``call.run``). ``key``: what the calls at one
    position of two blocks share."""

    def __init__(self, call, lowered, slots):
        self.call = call
        self.outs = (call.out,) if call.outs is None else call.outs
        self.single = call.outs is None
        if lowered is None:
            self.fn, self.pick, self.trace = None, None, None
            self.refs = list(call.args)
            self.key = ("python", type(call.run), _shape_of_refs(call.args), len(self.outs),
                        self.single)
            return
        import numba
        self.fn, self.pick, self.trace = lowered.fn, lowered.pick, lowered.trace
        if any(o is None for o in self.outs):
            raise _Refusal(f"{call.label}: returns something other than arrays")
        self.refs, kinds = [], []
        for value in lowered.args:
            if isinstance(value, Derived):
                self.refs.append(("d", slots[id(value.source)], value.name, value.read))
                kinds.append(("d", value.name))
            elif id(value) in slots:
                self.refs.append(("s", slots[id(value)]))
                kinds.append("s")
            else:
                if type(value) in (tuple, list) and any(id(v) in slots for v in value):
                    raise _Refusal(f"{call.label}: a constant holds a value of the step")
                self.refs.append(("c", value))
                kinds.append(("c", numba.typeof(_bits(value))))
        self.key = (self.fn, tuple(kinds), len(self.outs), self.single, self.pick)


def _shape_of_refs(refs) -> tuple:
    return tuple(r[0] if r[0] != SEQ else (SEQ, r[1], _shape_of_refs(r[2])) for r in refs)


def lowering_of(call, values):
    """The :class:`~gradient.kernels.lowering.Lowered` form of a recorded ``call`` whose
    arguments were ``values``, or None when it has none."""
    lower = getattr(call.run, "lower", None) or call.lower
    return None if lower is None else lower(*values)


def _items(calls, recorder) -> list:
    slots, values = recorder._slots, recorder._alive

    def value(ref):
        if ref[0] == SLOT:
            return values[ref[1]]
        if ref[0] == SEQ:
            return ref[1](value(r) for r in ref[2])
        return ref[1]

    items = []
    for call in calls:
        try:
            lowered = lowering_of(call, [value(r) for r in call.args])
            items.append(_Item(call, lowered, slots))
        except Exception:   # noqa: BLE001  (numba cannot type a constant, say: replayed in Python)
            items.append(_Item(call, None, slots))
    return items


def _blocks(items) -> list:
    """Candidates ``(start, period, count)``: runs of ``count`` identical consecutive blocks of
    ``period`` calls with at least one compiled call, the most compiled calls covered first."""
    # each key as a small integer (equal keys, equal numbers): the search below compares
    # slices of keys many times over, and a key's tuple of numba types compared slowly
    # (SmolLM2's 631 calls: 32 ms of a step's first compiled replay)
    numbers: dict = {}
    keys = [numbers.setdefault(item.key, len(numbers)) for item in items]
    compiled = [item.fn is not None for item in items]
    n = len(keys)
    found = []
    for start in range(min(n, _MAX_PROLOGUE)):
        for period in range(1, (n - start) // 2 + 1):
            if keys[start + period] != keys[start]:
                continue
            block = keys[start:start + period]
            count = 1
            while keys[start + count * period:start + (count + 1) * period] == block:
                count += 1
            covered = sum(compiled[start:start + period]) * count
            if count >= 2 and covered:
                found.append((covered, start, period, count))
    found.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [c[1:] for c in found]


# ----------------------------------------------------------------------------- one loop
class _Loop:
    """The source of ``count`` blocks of ``period`` items from ``start`` (see the module
    docstring), and what its parameters are made from."""

    def __init__(self, items, start, period, count, made_by, read_after):
        self.start, self.period, self.count = start, period, count
        self.functions: dict = {}      # numba function -> its name in the source
        self.params: dict = {}         # name -> ("slot", slot) | ("derived", slot, reader)
        #                                | ("const", value)
        self._named: dict = {}
        self.carried: dict = {}        # rel -> the slot it starts from
        self.layer_weights: list = []  # per-layer arrays: one list of arrays per weight
        self.python: dict = {}         # name -> per-layer Python values (a list)
        self.made_by, self.read_after = made_by, read_after
        block = items[start:start + period]
        self.traces = [item.trace for item in block if item.trace]
        self.lines = []                # per item: (source line, names it assigns, compiled?)
        for i, item in enumerate(block):
            column_of = (lambda a: [items[start + j * period + i].refs[a] for j in range(count)])
            if item.fn is not None:
                args = [self._argument(column_of(a)) for a in range(len(item.refs))]
                fname = self.functions.setdefault(item.fn, f"F{len(self.functions)}")
                if _by_address(item.fn, len(args)):     # (see kernel_calls)
                    args = [fname, *args]
                    fname = "call"
                call = f"{fname}({', '.join(args)})" + ("" if item.pick is None
                                                         else f"[{item.pick}]")
            else:
                runs = [items[start + j * period + i].call.run for j in range(count)]
                fname = self._python_value(runs)
                args = [self._python_argument(column_of(a)) for a in range(len(item.refs))]
                call = f"{fname}({', '.join(args)})"
            targets = [_local(i, o) for o in range(len(item.outs))]
            if not targets:
                text = call
            elif item.single:
                text = f"{targets[0]} = {call}"
            else:
                text = f"{', '.join(targets)}, = {call}"
            self.lines.append((f"{text}   # {item.call.label}", targets, item.fn is not None))
        self.results = []
        for slot in read_after:
            found = self._where(slot, count - 1)
            if found[0] != "local":
                raise _Refusal("a value of a block other than the last is read after the blocks")
            self.results.append((slot, found[1]))

    # -- references
    def _where(self, slot, j):
        """Where the value of ``slot`` read by block ``j`` was made: ("local", rel),
        ("previous", rel), ("outside",) (an input or before the blocks), or ("other",);
        rel = (index in its block, which of the call's results)."""
        made = self.made_by.get(slot)
        if made is None or made[0] < self.start:
            return ("outside",)
        block_of, index = divmod(made[0] - self.start, self.period)
        rel = (index, made[1])
        return ("local", rel) if block_of == j else \
            ("previous", rel) if block_of == j - 1 else ("other",)

    def _param(self, key, what, prefix) -> str:
        name = self._named.get(key)
        if name is None:
            name = self._named[key] = f"{prefix}{len(self._named)}"
            self.params[name] = what
        return name

    def _slot_argument(self, slots) -> str:
        found = [self._where(slot, j) for j, slot in enumerate(slots)]
        if found[0][0] == "local" and all(f == found[0] for f in found):
            return _local(*found[0][1])
        if (found[0][0] == "outside" and found[1][0] == "previous"
                and all(f == found[1] for f in found[1:])):
            rel = found[1][1]
            if self.carried.setdefault(rel, slots[0]) != slots[0]:
                raise _Refusal("one value carried from layer to layer starts as two")
            self._param(("init", rel), ("slot", slots[0]), "i")
            return f"c{rel[0]}_{rel[1]}"
        if all(f[0] == "outside" and slot == slots[0] for f, slot in zip(found, slots)):
            return self._param(("slot", slots[0]), ("slot", slots[0]), "g")
        raise _Refusal("a block reads a value of a block other than itself or the one before")

    def _argument(self, column) -> str:
        """A compiled call's argument, from its references in every block."""
        kind = column[0][0]
        if kind == "s":
            return self._slot_argument([ref[1] for ref in column])
        if kind == "d":
            _, slot, name, read = column[0]
            if any(ref[1] != slot or ref[2] != name for ref in column):
                raise _Refusal("blocks read different inputs")
            return self._param(("derived", slot, name), ("derived", slot, read), "d")
        values = [ref[1] for ref in column]
        if all(_same(v, values[0]) for v in values):
            literal = _literal(values[0])
            if literal is not None:
                return literal
            return self._param(("const", id(values[0])), ("const", values[0]), "k")
        return self._per_layer(values)

    def _per_layer(self, values) -> str:
        """A value that differs from layer to layer: numbers from an array indexed by the
        layer; arrays made in place from their addresses and shapes."""
        from ..backends import cpu_lowered
        if all(isinstance(v, np.ndarray) for v in values):
            index = len(self.layer_weights)
            self.layer_weights.append(values)
            ndim = values[0].ndim
            if ndim not in cpu_lowered.LAYER_ARRAYS:
                raise _Refusal(f"a weight of {ndim} dimensions differs from layer to layer")
            helper = self.functions.setdefault(cpu_lowered.LAYER_ARRAYS[ndim],
                                               f"F{len(self.functions)}")
            like = self._param(("like", values[0].dtype),
                               ("const", _bits(np.empty(0, values[0].dtype))), "z")
            return f"{helper}(A[{index}], S[{index}], {like}, l)"
        kinds = {type(v) for v in values}
        if len(kinds) == 1 and kinds <= {bool, int, float, np.float32, np.float64, np.int64}:
            return self._param(("layers", len(self._named)), ("const", np.array(values)),
                               "p") + "[l]"
        raise _Refusal(f"a constant differs from layer to layer and is neither a number nor an "
                       f"array ({', '.join(sorted(k.__name__ for k in kinds))})")

    def _python_value(self, values) -> str:
        if all(v is values[0] for v in values):
            return self._param(("const", id(values[0])), ("const", values[0]), "k")
        name = f"P{len(self.python)}"
        self.python[name] = list(values)
        return f"{name}[l]"

    def _python_argument(self, column) -> str:
        """A Python call's argument (a recorder reference), from its references in every
        block."""
        kind = column[0][0]
        if kind == SLOT:
            return self._slot_argument([ref[1] for ref in column])
        if kind == SEQ:
            items = [self._python_argument([ref[2][k] for ref in column])
                     for k in range(len(column[0][2]))]
            inside = "".join(f"{x}, " for x in items)
            return f"[{inside}]" if column[0][1] is list else f"({inside})"
        values = [ref[1] for ref in column]
        if all(_same(v, values[0]) for v in values):
            if values[0] is None or type(values[0]) in (bool, int, str) or (
                    type(values[0]) is float and math.isfinite(values[0])):
                return repr(values[0])
            return self._param(("const", id(values[0])), ("const", values[0]), "k")
        return self._python_value(values)

    # -- source
    def compiled_source(self) -> tuple:
        """``(source, segments)``: the numba functions (``loop``, or ``segment0`` ... when
        some items are Python) and, for the latter, the Python ``loop`` that calls them;
        ``segments``: their number."""
        carry = [f"        c{rel[0]}_{rel[1]} = {_local(*rel)}" for rel in self.carried]
        inits = [f"    c{rel[0]}_{rel[1]} = {self._named[('init', rel)]}" for rel in self.carried]
        returns = "".join(f"{_local(*rel)}, " for _, rel in self.results)
        if all(compiled for _, _, compiled in self.lines):
            params = ", ".join(["n_layers", *self.params, "A", "S"])
            body = [f"        {text}" for text, _, _ in self.lines]
            source = "\n".join([
                "@numba.njit(cache=CACHE, error_model='numpy')",
                f"def loop({params}):", *inits, "    for l in range(n_layers):", *body, *carry,
                f"    return ({returns})"])
            return source, 1, ""
        return self._segmented(inits, carry, returns)

    def _segmented(self, inits, carry, returns) -> tuple:
        """Numba functions for the runs of compiled items, a Python loop around them; refused
        where that would not make a block at most a third of the Python calls it was (each
        segment is one call from Python, as costly as a replayed call)."""
        import re
        word = re.compile(r"\b[A-Za-z_]\w*\b")
        later_reads = []      # per line: the names read by the lines after it (and carried)
        reads = set(re.findall(r"\b[tc]\d+_\d+\b", " ".join(c for c in carry)))
        reads |= {_local(*rel) for _, rel in self.results}
        for text, _, _ in reversed(self.lines):
            later_reads.append(set(reads))
            reads |= set(word.findall(text.split("#")[0].split("=")[-1]))
        later_reads.reverse()
        functions, driver_body, index = [], [], 0
        while index < len(self.lines):
            text, targets, compiled = self.lines[index]
            if not compiled:
                driver_body.append(f"        {text}")
                index += 1
                continue
            run = []
            while index < len(self.lines) and self.lines[index][2]:
                run.append(index)
                index += 1
            written = [t for i in run for t in self.lines[i][1]]
            calls = " ".join(self.lines[i][0].split("#")[0].split("=")[-1] for i in run)
            used = []
            for name in word.findall(calls):
                if name not in used and name not in written and name not in _NOT_PARAMETERS \
                        and name not in self.functions.values():
                    used.append(name)
            out = [t for t in written if t in later_reads[run[-1]]]
            name = f"segment{len(functions)}"
            functions.append("\n".join([
                "@numba.njit(cache=CACHE, error_model='numpy')",
                f"def {name}({', '.join(['l', *used])}):",
                *[f"    {self.lines[i][0]}" for i in run],
                f"    return ({''.join(f'{t}, ' for t in out)})"]))
            driver_body.append(f"        {''.join(f'{t}, ' for t in out)}= "
                               f"{name}({', '.join(['l', *used])})" if out else
                               f"        {name}({', '.join(['l', *used])})")
        if 3 * len(driver_body) > len(self.lines):
            raise _Refusal(f"the calls that have no compiled form split a block of "
                           f"{len(self.lines)} calls into {len(driver_body)} calls from Python")
        params = ", ".join(["n_layers", *self.params, "A", "S", *self.python])
        driver = "\n".join([f"def loop({params}):", *inits, "    for l in range(n_layers):",
                            *driver_body, *carry, f"    return ({returns})"])
        return "\n\n\n".join(functions), len(functions), driver


_NOT_PARAMETERS = {"l", "np", "True", "False", "None", "call", "unliteral"}


def _by_address(fn, count: int) -> bool:
    """Whether the loop calls ``fn`` through :func:`~gradient.backends.kernel_calls.call`
    (its compiled code's address, not its code linked into the loop's): every numba function
    given all its arguments by position."""
    import inspect
    py = getattr(fn, "py_func", None)
    if py is None:
        return False
    params = list(inspect.signature(py).parameters.values())
    return len(params) == count and all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)


def _local(i, o) -> str:
    return f"t{i}_{o}"


def _same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or type(a) not in (bool, int, float, str, tuple):
        return False
    return a == b


def _literal(value) -> str | None:
    """``value`` written in source, for Python numbers and tuples of them; else None. Integers
    and booleans go through :func:`~gradient.backends.cpu_lowered.unliteral`, so that the
    functions given them are compiled once for every value (a shape, a flag), not once each."""
    if type(value) is bool or type(value) is int:
        return f"unliteral({value!r})"
    if type(value) is float and math.isfinite(value):
        return repr(value)        # (numba has no literal floats)
    if type(value) is tuple and value and all(type(v) is int for v in value):
        return f"unliteral({value!r})"
    return None


# ----------------------------------------------------------------------------- compiling
def compile_loop(calls: list, recorder, out_refs) -> tuple:
    """``(calls, info)``: ``calls`` with their longest run of identical blocks replaced by one
    call of a compiled loop, and its :class:`LoopInfo`; or ``(None, reason)``."""
    if not enabled():
        return None, f"compiled steps are off ({SWITCH}=0)"
    items = _items(calls, recorder)
    made_by = {}
    for index, call in enumerate(calls):
        for position, slot in enumerate((call.out,) if call.outs is None else call.outs):
            if slot is not None:
                made_by[slot] = (index, position)
    reason = "no block of calls repeats with compiled forms"
    for start, period, count in _blocks(items):
        end = start + period * count
        read_after = _slots_read_after(calls[end:], out_refs, range(start, end), made_by)
        try:
            loop = _Loop(items, start, period, count, made_by, read_after)
            run, info = _build(loop, recorder)
        except _Refusal as refusal:
            reason = str(refusal)
            continue
        slots = _slots_of(loop)
        merged = Call(run, [(SLOT, slot) for slot in slots], None,
                      tuple(slot for slot, _ in loop.results),
                      f"compiled loop: {count} blocks of {period} calls")
        return calls[:start] + [merged] + calls[end:], info
    return None, reason


def _slots_read_after(later, out_refs, inside, made_by) -> list:
    """The slots made by the calls ``inside`` (indices) that ``later`` calls or the results read."""
    found = []

    def visit(ref):
        if ref[0] == SLOT:
            made = made_by.get(ref[1])
            if made is not None and made[0] in inside and ref[1] not in found:
                found.append(ref[1])
        elif ref[0] == SEQ:
            for r in ref[2]:
                visit(r)
    for call in later:
        for ref in call.args:
            visit(ref)
    for ref in out_refs:
        visit(ref)
    return found


def _slots_of(loop) -> list:
    """The plan's slots the loop is called with (its slot and derived parameters read them)."""
    slots = []
    for what in loop.params.values():
        if what[0] in ("slot", "derived") and what[1] not in slots:
            slots.append(what[1])
    return slots


def _build(loop, recorder) -> tuple:
    """``(run, info)``: the loop's module written, imported and compiled for the types of the
    captured values, and the plan's call of it."""
    import numba
    from ..backends import cpu_lowered, kernel_cache, kernel_calls
    numba_source, segments, driver = loop.compiled_source()
    weights = cpu_lowered.layer_arrays([[_bits(a) for a in arrays] for arrays in
                                        loop.layer_weights]) if loop.layer_weights else \
        (np.zeros((0, loop.count), np.int64),
         np.zeros((0, loop.count, cpu_lowered.MAX_DIMS), np.int64))
    if weights is None:
        raise _Refusal("a weight differs in type or layout from layer to layer, or is not "
                       "contiguous")
    slots = _slots_of(loop)
    readers = {}
    arguments = {}     # the loop's parameters, as the captured values make them
    halves = set()     # the parameters given as 16-bit floats' bits
    for name, what in loop.params.items():
        if what[0] == "slot":
            arguments[name] = recorder._alive[what[1]]
        elif what[0] == "derived":
            readers[name] = what[2]
            arguments[name] = what[2](recorder._alive[what[1]])
        else:
            arguments[name] = what[1]
        if _bits(arguments[name]) is not arguments[name]:
            halves.add(name)
            arguments[name] = _bits(arguments[name])
    results = [recorder._alive[slot] for slot, _ in loop.results]
    half_results = [r.dtype if _bits(r) is not r else None for r in results]
    if driver and (halves or any(half_results)):
        raise _Refusal("Python calls between compiled ones would see 16-bit floats as bits")
    arguments["A"], arguments["S"] = weights
    imports = [f"from {cpu_lowered.__name__} import unliteral",     # (see _literal)
               f"from {kernel_calls.__name__} import call"]
    # the kernel tree's content: a helper the kernels inline, edited in any of its files,
    # makes another file too (numba's cache of this one would not see it: kernel_cache)
    stamps = {"numba": numba.__version__, "kernels": kernel_cache.tree_stamp()[:20]}
    modules = [cpu_lowered]
    for fn, name in loop.functions.items():
        py = getattr(fn, "py_func", None)
        module = sys.modules.get(getattr(py, "__module__", None))
        if py is None or module is None or getattr(module, py.__name__, None) is not fn:
            raise _Refusal(f"{fn!r} is not a numba function at the top of a module")
        imports.append(f"from {module.__name__} import {py.__name__} as {name}")
        modules.append(module)
    for module in modules:   # a changed callee makes another file: numba's cache would not see it
        stat = os.stat(module.__file__)
        stamps[module.__name__] = f"{stat.st_mtime_ns}:{stat.st_size}"
    types = {name: _type_of(value) for name, value in arguments.items()}
    source = "\n".join([
        "# A captured step's blocks compiled by gradient.capture.compiled; generated, not edited.",
        f"# made from: {' '.join(f'{k}:{v}' for k, v in stamps.items())}",
        f"# for: {', '.join(f'{k}: {v}' for k, v in types.items())}",
        "import numba", *imports, "", "", numba_source, ""])
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    module = _import(f"gradient_compiled_step_{digest}", source)
    try:
        if segments == 1 and not driver:
            signature = [numba.typeof(loop.count)] + [types[name] for name in
                                                      [*loop.params, "A", "S"]]
            if (background.enabled() and getattr(module, "__file__", None)
                    and not background.cached(module.loop, signature)):
                function = background.Pending(module.loop, signature, module.__file__,
                                              module.__name__, _compiled)
            else:
                function = _compiled(module.loop, signature)
        else:
            function = _python_loop(module, driver, loop)
    except Exception as error:   # noqa: BLE001  (numba's errors, or any other: the plan stays Python)
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise _Refusal(f"numba cannot compile the blocks: {first}") from error
    run = _driver(loop, function, slots, readers, arguments, segmented=bool(driver),
                  halves=halves, half_results=half_results)
    shown = source if not driver else source + "\n\n# run from Python:\n" + driver + "\n"
    pending = function if isinstance(function, background.Pending) else None
    return run, LoopInfo(shown, loop.count, loop.period, segments, pending)


def _type_of(value):
    """numba's type of ``value``, or the name of its class where numba has none (a Python
    call's argument: a module, the KV cache)."""
    import numba
    try:
        return numba.typeof(value)
    except ValueError:
        return f"object {type(value).__qualname__}"


def _compiled(dispatcher, types):
    """``dispatcher`` compiled for ``types`` and no others."""
    import numba
    numba.get_num_threads()   # numba's threading layer loaded: parallel callees link against it
    if not dispatcher.signatures:
        dispatcher.compile(tuple(types))
        dispatcher.disable_compile()
    return dispatcher


def _python_loop(module, driver, loop):
    """The Python loop over the layers calling the numba segments, each compiled for the types
    of the values the captured step gave it."""
    import re
    scope = dict(module.__dict__)
    for name, values in loop.python.items():
        scope[name] = values
    exec(compile(driver, "<compiled loop driver>", "exec"), scope)   # noqa: S102 (our own source)
    # the segments' argument types: run the loop once on the captured values, compiling each
    # segment for the types it is given, then forbid other types
    for name in scope:
        if re.fullmatch(r"segment\d+", name):
            scope[name] = _typed_once(scope[name])
    return scope["loop"]


def _typed_once(dispatcher):
    """``dispatcher``, compiled on its first call for those argument types only; what it
    raises, raised as :class:`LoopFailed` (a hook's own error, between the segments, is not)."""
    def call(*args):
        try:
            if not dispatcher.signatures:
                import numba
                dispatcher.compile(tuple(numba.typeof(a) for a in args))
                dispatcher.disable_compile()
            return dispatcher(*args)
        except Exception as error:   # noqa: BLE001  (the plan replays in Python instead)
            raise LoopFailed(str(error)) from error
    call.dispatcher = dispatcher
    return call


def _bits(value):
    """A float16 or bfloat16 array as a compiled loop takes it, its bits (see
    :mod:`gradient.backends.cpu_half`); anything else as it is."""
    from ..backends.cpu_half import HALF_DTYPES, as_bits
    if isinstance(value, np.ndarray) and value.dtype in HALF_DTYPES:
        return as_bits(value)
    return value


def _driver(loop, function, slots, readers, arguments, segmented, halves=(),
            half_results=()):
    """The plan's call of the loop: reads the derived values of its inputs, passes the
    constants, counts the block's kernels in open traces. A failure of the compiled code
    raises :class:`LoopFailed` (the plan replays in Python). 16-bit float values go in as
    their bits (``halves``: those parameters) and the results that are 16-bit floats
    (``half_results``: their dtypes, or None) come out as views of their dtype again."""
    counted = []    # ((op, implementation), calls per run), from each call's (op, impl[, n])
    for op, implementation, *calls in loop.traces:
        counted.append(((op, implementation), (calls[0] if calls else 1) * loop.count))
    params = []
    for name, what in loop.params.items():
        if what[0] == "slot":
            value = f"v{slots.index(what[1])}"
        elif what[0] == "derived":
            value = f"{name}_read(v{slots.index(what[1])})"
        else:
            params.append(name)      # a constant: given as bits already
            continue
        params.append(f"_bits({value})" if name in halves else value)
    params += ["A", "S", *loop.python]
    scope = {name: value for name, value in arguments.items()}
    scope.update({f"{name}_read": read for name, read in readers.items()})
    scope.update(loop.python)
    scope.update(loop=function, _active=_traces_open, _counted=counted, _record=_record,
                 _bits=_bits)
    call = f"loop({loop.count}, {', '.join(params)})"
    if any(d is not None for d in half_results):
        scope.update({f"_dtype{i}": d for i, d in enumerate(half_results)})
        viewed = "".join(f"r[{i}]{'' if d is None else f'.view(_dtype{i})'}, "
                         for i, d in enumerate(half_results))
        call = f"_viewed({call})"
        exec(f"def _viewed(r):\n    return ({viewed})\n", scope)   # noqa: S102 (our own source)
    source = (f"def drive({', '.join(f'v{i}' for i in range(len(slots)))}):\n"
              f"    if _active:\n"
              f"        for (op, impl), n in _counted:\n"
              f"            _record(op, impl, n)\n"
              f"    return {call}\n")
    exec(compile(source, "<compiled loop call>", "exec"), scope)   # noqa: S102 (our own source)
    drive = scope["drive"]

    if segmented:          # segments raise LoopFailed themselves; a hook's error is its own
        return drive

    def run(*values):
        try:
            return drive(*values)
        except Exception as error:   # noqa: BLE001  (the plan replays in Python instead)
            raise LoopFailed(str(error)) from error
    return run


def _import(name: str, source: str):
    """The module of ``source``, from a file under :func:`steps_directory` (numba caches its
    machine code beside it), or, where that cannot be written, compiled in memory."""
    if name in sys.modules:
        return sys.modules[name]
    directory = steps_directory()
    path = os.path.join(directory, name + ".py")
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.path.exists(path):
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "w") as f:
                f.write("CACHE = True\n" + source)
            os.replace(temporary, path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except OSError:
        module = type(sys)(name)
        exec(compile("CACHE = False\n" + source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102
    sys.modules[name] = module
    return module
