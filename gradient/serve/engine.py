"""The generation side of the server: one worker thread runs the requests' generations and
hands each request its text as it comes: up to ``max_batch`` sequences decoded together
(:mod:`.batching`), or, with a draft model, one after another.

The HTTP side (:mod:`.app`) makes a :class:`Job` and :meth:`Engine.submit`\\ s it; the worker
runs it through :class:`~gradient.generation.TokenStream`, once per choice (``n``), and calls
``job.emit`` with each event of choice ``i``: ``("text", i, piece)`` as characters complete
(text that could begin a stop sequence is held back until it is clear), ``("token", i,
entry)`` per token when log-probabilities are asked for (OpenAI's ``{"token", "logprob",
"bytes", "top_logprobs"}``), ``("done", i, finish_reason)``; then ``("usage", usage)``, or
``("error", exception)``. ``job.cancel()`` (a client that went away) stops it at the next
token.

Example::

    >>> engine = Engine(model, tokenizer)
    >>> job = Job(prompt_ids, max_tokens=20, emit=print)
    >>> engine.submit(job)
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..autograd import no_grad
from ..generation import PromptCache, TokenStream
from ..generation.limits import context_length, stop_ids
from ..tokenizers import IncrementalDecoder
from .batching import Scheduler
from .stops import StopFilter

__all__ = ["Engine", "Job", "QueueFull"]


class QueueFull(Exception):
    """The engine's queue holds as many requests as it may (the server answers 503)."""


@dataclass
class Job:
    """One generation: the prompt's ids, the sampling settings, and where its events go."""

    prompt_ids: list
    max_tokens: int
    emit: callable
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list = field(default_factory=list)
    chat: bool = False
    n: int = 1                        # choices, generated one after the other
    logprobs: int | None = None       # None: none; k: each token's, and the k likeliest
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


class Engine:
    """The model, its tokenizer and the worker thread that runs :class:`Job`\\ s; at most
    ``max_queue`` wait (:meth:`submit` raises :class:`QueueFull` beyond). Up to ``max_batch``
    sequences are decoded together (:class:`~.batching.Scheduler`). ``draft``, a smaller model
    of the same vocabulary, drafts tokens that the model checks several at a time for greedy
    requests without log-probabilities (speculative decoding: the same text); the requests
    then run one after another."""

    def __init__(self, model, tokenizer, max_queue: int = 64, prompt_caches: int = 4,
                 draft=None, max_batch: int = 8):
        self.model, self.tokenizer, self.draft = model, tokenizer, draft
        # the KV caches of the last few prompts (a shared system prompt, a conversation's
        # earlier turns): a request runs only what follows its longest shared prefix
        self._caches = [PromptCache(model) for _ in range(prompt_caches)]
        self.context = context_length(model)
        self._stops = {False: stop_ids(model, tokenizer), True: stop_ids(model, tokenizer, True)}
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.running = 0
        self.stats = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "cached_prompt_tokens": 0, "first_token_seconds": 0.0,
                      "decode_steps": 0, "decode_rows": 0}
        # continuous batching (.batching) unless speculation needs one sequence at a time, or
        # a sliding window would need each row's own window in the mask
        window = getattr(getattr(model, "config", None), "sliding_window", None)
        batched = draft is None and max_batch > 1 and not (
            isinstance(window, int) and window < self.context)
        self.max_batch = max_batch if batched else 1
        work = Scheduler(self, max_batch).run if batched else self._work
        threading.Thread(target=work, daemon=True, name="gradient serve engine").start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are waiting") from None

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job.cancelled.is_set():
                continue
            self.running = 1
            try:
                self._run(job)
            except Exception as e:   # noqa: BLE001  (the request fails; the server goes on)
                job.emit(("error", e))
            finally:
                self.running = 0

    def _run(self, job: Job) -> None:
        generated = 0
        for index in range(job.n):
            seed = None if job.seed is None else job.seed + index
            done = self._choice(job, index, seed)
            if done is None:        # cancelled
                return
            generated += done
        self._completed(job, generated)

    def _completed(self, job: Job, generated: int) -> None:
        """Count a request whose choices generated ``generated`` tokens; emit its usage."""
        usage = {"prompt_tokens": len(job.prompt_ids), "completion_tokens": generated,
                 "total_tokens": len(job.prompt_ids) + generated}
        self.stats["requests"] += 1
        self.stats["prompt_tokens"] += usage["prompt_tokens"]
        self.stats["completion_tokens"] += generated
        job.emit(("usage", usage))

    def _choice(self, job: Job, index: int, seed) -> int | None:
        """Choice ``index`` of ``job``: its events; the tokens it generated (None if the job
        was cancelled)."""
        max_tokens = min(job.max_tokens, self.context - len(job.prompt_ids))
        greedy = job.temperature == 0
        cache = self._cache_for(job.prompt_ids)
        start = time.perf_counter()
        steps = TokenStream(self.model, [job.prompt_ids], max_tokens, do_sample=not greedy,
                            temperature=1.0 if greedy else job.temperature,
                            top_p=None if greedy else job.top_p,
                            top_k=None if greedy else job.top_k, seed=seed,
                            eos_token_id=sorted(self._stops[job.chat]), prompt_cache=cache,
                            keep_logits=job.logprobs is not None,
                            assistant_model=(self.draft if greedy and job.logprobs is None
                                             else None))
        decoder = IncrementalDecoder(self.tokenizer, skip_special_tokens=True)
        held = StopFilter(job.stop)
        generated, finish = 0, "length"
        with no_grad():
            for (token,) in steps:
                if job.cancelled.is_set():
                    return None
                generated += 1
                if generated == 1 and index == 0:
                    self.stats["first_token_seconds"] += time.perf_counter() - start
                    self.stats["cached_prompt_tokens"] += cache.reused
                if token in self._stops[job.chat]:
                    finish = "stop"
                    break
                if job.logprobs is not None:
                    job.emit(("token", index, self._logprobs(steps.logits[0], token,
                                                             job.logprobs)))
                piece = held.push(decoder.push(token))
                if piece:
                    job.emit(("text", index, piece))
                if held.stopped:
                    finish = "stop"
                    break
        if finish == "length" or not held.stopped:
            rest = held.push(decoder.flush()) + held.flush()
            if rest:
                job.emit(("text", index, rest))
        job.emit(("done", index, finish))
        return generated

    def _logprobs(self, logits, token: int, top: int) -> dict:
        """OpenAI's log-probability entry of ``token`` under the model's ``logits`` (before
        any sampling setting), with the ``top`` likeliest tokens."""
        x = logits.astype(np.float64)
        high = x.max()
        log_total = high + np.log(np.exp(x - high).sum())

        def entry(t):
            text = self.tokenizer.decode([int(t)])
            return {"token": text, "logprob": float(x[t] - log_total),
                    "bytes": list(text.encode("utf-8"))}
        likeliest = np.argpartition(-x, top - 1)[:top] if top else np.zeros(0, np.int64)
        likeliest = likeliest[np.argsort(-x[likeliest], kind="stable")]
        return {**entry(token), "top_logprobs": [entry(t) for t in likeliest]}

    def _cache_for(self, prompt) -> PromptCache:
        """The prompt cache sharing the longest prefix with ``prompt``, moved to the front;
        with none shared, the least recently used one."""
        best = max(self._caches, key=lambda c: c.shared_prefix(prompt))
        if best.shared_prefix(prompt) == 0:
            best = self._caches[-1]
        self._caches.remove(best)
        self._caches.insert(0, best)
        return best
