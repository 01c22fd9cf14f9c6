"""``torch.backends.mps``'s questions, for scripts ported from PyTorch that pick their device
as ``"cuda" if ... else "mps" if gradient.backends.mps.is_available() else "cpu"``.

gradient has no Metal backend of its own (a Metal device comes through a plugin process,
``"plugin:metal"``, see :mod:`gradient.plugins`), so both answers are False.

Example::

    >>> gradient.backends.mps.is_available()
    False
"""


def is_available() -> bool:
    """False: there is no ``"mps"`` device in gradient."""
    return False


def is_built() -> bool:
    """False: gradient is not built with an MPS backend."""
    return False
