"""Speculative decoding with a draft model (transformers' ``assistant_model``): a small model
that shares the vocabulary proposes the next few tokens greedily, and the model checks them
all in one forward, keeping those it would have chosen itself and adding its own choice
after the last one kept (Leviathan et al., 2023; Chen et al., 2023, in the greedy case).
Every token is the model's greedy choice, so the text is greedy decoding's; when the draft
model agrees often, several tokens come from one forward of the large model.

:class:`AssistantDrafter` keeps the draft model's own KV cache along the sequence: before each
draft it forgets the positions the large model rejected and reads only the ids it has not
seen. A draft that is the model itself in another precision (a Q4_0 file of the model's F16
one: the same layers, heads and head size, and every norm's weight equal, which quantizing
a checkpoint leaves as it is) takes the positions it has not seen from the model's own cache
instead of reading them: the prompt's keys and values, copied (``bench/speculative.py``: the
draft's pass over a 122-token prompt took 0.16-0.21 s of the 1.5 s a 96-token reply took).

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
        #: whether the model's cache can stand in for reading ids (see the module's doc)
        self.reads_model_cache = (self.cache.stacked() is not None
                                  and _same_network(assistant, model, self.cache))

    def __call__(self, ids: np.ndarray, k: int, model_cache=None) -> np.ndarray:
        """Up to ``k`` tokens the assistant would add to ``ids`` (a 1-d sequence), greedily.
        ``model_cache``: the model's cache, holding all of ``ids`` but the last, whose
        positions the assistant has not seen it copies where :attr:`reads_model_cache`."""
        if k <= 0:
            return np.zeros(0, np.int64)
        ids = [int(i) for i in ids]
        common = 0
        limit = min(len(self.held), len(ids) - 1)    # the last id is always read again
        while common < limit and self.held[common] == ids[common]:
            common += 1
        self.cache.crop(common)
        self.held = ids[:common]
        stop = min(getattr(model_cache, "length", 0), len(ids) - 1)
        if self.reads_model_cache and stop > common and _copy_positions(model_cache,
                                                                        self.cache, stop):
            common = stop
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


def _same_network(assistant, model, cache) -> bool:
    """Whether ``assistant`` is ``model`` in another precision: caches of the same layers,
    heads and head size, and the same one-dimensional parameters (the norms' weights, any
    biases) with equal values."""
    theirs = model.new_cache(1, 1)
    if (theirs.stacked() is None or theirs.n_layers != cache.n_layers
            or theirs.keys[0].shape[1::2] != cache.keys[0].shape[1::2]):
        return False
    ones = [{name: p for name, p in m.named_parameters() if p.ndim == 1}
            for m in (assistant, model)]
    if not ones[0] or ones[0].keys() != ones[1].keys():
        return False
    for name, p in ones[0].items():
        q = ones[1][name]
        if p.shape != q.shape or not np.array_equal(p.detach().float().numpy(),
                                                    q.detach().float().numpy()):
            return False
    return True


def _copy_positions(source, target, stop: int) -> bool:
    """Positions ``target.length .. stop - 1`` of the cache ``source`` into ``target`` (in its
    dtype), which then holds ``stop``; False (nothing copied) where ``source`` has no stacked
    CPU buffers of the same shape."""
    stacked = getattr(source, "stacked", None)
    theirs, mine = stacked() if stacked else None, target.stacked()
    if theirs is None or theirs[0].shape[:3] != mine[0].shape[:3] \
            or theirs[0].shape[4] != mine[0].shape[4]:
        return False
    start = target.length
    for a, b in zip(theirs, mine):
        b[:, :, :, start:stop] = a[:, :, :, start:stop]
    target.advance(stop - start)
    return True
