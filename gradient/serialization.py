"""``torch.serialization``'s place: :func:`save` and :func:`load`, and the allowlist of globals
that torch's ``weights_only`` unpickler consults.

gradient's checkpoints are safetensors files with a JSON structure (:mod:`gradient.io.checkpoint`):
they hold no pickled objects, so there is nothing to allow. Ported code that registers its
classes before loading (``torch.serialization.add_safe_globals([MyConfig])``, or the
``safe_globals`` context manager) runs unchanged: the list is kept and reported as torch reports
it, and loading is as safe with it as without.

Example::

    >>> gradient.serialization.add_safe_globals([dict])
    >>> with gradient.serialization.safe_globals([list]):
    ...     state = gradient.load("ckpt.safetensors")
"""

from __future__ import annotations

import contextlib

from .errors import ArgumentTypeError
from .io import load, save
from .io.safetensors import SafetensorsReader

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "safe_globals", "get_unsafe_globals_in_checkpoint"]

_allowed: list = []


def add_safe_globals(safe_globals: list) -> None:
    """Add to the allowlist: each a class or function, or a ``(object, "module.name")`` pair as
    torch takes. Kept for :func:`get_safe_globals`; gradient's loading needs none of them."""
    if not isinstance(safe_globals, (list, tuple)):
        raise ArgumentTypeError(f"add_safe_globals: expected a list of classes or functions, "
                                f"got {type(safe_globals).__name__}")
    for entry in safe_globals:
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[1], str):
                raise ArgumentTypeError(f"add_safe_globals: a pair must be (object, 'module.name'),"
                                        f" got {entry!r}")
        elif not callable(entry):
            raise ArgumentTypeError(f"add_safe_globals: expected classes or functions, got "
                                    f"{entry!r} ({type(entry).__name__})")
        _allowed.append(entry)


def clear_safe_globals() -> None:
    """Empty the allowlist."""
    _allowed.clear()


def get_safe_globals() -> list:
    """What :func:`add_safe_globals` added (a copy)."""
    return list(_allowed)


@contextlib.contextmanager
def safe_globals(safe_globals: list):
    """The allowlist with ``safe_globals`` added inside the ``with`` block, as it was after."""
    before = list(_allowed)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _allowed[:] = before


def get_unsafe_globals_in_checkpoint(f) -> list:
    """The globals in ``f`` that the allowlist does not hold: none for any file gradient loads,
    which holds no pickled objects (its header is read and checked, as :func:`load` reads it)."""
    with SafetensorsReader(f):
        return []
