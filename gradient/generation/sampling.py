"""Logits processors and next-token selection, with Hugging Face transformers' semantics.

A generation step turns the model's last-position logits, ``scores`` of shape (batch, vocab),
into one token id per sequence. First the processors reshape the distribution, in
transformers' order (``GenerationMixin._get_logits_processor``):

1. :class:`RepetitionPenaltyLogitsProcessor` -- every token already in the sequence (prompt and
   generated, left padding excluded) has its logit divided by the penalty (multiplied when
   negative). Applied in greedy decoding too, as are OpenAI's two settings after it (the
   server's ``logit_bias``, ``presence_penalty`` and ``frequency_penalty``, which
   transformers' generate does not have): :class:`LogitBiasLogitsProcessor` adds a fixed bias
   to chosen tokens, and :class:`PresenceFrequencyPenaltyLogitsProcessor` subtracts a penalty
   from each token already generated, once and once per occurrence.
2. :class:`TemperatureLogitsWarper` -- ``scores / temperature``.            \\
3. :class:`TopKLogitsWarper` -- keep the ``k`` largest logits.              | sampling only
4. :class:`TopPLogitsWarper` -- keep the smallest set of tokens whose        |
   probability adds up to more than ``top_p`` (at least one token).         |
5. :class:`MinPLogitsWarper` -- keep tokens at least ``min_p`` times as      |
   likely as the most likely one.                                            /

Removed tokens get ``-inf``. Then :func:`select_tokens` picks the argmax (greedy) or draws
from ``softmax(scores)`` with a NumPy random ``Generator``.

Processors run on the host, in NumPy float32: one ``(batch, vocab)`` row of logits crosses from
the device per step, which is small next to a forward pass, and the same code serves every
backend. Each is ``processor(input_ids, scores) -> scores`` with ``input_ids`` the (batch, length)
int64 ids so far and ``scores`` (batch, vocab) float32, like transformers' classes, so tests
check each against the class of the same name.

Random numbers: a seed gives the same tokens on every run, but not the same tokens as
PyTorch's ``torch.multinomial`` with that seed (a different random stream).

Example::

    >>> processors = build_processors(do_sample=True, temperature=0.7, top_p=0.9)
    >>> scores = processors(input_ids, logits)              # (B, V) float32 NumPy arrays
    >>> next_ids = select_tokens(scores, do_sample=True, rng=np.random.default_rng(0))
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import GenerationError

__all__ = ["LogitsProcessor", "LogitsProcessorList", "RepetitionPenaltyLogitsProcessor",
           "LogitBiasLogitsProcessor", "PresenceFrequencyPenaltyLogitsProcessor",
           "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper",
           "build_processors", "check_sampling", "select_tokens", "softmax"]


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_sampling(max_new_tokens=0, do_sample: bool = False, temperature=1.0, top_k=None,
                   top_p=None, min_p=None, repetition_penalty=None) -> None:
    """Refuse generation arguments out of their range with a :class:`GenerationError` that
    says what was expected: ``max_new_tokens`` an integer >= 0; ``temperature`` a number > 0
    when sampling (>= 0 otherwise: greedy decoding ignores it); ``top_k`` an integer >= 0 (0:
    off); ``top_p`` and ``min_p`` in [0, 1]; ``repetition_penalty`` > 0 (1: off). None means
    "not used" for all but ``max_new_tokens``. ``generate``, ``stream`` and the ``gradient``
    command all check their arguments here, before any work.

    Example: ``check_sampling(20, do_sample=True, temperature=0.7, top_p=0.9)``
    """
    if not _integer(max_new_tokens) or max_new_tokens < 0:
        raise GenerationError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if temperature is not None:
        if not _number(temperature) or temperature < 0:
            raise GenerationError(f"temperature must be a number >= 0, got {temperature!r}")
        if do_sample and temperature == 0:
            raise GenerationError("temperature must be > 0 when sampling, got 0; for greedy "
                                  "decoding use do_sample=False")
    if top_k is not None and (not _integer(top_k) or top_k < 0):
        raise GenerationError(f"top_k must be an integer >= 0 (0 turns it off), got {top_k!r}")
    for name, value in (("top_p", top_p), ("min_p", min_p)):
        if value is not None and (not _number(value) or not 0 <= value <= 1):
            raise GenerationError(f"{name} must be a number between 0 and 1, got {value!r}")
    if repetition_penalty is not None and (not _number(repetition_penalty)
                                           or repetition_penalty <= 0):
        raise GenerationError(f"repetition_penalty must be a number > 0 (1 turns it off), got "
                              f"{repetition_penalty!r}")

_NEG_INF = np.float32(-np.inf)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in the dtype of ``scores``; ``-inf`` entries get 0."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class LogitsProcessor:
    """Base class: ``processor(input_ids, scores) -> new scores`` (the input is not modified)."""

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LogitsProcessorList(list):
    """Processors applied in order, as ``transformers.LogitsProcessorList``.

    Example: ``scores = LogitsProcessorList([TemperatureLogitsWarper(0.7)])(ids, scores)``
    """

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Penalise every token that occurs in ``input_ids``: its logit ``s`` becomes ``s / penalty``
    when positive and ``s * penalty`` when negative (once per token, however often it occurs).

    ``prompt_ignore_length``: leading positions not to count, one int for all rows or one per
    row (generation passes each row's number of left-padding positions, as transformers does).
    Ids outside the vocabulary of ``scores`` are ignored.

    Example: ``RepetitionPenaltyLogitsProcessor(1.2)(ids, scores)``
    """

    def __init__(self, penalty: float, prompt_ignore_length=None):
        if not isinstance(penalty, (int, float)) or isinstance(penalty, bool) or not penalty > 0:
            raise GenerationError(f"repetition_penalty must be a positive number (1.0 means no "
                                  f"penalty), got {penalty!r}")
        self.penalty = float(penalty)
        if prompt_ignore_length is not None and not isinstance(prompt_ignore_length, int):
            prompt_ignore_length = np.asarray(prompt_ignore_length, dtype=np.int64)
            if prompt_ignore_length.ndim != 1:
                raise GenerationError("prompt_ignore_length must be an int or one int per row, got "
                                      f"shape {prompt_ignore_length.shape}")
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids, scores):
        input_ids = np.asarray(input_ids)
        vocab = scores.shape[-1]
        valid = input_ids < vocab
        ignore = self.prompt_ignore_length
        if isinstance(ignore, int):
            valid[:, :ignore] = False
        elif ignore is not None:
            valid &= np.arange(input_ids.shape[1])[None, :] >= ignore[:, None]
        rows = np.broadcast_to(np.arange(input_ids.shape[0])[:, None], input_ids.shape)[valid]
        cols = input_ids[valid]
        picked = scores[rows, cols]
        out = scores.copy()
        # A token that occurs twice is written twice with the same value: penalised once.
        out[rows, cols] = np.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return out


