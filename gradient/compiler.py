"""``torch.compile`` and ``torch.compiler``'s place in a ported script: gradient has no graph
compiler, so every model and function runs eagerly, as written.

:func:`compile` gives the model (or function) back unchanged, as ``torch.compile(backend=
"eager")`` would run it; :func:`is_compiling` is False everywhere, so code that takes another
path while traced (``if not torch.compiler.is_compiling(): ...``) takes the eager one;
:func:`disable`, :func:`allow_in_graph` and :func:`assume_constant_result` give back what they
decorate, and :func:`reset` and :func:`cudagraph_mark_step_begin` have nothing to reset. (The
decode steps gradient does compile, into numba loops, are :mod:`gradient.capture`'s.)

Example::

    >>> model = gradient.compile(model, mode="max-autotune")    # the same module, eager
    >>> @gradient.compiler.disable
    ... def log_stats(x): ...
"""

from __future__ import annotations

import contextlib

__all__ = ["compile", "is_compiling", "is_dynamo_compiling", "is_exporting", "disable",
           "allow_in_graph", "assume_constant_result", "reset", "list_backends",
           "cudagraph_mark_step_begin", "set_stance"]


def compile(model=None, **options):  # noqa: A001  (torch.compile)
    """The model (or function) unchanged, run eagerly. Usable as ``compile(model)`` and as the
    decorators ``@compile``/``@compile(...)``; the options (``mode``, ``backend``,
    ``fullgraph`` ...) change nothing."""
    if model is None:
        return lambda fn: fn
    return model


def is_compiling() -> bool:
    """False: nothing is ever being traced."""
    return False


is_dynamo_compiling = is_exporting = is_compiling


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """``fn`` unchanged (it runs eagerly as everything does); usable as ``@disable`` and
    ``@disable(recursive=False)``."""
    if fn is None:
        return lambda f: f
    return fn


def allow_in_graph(fn):
    """``fn`` unchanged: there is no graph to allow it into."""
    return fn


def assume_constant_result(fn):
    """``fn`` unchanged: called each time, as written."""
    return fn


def reset() -> None:
    """Nothing to reset: no compiled graphs are kept."""


def list_backends(exclude_tags=("debug", "experimental")) -> list:
    """No compiler backends: an empty list."""
    return []


def cudagraph_mark_step_begin() -> None:
    """Nothing to mark: no CUDA graphs are captured by a compiler here."""


@contextlib.contextmanager
def set_stance(stance: str = "default", *, skip_guard_eval_unsafe: bool = False,
               force_backend=None):
    """Any stance runs the block as it is (eagerly, as always)."""
    yield
