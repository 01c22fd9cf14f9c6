"""``gradient.jit``: ``torch.jit``'s names, for scripts that script or trace a model on the way
to running it.

gradient runs Python as written and has no TorchScript compiler, so :func:`script`,
:func:`trace` and :func:`trace_module` give back what they are given (a model then runs
exactly as before: what a scripted or traced module computes is its Python's), and the
decorators (:func:`ignore`, :func:`unused`, :func:`export`, :func:`script_if_tracing`) leave
the function as it is. :func:`is_scripting` and :func:`is_tracing` are False, as in eager
PyTorch. A TorchScript archive is code, not data: :func:`save` and :func:`load` raise
:class:`JitError`, saying to save the weights instead (``gradient.save(model.state_dict(),
path)``: safetensors).

Example::

    >>> model = gradient.jit.script(Net())      # the same Net, run as Python
    >>> gradient.jit.is_scripting()
    False
"""

from __future__ import annotations

from typing import Final  # noqa: F401  (torch.jit.Final, for annotations)

from .errors import GradientError

__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "script_if_tracing",
           "is_scripting", "is_tracing", "annotate", "freeze", "optimize_for_inference",
           "interface", "save", "load", "Final", "JitError", "ScriptModule", "ScriptFunction"]


class JitError(GradientError, RuntimeError):
    """A TorchScript archive was asked for: gradient neither writes nor reads them."""


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """``obj`` itself (a Module, function or class): it runs as Python."""
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """``func`` itself: it runs as Python, for any inputs (not only ones like
    ``example_inputs``, which are not run)."""
    return func


def trace_module(mod, inputs=None, *args, **kwargs):
    """``mod`` itself."""
    return mod


def _as_is(fn=None, **kwargs):
    """A decorator that leaves the function as it is, used bare or with arguments."""
    if fn is None:
        return lambda f: f
    return fn


ignore = unused = export = _as_is


def script_if_tracing(fn):
    return fn


def is_scripting() -> bool:
    """False: nothing runs as TorchScript in gradient."""
    return False


def is_tracing() -> bool:
    """False: nothing is traced in gradient."""
    return False


def annotate(the_type, the_value):
    """``the_value`` (the type is for TorchScript's compiler)."""
    return the_value


def freeze(mod, preserved_attrs=None, optimize_numerics=True):
    return mod


def optimize_for_inference(mod, other_methods=None):
    return mod


def interface(obj):
    return obj


_NO_ARCHIVES = ("a TorchScript archive holds code, and gradient neither writes nor runs them. "
                "Save the weights instead: gradient.save(model.state_dict(), "
                "'model.safetensors'), and load them into the model's class with "
                "model.load_state_dict(gradient.load('model.safetensors'))")


def save(m, f, _extra_files=None):
    """Not available: raises :class:`JitError` (see the module docstring)."""
    raise JitError(f"gradient.jit.save: {_NO_ARCHIVES}")


def load(f, map_location=None, _extra_files=None):
    """Not available: raises :class:`JitError` (see the module docstring)."""
    raise JitError(f"gradient.jit.load: {_NO_ARCHIVES}")


class ScriptModule:
    """A name for ``isinstance`` checks: no module is a ScriptModule in gradient."""


class ScriptFunction:
    """A name for ``isinstance`` checks: no function is a ScriptFunction in gradient."""
