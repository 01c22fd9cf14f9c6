"""Capture state: the recorder of :mod:`gradient.capture`, when a forward runs under capture.

This is the low-level half of capturing a step (the recorder itself lives in
``gradient.capture``, above ``nn``). The places that compute outside the autograd graph report
here, at the cost of one thread-local read when nothing is captured:

* :class:`~gradient.autograd.function.ArrayFunction` reports each op it applies;
* :func:`run` is how a computation on raw arrays outside an ``ArrayFunction`` (an op's
  no-grad fast path, the KV cache's write, a module hook) is both run and reported;
* in-place writes (a tensor's version counter) and reads to the host (``item``, ``numpy``)
  are reported too: a step that does them cannot be replayed from its recorded calls.

Example::

    >>> out = run(attention_arrays, backend, q, k, v, scale)   # recorded if a capture is on
"""

from __future__ import annotations

import threading


class _PerThread(threading.local):
    #: The :class:`gradient.capture.recorder.Recorder` of the capture in progress in this
    #: thread, or None. Per thread, as the grad mode is: a server's worker capturing a step
    #: while another thread runs the same model must record its own ops only.
    recorder = None


#: This thread's capture state (``current.recorder``).
current = _PerThread()


def run(fn, *args):
    """``fn(*args)``, a computation on raw arrays (and other values) outside autograd; when a
    capture is in progress it is recorded as one step, to be called again with the arrays of
    a later step. Returns what ``fn`` returns (None is not recorded: the caller falls back)."""
    rec = current.recorder
    if rec is None:
        return fn(*args)
    return rec.run(fn, args)


def call(fn, *args):
    """``fn(*args)``, Python code on Tensors that a captured step must call again at its point,
    with that step's tensors, rather than replay the ops it ran (a module's forward hook: its
    side effects happen at every step). Returns what ``fn`` returns."""
    rec = current.recorder
    if rec is None:
        return fn(*args)
    return rec.call(fn, args)
