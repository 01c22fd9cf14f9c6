"""Events from the engine's thread into the server's event loop, a wake-up per batch of them.

``loop.call_soon_threadsafe`` wakes the event loop through a socket for every call: a decode
step of 8 streams woke it 8 times, each wake-up a system call and a turn of the loop that
contends for the interpreter lock with the next step (5% of the engine thread's time in
``bench/serve.py`` at 8 streams). An :class:`Outbox` queues the events and asks for one
wake-up until the loop has taken them: the events of one step arrive together, in order.

Example::

    >>> outbox = Outbox(asyncio.get_running_loop())
    >>> job.emit = lambda event: outbox.put(events, event)    # from any thread
"""

from __future__ import annotations

import threading

__all__ = ["Outbox"]


class Outbox:
    """Delivers ``(queue, event)`` pairs to their ``asyncio.Queue`` in ``loop``, in the order
    they were put, from any thread."""

    def __init__(self, loop):
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list = []
        self._woken = False

    def put(self, queue, event) -> None:
        with self._lock:
            self._pending.append((queue, event))
            if self._woken:
                return          # the loop has yet to deliver: it takes this one too
            self._woken = True
        self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            pending, self._pending, self._woken = self._pending, [], False
        for queue, event in pending:
            queue.put_nowait(event)
