"""The Outbox that carries the engine thread's events into the server's event loop."""

import asyncio
import threading

from gradient.serve.outbox import Outbox


def test_events_from_threads_arrive_in_order_with_one_wake_up_per_batch():
    loop = asyncio.new_event_loop()
    wake_ups = []
    real = loop.call_soon_threadsafe
    loop.call_soon_threadsafe = lambda *a: (wake_ups.append(a), real(*a))[1]
    try:
        outbox, queues = Outbox(loop), [asyncio.Queue(), asyncio.Queue()]

        def engine():                      # while the loop is not running: one batch
            for i in range(100):
                outbox.put(queues[i % 2], i)
        thread = threading.Thread(target=engine)
        thread.start()
        thread.join()
        assert len(wake_ups) == 1

        async def take(n):
            return [[await q.get() for _ in range(n)] for q in queues]
        assert loop.run_until_complete(take(50)) == [list(range(0, 100, 2)),
                                                     list(range(1, 100, 2))]
        outbox.put(queues[0], "next")      # delivered: the next put wakes the loop again
        assert len(wake_ups) == 2
        assert loop.run_until_complete(queues[0].get()) == "next"
    finally:
        loop.close()
