"""Argument helpers shared by the layers (PyTorch's ``torch.nn.modules.utils``)."""

from __future__ import annotations

import math
from itertools import repeat

from ... import ops as _ops
from .. import init
from ..parameter import Parameter

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


def _optional_parameter(module, name: str, present: bool, shape, factory: dict) -> None:
    """Register ``name`` as an uninitialised Parameter of ``shape``, or as None when absent
    (``bias=False``, ``affine=False``): PyTorch's layers keep the name either way."""
    module.register_parameter(name, Parameter(_ops.empty(shape, **factory)) if present else None)


def _fan_in_uniform_(bias, weight) -> None:
    """PyTorch's default bias init for Linear and Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    init.uniform_(bias, -bound, bound)
