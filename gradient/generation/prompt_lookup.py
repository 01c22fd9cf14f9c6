"""Prompt lookup decoding: speculative decoding whose drafts come from the text itself.

When the output repeats the input (rewriting code, answering from a document, quoting), the
tokens after the latest occurrence of the last few generated tokens are a good guess of what
comes next. :func:`draft` finds them; the model then checks up to ``k`` drafted tokens in one
forward (the positions run together, as in a prefill), keeps those it would have chosen
itself, and adds its own choice after the last one kept. Every token is the model's greedy
choice, so the text is greedy decoding's; more than one token may come from a forward.

Example::

    >>> generate(model, ids, 100, prompt_lookup_num_tokens=10)    # greedy, the same text
"""

from __future__ import annotations

import numpy as np

__all__ = ["draft", "MAX_NGRAM"]

#: the longest run of last tokens looked up (then shorter ones, down to one token)
MAX_NGRAM = 3


def draft(ids: np.ndarray, k: int, max_ngram: int = MAX_NGRAM) -> np.ndarray:
    """Up to ``k`` tokens that followed the latest earlier occurrence of the last ``n`` ids
    of ``ids`` (``n`` from ``max_ngram`` down to 1); empty when none occurs.

    Example: ``draft(np.array([5, 6, 7, 9, 5, 6]), 2)`` is ``[7, 9]``
    """
    length = len(ids)
    for n in range(min(max_ngram, length - 1), 0, -1):
        tail = ids[length - n:]
        # windows of n ids starting at 0 .. length-n-1 (not the tail itself)
        windows = np.lib.stride_tricks.sliding_window_view(ids[:length - 1], n)
        hits = np.flatnonzero((windows == tail).all(axis=1))
        hits = hits[hits + n < length]
        if hits.size:
            start = hits[-1] + n
            return ids[start:min(start + k, length)]
    return ids[:0]
