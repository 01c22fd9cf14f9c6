"""The short greedy chat a command answers before its first user's: ``gradient serve`` before
it listens, ``gradient chat`` while the first message is typed. What a first reply needs
(kernels from numba's disk cache, the decode step captured and its loop loaded) is loaded
then, as llama.cpp's server warms up before it listens.

Example::

    >>> generate(model, [warm_up_prompt(tokenizer)], WARM_UP_TOKENS)
"""

from __future__ import annotations

__all__ = ["warm_up_prompt", "WARM_UP_TOKENS"]

#: Tokens of the warm-up's reply: enough decode steps for the step to be recorded twice, then
#: compiled and its loop loaded.
WARM_UP_TOKENS = 4


def warm_up_prompt(tokenizer) -> list[int]:
    """The ids of "Hello" as a user's message through the tokenizer's chat template, or as
    plain text where it has none."""
    try:
        return list(tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}],
                                                  add_generation_prompt=True))
    except Exception:   # noqa: BLE001  (no chat template)
        encoded = tokenizer.encode("Hello")
        return list(getattr(encoded, "ids", encoded))
