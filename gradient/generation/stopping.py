"""Stop strings: finish a sequence once its generated text contains one of them.

Token ids do not line up with text (" Obs" + "erv" + "ation:" holds "Observation:" though no
token does), so the check is on text. After each token, each sequence decodes its most recent
tokens -- enough of them to hold the longest stop string even at one byte per token, and a
few more -- and searches that text. The first step at which a stop string shows up is the step of
the token that completes it, and the work and memory per step stay bounded whatever the
length of the output. A character cut at the start of the window, or still incomplete at its
end, decodes to U+FFFD and matches nothing.

Like transformers' ``stop_strings``, the token that completes a stop string is kept in the
output (the text may even run past the stop string when that token does), and only the
generated text is searched: a stop string inside the prompt never stops generation.

Example::

    >>> stops = StopStrings(["\\n\\n", "User:"], tokenizer, batch_size=2)
    >>> done = stops.update(np.array([id_a, id_b]), active=np.array([True, True]))
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import numpy as np

from ..errors import ArgumentTypeError, GenerationError

__all__ = ["StopStrings", "as_tokenizer"]


class _DecodeFunction:
    """Adapter: a plain ``decode(ids) -> str`` callable, seen as a tokenizer."""

    def __init__(self, decode):
        self._decode = decode

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self._decode(list(ids))


def as_tokenizer(tokenizer):
    """A tokenizer object (``decode(ids, skip_special_tokens=...)``) or a ``decode(ids) -> str``
    callable, returned as an object with ``decode``; raises when it is neither."""
    if hasattr(tokenizer, "decode"):
        return tokenizer
    if callable(tokenizer):
        return _DecodeFunction(tokenizer)
    raise ArgumentTypeError(
        f"expected a tokenizer with a decode(ids) method, or a decode(ids) -> str "
        f"function, got {type(tokenizer).__name__}")


class StopStrings:
    """Watch the text of ``batch_size`` sequences for any of ``stop_strings``.

    ``tokenizer``: anything :func:`as_tokenizer` accepts, whose decode turns bytes that are not
    complete UTF-8 into U+FFFD (as Hugging Face tokenizers and gradient's do).
    """

    def __init__(self, stop_strings: str | Iterable[str], tokenizer, batch_size: int):
        if isinstance(stop_strings, str):
            stop_strings = [stop_strings]
        strings = list(stop_strings)
        if not strings or not all(isinstance(s, str) and s for s in strings):
            raise GenerationError(f"stop_strings must be a non-empty string or a list of "
                                  f"non-empty strings, got {stop_strings!r}")
        if tokenizer is None:
            raise GenerationError("stop_strings need the tokenizer (or a decode(ids) -> str "
                                  "function) to turn tokens into text: pass tokenizer=...")
        self._tokenizer = as_tokenizer(tokenizer)
        self.strings = strings
        # Every token stands for at least one byte, so a stop string spans at most as many
        # tokens as it has UTF-8 bytes; a few more keep a character cut at the start of the
        # window (or a leading space a SentencePiece decoder drops there) away from the match.
        window = max(len(s.encode("utf-8")) for s in strings) + 8
        self._recent = [deque(maxlen=window) for _ in range(batch_size)]

    def update(self, token_ids: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Feed one new token per sequence; returns a bool array, True where an active
        sequence's text now contains a stop string. Inactive sequences are not fed."""
        done = np.zeros(len(self._recent), dtype=bool)
        for b in np.flatnonzero(active):
            recent = self._recent[b]
            recent.append(int(token_ids[b]))
            text = self._tokenizer.decode(list(recent), skip_special_tokens=False)
            done[b] = any(s in text for s in self.strings)
        return done
