"""Continuous batching: the requests' sequences decoded together, joining and leaving the
running batch between steps.

Each step feeds every running sequence its last token in one forward (a
:class:`~gradient.generation.PagedKVCache` holds them, each at its own position, in blocks
taken as the sequence grows and given back when it leaves), so the weights are read once per
step for the whole batch rather than once per sequence. Between
steps, finished and cancelled sequences leave, and waiting ones join: a joining sequence's
prompt is prefilled on its own (in the :class:`~gradient.generation.PromptCache` that shares
the longest prefix with it, so a shared system prompt or a conversation's earlier turns are not
run again), then its keys and values are copied into a free row. In a paged batch, the row
holds the blocks that already hold a prefix of its ids (another row's system prompt, or blocks
kept from a sequence that left) instead of copies, and a joining prompt starts from them
where they hold more than its prompt cache. When a sequence finishes, its row is copied back
into its prompt cache, so the conversation's next turn finds the reply there too.

A long prompt joining while others decode is prefilled :data:`PREFILL_CHUNK` tokens at a
time, a decode step of the running sequences between its chunks (llama.cpp's server and vLLM
split long prompts likewise): the streams already running slow down while it is read instead
of stopping for all of it (SmolLM2 Q4_1: a 1,000-token prompt takes over a second), and short
prompts arriving meanwhile start at once (longer ones wait for it, in order).

A greedy sequence running alone may speculate (a draft model's tokens, or prompt lookup's
n-gram drafts, checked several per forward: the same text). Every choice (``n``) of a
request is a sequence of its own. Sampling follows
:class:`~gradient.generation.TokenStream`'s rules (the same processors, one random generator
per choice seeded with ``seed + i``), and a sequence emits the events :mod:`.engine`
describes.

Example::

    >>> scheduler = Scheduler(engine, max_batch=8)
    >>> scheduler.run()          # in the engine's worker thread, for ever
"""

from __future__ import annotations

import collections
import queue
import time

import numpy as np

from ..autograd import no_grad
from ..dtypes import int64
from ..generation import BatchKVCache, PagedKVCache, build_processors, select_tokens
from ..generation.draft_schedule import DraftSchedule
from ..generation.json_output import JsonOutput
from ..generation.speculation import speculative_step
from ..kernels import rows_alone
from ..ops.creation import randint, tensor
from ..tokenizers import IncrementalDecoder
from .stops import StopFilter
from .tools import CALL_OPEN

__all__ = ["Scheduler", "PREFILL_CHUNK"]

#: Prompt tokens a joining sequence runs between two decode steps of the running ones.
PREFILL_CHUNK = 128


class _Sequence:
    """One choice of a request while it runs: its ids, its sampler and its text filter."""

    def __init__(self, job, index: int, max_tokens: int, stops, tokenizer):
        self.job, self.index, self.stops = job, index, stops
        prompt = np.asarray(job.prompt_ids, np.int64)
        self.prompt_length, self.max_tokens = len(prompt), max_tokens
        self.ids = np.empty(len(prompt) + max_tokens, np.int64)   # prompt, then each token
        self.ids[:len(prompt)] = prompt
        self.length = len(prompt)
        greedy = job.temperature == 0
        self.do_sample = not greedy
        self.processors = build_processors(
            not greedy, job.temperature, job.top_k, job.top_p, job.min_p,
            job.repetition_penalty, logit_bias=job.logit_bias,
            presence_penalty=job.presence_penalty, frequency_penalty=job.frequency_penalty,
            prompt_length=len(prompt))
        self.rng = None
        if not greedy:
            seed = job.seed + index if job.seed is not None else \
                int(randint(0, 2 ** 62, (1,)).item())
            # (OpenAI's seed is any integer; NumPy's generators take non-negative ones)
            self.rng = np.random.default_rng(seed if seed >= 0 else seed % 2 ** 64)
        self.decoder = IncrementalDecoder(tokenizer, skip_special_tokens=True)
        self.held = StopFilter(job.stop)
        self.generated, self.finish = 0, None
        self.prompt_cache = None
        self.cache = None          # its own one-sequence cache, when it is not in the batch
        self.started = 0.0         # when it started (perf_counter): its first token's wait
        self.schedule = None       # how many tokens to draft, when it speculates
        self.json = None           # its JsonOutput, when its text is held to JSON
        self.recent = ""           # its latest text, watched for a tool call's beginning


