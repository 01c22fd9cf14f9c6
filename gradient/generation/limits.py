"""Where a conversation with a model must stop: its stop tokens and its context length, read
from the model and its tokenizer (what the command line and the server both need).

Example::

    >>> stop_ids(model, tokenizer, chat=True)     # eos ids and end-of-turn markers
    {2, 49152}
    >>> context_length(model)
    8192
"""

from __future__ import annotations

__all__ = ["END_OF_TURN_TOKENS", "stop_ids", "context_length"]

#: the markers chat templates end an assistant's turn with (ChatML, Llama 3, Phi-3, Gemma); a
#: chat stops on any of them the vocabulary has, besides the model's eos token(s)
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def stop_ids(model, tokenizer, chat: bool = False) -> set[int]:
    """End-of-sequence ids: the tokenizer's eos and the model's (``generation_config.json``
    and the config's ``eos_token_id``); with ``chat``, the end-of-turn markers the vocabulary
    holds too."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    for source in (getattr(model, "generation_config", None) or {},
                   {"eos_token_id": getattr(model.config, "eos_token_id", None)}):
        eos = source.get("eos_token_id")
        ids.update(int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])
                   if i is not None)
    if chat:
        vocab = tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return ids


def context_length(model) -> int:
    """How many positions the model attends over (its config's ``max_position_embeddings``
    or ``n_positions``; unbounded when it says neither)."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30
