"""Argument helpers shared by the layers (PyTorch's ``torch.nn.modules.utils``)."""

from __future__ import annotations

from itertools import repeat

__all__: list = []


def _ntuple(n: int, name: str):
    """A parser turning a single value into an ``n``-tuple; lists and tuples pass as tuples."""
    def parse(x):
        if isinstance(x, (list, tuple)):
            return tuple(x)
        return tuple(repeat(x, n))
    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """``(a, b)`` -> ``(b, b, a, a)`` for n=2: per-dimension padding in F.pad's order (last first)."""
    return tuple(x for x in reversed(t) for _ in range(n))
