"""The generation side of the server: one worker thread (:class:`~.batching.Scheduler`) runs
the requests' generations, up to ``max_batch`` sequences decoded together, and hands each
request its text as it comes.

The HTTP side (:mod:`.app`) makes a :class:`Job` and :meth:`Engine.submit`\\ s it; the worker
runs each of its choices (``n``) as a sequence and calls ``job.emit`` with each event of
choice ``i``: ``("text", i, piece)`` as characters complete
(text that could begin a stop sequence is held back until it is clear), ``("token", i,
entry)`` per token when log-probabilities are asked for (OpenAI's ``{"token", "logprob",
"bytes", "top_logprobs"}``), ``("done", i, finish_reason)``; then ``("usage", usage)``, or
``("error", exception)``. A job asking for its prompt's log-probabilities (``echo`` with
``logprobs``) gets ``("prompt", entries)`` first: one entry per prompt token, the first
token's ``None``. ``job.cancel()`` (a client that went away) stops it at the next
token.

Example::

    >>> engine = Engine(model, tokenizer)
    >>> job = Job(prompt_ids, max_tokens=20, emit=print)
    >>> engine.submit(job)
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import numpy as np

from ..autograd import no_grad
from ..dtypes import int64
from ..generation import PromptCache
from ..generation.assistant import AssistantDrafter
from ..generation.json_output import token_texts
from ..generation.prompt_lookup import draft as lookup_draft
from ..generation.warm_up import WARM_UP_TOKENS, warm_up_prompt
from ..generation.limits import context_length, stop_ids
from ..ops.creation import tensor
from .batching import Scheduler
from ..errors import ArgumentValueError

__all__ = ["Engine", "Job", "QueueFull", "DRAFT_TOKENS"]

#: tokens a draft model proposes per check (transformers' num_assistant_tokens)
DRAFT_TOKENS = 5
#: A request may drop this many of a prompt cache's last positions and still take the cache
#: itself (a chat template re-rendering the end of the last reply); see Engine._cache_for.
BRANCH_POSITIONS = 16


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
    n: int = 1                        # choices, decoded side by side
    logprobs: int | None = None       # None: none; k: each token's, and the k likeliest
    prompt_logprobs: int | None = None  # the same for the prompt's tokens (echo)
    # the sampling settings beyond OpenAI's first ones (gradient.generation.build_processors)
    min_p: float | None = None
    repetition_penalty: float | None = None
    logit_bias: dict = field(default_factory=dict)   # token id -> bias
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    json_grammar: object = None       # a JsonGrammar the text is held to, or None
    call_grammar: object = None       # the JsonGrammar of a call after each <tool_call>
    cached_tokens: int = 0            # the prompt's positions a prompt cache held
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


class Engine:
    """The model, its tokenizer and the worker thread that runs :class:`Job`\\ s; at most
    ``max_queue`` wait (:meth:`submit` raises :class:`QueueFull` beyond). Up to ``max_batch``
    sequences are decoded together (:class:`~.batching.Scheduler`). ``draft``, a smaller model
    of the same vocabulary, proposes ``draft_tokens`` tokens at a time, or ``prompt_lookup``
    tokens come from the text itself (n-gram drafts), and the model checks them in one forward
    for a greedy sequence without log-probabilities while it runs alone (speculative
    decoding: the same text)."""

    def __init__(self, model, tokenizer, max_queue: int = 64, prompt_caches: int = 4,
                 draft=None, max_batch: int = 8, prompt_lookup: int = 0,
                 draft_tokens: int = DRAFT_TOKENS):
        self.model, self.tokenizer = model, tokenizer
        # the KV caches of the last few prompts (a shared system prompt, a conversation's
        # earlier turns): a request runs only what follows its longest shared prefix
        self._caches = [PromptCache(model) for _ in range(prompt_caches)]
        self.context = context_length(model)
        self.vocab_size = model.config.vocab_size     # a prompt's token ids are below it
        self._token_texts = None
        self._stops = {False: stop_ids(model, tokenizer), True: stop_ids(model, tokenizer, True)}
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.running = 0
        self.stats = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "cached_prompt_tokens": 0, "first_token_seconds": 0.0,
                      "decode_steps": 0, "decode_rows": 0, "kv_blocks_shared": 0}
        # speculative decoding for a greedy sequence running alone: drafts from a small model
        # or from the text itself (prompt lookup), checked several at a time
        if draft is not None and prompt_lookup:
            raise ArgumentValueError("Engine: give a draft model or prompt_lookup, not both")
        self.draft_tokens = int(prompt_lookup or draft_tokens)
        self.drafter = (AssistantDrafter(draft, model, self.context + self.draft_tokens)
                        if draft is not None else lookup_draft if prompt_lookup else None)
        # a sliding window would need each row's own window in a batch's mask: one at a time
        window = getattr(getattr(model, "config", None), "sliding_window", None)
        windowed = isinstance(window, int) and window < self.context
        self.max_batch = 1 if windowed else max(1, max_batch)
        self.scheduler = Scheduler(self, self.max_batch)
        threading.Thread(target=self.scheduler.run, daemon=True,
                         name="gradient serve engine").start()

    def warm_up(self, tokens: int = WARM_UP_TOKENS) -> None:
        """Answer one short greedy chat (:mod:`gradient.generation.warm_up`) of ``tokens``
        tokens through the worker and wait for it, then take it out of the counts: what a
        first request loads (kernels from numba's disk cache, its decode step captured and its
        loop loaded) is loaded before a client comes, as llama.cpp's server warms up before
        it listens. SmolLM2 Q4_1, an Intel Xeon: a first chat's first
        token 0.17 -> 0.09 s, its 8 tokens 0.42 -> 0.13 s; the warm-up about 0.4 s."""
        ids = warm_up_prompt(self.tokenizer)
        if not ids or len(ids) + tokens >= self.context:
            return
        done = threading.Event()
        counts = dict(self.stats)
        self.submit(Job(ids, tokens, emit=lambda event: event[0] in ("usage", "error") and
                        done.set(), temperature=0.0))
        done.wait()
        self.stats.update(counts)

    @property
    def token_texts(self) -> list:
        """Each token's text alone (:func:`~gradient.generation.json_output.token_texts`),
        for requests held to JSON; made at the first."""
        if self._token_texts is None:
            self._token_texts = token_texts(self.tokenizer, self.vocab_size)
        return self._token_texts

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are waiting") from None

    def _completed(self, job: Job, generated: int) -> None:
        """Count a request whose choices generated ``generated`` tokens; emit its usage."""
        usage = {"prompt_tokens": len(job.prompt_ids), "completion_tokens": generated,
                 "total_tokens": len(job.prompt_ids) + generated,
                 "prompt_tokens_details": {"cached_tokens": job.cached_tokens}}
        self.stats["requests"] += 1
        self.stats["prompt_tokens"] += usage["prompt_tokens"]
        self.stats["completion_tokens"] += generated
        job.emit(("usage", usage))

    def _logprobs(self, logits, token: int, top: int) -> dict:
        """OpenAI's log-probability entry of ``token`` under the model's ``logits`` (before
        any sampling setting), with the ``top`` likeliest tokens."""
        x = logits.astype(np.float64)
        high = x.max()
        log_total = high + np.log(np.exp(x - high).sum())
        likeliest = np.argpartition(-x, top - 1)[:top] if top else np.zeros(0, np.int64)
        likeliest = likeliest[np.argsort(-x[likeliest], kind="stable")]
        return {**self._entry(token, float(x[token] - log_total)),
                "top_logprobs": [self._entry(t, float(x[t] - log_total)) for t in likeliest]}

    def _entry(self, token: int, logprob: float | None) -> dict:
        """OpenAI's ``{"token", "logprob", "bytes"}`` of one token."""
        text = self.tokenizer.decode([int(token)])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    def _prompt_logprobs(self, ids, top: int) -> list:
        """OpenAI's log-probability entries of the prompt ``ids`` (a forward over all of it):
        each token's under the logits of the position before it, and the ``top`` likeliest
        there; the first token, which nothing predicts, has ``None`` for both."""
        with no_grad():
            logits = self.model(tensor(np.asarray(ids, np.int64)[None], dtype=int64)).logits
            x = np.asarray(logits[0].float().numpy(), np.float32)
        first = {**self._entry(ids[0], None), "top_logprobs": None}
        return [first] + [self._logprobs(x[t - 1], int(ids[t]), top)
                          for t in range(1, len(ids))]

    def _cache_for(self, prompt, busy: PromptCache | None = None) -> PromptCache:
        """The prompt cache for ``prompt``, moved to the front: the one sharing the longest
        prefix with it, unless the request would throw away more of what that cache holds
        than it shares (and more than ``BRANCH_POSITIONS``: a conversation's next turn keeps
        its cache). Then the least recently used cache takes a copy of the shared prefix
        and the other keeps its longer sequence, for the request that continues it: copying
        costs less than what is kept. With nothing shared, the least recently used one.
        ``busy`` (a cache a prompt is being read into) is never the one given: what it
        shares is copied."""
        caches = [c for c in self._caches if c is not busy]
        best = max(caches, key=lambda c: c.shared_prefix(prompt))
        shared, oldest = best.shared_prefix(prompt), caches[-1]
        in_busy = busy.shared_prefix(prompt) if busy is not None else 0
        if in_busy > shared:
            oldest.copy_prefix(busy, in_busy)
            best = oldest
        elif shared == 0:
            best = oldest
        elif len(best.ids) - shared > max(BRANCH_POSITIONS, shared) and oldest is not best:
            oldest.copy_prefix(best, shared)
            best = oldest
        self._caches.remove(best)
        self._caches.insert(0, best)
        return best
