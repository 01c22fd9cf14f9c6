"""Lowering: how a recorded call of a captured step (:mod:`gradient.capture`) says what it
computes as a compiled (numba) function, so that the step can run as one compiled loop
(:mod:`gradient.capture.compiled`) instead of a Python call per op.

A call's owner (an op class, a raw-array function, or the function an op's ``specialize``
returned) may have a ``lower`` attribute: called with the call's arguments as they were
captured, it returns a :class:`Lowered` or None (this call has no compiled form: the step
replays in Python). A :class:`Lowered` names

* ``fn``: a numba function defined at the top level of an importable module, compiled under
  :mod:`gradient.backends.cpu_compile`'s policy, that returns what the call returns (an array,
  or a tuple of arrays for a call with several results) and computes it bit for bit;
* ``args``: what ``fn`` is given. Each is one of the call's own arguments (a value made
  during the step or an input: it is passed along), a constant numba can take (an array, a
  number, a tuple of them; a weight, a shape), or a :class:`Derived` value of an input (what
  the KV cache holds: its buffers and its length, read before each step).

Example (the lowering of an addition)::

    >>> Add.lower = staticmethod(lambda ctx, a, b: Lowered(cpu_lowered.add, (a, b))
    ...                          if is_cpu_array(a, b) else None)
"""

from __future__ import annotations

__all__ = ["Lowered", "Derived"]


class Lowered:
    """``fn(*args)``: a call's compiled form (see the module docstring); ``trace``: the
    ``(op, implementation)`` a trace counts for it (``(op, implementation, n)``: n calls), as
    the call it stands for counts;
    ``pick``: where ``fn`` returns a tuple of which the call returns one item, its index."""

    __slots__ = ("fn", "args", "trace", "pick")

    def __init__(self, fn, args, trace=None, pick=None):
        self.fn, self.args, self.trace, self.pick = fn, tuple(args), trace, pick


class Derived:
    """A value computed from an input of the step (``source``) before each run of the compiled
    step: ``read(source)``. ``name`` tells two derived values of one input apart (the same
    name is read once)."""

    __slots__ = ("source", "read", "name")

    def __init__(self, source, read, name: str):
        self.source, self.read, self.name = source, read, name
