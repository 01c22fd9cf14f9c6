"""Streaming decode: turn token ids into text one token at a time, as a model generates them.

Decoding each token on its own does not work: a byte-level token can hold half of a UTF-8
character (an emoji is 4 bytes, often 2 or 3 tokens), which decodes to U+FFFD, and
SentencePiece-style decoders drop the leading space of the first token they see. So
:class:`IncrementalDecoder` decodes a short window of recent tokens and emits only the text
that the newest token added, and only once it ends in a complete character.

The window: ``prefix`` is the tokens already emitted since the last checkpoint, ``new`` the
tokens not emitted yet. Decode ``prefix`` and ``prefix + new``; if the second is longer and
does not end in U+FFFD, its extra characters are the next piece, and the checkpoint moves up.
Each step decodes a few tokens, not the whole sequence, so streaming stays linear in its length.

Example::

    >>> stream = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    >>> for token_id in generated_ids:
    ...     print(stream.push(token_id), end="", flush=True)
    >>> print(stream.flush())
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["IncrementalDecoder"]

_REPLACEMENT = "\ufffd"


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
        self.ids: list[int] = []       # every id pushed so far
        self._prefix_start = 0         # start of the window that gets decoded
        self._emitted_end = 0          # ids[:_emitted_end] have been returned as text

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def push(self, token_id: int | Iterable[int]) -> str:
        """Add one token id (or several) and return the text that is now complete ('' if none)."""
        if isinstance(token_id, int):
            self.ids.append(token_id)
        elif hasattr(token_id, "tolist"):           # a 0-d or 1-d tensor / numpy array
            value = token_id.tolist()
            self.ids.extend(value if isinstance(value, list) else [value])
        else:
            self.ids.extend(int(i) for i in token_id)
        prefix_text = self._decode(self.ids[self._prefix_start:self._emitted_end])
        text = self._decode(self.ids[self._prefix_start:])
        # A trailing U+FFFD means the last token ended inside a multi-byte character: wait for
        # the token that completes it. (An empty addition, e.g. a skipped special token, waits too.)
        if len(text) <= len(prefix_text) or text.endswith(_REPLACEMENT):
            return ""
        self._prefix_start, self._emitted_end = self._emitted_end, len(self.ids)
        return text[len(prefix_text):]

    def flush(self) -> str:
        """Return whatever is still held back (an incomplete character decodes to U+FFFD) and
        start over for a new sequence."""
        prefix_text = self._decode(self.ids[self._prefix_start:self._emitted_end])
        text = self._decode(self.ids[self._prefix_start:])
        self.ids, self._prefix_start, self._emitted_end = [], 0, 0
        return text[len(prefix_text):] if text.startswith(prefix_text) else text

    def __repr__(self) -> str:
        return (f"IncrementalDecoder(ids={len(self.ids)}, pending={len(self.ids) - self._emitted_end}, "
                f"skip_special_tokens={self.skip_special_tokens})")
