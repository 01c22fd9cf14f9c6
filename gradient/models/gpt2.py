"""GPT-2, as in Hugging Face's ``GPT2LMHeadModel``: same parameter names, same numbers.

Read top to bottom: token and learned position embeddings are added, then ``n_layer`` blocks,
each ``x + attn(ln_1(x))`` followed by ``x + mlp(ln_2(x))`` (pre-LayerNorm), a final
LayerNorm, and a head that shares its weight with the token embedding.

* Attention: one ``c_attn`` projection gives queries, keys and values for all heads; causal
  ``scaled_dot_product_attention``; ``c_proj`` mixes the heads back. With a KV cache the new
  keys and values are written into the cache and attention reads everything cached so far.
* MLP: ``c_fc`` to ``4 * n_embd``, GELU with the tanh approximation (``gelu_new``), ``c_proj``.

OpenAI's checkpoints store these projections as ``Conv1D`` weights of shape ``(in, out)``;
gradient uses ``nn.Linear`` (``(out, in)``, as PyTorch), so :meth:`GPT2LMHeadModel._from_hf_tensor`
transposes them on load into rows of their own (a copy, whose mapped source pages are then
given back: the decoding products read a weight's rows in place, at memory speed; over the
transposed view of the file they ran through BLAS, GPT-2 124M F32 at 0.83x llama.cpp's decode
speed instead of 1.04x) and ``save_pretrained`` writes them back in the checkpoint's layout.

Example::

    >>> model = GPT2LMHeadModel.from_pretrained("path/to/gpt2")
    >>> logits = model(gradient.tensor([[15496, 11, 616, 1438]])).logits   # (1, 4, 50257)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import nn
from ..errors import ArgumentValueError, ConfigError
from ..nn import functional as F
from ..ops.creation import arange
from .decode_step import captured_tokens, decode_step, replays_decode_step, step_mask
from .masks import decoder_mask
from .pretrained import CausalLMOutput, ModelConfig, PreTrainedModel, register_model

__all__ = ["GPT2Config", "GPT2LMHeadModel"]

# Conv1D layers of the checkpoint: their weights are (in, out) there, (out, in) here.
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@dataclasses.dataclass
class GPT2Config(ModelConfig):
    """GPT-2's hyper-parameters, named as in its ``config.json``; defaults are GPT-2 small."""

    model_type = "gpt2"
    _divisors = ("n_head",)
    _layer_counts = ("n_layer",)
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None            # MLP width; None means 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False  # only changes float16 rounding in transformers
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    tie_word_embeddings: bool = True

    def __post_init__(self):
        self.check_sizes()
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPT2Config: n_embd ({self.n_embd}) must be a multiple of n_head "
                             f"({self.n_head})")
        if self.activation_function not in _ACTIVATIONS:
            raise ConfigError(f"GPT2Config: activation_function {self.activation_function!r} is "
                             f"not supported; expected one of {sorted(_ACTIVATIONS)}")


_ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


class GPT2Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.layer_idx = layer_idx
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout, self.resid_dropout = config.attn_pdrop, nn.Dropout(config.resid_pdrop)
        self.scale = (1.0 / math.sqrt(self.head_dim)) if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= layer_idx + 1

    def forward(self, x, mask=None, cache=None):
        B, T, C = x.shape
        # (B, T, 3C) -> three (B, n_head, T, head_dim)
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        # Without an explicit mask, plain causal attention is exact when the cache is empty; a
        # single new token (decode) attends to every cached position.
        causal = mask is None and k.shape[-2] == T and T > 1
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.attn_dropout if self.training else 0.0,
                                           scale=self.scale)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.act = _ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x, mask=None, cache=None):
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    """The transformer without the head (``GPT2Model`` in transformers)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None):
        T = input_ids.shape[-1]
        past = cache.length if cache is not None else 0
        if past + T > self.wpe.num_embeddings:
            raise ArgumentValueError(f"GPT-2: {past + T} positions exceed the model's n_positions "
                                     f"({self.wpe.num_embeddings})")
        if position_ids is None:
            position_ids = arange(past, past + T, device=input_ids.device).unsqueeze(0)
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        mask = decoder_mask(attention_mask, T, past, device=input_ids.device)
        replays = replays_decode_step(self, cache)
        if replays:        # a short prompt into an empty cache: a step too
            mask = step_mask(mask, T, past)
        if replays and captured_tokens(T, mask):
            x = decode_step(self, self._blocks)(x, mask, cache)
        else:
            x = self._blocks(x, mask, cache)
        if cache is not None:
            cache.advance(T)
        return x

    def _blocks(self, x, mask=None, cache=None):
        """The blocks and the final norm: what a decode step replays once captured."""
        for block in self.h:
            x = block(x, mask, cache)
        return self.ln_f(x)

    #: Replay the decode step (one new token per sequence) once captured from the blocks'
    #: forward (see :mod:`gradient.capture`); False always runs the module graph.
    fused_decode = True
    _derived_caches = ("_captured",)


@register_model("gpt2")
class GPT2LMHeadModel(PreTrainedModel):
    """GPT-2 with its language-modelling head (tied to the token embedding).

    ``forward(input_ids, attention_mask=None, position_ids=None, cache=None, labels=None,
    logits_to_keep=0)`` returns a :class:`CausalLMOutput`: ``logits`` of shape (B, T, vocab)
    (only the last ``logits_to_keep`` positions when it is positive, which is all generation
    needs), and ``loss``, the next-token cross-entropy, when ``labels`` are given (positions
    labelled -100 are ignored; labels are shifted inside, as in transformers).
    """

    config_class = GPT2Config
    _tied_weights = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights(config)
        self.tie_weights()

    def _init_weights(self, config: GPT2Config) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the residual
        projections scaled by 1/sqrt(2 * n_layer)."""
        std = config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=std / math.sqrt(2 * config.n_layer))
            else:
                nn.init.normal_(p, std=std)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, labels=None,
                logits_to_keep: int = 0) -> CausalLMOutput:
        cache = self._inference_cache(input_ids, cache)
        x = self.transformer(input_ids, attention_mask, position_ids, cache)
        if logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutput(logits, loss)

    def new_cache(self, batch_size: int, max_length: int, dtype=None):
        """A :class:`~gradient.generation.KVCache` for ``max_length`` positions, in ``dtype``,
        else the model's ``kv_cache_dtype``, else the weights' dtype."""
        from ..generation.kv_cache import KVCache
        c = self.config
        # the final norm's: always a float parameter (a GGUF file's head and embedding may be
        # quantized, with no float weight)
        weight = self.transformer.ln_f.weight
        return KVCache(c.n_layer, batch_size, c.n_head, c.n_embd // c.n_head, max_length,
                       dtype=dtype or self.kv_cache_dtype or weight.dtype, device=weight.device)

    # -- the checkpoint's layout
    @classmethod
    def _from_hf_tensor(cls, name, array):
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            return None  # causal-mask buffers that old checkpoints carry; nothing to learn
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # OpenAI's files name GPT2Model's tensors bare
        if name.endswith(_CONV1D):
            array = np.ascontiguousarray(array.T)
        return name, array

    @classmethod
    def _to_hf_tensor(cls, name, array):
        return name, (array.T if name.endswith(_CONV1D) else array)
