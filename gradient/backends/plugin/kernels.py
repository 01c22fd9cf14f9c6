"""The fused kernels a plugin offers, in gradient's kernel registry.

A plugin lists fused kernels in its handshake (``"kernels"``: names declared in
:mod:`gradient.kernels.declarations`, or objects that limit the dtypes). Each one this module
knows the results of (:data:`RESULTS`) is registered for the plugin's own backend kind
(``"plugin:NAME"``, the backend's ``kernel_kind``), so an op that asks the registry for it on a
tensor of that device (``F.softmax``, ``F.layer_norm``, ...) sends one ``kernel`` request
(``docs/plugin-protocol.md``, section 5.1) instead of the composition's five to ten
primitives. Like a primitive, the request is pipelined: the client knows the results' shapes
and dtypes from :data:`RESULTS`. A kernel a plugin does not list is composed from primitives,
as on any backend, and :func:`gradient.kernels.trace` tells which ran.

Example::

    >>> with gradient.kernels.trace() as t:
    ...     F.softmax(gradient.ones(2, 3, device="plugin:reference"), -1)
    >>> t.counts
    Counter({('softmax', 'plugin'): 1})
"""

from __future__ import annotations

import inspect

from ...kernels import declarations  # noqa: F401  (the ops' declarations)
from ...kernels import registry


def _like(i: int):
    """A result shaped and typed as argument ``i``."""
    return lambda args: (args[i].shape, args[i].dtype)


def _rows_of(i: int):
    """A result with one value per row (last dimension) of argument ``i``, of its dtype."""
    return lambda args: (args[i].shape[:-1], args[i].dtype)


#: The kernels a plugin may offer, and their results' (shape, dtype) from the arguments (all
#: over the last dimension; results C-contiguous; none for the kernels that write in place).
RESULTS = {
    "softmax": (_like(0),),
    "log_softmax": (_like(0),),
    "softmax_backward": (_like(1),),
    "log_softmax_backward": (_like(1),),
    "silu": (_like(0),),
    "silu_backward": (_like(1),),
    "gelu": (_like(0),),
    "gelu_backward": (_like(1),),
    "swiglu": (_like(0),),
    "swiglu_backward": (_like(1), _like(2)),
    "rms_norm": (_like(0), _rows_of(0)),
    "layer_norm": (_like(0), _rows_of(0), _rows_of(0)),
    # in place: no results (the call returns True, "done")
    "add_to_rows": (),
    "adam_step": (),
}


def offer(backend, entries) -> None:
    """Register the kernels of a handshake's ``entries`` (names, or ``{"name": ..., "dtypes":
    [...]}``) that :data:`RESULTS` knows, for ``backend.kernel_kind``; each calls
    ``backend.kernel``. A kernel registered by an earlier session of the plugin stays."""
    for entry in entries:
        name, dtypes = (entry, None) if isinstance(entry, str) else (entry.get("name"),
                                                                      entry.get("dtypes"))
        if name in RESULTS and registry.lookup(name, backend) is None:
            registry.register(name, backend.kernel_kind, "plugin", dtypes)(
                _forwarder(name, backend))


def _forwarder(name: str, backend):
    """``name``'s kernel on ``backend``'s plugin."""
    results = RESULTS[name]
    return as_kernel(name, lambda *args, **kwargs: backend.kernel(
        name, args, [shape_dtype(args) for shape_dtype in results], kwargs),
        f"{name} (plugin {backend.plugin})")


def as_kernel(name: str, compute, qualname: str | None = None):
    """A registry kernel for the declared ``name`` made of ``compute``, which returns a tuple
    of results (empty for a kernel that writes in place): the declaration's parameters, its
    result (one, a tuple, or True for "done"), declining an empty input.

    Example: ``register("softmax", "mine", "numpy")(as_kernel("softmax", my_softmax))``
    """
    def run(*args, **kwargs):
        if args[0].size == 0:      # nothing over the last dimension: the composition's rules
            return None
        out = compute(*args, **kwargs)
        return True if not out else out[0] if len(out) == 1 else out
    run.__signature__ = inspect.Signature(
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD)
         for p in registry.declared()[name].parameters])
    run.__qualname__ = qualname or name
    return run
