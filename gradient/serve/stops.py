"""OpenAI's ``stop`` sequences on streamed text: what may be sent now, and where to stop.

Example::

    >>> held = StopFilter(["\\n\\n"])
    >>> held.push("Hello\\n")        # "Hello": the newline could begin a stop sequence
    >>> held.push("\\nmore")         # "": the stop sequence came, nothing after it is sent
    >>> held.stopped
    True
"""

from __future__ import annotations

__all__ = ["StopFilter"]


class StopFilter:
    """Text with the OpenAI ``stop`` sequences applied: everything before the first stop
    sequence, holding back a tail that could still become one."""

    def __init__(self, stops):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def push(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        keep = max((k for s in self.stops for k in range(1, len(s))
                    if self.pending.endswith(s[:k])), default=0)
        out, self.pending = self.pending[:len(self.pending) - keep], self.pending[
            len(self.pending) - keep:]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out