class LogitBiasLogitsProcessor(LogitsProcessor):
    """Add ``bias[token]`` to each listed token's logit (OpenAI's ``logit_bias``: -100 all but
    bans a token, 100 all but forces it; transformers' ``SequenceBiasLogitsProcessor`` for
    sequences of one token). Tokens outside the vocabulary of ``scores`` are ignored.

    Example: ``LogitBiasLogitsProcessor({50256: -100.0})(ids, scores)``
    """

    def __init__(self, bias: dict):
        tokens = list(bias)
        if not all(_integer(t) and t >= 0 for t in tokens):
            raise GenerationError(f"logit_bias: the tokens must be integer ids >= 0, got "
                                  f"{tokens!r}")
        values = list(bias.values())
        if not all(_number(v) for v in values):
            raise GenerationError(f"logit_bias: the biases must be finite numbers, got {values!r}")
        self.tokens = np.asarray(tokens, np.int64)
        self.values = np.asarray(values, np.float32)

    def __call__(self, input_ids, scores):
        inside = self.tokens < scores.shape[-1]
        out = scores.copy()
        out[:, self.tokens[inside]] += self.values[inside]
        return out


class PresenceFrequencyPenaltyLogitsProcessor(LogitsProcessor):
    """OpenAI's penalties on the tokens generated so far: a token generated ``c`` times has
    ``c * frequency + (c > 0) * presence`` subtracted from its logit. Positive values push the
    text towards new tokens, negative ones towards repeats. The first ``prompt_length``
    positions of ``input_ids`` (the prompt) are not counted, as in OpenAI's formula and vLLM;
    ids outside the vocabulary of ``scores`` are ignored.

    Example: ``PresenceFrequencyPenaltyLogitsProcessor(0.5, 0.3, prompt_length=12)(ids, scores)``
    """

    def __init__(self, presence: float = 0.0, frequency: float = 0.0, prompt_length: int = 0):
        for name, value in (("presence_penalty", presence), ("frequency_penalty", frequency)):
            if not _number(value):
                raise GenerationError(f"{name} must be a finite number, got {value!r}")
        if not _integer(prompt_length) or prompt_length < 0:
            raise GenerationError(f"prompt_length must be an integer >= 0, got {prompt_length!r}")
        self.presence, self.frequency = np.float32(presence), np.float32(frequency)
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids, scores):
        vocab = scores.shape[-1]
        generated = np.asarray(input_ids)[:, self.prompt_length:]
        counts = np.zeros(scores.shape, np.float32)
        for row, ids in enumerate(generated):
            ids = ids[(ids >= 0) & (ids < vocab)]
            counts[row] = np.bincount(ids, minlength=vocab)
        return scores - (counts * self.frequency + (counts > 0) * self.presence)


