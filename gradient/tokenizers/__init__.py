"""Tokenizers: text to token ids and back.

What is where:

* :mod:`~gradient.tokenizers.tokenizer` -- :class:`Tokenizer`, the one models use: Hugging Face's
  Rust ``tokenizers`` library with the transformers API around it (``from_pretrained`` on a
  model directory, ``encode``/``decode``/``batch_decode``, ``tokenizer(texts, padding=True,
  return_tensors="gr")``, special tokens, ``apply_chat_template``, ``save_pretrained``).
* :mod:`~gradient.tokenizers.chat_template` -- rendering chat templates with Jinja, in the same
  sandboxed environment transformers gives them (``raise_exception``, ``strftime_now``, ``tojson``).
* :mod:`~gradient.tokenizers.streaming` -- :class:`IncrementalDecoder`, text pieces as tokens are
  generated, never half a character.
* :mod:`~gradient.tokenizers.bpe` -- :class:`ByteLevelBPE`, GPT-2's byte-level BPE written from
  scratch to be read: training, encoding, decoding, vocab.json + merges.txt. Same ids as the
  ``tokenizers`` library on the same files.
* :mod:`~gradient.tokenizers.errors` -- :class:`TokenizerError` (a ``ValueError``) and
  :class:`TokenizerFileNotFoundError` (a ``FileNotFoundError``).

Example::

    >>> from gradient.tokenizers import Tokenizer, IncrementalDecoder
    >>> tok = Tokenizer.from_pretrained("path/to/model")        # a local directory
    >>> prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}],
    ...                                  add_generation_prompt=True, tokenize=False)
    >>> ids = tok.encode(prompt, add_special_tokens=False)
    >>> stream = IncrementalDecoder(tok, skip_special_tokens=True)
    >>> text = "".join(stream.push(i) for i in ids) + stream.flush()
"""

from .bpe import GPT2_SPLIT_PATTERN, ByteLevelBPE, bytes_to_unicode, pre_tokenize, unicode_to_bytes
from .chat_template import ChatTemplateError, render_chat_template
from .errors import TokenizerError, TokenizerFileNotFoundError
from .streaming import IncrementalDecoder
from .tokenizer import SPECIAL_TOKEN_NAMES, BatchEncoding, Tokenizer

__all__ = ["Tokenizer", "BatchEncoding", "SPECIAL_TOKEN_NAMES", "ByteLevelBPE", "IncrementalDecoder",
           "render_chat_template", "ChatTemplateError", "TokenizerError",
           "TokenizerFileNotFoundError", "GPT2_SPLIT_PATTERN", "bytes_to_unicode",
           "unicode_to_bytes", "pre_tokenize"]