class Scheduler:
    """The engine's worker loop with up to ``max_batch`` sequences running at once.

    A sequence running alone decodes in its own one-sequence cache (its prompt cache's), where
    the model replays its fused decode step: one stream is as fast as without batching. When a
    second one joins, the first moves into the batch; when one is left, it moves out again."""

    def __init__(self, engine, max_batch: int):
        self.engine, self.max_batch = engine, max_batch
        self._batch = None  # the batch's cache, made when a second sequence first joins
        self.running: list[_Sequence] = []       # in the batch: sequence i is in row i
        self.solo: _Sequence | None = None       # or the one sequence, in its own cache
        self.prefilling: _Sequence | None = None  # a long prompt read a chunk per step
        self.waiting: collections.deque = collections.deque()   # (job, choice) not started
        # id(job) -> [job, its choices not finished, its completion tokens so far]
        self._left: dict = {}

    @property
    def batch(self) -> PagedKVCache | BatchKVCache:
        """The batch's cache, made on first use. A :class:`PagedKVCache` where attention reads
        its blocks in place (on the CPU, a model without a sliding window): its memory follows
        the positions the sequences hold. Elsewhere a :class:`BatchKVCache`, whose rows hold
        the whole context each (on the CPU, only pages written cost memory; on a GPU, all)."""
        if self._batch is None:
            model, rows, context = self.engine.model, self.max_batch, self.engine.context
            stack = getattr(model, "model", None) or getattr(model, "transformer", None)
            on_cpu = all(p.device.type == "cpu" for p in model.parameters())
            paged = on_cpu and getattr(stack, "window", None) is None
            # padded steps: a batch's step has 2, 4 or 8 ... rows, each a decode loop
            # compiled once, rather than one for every number of sequences running
            self._batch = (PagedKVCache(model, rows, context, pad_steps=True) if paged
                           else BatchKVCache(model, rows, context))
        return self._batch

    @property
    def size(self) -> int:
        return len(self.running) + (self.solo is not None)

    def run(self) -> None:
        while True:
            try:
                self._admit()
                if self.prefilling is not None:
                    self._prefill_chunk()
                if self.size:
                    self._step()
            except Exception as e:   # noqa: BLE001  (the requests fail; the server goes on)
                for job, _, _ in list(self._left.values()):
                    job.emit(("error", e))
                self._left.clear()
                self.running.clear()
                self.waiting.clear()
                self.solo = self.prefilling = None
                if self._batch is not None:
                    self._batch.clear()
            self.engine.running = self.size

    # -- joining
    def _admit(self) -> None:
        """Start waiting choices while rows are free; wait for a request when nothing runs.
        While a long prompt is being read, only prompts short enough to read at once start
        (the next longer one waits for it, and those behind it too: in order), and a row is
        kept for it."""
        while self.size + (self.prefilling is not None) < self.max_batch:
            if not self.waiting:
                try:
                    job = self.engine._queue.get(block=not self.size and
                                                 self.prefilling is None)
                except queue.Empty:
                    return
                if job.cancelled.is_set():
                    continue
                self._left[id(job)] = [job, job.n, 0]
                self.waiting.extend((job, i) for i in range(job.n))
            job, index = self.waiting.popleft()
            if job.cancelled.is_set() or id(job) not in self._left:
                self._left.pop(id(job), None)
                continue
            if self.prefilling is not None and len(job.prompt_ids) > PREFILL_CHUNK:
                self.waiting.appendleft((job, index))
                return
            try:
                self._start(job, index)
            except Exception as e:   # noqa: BLE001  (this request fails, the others go on)
                self._drop(job)
                job.emit(("error", e))

    def _start(self, job, index: int) -> None:
        engine = self.engine
        max_tokens = min(job.max_tokens, engine.context - len(job.prompt_ids))
        seq = _Sequence(job, index, max_tokens, engine._stops[job.chat], engine.tokenizer)
        if job.json_grammar is not None:
            seq.json = JsonOutput(engine.token_texts, job.json_grammar)
        if index == 0 and job.prompt_logprobs is not None:
            job.emit(("prompt", engine._prompt_logprobs(job.prompt_ids, job.prompt_logprobs)))
        if max_tokens <= 0:
            seq.finish = "length"
            self._finish(seq)
            return
        if self.solo is not None:    # before its prompt cache can be taken by this one
            self._into_batch(self.solo)
        seq.started = time.perf_counter()
        P = seq.prompt_length
        reading = self.prefilling.prompt_cache if self.prefilling is not None else None
        prompt_cache = seq.prompt_cache = engine._cache_for(seq.ids[:P], busy=reading)
        cache, first = prompt_cache.take(seq.ids, P, P + max_tokens)
        if isinstance(self._batch, PagedKVCache):     # a longer prefix in the batch's blocks
            first = prompt_cache.reused = self._batch.copy_prefix_to(seq.ids, cache, first,
                                                                     P - 1)
        seq.cache, seq.length = cache, first
        if P - first > PREFILL_CHUNK and self.size:   # others decode between its chunks
            self.prefilling = seq                      # (read from the worker's loop)
        else:
            self._joined(seq, self._prefill(seq, P))

    def _prefill(self, seq: _Sequence, end: int) -> np.ndarray:
        """Run the sequence's prompt from its length to ``end`` in its own cache: the scores
        of the last position (1, vocab)."""
        with no_grad():
            logits = self.engine.model(tensor(seq.ids[None, seq.length:end], dtype=int64),
                                       cache=seq.cache, logits_to_keep=1).logits
            scores = np.array(logits[:, -1].float().numpy(), dtype=np.float32)
        seq.length = end
        return scores

    def _prefill_chunk(self) -> None:
        """The next :data:`PREFILL_CHUNK` tokens of the long prompt being read (all the rest
        once nothing else runs); when it is read, its sequence joins."""
        seq = self.prefilling
        if seq.job.cancelled.is_set():         # its prompt cache keeps what was read
            self.prefilling = None
            self._left.pop(id(seq.job), None)
            return
        P = seq.prompt_length
        end = min(P, seq.length + PREFILL_CHUNK) if self.size else P
        try:
            scores = self._prefill(seq, end)
            if end == P:
                self.prefilling = None
                self._joined(seq, scores)
        except Exception as e:   # noqa: BLE001  (this request fails, the others go on)
            self.prefilling = None
            self._drop(seq.job)
            seq.job.emit(("error", e))

    def _joined(self, seq: _Sequence, scores: np.ndarray) -> None:
        """A sequence whose prompt is read (``scores``: its last position's) joins the
        batch, or runs alone, with its first token."""
        job, engine = seq.job, self.engine
        if self.solo is not None:     # (a short prompt that started while this one was read)
            self._into_batch(self.solo)
        if self.running:
            self._into_batch(seq)
        else:
            self.solo = seq
        if seq.index == 0:
            engine.stats["first_token_seconds"] += time.perf_counter() - seq.started
            engine.stats["cached_prompt_tokens"] += seq.prompt_cache.reused
            job.cached_tokens = seq.prompt_cache.reused
        self._choose(seq, scores)
        if seq.finish is not None:
            self._retire(seq)

    def _into_batch(self, seq: _Sequence) -> None:
        """Move a sequence from its own cache into the next row of the batch."""
        batch = self.batch
        shared = getattr(batch, "blocks_shared", 0)      # (a PagedKVCache's count)
        batch.add(seq.cache, seq.cache.length, ids=seq.ids)
        self.engine.stats["kv_blocks_shared"] += getattr(batch, "blocks_shared", 0) - shared
        self.running.append(seq)
        if seq is self.solo:
            self.solo = None
        seq.cache = None

    def _out_of_batch(self) -> None:
        """Move the batch's one sequence into a cache of its own (its prompt cache's where that
        has room for the rest of it)."""
        seq = self.running[0]
        held = int(self.batch.lengths[0])
        cache = seq.prompt_cache.cache
        need = seq.prompt_length + seq.max_tokens
        if cache is None or cache.max_length < need:
            cache = self.engine.model.new_cache(1, need)
        self.batch.copy_to(0, cache, held)
        cache.length = held
        self.batch.remove(0)
        self.running.clear()
        seq.cache, self.solo = cache, seq

    # -- a step
    def _step(self) -> None:
        for seq in [s for s in self.running + [self.solo] if s and s.job.cancelled.is_set()]:
            self._retire(seq)
        if self.solo is not None:
            seq = self.solo
            if self._speculates(seq):
                self._speculative_step(seq)
            else:
                with no_grad():
                    logits = self.engine.model(tensor([[seq.ids[seq.length - 1]]], dtype=int64),
                                               cache=seq.cache, logits_to_keep=1).logits
                    scores = np.array(logits[:, -1].float().numpy(), dtype=np.float32)
                self._count(1)
                self._choose(seq, scores)
            if seq.finish is not None:
                self._retire(seq)
            return
        if not self.running:
            return
        last = [seq.ids[seq.length - 1] for seq in self.running]
        ids, mask, positions = self.batch.step_inputs(last)
        with no_grad(), rows_alone():     # each sequence's bits as it would get alone
            logits = self.engine.model(ids, attention_mask=mask, position_ids=positions,
                                       cache=self.batch, logits_to_keep=1).logits
            scores = np.array(logits[:, -1].float().numpy(), dtype=np.float32)
        self._count(len(self.running))
        for i, seq in enumerate(list(self.running)):
            self._choose(seq, scores[i:i + 1])
        for seq in [s for s in self.running if s.finish is not None]:
            self._retire(seq)
        if (len(self.running) == 1 and not self.waiting and self.engine._queue.empty()
                and self.prefilling is None):   # (whose prompt cache may be the last one's)
            self._out_of_batch()

    def _speculates(self, seq: _Sequence) -> bool:
        """Whether drafted tokens can stand in for the sequence's own choices: greedy, with
        nothing processing the scores, no log-probabilities to report and no grammar holding
        the text (JSON output, or tool calls that may begin: a draft kept past a
        ``<tool_call>`` would not be held)."""
        return (self.engine.drafter is not None and not seq.do_sample
                and not len(seq.processors) and seq.job.logprobs is None and seq.json is None
                and seq.job.call_grammar is None)

    def _speculative_step(self, seq: _Sequence) -> None:
        """The last token and up to ``draft_tokens`` drafted ones in one forward: the drafts
        the model would have chosen itself are kept, then its own choice after them
        (greedy decoding's text, several tokens per forward when the drafts are good)."""
        engine = self.engine
        if seq.schedule is None:    # (timed: a sequence drafts only while it runs alone)
            seq.schedule = DraftSchedule(engine.draft_tokens, timed=True)
        _, kept, scores = speculative_step(engine.model, seq.cache, seq.ids[:seq.length],
                                           engine.drafter, seq.schedule,
                                           seq.max_tokens - seq.generated - 1)
        self._count(1)
        for j in range(kept + 1):
            self._choose(seq, scores[j:j + 1])
            if seq.finish is not None:
                break

    def _count(self, rows: int) -> None:
        self.engine.stats["decode_steps"] += 1
        self.engine.stats["decode_rows"] += rows

    def _choose(self, seq: _Sequence, scores: np.ndarray) -> None:
        """Pick the sequence's next token from its logits ``(1, vocab)`` and emit it."""
        job, engine = seq.job, self.engine
        raw = scores[0]
        scores = seq.processors(seq.ids[None, :seq.length], scores)
        if seq.json is not None:      # the likeliest token, or a draw, among those that fit
            token = seq.json.choose(scores[0], seq.do_sample, seq.rng)
            seq.json.advance(token)
        else:
            token = int(select_tokens(scores, seq.do_sample, seq.rng)[0])
        seq.generated += 1
        if token in seq.stops:
            seq.finish = "stop"
            return
        if job.logprobs is not None:
            job.emit(("token", seq.index, engine._logprobs(raw, token, job.logprobs)))
        seq.ids[seq.length] = token
        seq.length += 1
        text = seq.decoder.push(token)
        if seq.json is not None and not seq.json.ends and seq.json.complete:
            seq.json = None                   # a tool call is whole: free text again
        elif job.call_grammar is not None and seq.json is None:
            self._watch_for_a_call(seq, text)
        piece = seq.held.push(text)
        if piece:
            job.emit(("text", seq.index, piece))
        if seq.held.stopped or (seq.json is not None and seq.json.complete):
            seq.finish = "stop"
        elif seq.generated == seq.max_tokens:
            seq.finish = "length"

    def _watch_for_a_call(self, seq: _Sequence, text: str) -> None:
        """Once the text writes ``<tool_call>``, what follows is held to a call of the tools
        until its object closes (llama.cpp's lazy grammar: a call is well formed, the rest of
        the reply free)."""
        seq.recent = (seq.recent + text)[-4 * len(CALL_OPEN):]
        at = seq.recent.find(CALL_OPEN)
        if at < 0:
            return
        held = JsonOutput(self.engine.token_texts, seq.job.call_grammar, ends=False)
        if held.take(seq.recent[at + len(CALL_OPEN):]):    # (a token may run past the marker)
            seq.json = held
        seq.recent = ""

    # -- leaving
    def _retire(self, seq: _Sequence) -> None:
        """Take ``seq`` out of the running ones; keep its keys and values in its prompt
        cache."""
        cancelled = seq.job.cancelled.is_set()
        pc = seq.prompt_cache
        if seq is self.solo:
            self.solo = None
            if not cancelled and pc.cache is seq.cache:
                # (a stop among accepted drafts leaves positions past the ids kept)
                pc.hold(seq.ids, min(seq.cache.length, seq.length))
        else:
            row = self.running.index(seq)
            held = int(self.batch.lengths[row])
            reading = self.prefilling is not None and self.prefilling.prompt_cache is pc
            if (not cancelled and not reading and pc.cache is not None
                    and pc.cache.max_length >= held):
                self.batch.copy_to(row, pc.cache, held)
                pc.hold(seq.ids, held)
            self._leave_row(row)
        if cancelled:
            self._left.pop(id(seq.job), None)
        else:
            self._finish(seq)

    def _leave_row(self, row: int) -> None:
        moved = self.batch.remove(row)
        last = self.running.pop()
        if moved is not None:
            self.running[row] = last

    def _drop(self, job) -> None:
        """Forget a failed request: its running choices leave, the waiting ones will not run."""
        self._left.pop(id(job), None)
        if self.solo is not None and self.solo.job is job:
            self.solo = None
        if self.prefilling is not None and self.prefilling.job is job:
            self.prefilling = None
        for seq in [s for s in self.running if s.job is job]:
            self._leave_row(self.running.index(seq))

    def _finish(self, seq: _Sequence) -> None:
        """Emit the end of the sequence's text and its ``done``; the request's usage after
        its last choice."""
        job, finish = seq.job, seq.finish
        if finish == "length" or not seq.held.stopped:
            rest = seq.held.push(seq.decoder.flush()) + seq.held.flush()
            if rest:
                job.emit(("text", seq.index, rest))
        job.emit(("done", seq.index, finish))
        left = self._left.get(id(job))
        if left is None:
            return
        left[1] -= 1
        left[2] += seq.generated
        if left[1] == 0:
            del self._left[id(job)]
            self.engine._completed(job, left[2])