class TemperatureLogitsWarper(LogitsProcessor):
    """``scores / temperature``: below 1 sharpens the distribution, above 1 flattens it.

    Example: ``TemperatureLogitsWarper(0.7)(ids, scores)``
    """

    def __init__(self, temperature: float):
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) \
                or not temperature > 0:
            hint = " (for greedy decoding use do_sample=False)" if temperature == 0 else ""
            raise GenerationError(f"temperature must be a positive number, got "
                                  f"{temperature!r}{hint}")
        self.temperature = float(temperature)

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopKLogitsWarper(LogitsProcessor):
    """Keep the ``top_k`` largest logits (and any tied with the k-th), set the rest to -inf.

    Example: ``TopKLogitsWarper(50)(ids, scores)``
    """

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1):
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k <= 0:
            raise GenerationError(f"top_k must be a positive integer, got {top_k!r}")
        self.top_k = max(int(top_k), min_tokens_to_keep)

    def __call__(self, input_ids, scores):
        k = min(self.top_k, scores.shape[-1])
        kth = np.partition(scores, -k, axis=-1)[..., -k, None]  # the k-th largest of each row
        return np.where(scores < kth, _NEG_INF, scores)


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus sampling: keep the most likely tokens whose probabilities add up to more than
    ``top_p``; at least ``min_tokens_to_keep`` (1) tokens always stay.

    As transformers: sort ascending, remove the tokens whose cumulative probability is
    ``<= 1 - top_p``.

    Example: ``TopPLogitsWarper(0.9)(ids, scores)``
    """

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if not 0.0 <= top_p <= 1.0:
            raise GenerationError(f"top_p must be between 0 and 1, got {top_p}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise GenerationError(f"min_tokens_to_keep must be a positive integer, got "
                                  f"{min_tokens_to_keep!r}")
        self.top_p, self.min_tokens_to_keep = top_p, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        # transformers' steps are: a stable sort of the scores, the softmax of the sorted
        # row, its cumulative sum; the tokens removed are the lowest, up to the last whose
        # cumulative probability is <= 1 - top_p. A model's row has a few likely tokens and
        # tens of thousands of unlikely ones whose probabilities all lie below the threshold:
        # those are removed whatever their order, so only the likely ones need sorting
        # (:meth:`_few`; 0.11 against 1.6 ms for a row of 49,152); a flat row, where they
        # do not, sorts all (:meth:`_all`).
        limit = scores.dtype.type(1 - self.top_p)
        out = scores.copy()
        for row in np.ndindex(scores.shape[:-1]):
            x = scores[row]
            e = np.exp(x - x.max())
            kept = self._few(x, e, limit)
            out[row] = kept if kept is not None else self._all(x, e, limit)
        return out

    def _all(self, x, e, limit):
        # The exponentials of the sorted scores are the sorted exponentials (exp does not
        # decrease), so sorting the values alone gives the same softmax, sum for sum, at a
        # quarter of a stable argsort's cost; the tokens removed are then the k lowest scores,
        # equals by index.
        e = np.sort(e)
        # PyTorch's CPU cumsum accumulates in float64 and rounds each sum to float32; so do we,
        # so that the same tokens sit on either side of the threshold.
        cumulative = np.cumsum(e / e.sum(), dtype=np.float64).astype(x.dtype)
        # the sums do not decrease: the tokens removed are a prefix of the sorted row
        removed = int((cumulative <= limit).sum())
        return _without_lowest(x, min(removed, max(x.size - self.min_tokens_to_keep, 0)))

    def _few(self, x, e, limit):
        """``x`` with the tokens top-p removes -inf, found by sorting only the tokens whose
        probability is at least a small fraction of the likeliest's; None where the others'
        sum is not clearly below the threshold (or they are not few)."""
        most = x.size - self.min_tokens_to_keep       # the most tokens removed
        total, total64 = e.sum(), e.sum(dtype=np.float64)
        for floor in _CANDIDATE_FLOORS:
            likely = e >= floor
            count = int(np.count_nonzero(likely))
            if 4 * count > x.size or x.size - count > most:
                return None
            tokens = np.flatnonzero(likely)
            # the unlikely tokens' cumulative probability, as the others' complement (in
            # float64: it differs from the sorted sum of rounded probabilities by ~1e-10)
            below = float(total64 - e[tokens].sum(dtype=np.float64)) / total
            if below > float(limit) - _MARGIN:
                continue
            order = tokens[np.argsort(x[tokens], kind="stable")]   # equal scores by index
            probabilities = (e[order] / total).astype(np.float64)
            cumulative = np.cumsum(np.concatenate(([below], probabilities)))[1:]
            removed = int((cumulative.astype(x.dtype) <= limit).sum())
            kept = order[min(removed, most - (x.size - count)):]
            out = np.full_like(x, _NEG_INF)
            out[kept] = x[kept]
            return out
        return None


#: The probabilities, over the likeliest token's, above which top-p sorts the tokens (a
#: smaller one where the tokens below the first hold too much of the sum).
_CANDIDATE_FLOORS = (np.float32(1e-4), np.float32(1e-7))
#: How far below the threshold the unlikely tokens' sum must be for them all to be removed:
#: the sums above agree with a sorted row's to ~1e-10, a float32 rounding of the total to ~1e-7.
_MARGIN = 1e-6


def _without_lowest(row: np.ndarray, k: int) -> np.ndarray:
    """``row`` with its ``k`` lowest entries -inf, equal entries taken in index order (what a
    stable sort puts first)."""
    alive = row != -np.inf
    finite = row[alive]
    k -= row.size - finite.size                        # (-inf ones stay -inf: the lowest)
    if k <= 0:
        return row
    # the highest score removed (partitioning the -inf ones too would be slow: introselect
    # does poorly on many equal values, as top-k leaves them)
    kth = np.partition(finite, k - 1)[k - 1]
    remove = (row < kth) & alive
    equal = np.flatnonzero(row == kth)
    remove[equal[:k - int(remove.sum())]] = True
    return np.where(remove, _NEG_INF, row)


class MinPLogitsWarper(LogitsProcessor):
    """Keep the tokens whose probability is at least ``min_p`` times that of the most likely
    token (at least ``min_tokens_to_keep`` tokens stay).

    Example: ``MinPLogitsWarper(0.05)(ids, scores)``
    """

    def __init__(self, min_p: float, min_tokens_to_keep: int = 1):
        if not 0.0 <= float(min_p) <= 1.0:
            raise GenerationError(f"min_p must be between 0 and 1, got {min_p}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise GenerationError(f"min_tokens_to_keep must be a positive integer, got "
                                  f"{min_tokens_to_keep!r}")
        self.min_p, self.min_tokens_to_keep = float(min_p), min_tokens_to_keep

    def __call__(self, input_ids, scores):
        probs = softmax(scores)
        threshold = probs.max(axis=-1, keepdims=True) * probs.dtype.type(self.min_p)
        remove = probs < threshold
        k = min(self.min_tokens_to_keep, probs.shape[-1])
        keep = np.argpartition(-probs, k - 1, axis=-1)[..., :k]
        np.put_along_axis(remove, keep, False, axis=-1)
        return np.where(remove, _NEG_INF, scores)


def build_processors(do_sample: bool = False, temperature: float | None = 1.0,
                     top_k: int | None = None, top_p: float | None = None,
                     min_p: float | None = None, repetition_penalty: float | None = None,
                     prompt_ignore_length=None, logit_bias: dict | None = None,
                     presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                     prompt_length: int = 0) -> LogitsProcessorList:
    """The processors ``generate`` applies, in transformers' order and with its rules for when
    each one is active: repetition penalty when given and != 1; then OpenAI's ``logit_bias``
    when not empty and its presence and frequency penalties when not 0 (counting the tokens
    after the first ``prompt_length``); then, only when sampling, temperature when != 1,
    top-k when given and != 0, top-p when < 1, and min-p when given.

    Example: ``build_processors(do_sample=True, top_k=50, top_p=0.95)``
    """
    processors = LogitsProcessorList()
    if repetition_penalty is not None and repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty,
                                                           prompt_ignore_length))
    if logit_bias:
        processors.append(LogitBiasLogitsProcessor(logit_bias))
    if presence_penalty or frequency_penalty:
        processors.append(PresenceFrequencyPenaltyLogitsProcessor(
            presence_penalty, frequency_penalty, prompt_length))
    if do_sample:
        if temperature is not None and temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k is not None and top_k != 0:
            processors.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p))
        if min_p is not None:
            processors.append(MinPLogitsWarper(min_p))
    return processors


def select_tokens(scores: np.ndarray, do_sample: bool = False,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """One token id per row of ``scores`` (batch, vocab): the argmax (the first one on ties,
    as ``torch.argmax``), or a draw from ``softmax(scores)`` with ``rng``.

    The draw is inverse-CDF sampling in float64, one uniform number per row: a token of
    probability 0 (a ``-inf`` score) is never drawn.

    Example: ``select_tokens(scores, do_sample=True, rng=np.random.default_rng(0))``
    """
    if not do_sample:
        return scores.argmax(axis=-1).astype(np.int64)
    if rng is None:
        raise GenerationError("select_tokens: do_sample=True needs a NumPy random Generator "
                              "(rng)")
    peak = scores.max(axis=-1, keepdims=True)
    if not np.isfinite(peak).all():
        raise GenerationError("sampling: a row of scores has no finite maximum (all -inf, +inf or "
                              "NaN): check the model's logits and the processors' settings")
    u = rng.random(scores.shape[0])
    picked = np.empty(scores.shape[0], np.int64)
    for row, r in enumerate(u):
        x = scores[row]
        # where top-k/top-p left few tokens, only theirs: a -inf token adds 0 to the
        # cumulative weights, so the weights of the rest, and the token drawn, are the same
        tokens = _left(x)
        if tokens is not None:
            x = x[tokens]
        cdf = np.cumsum(np.exp(x.astype(np.float64) - np.float64(peak[row, 0])))
        # The first index whose cumulative weight exceeds u; zero-weight tokens never qualify.
        at = min(int((cdf <= r * cdf[-1]).sum()), cdf.size - 1)
        picked[row] = at if tokens is None else tokens[at]
    return picked


def _left(row: np.ndarray) -> np.ndarray | None:
    """The tokens of ``row`` that are not -inf where they are fewer than half (a processor
    removed the others), else None."""
    if row.size <= 64:
        return None
    tokens = np.flatnonzero(row != -np.inf)
    return tokens if row.size - tokens.size > row.size // 2 else None
