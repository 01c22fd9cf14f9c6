"""Whether a product must give each row the bits that row gets alone.

A decode step multiplies one row of activations by each weight; a prompt multiplies many at
once, and there a kernel may sum in another order to go faster (the CPU's matrix tiles,
:mod:`gradient.backends.cpu_tiles`; register-blocked products,
:mod:`gradient.backends.cpu_float_gemm`), so a row's last bits then depend on how many rows
share its call. Where that must not happen, the caller says so: a batch of sequences decoding
side by side (each must continue as it would alone), a speculative step's check of drafted
tokens (its choices must be greedy decoding's, token for token) and a captured step's recorded
run (its replays' kernels are prepared per row). Within :func:`rows_alone` every product gives
each row the bits of a product of that row alone.

Example::

    >>> with rows_alone():
    ...     logits = model(step_ids, cache=cache).logits
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["rows_alone", "rows_alone_required"]

_alone = contextvars.ContextVar("gradient_rows_alone", default=False)


@contextlib.contextmanager
def rows_alone():
    """Within it, products give each row of x the bits it gets alone."""
    token = _alone.set(True)
    try:
        yield
    finally:
        _alone.reset(token)


def rows_alone_required() -> bool:
    """Whether the code running is inside :func:`rows_alone`."""
    return _alone.get()
