"""The errors the hub package raises (candidates to move into :mod:`gradient.errors`).

All sit in gradient's one hierarchy (``except gradient.GradientError`` catches them) and under
the built-in a Python user would try first: a model that cannot be found is a
``FileNotFoundError``, GGUF (not implemented yet) a ``NotImplementedError``.
"""

from ..errors import FileFormatError, GradientError


class HubError(GradientError, OSError):
    """A model that the hub layer cannot locate or fetch."""


class ModelNotFoundError(HubError, FileNotFoundError):
    """No such local directory, no such hub repo or revision, or a repo that is not in the cache
    while downloads are off. The message says where gradient looked and what to do."""


class UnsupportedWeightsError(FileFormatError):
    """A repo whose weights gradient will not read: PyTorch pickles (``*.bin``, ``*.pt``), which
    can run code when loaded, or no weights at all."""

