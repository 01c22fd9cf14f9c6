"""Grad modes: whether operations record a graph for backward.

``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` work as context
managers and as decorators, like PyTorch's::

    with gradient.no_grad():
        y = model(x)          # no graph is recorded

    @gradient.no_grad()
    def evaluate(model, x): ...
"""

from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when new operations record a graph."""
    return getattr(_state, "enabled", True)


def is_inference_mode_enabled() -> bool:
    return getattr(_state, "inference", False)


def _set_enabled(flag: bool) -> None:
    _state.enabled = flag


class _GradModeContext:
    """Base of the grad-mode context managers; subclasses say what mode they enter."""

    def _enter_mode(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._saved = (is_grad_enabled(), is_inference_mode_enabled())
        self._enter_mode()
        return self

    def __exit__(self, *exc):
        _state.enabled, _state.inference = self._saved
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args):
                return fn(*args, **kwargs)
        return wrapper

    _args: tuple = ()


class no_grad(_GradModeContext):
    """Disable graph recording inside the block (or the decorated function)."""

    def _enter_mode(self):
        _state.enabled = False


class enable_grad(_GradModeContext):
    """Enable graph recording inside the block, even within ``no_grad``."""

    def _enter_mode(self):
        _state.enabled = True


class set_grad_enabled(_GradModeContext):
    """Set graph recording on or off; takes effect at once, and also works as a context manager."""

    def __init__(self, mode: bool):
        self._args = (bool(mode),)
        self._saved = (is_grad_enabled(), is_inference_mode_enabled())
        _state.enabled = bool(mode)

    def _enter_mode(self):
        _state.enabled = self._args[0]

    def __enter__(self):
        return self  # the mode was already set in __init__; _saved holds what to restore

    def __call__(self, fn):
        _state.enabled = self._saved[0]  # used as a decorator: undo the immediate effect
        return super().__call__(fn)


class inference_mode(_GradModeContext):
    """Like ``no_grad``, for inference: nothing inside records a graph.

    Unlike PyTorch, tensors made inside are ordinary tensors (there is no separate
    "inference tensor" kind); the mode is a promise that no graph is needed.
    """

    def __init__(self, mode: bool = True):
        self._args = (bool(mode),)

    def _enter_mode(self):
        if self._args[0]:
            _state.enabled = False
            _state.inference = True
