"""The KV cache of a conversation, kept from one generation to the next.

A chat's next prompt is the previous prompt, the reply, and the new message; a server's
requests often share a long system prompt. :class:`PromptCache` keeps the keys and values of
the ids the last generation ran through the model, and the next generation given it
(``generate(..., prompt_cache=pc)``) runs only the part of its prompt after the longest prefix
the two share: turn N prefills only the new message.

Example::

    >>> pc = PromptCache(model)
    >>> generate(model, [turn1_ids], 64, prompt_cache=pc)     # prefills all of turn 1
    >>> generate(model, [turn2_ids], 64, prompt_cache=pc)     # only what follows turn 1's ids
    >>> pc.reused                                              # positions taken from the cache
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from .limits import context_length
from ..errors import ArgumentValueError

__all__ = ["PromptCache"]


class PromptCache:
    """The cache of one sequence of ``model`` and the token ids whose keys and values it
    holds. Not shared between threads."""

    def __init__(self, model):
        self.model = model
        self.cache = None
        self.reused = 0        # positions the last generation found in the cache
        # the ids of the last generation's sequence (its prompt, then the tokens generated):
        # the cache holds the first cache.length of them, whenever the generation stopped
        self._source = np.empty(0, np.int64)

    @property
    def ids(self) -> np.ndarray:
        """The ids whose keys and values the cache holds (positions ``0 .. len-1``)."""
        return self._source[:self.cache.length] if self.cache is not None else self._source[:0]

    def clear(self) -> None:
        """Forget everything (a new conversation)."""
        self.cache, self.reused, self._source = None, 0, np.empty(0, np.int64)

    def shared_prefix(self, prompt) -> int:
        """How many leading ids ``prompt`` shares with the cached ones."""
        prompt = np.asarray(prompt)
        n = min(len(prompt), len(self.ids))
        differ = np.flatnonzero(prompt[:n] != self.ids[:n])
        return int(differ[0]) if differ.size else n

    def copy_prefix(self, other: "PromptCache", length: int) -> None:
        """Hold the keys, values and ids of ``other``'s first ``length`` positions instead of
        what this cache held; ``other`` keeps its own. A request that shares only a prefix
        with ``other`` (a system prompt, a conversation's early turns) branches off here
        without cutting ``other``'s longer sequence short."""
        if not 0 <= length <= len(other.ids):
            raise ArgumentValueError(f"PromptCache.copy_prefix: {length} positions, of the "
                                     f"{len(other.ids)} the other cache holds")
        if self.cache is None or self.cache.max_length < length:
            self.cache = self.model.new_cache(1, other.cache.max_length)
        with no_grad():
            for src, dst in zip(other.cache.keys + other.cache.values,
                                self.cache.keys + self.cache.values):
                dst.narrow(2, 0, length).copy_(src.narrow(2, 0, length))
        self._source = other.ids[:length].copy()
        self.cache.length = length
        self.reused = 0

    def hold(self, sequence, length: int) -> None:
        """The cache now holds the keys and values of the first ``length`` ids of
        ``sequence`` (someone wrote them: a server decoding the sequence elsewhere and copying
        its positions back)."""
        if not 0 <= length <= min(len(sequence), self.cache.max_length):
            raise ArgumentValueError(
                f"PromptCache.hold: {length} positions, for {len(sequence)} ids "
                f"in a cache of {self.cache.max_length}")
        self._source = sequence
        self.cache.length = length

    def take(self, sequence, prompt_length: int, total: int):
        """``(cache, start)`` for a generation whose ids are ``sequence`` (a row the generation
        fills: the prompt's ``prompt_length`` ids, then each token generated) growing to
        ``total`` positions: a cache holding the keys and values of the prompt's first
        ``start`` ids, with room for ``total``. At least the last prompt id is left to run, for
        its logits. From then on the cache holds the first ``cache.length`` ids of
        ``sequence``, wherever the generation stops."""
        prompt = sequence[:prompt_length]
        start = min(self.shared_prefix(prompt), len(prompt) - 1)
        old = self.cache
        if old is None or old.max_length < total:
            # room for the conversation to grow: fewer copies of the kept part
            room = min(max(total, 2 * total, 1024), max(total, context_length(self.model)))
            self.cache = self.model.new_cache(1, room)
            if start and old is not None:
                with no_grad():
                    for src, dst in zip(old.keys + old.values, self.cache.keys + self.cache.values):
                        dst.narrow(2, 0, start).copy_(src.narrow(2, 0, start))
                self.cache.length = start
            else:
                start = 0
        else:
            self.cache.crop(start)
        self.reused = start
        self._source = sequence
        return self.cache, start
