"""Generation: the KV cache, sampling and the generate loop.

* :class:`KVCache` -- keys and values preallocated per layer, filled by prefill and decode;
  :class:`BatchKVCache` -- the same for sequences decoded together at their own positions;
  :class:`PagedKVCache` -- those in blocks of a pool, so that memory follows the tokens held.
* :func:`generate` -- greedy or sampled continuation of a batch of prompts, as transformers'
  ``generate``; :func:`generate_tokens` yields the new ids step by step.
* :func:`stream` -- the generated text of one prompt, piece by piece, never half a character
  (:class:`gradient.tokenizers.IncrementalDecoder` does the decoding).
* :mod:`.sampling` -- logits processors (repetition penalty, temperature, top-k, top-p, min-p)
  and token selection; :mod:`.stopping` -- stop strings.

Example::

    >>> from gradient.generation import generate, stream
    >>> out = generate(model, ids, max_new_tokens=32, do_sample=True, top_p=0.9, seed=0)
    >>> for piece in stream(model, tokenizer, "Hello", max_new_tokens=32):
    ...     print(piece, end="")
"""

from .batch_cache import BatchKVCache
from .generate import TokenStream, generate, generate_tokens
from .kv_cache import KVCache
from .paged_cache import PagedKVCache
from .prompt_cache import PromptCache
from .sampling import (LogitBiasLogitsProcessor, LogitsProcessor, LogitsProcessorList,
                       MinPLogitsWarper, PresenceFrequencyPenaltyLogitsProcessor,
                       RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                       TopKLogitsWarper, TopPLogitsWarper, build_processors, check_sampling,
                       select_tokens)
from .stopping import StopStrings
from .streaming import stream

__all__ = ["KVCache", "BatchKVCache", "PagedKVCache", "PromptCache", "generate", "generate_tokens", "TokenStream", "stream",
           "StopStrings",
           "LogitsProcessor", "LogitsProcessorList", "RepetitionPenaltyLogitsProcessor",
           "LogitBiasLogitsProcessor", "PresenceFrequencyPenaltyLogitsProcessor",
           "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper",
           "build_processors", "check_sampling", "select_tokens"]
