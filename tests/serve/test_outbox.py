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


def test_held_events_go_with_the_timers_next_delivery_within_the_interval():
    """With an interval, an event put with hold=True does not wake the loop while its timer
    runs: the timer delivers it (in order with the others) at most an interval later; the
    timer stops once an interval passes without events, and a held event then wakes the
    loop again."""
    loop = asyncio.new_event_loop()
    wake_ups = []
    real = loop.call_soon_threadsafe
    loop.call_soon_threadsafe = lambda *a: (wake_ups.append(a), real(*a))[1]
    interval = 0.05
    try:
        outbox, queue = Outbox(loop, interval), asyncio.Queue()

        async def take(n):
            return [await queue.get() for _ in range(n)]

        def put(items, hold):
            thread = threading.Thread(target=lambda: [outbox.put(queue, i, hold=hold)
                                                      for i in items])
            thread.start()
            thread.join()

        put(["first"], hold=True)            # no timer yet: it wakes the loop
        assert len(wake_ups) == 1
        assert loop.run_until_complete(take(1)) == ["first"]
        started = loop.time()
        put([1, 2, 3], hold=True)            # the timer runs: no wake-up
        assert len(wake_ups) == 1
        assert loop.run_until_complete(take(3)) == [1, 2, 3]
        assert loop.time() - started <= 2 * interval
        put(["end"], hold=False)             # not held: wakes the loop at once
        assert len(wake_ups) == 2
        assert loop.run_until_complete(take(1)) == ["end"]
        loop.run_until_complete(asyncio.sleep(3 * interval))   # idle: the timer stops
        put(["again"], hold=True)
        assert len(wake_ups) == 3
        assert loop.run_until_complete(take(1)) == ["again"]
    finally:
        loop.close()


def test_without_an_interval_every_event_is_delivered_at_once():
    loop = asyncio.new_event_loop()
    try:
        outbox, queue = Outbox(loop), asyncio.Queue()
        outbox.put(queue, "a", hold=True)
        assert loop.run_until_complete(queue.get()) == "a"
        outbox.put(queue, "b", hold=True)      # (no timer: a held event wakes the loop)
        assert loop.run_until_complete(asyncio.wait_for(queue.get(), 1)) == "b"
    finally:
        loop.close()


def test_a_streams_events_delivered_together_are_written_together():
    """The events a delivery brings a stream become one write of one server-sent event each
    (what the openai client parses as one chunk per token), the reply's end with the last."""
    from gradient.serve.app import _events

    class Job:
        n, logprobs = 1, None

        def cancel(self):
            pass

    async def writes():
        events = asyncio.Queue()
        stream = _events(events, [Job()], "chatcmpl-1", True, "m", True, [""])
        events.put_nowait(("text", 0, "Hel"))
        first = await stream.__anext__()
        for event in [("text", 0, "lo"), ("text", 0, " there"), ("done", 0, "stop"),
                      ("usage", {"prompt_tokens": 1, "completion_tokens": 3,
                                 "total_tokens": 4,
                                 "prompt_tokens_details": {"cached_tokens": 0}})]:
            events.put_nowait(event)
        return [first] + [w async for w in stream]

    loop = asyncio.new_event_loop()
    try:
        first, rest = loop.run_until_complete(writes())
    finally:
        loop.close()
    assert first.count("data: ") == 2 and '"content": "Hel"' in first    # role, then text
    assert rest.count("data: ") == 5 and rest.endswith("data: [DONE]\n\n")
    assert rest.index('"lo"') < rest.index('" there"') < rest.index('"stop"')
