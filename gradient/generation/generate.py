"""The generation loop: prefill the prompt into a KV cache, then decode one token per step.

What one call does, for a batch of ``B`` prompts of ``T`` tokens and ``N = max_new_tokens``:

1. Allocate everything up front: the KV cache for ``T + N`` positions
   (``model.new_cache``), the output ids ``(B, T + N)``, and, for a padded batch, the
   attention mask ``(B, T + N)`` of which each step passes a longer slice. Nothing grows after
   that: the cache is written in place, never concatenated.
2. Prefill: one forward over the prompt with ``logits_to_keep=1``, which fills the cache and
   gives the logits of the last position only.
3. Each step: the logits go through the processors (:mod:`.sampling`), a token is picked,
   written into the output, checked against eos and stop strings, and fed back as the only
   input of the next forward.

Batches are left-padded, as in transformers: ``attention_mask`` marks padding with 0,
position ids are ``cumsum(mask) - 1`` (0 at the padding), and every new token is a real one
(mask 1) at the next position of its row. A sequence that has finished (eos or a stop string)
gets ``pad_token_id`` from then on, and the loop ends when every sequence has finished or
after ``N`` tokens.

Example::

    >>> ids = gradient.tensor([[464, 3290, 318]])
    >>> out = generate(model, ids, max_new_tokens=20)                         # greedy
    >>> out = generate(model, ids, 20, do_sample=True, top_p=0.9, seed=0)    # nucleus sampling
    >>> for step_ids in generate_tokens(model, ids, 20):                     # one list per step
    ...     print(step_ids)
"""

from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np

from ..autograd import no_grad
from ..dtypes import int64
from ..errors import GenerationError, ShapeError
from ..kernels import rows_alone
from ..ops.creation import randint, tensor
from ..tensor import Tensor
from .assistant import AssistantDrafter
from .draft_schedule import DraftSchedule
from .prompt_lookup import draft
from .sampling import build_processors, check_sampling, select_tokens
from .speculation import speculative_step
from .stopping import StopStrings

__all__ = ["generate", "generate_tokens", "TokenStream"]

#: Tokens per forward when a long prompt is prefilled in pieces to report its progress.
PREFILL_CHUNK = 512


def _as_ids(value, name: str) -> np.ndarray:
    """Token ids (or a mask) as a 2-D int64 NumPy array; a 1-D input is one sequence."""
    if isinstance(value, Tensor):
        array = value.detach().numpy()
    else:
        array = np.asarray(value)
        if array.size == 0 and array.dtype == np.float64:   # [] or [[]]: no ids, not floats
            array = array.astype(np.int64)
    if array.dtype.kind not in "iub" or array.ndim not in (1, 2):
        raise ShapeError(f"{name}: expected integer ids of shape (batch, length) or (length,), "
                         f"got {array.dtype} of shape {array.shape}")
    return np.array(array.reshape(1, -1) if array.ndim == 1 else array, dtype=np.int64)


