"""How many tokens speculative decoding drafts next, from how the last drafts fared.

Checking k drafted tokens costs a forward of k + 1 tokens, which on the CPU costs nearly
k + 1 times a decode step's arithmetic: drafts pay only when the model keeps them. So the
number drafted follows the acceptance, as transformers' "heuristic" schedule for assistant
models does (from :data:`FIRST_SIZE`: two more after a draft kept whole, one more than were
kept otherwise, half as many after a draft rejected whole), and
after a draft rejected from its first token the next drafts wait a few plain steps, twice as
many after each further miss (up to :data:`LONGEST_WAIT`): where drafts keep failing (text
that does not repeat its input, a draft model that disagrees) decoding runs at nearly plain
speed; where they are kept, the drafts grow back to the limit within a few forwards.

Given the seconds each forward took (``timed=True``: :func:`~.speculation.speculative_step`,
the step of :func:`~.generate.generate` and of the server, times its own), drafts kept in part
count as a miss too when they do not pay: when the tokens of the forwards with drafts (the
drafting included) have cost more seconds each, on a running average, than plain steps' tokens.
A draft model nearly as fast as the model it drafts for (SmolLM2-135M in Q4_0 for itself in
F16: a draft step about 0.4 of a plain one) keeps about half its drafts in a chat, where
speculative decoding ran at 0.81x the plain speed (an Intel Xeon, ``bench/speculative.py``);
with the forwards timed, 0.96-0.99x (1.06-1.07x without the draft model's pass over the
prompt), and 1.32-1.53x on a prompt whose answer repeats it, as before within the noise. A
timed schedule starts with one plain step, to know what plain costs, and leaves out the seconds
of its first forward with drafts (a draft model reads the prompt at its first draft).

Example::

    >>> schedule = DraftSchedule(7)
    >>> k = schedule.next(room)          # 0: a plain step now
    >>> drafted = draft(ids, k); ...     # the model checks them
    >>> schedule.update(len(drafted), kept)
"""

from __future__ import annotations

__all__ = ["DraftSchedule", "LONGEST_WAIT", "FIRST_SIZE", "NEWEST_WEIGHT"]

#: the most plain steps between two tries after drafts keep failing
LONGEST_WAIT = 32
#: drafts asked for at the first try: a few, grown when kept
FIRST_SIZE = 3
#: the weight of the newest forward in the running averages of seconds per token
NEWEST_WEIGHT = 0.5


class DraftSchedule:
    """The number of tokens to draft before each forward, at most ``most``; ``timed``: the
    forwards' seconds will be given to :meth:`update` (see the module docstring)."""

    def __init__(self, most: int, timed: bool = False):
        self.most = int(most)
        self.size = min(self.most, FIRST_SIZE)   # drafts asked for at the next try
        self._wait = 1 if timed else 0   # plain steps left before the next try
        self._misses = 0             # tries in a row that were rejected or did not pay
        self._plain = None           # running average of a plain step's seconds
        self._drafting = None        # of the seconds per token of forwards with drafts
        self._drafted_before = False     # (the first such forward's seconds are left out)

    def next(self, room: int) -> int:
        """How many tokens to draft now (``room``: how many may still be generated after the
        model's own next token); 0 for a plain step."""
        if self._wait > 0:
            self._wait -= 1
            return 0
        return max(0, min(self.size, room))

    def update(self, drafted: int, kept: int, seconds: float | None = None) -> None:
        """After a forward that checked ``drafted`` tokens and kept the first ``kept``;
        ``seconds``: what the forward took, with the drafting (None: not timed)."""
        if drafted == 0:
            if seconds is not None:
                self._plain = _averaged(self._plain, seconds)
            return
        if kept == drafted:
            self.size = min(self.most, self.size + 2)
        elif kept:
            self.size = max(1, kept + 1)
        else:
            self.size = max(1, self.size // 2)
        pays = kept > 0
        first = not self._drafted_before
        self._drafted_before = True
        if seconds is not None and not first:
            self._drafting = _averaged(self._drafting, seconds / (kept + 1))
            pays = pays and (self._plain is None or self._drafting <= self._plain)
        if pays:
            self._misses = 0
            return
        self._misses += 1
        self._wait = min(LONGEST_WAIT, 2 ** (self._misses - 1))


def _averaged(average: float | None, value: float) -> float:
    return value if average is None else average + NEWEST_WEIGHT * (value - average)
