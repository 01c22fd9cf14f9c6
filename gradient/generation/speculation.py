"""Speculative decoding's step, written once for :func:`~.generate.generate` and the server:
draft a few tokens, check them all in one forward of the model, keep the ones it would have
chosen itself.

The forward takes the sequence's last token and the drafts, so its logits after each of them
are the model's choices at those positions: the drafts up to the first that differs from the
model's greedy choice are kept, and the model's own choice after them comes free. The
positions of the rejected drafts leave the cache. The text is greedy decoding's, token for
token; only the number of forwards changes.

Example::

    >>> schedule = DraftSchedule(5, timed=True)
    >>> drafted, kept, scores = speculative_step(model, cache, ids, draft, schedule, room)
    >>> new = list(drafted[:kept]) + [int(scores[kept].argmax())]
"""

from __future__ import annotations

import time

import numpy as np

from ..autograd import no_grad
from ..dtypes import int64
from ..kernels import rows_alone
from ..ops.creation import tensor

__all__ = ["speculative_step"]


def speculative_step(model, cache, ids, drafter, schedule, room: int, device=None) -> tuple:
    """One check of drafted tokens after the sequence ``ids`` (NumPy int64; its last token is
    the one ``cache`` does not hold yet): ``drafter(ids, k)`` proposes ``k =
    schedule.next(room)`` tokens (``room``: how many may follow the next one; a drafter whose
    ``reads_model_cache`` is true is given ``model_cache=cache`` too), the model runs
    the last token and them in one forward, and the schedule learns how many it kept and what
    the step cost (the drafting included).

    Returns ``(drafted, kept, scores)``: the drafts, how many of them the model's greedy
    choices confirm, and its float32 logits ``(len(drafted) + 1, vocab)`` after the last token
    and after each draft. The cache holds the last token and the kept drafts."""
    wanted = schedule.next(room)
    start = time.perf_counter()
    reads = {"model_cache": cache} if getattr(drafter, "reads_model_cache", False) else {}
    drafted = drafter(ids, wanted, **reads) if wanted > 0 else np.zeros(0, np.int64)
    run = np.concatenate([[ids[-1]], drafted]).astype(np.int64)[None, :]
    with no_grad(), rows_alone():      # each position's bits as a decode step gives them
        logits = model(tensor(run, dtype=int64, device=device), cache=cache,
                       logits_to_keep=run.shape[1]).logits
        scores = np.array(logits[0].float().numpy(), dtype=np.float32)
    choices = scores.argmax(-1)
    kept = 0
    while kept < len(drafted) and choices[kept] == drafted[kept]:
        kept += 1
    schedule.update(len(drafted), kept, time.perf_counter() - start)
    cache.crop(cache.length - (len(drafted) - kept))      # the rejected drafts' positions
    return drafted, kept, scores
