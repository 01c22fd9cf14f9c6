"""The errors the tokenizers package raises; they live in :mod:`gradient.errors` with the rest.

Both sit in gradient's one hierarchy: ``except gradient.GradientError`` catches them, and so
do the built-ins a Python user would try first (``ValueError``, ``FileNotFoundError``).
"""

from ..errors import TokenizerError, TokenizerFileNotFoundError

__all__ = ["TokenizerError", "TokenizerFileNotFoundError"]
