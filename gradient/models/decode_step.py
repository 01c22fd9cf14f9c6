"""When and how a model's decode step is replayed: the step is the model's own forward over
its decoder stack, captured by :mod:`gradient.capture` and replayed for the next tokens.

A step is one new token per sequence, or a few (up to :data:`CAPTURED_TOKENS`) after a cache
under the lower-right causal mask: speculative decoding's check of drafted tokens, or the new
tokens of a prompt whose beginning a cache holds (a conversation's next turn, a server's
request after a shared system prompt), which then cost about what a decode step costs instead
of a pass through the module graph. A short prompt into an empty cache is such a step too
(:func:`step_mask`): its plain causal mask is the lower-right one with nothing before it.

Nothing here knows a model's math. :func:`replays_decode_step` says when replaying cannot be
told from running the modules (evaluation mode, nothing recorded, no autocast, gradient's own
KV cache, whose writes the capture replays at each step's position); :func:`decode_step` gives
the stack's :class:`~gradient.capture.CapturedStep`, kept on the stack.

Example::

    >>> if captured_tokens(T, mask) and replays_decode_step(self, cache):
    ...     x = decode_step(self, self._layers_forward)(x, cos, sin, mask, cache)
"""

from __future__ import annotations

from ..autograd import autocast_state as _autocast
from ..autograd import is_grad_enabled
from ..capture import CapturedStep, background
from ..generation.batch_cache import BatchKVCache
from ..generation.kv_cache import KVCache
from ..generation.paged_cache import PagedKVCache
from ..ops.causal_bias import CausalBias, CausalVariant, RowPrefixBias, causal_lower_right

__all__ = ["decode_step", "replays_decode_step", "captured_tokens", "step_mask",
           "CAPTURED_TOKENS"]

#: The most new tokens a captured step takes: speculative decoding's drafts and the last token,
#: and a prompt's tail after a cache (SmolLM2's "<|im_end|>\n<|im_start|>assistant\n" that
#: closes every chat prompt is 6 tokens itself). SmolLM2 Q4_1 with int8 activations, tails
#: after 30 cached tokens, the steps compiled (AMD EPYC, 2 threads): 9 tokens 20-22 ms
#: through the module graph against 8.6 ms as a step, 12 tokens 22-34 against 10.3, 16
#: tokens 25-28 against 12.3. Each number of tokens is a loop of its own to compile (by a
#: child process under the commands).
CAPTURED_TOKENS = 16


def captured_tokens(T: int, *masks, positions=None) -> bool:
    """Whether a forward of ``T`` new tokens whose decoder ``masks`` are these (None where a
    model has no such layers) may be a captured step: one token with no mask, or one token
    per row of a batch at different lengths (a
    :class:`~gradient.ops.causal_bias.RowPrefixBias`), with or without explicit
    ``positions`` (they only change the rotary inputs); or 2 .. :data:`CAPTURED_TOKENS`
    tokens after a cache, under the lower-right causal bias (nothing padded, no window
    reached), at the cache's own positions."""
    biases = [m for m in masks if m is not None]
    if T == 1:
        return all(isinstance(m, RowPrefixBias) for m in biases)
    return positions is None and T <= CAPTURED_TOKENS and bool(biases) and all(
        isinstance(m, CausalBias) and m.variant is CausalVariant.LOWER_RIGHT for m in biases)


def step_mask(mask, T: int, past: int):
    """The mask a decoder's layers get for ``T`` new tokens after ``past`` cached ones, where
    they may be a captured step (:func:`replays_decode_step`): a prompt of 2 ..
    :data:`CAPTURED_TOKENS` tokens into an empty cache under plain causal attention (``mask``
    None, see :func:`~gradient.models.masks.decoder_mask`) gets the lower-right causal bias,
    which hides the same keys when nothing is cached (every query's row is the same
    arithmetic: the same bits). The prompt is then a step of T tokens like a prompt's tail
    after a cache, the same plan and compiled loop: SmolLM2-135M in bfloat16, a 16-token
    prompt, 34 ms through the module graph against 19 ms as a compiled step. Only where
    such steps are compiled (:func:`_several_tokens_compiled`): a prompt's first two runs
    are recorded (36 -> 51 and 82 ms there), which a Python replay (29 ms) takes a dozen
    prompts of that length to win back. Any other mask as it is."""
    if mask is None and past == 0 and 1 < T <= CAPTURED_TOKENS and _several_tokens_compiled():
        return causal_lower_right(T, T)
    return mask


def replays_decode_step(stack, cache) -> bool:
    """The decoder ``stack`` (``GPT2Model``, ``LlamaModel``) allows it (its ``fused_decode``
    flag), is in evaluation mode, nothing is recorded, no autocast is active and ``cache`` is
    a :class:`~gradient.generation.KVCache`, a :class:`~gradient.generation.BatchKVCache` or
    a :class:`~gradient.generation.PagedKVCache`."""
    return (stack.fused_decode and type(cache) in (KVCache, BatchKVCache, PagedKVCache)
            and not stack.training
            and not is_grad_enabled() and not _autocast.any_enabled())


def decode_step(stack, forward) -> CapturedStep:
    """The captured step of ``forward`` (a bound method of ``stack`` over its layers), made on
    first use and kept in the stack's ``__dict__`` (a derived cache: ``_derived_caches``)."""
    step = stack.__dict__.get("_captured")
    if step is None:
        step = stack.__dict__["_captured"] = CapturedStep(forward, stack, _loop_worth_compiling)
    return step


def _several_tokens_compiled() -> bool:
    """Whether steps of several tokens compile their loops: where a child process compiles
    them while they replay in Python (the ``gradient`` commands, see
    :mod:`gradient.capture.background`), not in a library call."""
    return background.enabled()


def _loop_worth_compiling(x, *inputs) -> bool:
    """A one-token step of sequences at one length is compiled into a numba loop: it is what
    decoding repeats. Steps of several tokens (speculative checks, short prefills) and of a
    server's batch at different lengths come in many signatures (each number of tokens or
    rows), each a loop of its own to compile for seconds: only where a child process
    compiles them while the step replays in Python (the ``gradient`` commands, see
    :mod:`gradient.capture.background`); in a library call they replay in Python."""
    one_token = x.shape[1] == 1 and not any(isinstance(i, RowPrefixBias) for i in inputs)
    return one_token or _several_tokens_compiled()