def _id_list(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def _special_ids(model, eos_token_id, pad_token_id) -> tuple[list[int], int | None]:
    """eos ids and the pad id, from the arguments or else the model's config (as transformers
    takes them from the generation config): pad falls back to the first eos id."""
    config = getattr(model, "config", None)
    if eos_token_id is None:
        eos_token_id = getattr(config, "eos_token_id", None)
    eos = _id_list(eos_token_id)
    if pad_token_id is None:
        pad_token_id = getattr(config, "pad_token_id", None)
    if pad_token_id is None and eos:
        pad_token_id = eos[0]
    return eos, (None if pad_token_id is None else int(pad_token_id))


def _model_device(model):
    for p in model.parameters():
        return p.device
    return None


class TokenStream:
    """Generation one step at a time: iterating yields each step's new token ids, one ``int``
    per sequence (``pad_token_id`` for sequences already finished).

    :func:`generate_tokens` makes one; :func:`generate` runs one to the end. Between steps,
    :attr:`sequences` is the output so far and :attr:`finished` says which sequences are done.
    ``prefill_progress(done, total)``, if given, is told how far the prompt's forward has
    come (a long prompt is then prefilled in pieces of :data:`PREFILL_CHUNK` tokens). With
    ``keep_logits=True``, :attr:`logits` holds each step's raw logits.
    """

    def __init__(self, model, input_ids, max_new_tokens: int, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 min_p: float | None = None, repetition_penalty: float | None = None,
                 eos_token_id=None, stop_strings=None, seed: int | None = None,
                 attention_mask=None, pad_token_id: int | None = None, tokenizer=None,
                 prefill_progress=None, prompt_cache=None,
                 prompt_lookup_num_tokens: int | None = None, keep_logits: bool = False,
                 assistant_model=None, num_assistant_tokens: int = 5):
        check_sampling(max_new_tokens, do_sample, temperature, top_k, top_p, min_p,
                       repetition_penalty)
        ids = _as_ids(input_ids, "input_ids")
        B, T = ids.shape
        if T == 0:
            raise ShapeError("generate: the prompt is empty; give at least one token per "
                             "sequence (for instance the model's bos token)")
        self.model = model
        self.prompt_length, self.max_new_tokens = T, int(max_new_tokens)
        self._device = _model_device(model)
        self._eos, self._pad = _special_ids(model, eos_token_id, pad_token_id)
        self._check_length(T + self.max_new_tokens)

        # The output ids, allocated once: the prompt, then one column per step.
        self._ids = np.empty((B, T + self.max_new_tokens), dtype=np.int64)
        self._ids[:, :T] = ids
        self.length = T
        self.finished = np.zeros(B, dtype=bool)

        if attention_mask is None and self._pad is not None and self._pad not in self._eos \
                and (ids == self._pad).any():
            # transformers infers the padding from a pad id that is not also an eos id
            attention_mask = ids != self._pad
        mask = None
        if attention_mask is not None:
            mask = _as_ids(attention_mask, "attention_mask")
            if mask.shape != ids.shape:
                raise ShapeError(f"attention_mask has shape {mask.shape}, but input_ids have "
                                 f"shape {ids.shape}: give one 1 (token) or 0 (padding) per id")
            if (mask != 0).all():
                mask = None  # nothing is padding: plain causal attention, positions 0, 1, ...
        self._padded = mask is not None
        if self._padded:
            if (mask[:, -1] == 0).any():
                warnings.warn("generate: right padding detected (attention_mask ends in 0); a "
                              "decoder-only model continues from the last position, so pad "
                              "prompts on the left (tokenizer padding_side='left')", stacklevel=3)
            # transformers: positions count real tokens, padding sits at position 0.
            positions = np.cumsum(mask != 0, axis=-1) - 1
            positions[mask == 0] = 0
            self._prompt_positions = positions
            self._next_position = positions[:, -1] + 1
            full_mask = np.ones((B, T + self.max_new_tokens), dtype=np.int64)
            full_mask[:, :T] = mask
            self._mask = tensor(full_mask, dtype=int64, device=self._device)
        # transformers skips left padding when penalising repeated tokens.
        ignore = (mask != 0).argmax(axis=-1) if self._padded else None

        self._processors = build_processors(do_sample, temperature, top_k, top_p, min_p,
                                            repetition_penalty, ignore)
        self._do_sample = do_sample
        # greedy with nothing to process the scores: on an accelerator, pick the id there
        self._argmax_on_device = (not do_sample and len(self._processors) == 0 and not keep_logits
                                  and self._device is not None and self._device.type != "cpu")
        self._keep_logits = keep_logits
        #: with ``keep_logits``: the model's logits (B, vocab) float32 of the step whose tokens
        #: were just yielded, before temperature, top-k, top-p or penalties (log-probabilities
        #: as a server reports them)
        self.logits = None
        self._rng = None
        if do_sample:
            if seed is None:  # follow gradient.manual_seed, as transformers follows torch's
                seed = int(randint(0, 2 ** 62, (1,)).item())
            self._rng = np.random.default_rng(seed)
        self._stops = (StopStrings(stop_strings, tokenizer, B)
                       if stop_strings is not None else None)
        self._prefill_progress = prefill_progress
        if prompt_cache is not None and (B != 1 or self._padded):
            raise GenerationError("generate: a prompt_cache holds one sequence: give one "
                                  "prompt without padding")
        self._prompt_cache = prompt_cache
        self._lookup = int(prompt_lookup_num_tokens or 0)
        self._draft = draft                 # drafts from the text itself, or a draft model's
        if assistant_model is not None:
            if self._lookup:
                raise GenerationError("generate: give assistant_model or "
                                      "prompt_lookup_num_tokens, not both")
            self._lookup = int(num_assistant_tokens)
            if self._lookup < 1:
                raise GenerationError(f"generate: num_assistant_tokens must be at least 1, got "
                                      f"{num_assistant_tokens}")
            self._draft = AssistantDrafter(assistant_model, model,
                                           T + self.max_new_tokens + self._lookup)
        if self._lookup and (B != 1 or self._padded or do_sample or len(self._processors)
                             or self._stops is not None or keep_logits):
            raise GenerationError("generate: prompt_lookup_num_tokens and assistant_model need "
                                  "greedy decoding of "
                                  "one unpadded sequence, without repetition_penalty, "
                                  "stop_strings or keep_logits")
        self._steps = self._run()

    def _check_length(self, total: int) -> None:
        """Refuse up front what the model cannot hold, before allocating a cache for it."""
        config = getattr(self.model, "config", None)
        learned = getattr(config, "n_positions", None)  # GPT-2: one embedding per position
        if isinstance(learned, int) and total > learned:
            raise GenerationError(f"generate: the prompt ({self.prompt_length} tokens) plus "
                             f"max_new_tokens ({self.max_new_tokens}) make {total} positions, "
                             f"more than the model's n_positions ({learned}); lower "
                             f"max_new_tokens or shorten the prompt")
        trained = getattr(config, "max_position_embeddings", None)
        if isinstance(trained, int) and total > trained:
            warnings.warn(f"generate: {total} positions exceed the model's "
                          f"max_position_embeddings ({trained}); the text may degrade past "
                          f"that length", stacklevel=4)

    @property
    def sequences(self) -> Tensor:
        """The prompt and the tokens generated so far, ``(B, T + steps)`` int64, on the model's
        device (a copy)."""
        return tensor(np.ascontiguousarray(self._ids[:, :self.length]), dtype=int64,
                      device=self._device)

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> list[int]:
        return next(self._steps)

    def _forward(self, cache, step_ids: np.ndarray, positions: np.ndarray | None):
        """One forward (prefill when ``step_ids`` is the prompt): the last position's logits as
        a float32 (B, vocab) NumPy array, or, for greedy decoding without processors on an
        accelerator, the chosen ids (B,) (the argmax runs there: only B ints come back). Grad
        mode is switched off only around the forward, never across a ``yield``, so the caller's
        code between steps keeps its own mode."""
        with no_grad():
            kwargs = {}
            if self._padded:
                kwargs["attention_mask"] = self._mask[:, :self.length]
                kwargs["position_ids"] = tensor(positions, dtype=int64, device=self._device)
            logits = self.model(tensor(step_ids, dtype=int64, device=self._device), cache=cache,
                                logits_to_keep=1, **kwargs).logits
            if self._argmax_on_device:
                return logits[:, -1].argmax(-1).numpy().astype(np.int64)
            return np.array(logits[:, -1].float().numpy(), dtype=np.float32)

    def _prefill(self, cache, first: int = 0):
        """The prompt's forward from position ``first`` on (the cache holds the positions
        before it): in one call, or, with ``prefill_progress`` and more than
        :data:`PREFILL_CHUNK` tokens to run (not padded), in chunks of that many tokens,
        ``prefill_progress(done, total)`` called after each."""
        T = self.prompt_length
        if self._prefill_progress is None or self._padded or T - first <= PREFILL_CHUNK:
            return self._forward(cache, self._ids[:, first:T],
                                 self._prompt_positions if self._padded else None)
        for start in range(first, T, PREFILL_CHUNK):
            end = min(T, start + PREFILL_CHUNK)
            scores = self._forward(cache, self._ids[:, start:end], None)
            self._prefill_progress(end, T)
        return scores

    def _run(self) -> Iterator[list[int]]:
        if self.max_new_tokens == 0:
            return
        B, T = self._ids.shape[0], self.prompt_length
        if self._prompt_cache is None:
            cache, first = self.model.new_cache(B, T + self.max_new_tokens), 0
        else:   # it holds the first cache.length ids of the row, wherever we stop
            cache, first = self._prompt_cache.take(self._ids[0], T, T + self.max_new_tokens)
        scores = self._prefill(cache, first)
        if self._lookup:
            yield from self._run_prompt_lookup(cache, scores)
            return
        for step in range(self.max_new_tokens):
            if self._argmax_on_device:
                next_ids = scores      # already the argmax (first on ties, as on the CPU)
            else:
                if self._keep_logits:
                    self.logits = scores.copy()
                scores = self._processors(self._ids[:, :self.length], scores)
                next_ids = select_tokens(scores, self._do_sample, self._rng)
            if self._pad is not None:
                next_ids[self.finished] = self._pad
            self._ids[:, self.length] = next_ids
            self.length += 1
            done = np.isin(next_ids, self._eos) if self._eos else np.zeros(B, dtype=bool)
            if self._stops is not None:
                done |= self._stops.update(next_ids, ~self.finished)
            self.finished |= done
            yield next_ids.tolist()
            if self.finished.all() or step == self.max_new_tokens - 1:
                return
            positions = None
            if self._padded:
                positions = self._next_position[:, None]
                self._next_position = self._next_position + 1
            with rows_alone():     # a batch's rows continue as each would alone
                scores = self._forward(cache, next_ids[:, None], positions)


    def _run_prompt_lookup(self, cache, scores) -> Iterator[list[int]]:
        """Greedy decoding checking drafted tokens (:mod:`.prompt_lookup`) in one forward."""
        end = self.prompt_length + self.max_new_tokens
        # fewer drafts, or none for a while, when they fail or cost more than plain steps
        schedule = DraftSchedule(self._lookup, timed=True)
        tokens = [int(np.argmax(scores[0]))]   # to emit: kept drafts, then the model's choice
        while True:
            for token in tokens:
                self._ids[0, self.length] = token
                self.length += 1
                done = token in self._eos
                self.finished[0] = done
                yield [token]
                if done or self.length == end:
                    return
            drafted, kept, scores = speculative_step(self.model, cache,
                                                     self._ids[0, :self.length], self._draft,
                                                     schedule, end - self.length - 1,
                                                     self._device)
            tokens = [int(t) for t in drafted[:kept]] + [int(scores[kept].argmax())]


def generate_tokens(model, input_ids, max_new_tokens: int, **kwargs) -> TokenStream:
    """Generation as an iterator: each step yields the new token ids, one int per sequence.

    Takes the same arguments as :func:`generate`; the :class:`TokenStream` it returns also
    holds the output so far (``stream.sequences``) and which sequences are done
    (``stream.finished``).

    Example::

        >>> for (token,) in generate_tokens(model, [[464, 3290]], 10):
        ...     print(token)
    """
    return TokenStream(model, input_ids, max_new_tokens, **kwargs)


def generate(model, input_ids, max_new_tokens: int, do_sample: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, repetition_penalty: float | None = None,
             eos_token_id=None, stop_strings=None, seed: int | None = None,
             attention_mask=None, pad_token_id: int | None = None, tokenizer=None,
             prompt_cache=None, prompt_lookup_num_tokens: int | None = None,
             assistant_model=None, num_assistant_tokens: int = 5) -> Tensor:
    """Continue each prompt by up to ``max_new_tokens`` tokens, as transformers' ``generate``.

    Args:
        model: a causal LM with ``forward(input_ids, attention_mask, position_ids, cache,
            logits_to_keep)`` and ``new_cache(batch, max_length)`` (GPT-2, LLaMA family).
        input_ids: ``(B, T)`` ids (a gradient tensor, NumPy array or nested lists); ``(T,)`` is
            one sequence. Batches of different lengths are left-padded.
        max_new_tokens: the most tokens to add to each sequence.
        do_sample: sample from the processed distribution; otherwise greedy (argmax).
        temperature, top_k, top_p, min_p: sampling processors (ignored when greedy), with
            transformers' semantics and order (see :mod:`gradient.generation.sampling`).
        repetition_penalty: > 1 discourages tokens already in the sequence (greedy too).
        eos_token_id: an id or a list of ids that end a sequence. ``None`` takes the model
            config's ``eos_token_id`` (as transformers does); ``[]`` never stops early.
        stop_strings: a string or list of strings that end a sequence once its generated text
            contains one; the token completing it is kept (see :mod:`.stopping`). Needs
            ``tokenizer``.
        seed: seeds the sampling's NumPy random generator, so that the same seed gives the
            same tokens. The random stream is NumPy's, not PyTorch's: tokens differ from
            transformers' with ``torch.manual_seed(seed)``. ``None`` draws the seed from
            gradient's default generator (so ``gradient.manual_seed`` makes runs repeatable).
        attention_mask: ``(B, T)``, 1 for tokens and 0 for (left) padding.
        pad_token_id: what finished sequences get at the following steps; defaults to the
            config's ``pad_token_id``, else the first eos id (with neither, a finished
            sequence keeps its generated tokens until all are done, as in transformers). As
            in transformers, without ``attention_mask`` a pad id that is not an eos id marks
            padding wherever it occurs in ``input_ids``.
        tokenizer: a tokenizer (``decode``) or a ``decode(ids) -> str`` function, for
            ``stop_strings``.
        prompt_cache: a :class:`~gradient.generation.PromptCache` of one sequence: the part of
            the prompt it already holds (the longest shared prefix with the last generation
            given it) is not run again, and it keeps this generation's keys and values.
        prompt_lookup_num_tokens: greedy decoding that checks up to this many drafted tokens
            per forward, drafted from the text itself (:mod:`.prompt_lookup`; transformers'
            name): the same tokens, fewer forwards when the output repeats the input. The
            number drafted follows how many were kept (:mod:`.draft_schedule`; after drafts
            rejected whole, plain steps for a while). On the CPU checking k drafts costs
            nearly k + 1 decode steps' arithmetic, so it pays only when most are kept
            (``bench/prompt_lookup.py`` on SmolLM2, whose drafts are rarely kept: 0.87x,
            against 0.28x with a fixed number); keep it at 7 or less for quantized models
            (up to 8 rows take the same int8 kernels as one).
        assistant_model, num_assistant_tokens: greedy speculative decoding with a draft model
            of the same vocabulary (:mod:`.assistant`; transformers' names): it drafts this
            many tokens, the model checks them in one forward; the same tokens as greedy.
            Steps of several tokens (the checks) replay in Python in a library call; with
            ``GRADIENT_COMPILE_IN_BACKGROUND=1`` (what the ``gradient`` commands set) child
            processes compile them into loops meanwhile, once per machine
            (``bench/speculative.py``: SmolLM2 F16 with its Q4_0 as the draft, 1.15-1.18x
            plain greedy on a code rewrite).

    Returns:
        ``(B, T + n)`` int64 tensor: the prompts followed by the ``n <= max_new_tokens``
        generated tokens (fewer when every sequence finished early).

    Example::

        >>> out = generate(model, gradient.tensor([[464, 3290, 318]]), max_new_tokens=20)
        >>> text = tokenizer.decode(out[0].tolist())
    """
    stream = TokenStream(model, input_ids, max_new_tokens, do_sample=do_sample,
                         temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                         repetition_penalty=repetition_penalty, eos_token_id=eos_token_id,
                         stop_strings=stop_strings, seed=seed, attention_mask=attention_mask,
                         pad_token_id=pad_token_id, tokenizer=tokenizer,
                         prompt_cache=prompt_cache,
                         prompt_lookup_num_tokens=prompt_lookup_num_tokens,
                         assistant_model=assistant_model,
                         num_assistant_tokens=num_assistant_tokens)
    for _ in stream:
        pass
    return stream.sequences
