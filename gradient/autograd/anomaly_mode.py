"""Anomaly detection: find the forward operation whose backward went wrong.

While anomaly detection is on, every recorded operation keeps a short traceback of the forward
code that made it (:func:`capture_forward_trace`, called where nodes are recorded), and the
backward engine checks what each node's backward returns: a NaN in a gradient raises an
:class:`~gradient.errors.AutogradError` naming the node and showing that traceback, as
PyTorch's ``Function 'MulBackward0' returned nan values in its 0th output.`` does; any other
error raised by a backward gets the traceback attached as a note.

Example::

    >>> x = gradient.tensor([0.0, 1.0], requires_grad=True)
    >>> with gradient.autograd.detect_anomaly():
    ...     y = x.sqrt() * 0.0        # d/dx = 0 * inf = nan at x = 0
    ...     y.sum().backward()
    Traceback (most recent call last):
    ...
    AutogradError: Function 'SqrtBackward' returned nan values in its 0th output.
    <BLANKLINE>
    Traceback of forward call that caused the error:
      File "<stdin>", line 3, in <module>
    ...

Off (the default), it costs one flag check per recorded op and per backward call: no
traceback is captured and no gradient is inspected.

As in PyTorch the mode is process-wide, not per thread: a backward run by another thread (a
data-parallel worker) is checked too.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import traceback
import warnings

# Read directly by function._record and engine._execute (a module attribute read is the
# cheapest check there is); change them only through _set.
_enabled = False
_check_nan = True

# How many frames a node keeps: enough to reach the user's line through an nn.Module, a
# functional wrapper and a composite op, short enough to read and cheap to capture.
_TRACE_DEPTH = 16
# Frames inside gradient/autograd (Function.apply, _record) say nothing about the user's code.
_AUTOGRAD_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on (:func:`detect_anomaly`, :func:`set_detect_anomaly`).

    Example::

        >>> with gradient.autograd.detect_anomaly():
        ...     gradient.autograd.is_anomaly_enabled()
        True
    """
    return _enabled


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly detection (if on) raises on NaN gradients; True by default, as PyTorch's.

    Example::

        >>> with gradient.autograd.set_detect_anomaly(True, check_nan=False):
        ...     gradient.autograd.is_anomaly_check_nan_enabled()
        False
    """
    return _check_nan


def _set(mode: bool, check_nan: bool) -> None:
    global _enabled, _check_nan
    _enabled = bool(mode)
    _check_nan = bool(check_nan)


class detect_anomaly:  # noqa: N801  (PyTorch's name)
    """Turn anomaly detection on inside the block (or the decorated function), as PyTorch's.

    The forward pass records where each operation was made; the backward pass raises an
    :class:`~gradient.errors.AutogradError` when an operation's backward returns NaN (unless
    ``check_nan=False``), with the forward traceback of that operation. It slows every op down
    (a traceback per recorded op): use it to debug, not to train. Like PyTorch, making one
    warns that it is on. The previous mode comes back on exit.

    Example::

        >>> with gradient.autograd.detect_anomaly():
        ...     loss = model(x).sum()
        ...     loss.backward()       # raises, naming the op, if a gradient becomes NaN

        >>> @gradient.autograd.detect_anomaly()
        ... def train_step(batch): ...

    Unlike PyTorch 2.13's, it also works as a decorator (as ``no_grad`` does).
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)
        self._saved = []
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)

    def __enter__(self):
        # a stack, so that one object can be entered again inside itself (a recursive decorated call)
        self._saved.append((_enabled, _check_nan))
        _set(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _set(*self._saved.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:  # noqa: N801  (PyTorch's name)
    """Turn anomaly detection on or off, at once; as a context manager, the previous mode comes
    back on exit. ``check_nan=False`` keeps the forward tracebacks (added to errors raised in
    backward) without raising on NaN gradients. See :class:`detect_anomaly`.

    Example::

        >>> gradient.autograd.set_detect_anomaly(True)        # from here on
        >>> with gradient.autograd.set_detect_anomaly(False):  # off in this block only
        ...     fast_step()
    """

    def __init__(self, mode: bool, check_nan: bool = True):
        self._saved = (_enabled, _check_nan)
        _set(mode, check_nan)

    def __enter__(self):
        return self  # the mode was set in __init__; _saved holds what to restore

    def __exit__(self, *exc):
        _set(*self._saved)
        return False


def capture_forward_trace():
    """The innermost frames of the current stack outside gradient/autograd, for a new node.

    Line text is not read here (``lookup_lines=False``): it is read from the source files only
    if an error is reported, which keeps the capture to a few microseconds.
    """
    frames = itertools.dropwhile(lambda fl: fl[0].f_code.co_filename.startswith(_AUTOGRAD_DIR),
                                 traceback.walk_stack(sys._getframe(1)))
    trace = traceback.StackSummary.extract(frames, limit=_TRACE_DEPTH, lookup_lines=False)
    trace.reverse()   # outermost first, as Python prints tracebacks
    return trace


def format_forward_trace(node) -> str:
    """The text added to an anomaly error about ``node``: where its forward ran, if recorded."""
    trace = getattr(node, "forward_trace", None)
    if trace is None:
        return ("\n\nNo forward traceback was recorded for this operation: it ran while anomaly "
                "detection was off. Run the forward pass inside gradient.autograd.detect_anomaly() "
                "as well to see where it was made.")
    return "\n\nTraceback of forward call that caused the error:\n" + "".join(trace.format()).rstrip()
