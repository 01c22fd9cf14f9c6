"""Kernels of the registry (gradient.kernels) changed for one test: spied on, removed, or given
to a test device. Every change is undone by ``monkeypatch`` when the test ends."""

import dataclasses
import functools

import numpy as np

from gradient.kernels import Kernel, lookup, registered, registry


def record_kernel_calls(monkeypatch, *names, backend="cpu") -> list:
    """Wrap ``backend``'s kernels ``names`` (they still run) so that each call appends its name
    to the list returned.

    Example: ``calls = record_kernel_calls(monkeypatch, "silu"); F.silu(x); calls == ["silu"]``
    """
    calls = []
    for name in names:
        kernel = lookup(name, backend)

        @functools.wraps(kernel.fn)
        def spy(*args, _fn=kernel.fn, _name=name, **kwargs):
            calls.append(_name)
            return _fn(*args, **kwargs)
        monkeypatch.setitem(registry._KERNELS, (name, backend), dataclasses.replace(kernel, fn=spy))
    return calls


def record_kernel_results(monkeypatch, name, backend="cpu") -> list:
    """Wrap ``backend``'s kernel ``name`` so that each call appends its result (None or False:
    it declined) to the list returned.

    Example: ``results = record_kernel_results(monkeypatch, "add_to_rows")``
    """
    kernel = lookup(name, backend)

    @functools.wraps(kernel.fn)
    def spy(*args, **kwargs):
        results.append(kernel.fn(*args, **kwargs))
        return results[-1]
    results = []
    monkeypatch.setitem(registry._KERNELS, (name, backend), dataclasses.replace(kernel, fn=spy))
    return results


def without_kernel(monkeypatch, name, backend="cpu") -> None:
    """``backend`` has no kernel ``name`` for the rest of the test: the op composes."""
    lookup(name, backend)     # loads the backend's kernels first, so none comes back later
    monkeypatch.delitem(registry._KERNELS, (name, backend))


def without_kernels(monkeypatch, backend="cpu", keep=lambda name: False) -> None:
    """``backend`` has no kernels (but those whose name ``keep`` accepts) for the rest of the
    test: every op composes its primitives."""
    registered()    # loads the backends' kernels first, so none comes back later
    for op, kind in list(registry._KERNELS):
        if kind == backend and not keep(op):
            monkeypatch.delitem(registry._KERNELS, (op, kind))


def device_kernels(monkeypatch, backend: str, kernels: dict, dtypes=None) -> None:
    """Give the test device ``backend`` the kernels ``kernels`` (op name -> function on its
    arrays), taking first arguments of ``dtypes`` (None: any), as ``"test"`` implementations."""
    for op, fn in kernels.items():
        monkeypatch.setitem(registry._KERNELS, (op, backend),
                            Kernel(op, backend, "test", None if dtypes is None
                                   else frozenset(np.dtype(d) for d in dtypes), fn))
