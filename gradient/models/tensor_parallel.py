"""A LLaMA-family model's layers split across the ranks of a process group (Megatron-LM's
tensor parallelism), from the model every rank built alike.

In every decoder layer the attention's q, k and v projections become column-parallel (each
rank computes its share of the heads: whole heads, and the key/value heads its query heads
read) and o_proj row-parallel; the MLP's gate and up projections column-parallel and
down_proj row-parallel. So each layer communicates once per block in forward (the row-parallel
sums) and once in backward. The token embedding becomes vocabulary-parallel and the head
column-parallel with its logits gathered (sharing the embedding's rows when they are tied).
Each rank then holds about 1/world_size of the parameters and computes the same logits.

For training and for forwards without a KV cache (a cache built by ``new_cache`` holds every
key/value head).

Example (``gradient run -n 2 script.py``)::

    >>> model = LlamaForCausalLM(config)          # the same weights on every rank (a seed)
    >>> shard_llama(model)
    >>> logits = model(ids).logits                # the unsplit model's logits, on every rank
"""

from __future__ import annotations

from .. import distributed as dist
from ..nn.parallel import ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding
from ..errors import ArgumentValueError

__all__ = ["shard_llama"]


def shard_llama(model, group=None):
    """Split ``model`` (a :class:`~gradient.models.LlamaForCausalLM` or its ``LlamaModel``) in
    place across the ranks of ``group`` (see the module docstring); returns it. The heads, key/
    value heads, intermediate size and vocabulary must divide by the number of ranks."""
    g = dist.get_group(group)
    stack = getattr(model, "model", model)
    config = stack.config
    for what, n in (("num_attention_heads", config.num_attention_heads),
                    ("num_key_value_heads", config.num_key_value_heads),
                    ("intermediate_size", config.intermediate_size),
                    ("vocab_size", config.vocab_size)):
        if n % g.size:
            raise ArgumentValueError(
                f"shard_llama: {what} ({n}) must divide evenly among the {g.size} "
                f"ranks")
    for layer in stack.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for name in ("q_proj", "k_proj", "v_proj"):
            setattr(attn, name, ColumnParallelLinear.from_linear(getattr(attn, name), False, g))
        attn.o_proj = RowParallelLinear.from_linear(attn.o_proj, True, g)
        attn.n_heads //= g.size
        attn.n_kv_heads //= g.size
        mlp.gate_proj = ColumnParallelLinear.from_linear(mlp.gate_proj, False, g)
        mlp.up_proj = ColumnParallelLinear.from_linear(mlp.up_proj, False, g)
        mlp.down_proj = RowParallelLinear.from_linear(mlp.down_proj, True, g)
    tied = model is not stack and model.lm_head.weight is stack.embed_tokens.weight
    stack.embed_tokens = VocabParallelEmbedding.from_embedding(stack.embed_tokens, g)
    if model is not stack:
        head = ColumnParallelLinear.from_linear(model.lm_head, True, g)
        if tied:   # the head's rows are the embedding's rows of this rank
            head.weight = stack.embed_tokens.weight
        model.lm_head = head
    return model
