"""Speculative decoding with a draft model (transformers' ``assistant_model``): a small model
that shares the vocabulary proposes the next few tokens greedily, and the model checks them
all in one forward, keeping those it would have chosen itself and adding its own choice
after the last one kept (Leviathan et al., 2023; Chen et al., 2023, in the greedy case).
Every token is the model's greedy choice, so the text is greedy decoding's; when the draft
model agrees often, several tokens come from one forward of the large model.

:class:`AssistantDrafter` keeps the draft model's own KV cache along the sequence: before each
draft it forgets the positions the large model rejected and reads only the ids it has not
seen.

Example::

    >>> generate(model, ids, 100, assistant_model=small_model)    # greedy, the same text
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..errors import GenerationError
from ..ops.creation import tensor

__all__ = ["AssistantDrafter"]


class AssistantDrafter:
    """Greedy drafts of ``assistant`` for sequences of up to ``max_length`` ids; called as
    prompt lookup's ``draft(ids, k)`` is."""

    def __init__(self, assistant, model, max_length: int):
        vocab = [getattr(getattr(m, "config", None), "vocab_size", None) for m in (assistant,
                                                                                   model)]
        if None not in vocab and vocab[0] != vocab[1]:
            raise GenerationError(f"generate: the assistant_model's vocabulary ({vocab[0]} "
                                  f"tokens) is not the model's ({vocab[1]}): a draft model "
                                  f"must share the model's tokenizer")
        self.model = assistant
        self.cache = assistant.new_cache(1, max_length)
        self.held: list[int] = []          # the ids whose keys and values the cache holds

    def __call__(self, ids: np.ndarray, k: int) -> np.ndarray:
        """Up to ``k`` tokens the assistant would add to ``ids`` (a 1-d sequence), greedily."""
        if k <= 0:
            return np.zeros(0, np.int64)
        ids = [int(i) for i in ids]
        common = 0
        limit = min(len(self.held), len(ids) - 1)    # the last id is always read again
        while common < limit and self.held[common] == ids[common]:
            common += 1
        self.cache.crop(common)
        self.held = ids[:common]
        drafts = []
        with no_grad():
            feed = ids[common:]
            for _ in range(k):
                logits = self.model(tensor([feed]), cache=self.cache, logits_to_keep=1).logits
                self.held += feed
                token = int(np.argmax(logits[0, -1].float().numpy()))
                drafts.append(token)
                feed = [token]
        return np.array(drafts, np.int64)
