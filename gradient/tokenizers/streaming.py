"""Streaming decode: turn token ids into text one token at a time, as a model generates them.

Decoding each token on its own does not work: a byte-level token can hold part of a UTF-8
character (an emoji is 4 bytes, often spread over 2 or 3 tokens), which decodes to U+FFFD, and
SentencePiece-style decoders drop the leading space of the first token they see. So
:class:`IncrementalDecoder` decodes a short window of recent tokens after each one and returns
the characters that are new and complete; a character still cut at the end of the window
decodes to U+FFFD and is held back until the token that completes it arrives. A token that
completes one character and starts the next gives the completed one at once.

The window: tokens already shown that end on a character boundary stay in it as context (for
the SentencePiece space), and everything older is forgotten, so each step decodes a few tokens
and memory does not grow with the text.

Example::

    >>> stream = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    >>> for token_id in generated_ids:
    ...     print(stream.push(token_id), end="", flush=True)
    >>> print(stream.flush())
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["IncrementalDecoder"]

_INCOMPLETE = "\ufffd"  # what decoders make of bytes that are not (yet) a whole character


class IncrementalDecoder:
    """Decode a growing sequence of token ids into text pieces, never splitting a character.

    Args:
        tokenizer: anything with ``decode(ids, skip_special_tokens=...)`` that decodes
            incomplete UTF-8 to U+FFFD: :class:`~gradient.tokenizers.Tokenizer`,
            :class:`~gradient.tokenizers.ByteLevelBPE`, or a transformers tokenizer.
        skip_special_tokens: leave special tokens (``<|im_end|>``) out of the text.

    ``"".join(pieces) + flush()`` equals ``tokenizer.decode(all_ids)``, except where the ids
    hold genuinely invalid UTF-8 (each invalid sequence still becomes one U+FFFD).

    Example::

        >>> stream = IncrementalDecoder(tok)
        >>> ids = tok.encode("ok 👍", add_special_tokens=False)   # the emoji spans 2+ tokens
        >>> pieces = [stream.push(i) for i in ids]              # '' until the emoji is whole
        >>> "".join(pieces) + stream.flush()
        'ok 👍'
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = False):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self._ids: list[int] = []  # the window: context tokens, then tokens not fully shown
        self._context = 0          # _ids[:_context] were shown and end on a character boundary
        self._shown = 0            # characters of decode(_ids) returned so far

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def push(self, token_id: int | Iterable[int]) -> str:
        """Add one token id (or several) and return the characters now complete ('' if none)."""
        if hasattr(token_id, "tolist"):  # a 0-d or 1-d tensor / NumPy array
            token_id = token_id.tolist()
        ids = [token_id] if isinstance(token_id, int) else [int(i) for i in token_id]
        return "".join(self._push_one(i) for i in ids)

    def _push_one(self, token_id: int) -> str:
        self._ids.append(int(token_id))
        text = self._decode(self._ids)
        complete = text.rstrip(_INCOMPLETE)
        piece = complete[self._shown:]
        self._shown = max(self._shown, len(complete))
        if len(complete) == len(text):
            # A character boundary: this round's tokens become the next round's context, and
            # the older context is dropped.
            del self._ids[:self._context]
            self._context = len(self._ids)
            self._shown = len(self._decode(self._ids))
        return piece

    def flush(self) -> str:
        """Return whatever is still held back (bytes that never formed a character, as
        U+FFFD) and start over for a new sequence."""
        rest = self._decode(self._ids)[self._shown:] if self._ids else ""
        self._ids, self._context, self._shown = [], 0, 0
        return rest

    def __repr__(self) -> str:
        return (f"IncrementalDecoder(window={len(self._ids)} ids, "
                f"skip_special_tokens={self.skip_special_tokens})")
