"""The errors the tokenizers package raises (candidates to move into :mod:`gradient.errors`).

Both sit in gradient's one hierarchy: ``except gradient.GradientError`` catches them, and so
do the built-ins a Python user would try first (``ValueError``, ``FileNotFoundError``).
"""

from ..errors import FileFormatError, GradientError


class TokenizerError(GradientError, ValueError):
    """Misuse of a tokenizer: padding without a pad token, no chat template, an unknown token id."""


class TokenizerFileNotFoundError(FileFormatError, FileNotFoundError):
    """A tokenizer directory without the files a tokenizer is built from (the message lists them)."""
