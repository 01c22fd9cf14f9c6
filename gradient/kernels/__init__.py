"""gradient's fast kernels: one registry of what exists, and a trace of what ran.

Ops are written once on the backends' primitives (:mod:`gradient.backends.base`); where a
backend has a faster way to compute a whole op (a fused LayerNorm, attention, an Adam step, a
product with quantized weights), it registers a kernel under the op's declared name, and the
op asks the registry for it, composing the primitives when there is none or the kernel
declines. :mod:`.declarations` lists every op name with its signature; :mod:`.registry` holds
the kernels; :func:`trace` counts which ran.

Example::

    >>> with gradient.kernels.trace() as t:
    ...     model.generate(ids, max_new_tokens=8)
    >>> t.calls("rms_norm")
    {'numba': 136}
"""

from . import declarations as _declarations  # noqa: F401  (every op declared before kernels register)
from .lowering import Derived, Lowered
from .registry import (Declaration, Kernel, add_loader, call, declared, lookup, lower, lowers,
                       prepare, prepares, register, registered, specialization)
from .row_bits import rows_alone, rows_alone_required
from .trace import COMPOSITE, Trace, record, trace

__all__ = ["trace", "Trace", "COMPOSITE", "record", "call", "prepare", "prepares", "specialization",
           "lookup", "register", "add_loader", "declared", "registered", "Declaration", "Kernel",
           "lower", "lowers", "Lowered", "Derived", "rows_alone", "rows_alone_required"]
