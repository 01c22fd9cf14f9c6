"""Streaming: generated text, piece by piece, as soon as each character is complete.

The decoding is :class:`gradient.tokenizers.IncrementalDecoder`'s: a byte-level token may hold
part of a character, so each piece is the text that the newest token completed.

Example::

    >>> for piece in stream(model, tokenizer, "The capital of France is", max_new_tokens=20):
    ...     print(piece, end="", flush=True)
"""

from __future__ import annotations

from typing import Iterator

from ..errors import ArgumentTypeError, GenerationError, ShapeError
from ..tokenizers.streaming import IncrementalDecoder
from .generate import TokenStream
from .stopping import as_tokenizer

__all__ = ["stream"]


def _encode(tokenizer, text: str) -> list[int]:
    if not hasattr(tokenizer, "encode"):
        raise ArgumentTypeError(
            "stream: a text prompt needs a tokenizer with encode(text); with only a "
            "decode function, pass the prompt as token ids")
    encoded = tokenizer.encode(text)
    return list(getattr(encoded, "ids", encoded))  # tokenizers.Encoding or a list of ids


def stream(model, tokenizer, prompt, max_new_tokens: int, skip_special_tokens: bool = False,
           **kwargs) -> Iterator[str]:
    """Generate from one prompt and yield the new text as it becomes complete characters.

    Args:
        model: a causal LM, as for :func:`~gradient.generation.generate`.
        tokenizer: a tokenizer with ``decode(ids, skip_special_tokens=...)`` (and ``encode``
            for a text prompt), or a ``decode(ids) -> str`` function with an ids prompt.
        prompt: text, or the token ids of one sequence (``(T,)`` or ``(1, T)``).
        max_new_tokens: the most tokens to generate.
        skip_special_tokens: leave special tokens (eos ...) out of the text.
        **kwargs: any other argument of :func:`~gradient.generation.generate` (``do_sample``,
            ``temperature``, ``top_p``, ``eos_token_id``, ``stop_strings``, ``seed`` ...).

    Yields:
        Non-empty strings; ``"".join(pieces) == tokenizer.decode(new_ids,
        skip_special_tokens=...)`` where ``new_ids`` are the tokens generated.

    Example::

        >>> text = "".join(stream(model, tok, "Once upon a time", 50, do_sample=True, seed=0))
    """
    tokenizer = as_tokenizer(tokenizer)
    ids = _encode(tokenizer, prompt) if isinstance(prompt, str) else prompt
    if isinstance(prompt, str) and not ids:
        raise GenerationError(f"stream: the prompt {prompt!r} encodes to no tokens; give a "
                              "non-empty prompt")
    steps = TokenStream(model, ids, max_new_tokens, tokenizer=tokenizer, **kwargs)
    if steps.finished.shape[0] != 1:
        raise ShapeError(f"stream: one prompt at a time, got a batch of "
                         f"{steps.finished.shape[0]}; use generate_tokens for batches")
    text = IncrementalDecoder(tokenizer, skip_special_tokens=skip_special_tokens)
    return _pieces(steps, text)


def _pieces(steps: TokenStream, text: IncrementalDecoder) -> Iterator[str]:
    for (token,) in steps:
        piece = text.push(token)
        if piece:
            yield piece
    rest = text.flush()  # only bytes that never completed a character (invalid UTF-8)
    if rest:
        yield rest
