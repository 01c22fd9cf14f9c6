"""Events from the engine's thread into the server's event loop, a wake-up per batch of them,
and a reply's next tokens together every few milliseconds.

``loop.call_soon_threadsafe`` wakes the event loop through a socket for every call: a decode
step of 8 streams woke it 8 times, each wake-up a system call and a turn of the loop that
contends for the interpreter lock with the next step (5% of the engine thread's time in
``bench/serve.py`` at 8 streams). An :class:`Outbox` queues the events and asks for one
wake-up until the loop has taken them: the events of one step arrive together, in order.

With an ``interval``, events put with ``hold=True`` (a reply's tokens after its first) do not
wake the loop at all while it delivers on a timer of its own: every ``interval`` seconds, for
as long as events come, it takes what was put since, and each reply writes its tokens of
that time in one write (:func:`.app._events`: one server-sent event per token still). Each
token written to a socket cost the loop a system call whose network path woke the client,
both on the cores that compute the next step: on 2 cores, 20 ms gave SmolLM2 Q4_1's one
stream about 5% more tokens/s (medians of ten alternated pairs of 10-s windows), and 8
streams, a token each a step apart, no change beyond the noise. A reply's first token, its
end and errors are never held, and no token waits longer than ``interval``.

Example::

    >>> outbox = Outbox(asyncio.get_running_loop(), interval=0.02)
    >>> job.emit = lambda event: outbox.put(events, event)    # from any thread
"""

from __future__ import annotations

import threading

__all__ = ["Outbox", "STREAM_INTERVAL"]

#: The server's default ``interval``: seconds a stream's tokens after its first may wait to be
#: written with the next ones (``gradient serve --stream-interval``).
STREAM_INTERVAL = 0.02


class Outbox:
    """Delivers ``(queue, event)`` pairs to their ``asyncio.Queue`` in ``loop``, in the order
    they were put, from any thread; ``hold=True`` events wait up to ``interval`` seconds for
    the loop's next delivery (see the module docstring)."""

    def __init__(self, loop, interval: float = 0.0):
        self._loop, self._interval = loop, interval
        self._lock = threading.Lock()
        self._pending: list = []
        self._woken = False      # a wake-up is on its way: it takes what is put meanwhile
        self._ticking = False    # the loop's timer delivers within interval

    def put(self, queue, event, hold: bool = False) -> None:
        with self._lock:
            self._pending.append((queue, event))
            if self._woken or (hold and self._ticking):
                return          # the wake-up or the timer takes this one too
            self._woken = True
        self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            pending, self._pending, self._woken = self._pending, [], False
            start = self._interval > 0 and not self._ticking
            self._ticking = self._ticking or start
        self._hand_over(pending)
        if start:
            self._loop.call_later(self._interval, self._tick)

    def _tick(self) -> None:
        """The timer: what was held meanwhile; it stops once nothing came in an interval."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._ticking = bool(pending)
        self._hand_over(pending)
        if pending:
            self._loop.call_later(self._interval, self._tick)

    @staticmethod
    def _hand_over(pending) -> None:
        for queue, event in pending:
            queue.put_nowait(event)
