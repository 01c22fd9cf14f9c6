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

Example::

    >>> schedule = DraftSchedule(7)
    >>> k = schedule.next(room)          # 0: a plain step now
    >>> drafted = draft(ids, k); ...     # the model checks them
    >>> schedule.update(len(drafted), kept)
"""

from __future__ import annotations

__all__ = ["DraftSchedule", "LONGEST_WAIT", "FIRST_SIZE"]

#: the most plain steps between two tries after drafts keep failing
LONGEST_WAIT = 32
#: drafts asked for at the first try: a few, grown when kept
FIRST_SIZE = 3


class DraftSchedule:
    """The number of tokens to draft before each forward, at most ``most``."""

    def __init__(self, most: int):
        self.most = int(most)
        self.size = min(self.most, FIRST_SIZE)   # drafts asked for at the next try
        self._wait = 0               # plain steps left before the next try
        self._misses = 0             # tries in a row whose first draft was rejected

    def next(self, room: int) -> int:
        """How many tokens to draft now (``room``: how many may still be generated after the
        model's own next token); 0 for a plain step."""
        if self._wait > 0:
            self._wait -= 1
            return 0
        return max(0, min(self.size, room))

    def update(self, drafted: int, kept: int) -> None:
        """After a forward that checked ``drafted`` tokens and kept the first ``kept``."""
        if drafted == 0:
            return
        if kept == drafted:
            self.size = min(self.most, self.size + 2)
            self._misses = 0
        elif kept:
            self.size = max(1, kept + 1)
            self._misses = 0
        else:
            self.size = max(1, self.size // 2)
            self._misses += 1
            self._wait = min(LONGEST_WAIT, 2 ** (self._misses - 1))
