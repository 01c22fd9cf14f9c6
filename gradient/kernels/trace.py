"""Which kernels ran: ``with gradient.kernels.trace() as t:`` counts every call that went
through the kernel registry inside the block.

``t.counts`` maps ``(op name, implementation)`` to a number of calls: ``("layer_norm",
"numba")`` for the CPU's compiled kernel, ``("layer_norm", "composite")`` when the op was
composed from the backend's primitives instead (no kernel, or the kernel declined the input).
Traces nest; each counts what ran while it was open, in every thread. Outside a trace the
registry checks one flag per call and counts nothing.

Example::

    >>> with gradient.kernels.trace() as t:
    ...     F.layer_norm(x, (768,))
    >>> t.counts
    {('layer_norm', 'numba'): 1}
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

#: The implementation name of a composed (fallback) op in trace counts.
COMPOSITE = "composite"

#: The traces open now (the registry counts only while this is non-empty).
active: list = []


class Trace:
    """What ran inside one :func:`trace` block: ``counts[(op, implementation)]``."""

    def __init__(self):
        self.counts: Counter = Counter()

    def calls(self, op: str) -> dict[str, int]:
        """The calls of ``op`` by implementation, e.g. ``{"numba": 12, "composite": 1}``."""
        return {impl: n for (name, impl), n in self.counts.items() if name == op}

    def __repr__(self) -> str:
        return f"Trace({dict(self.counts)})"


def record(op: str, implementation: str, n: int = 1) -> None:
    """Count ``n`` calls of ``op`` by ``implementation`` in every open trace."""
    for t in active:
        t.counts[op, implementation] += n


@contextmanager
def trace():
    """Count the kernel calls made inside the block (see the module docstring)."""
    t = Trace()
    active.append(t)
    try:
        yield t
    finally:
        active.remove(t)
